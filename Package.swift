// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "swift-multiprocessing",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Multiprocessing", targets: ["Multiprocessing"]),
        .executable(name: "multiprocessing-demo", targets: ["multiprocessing-demo"]),
        // The pool as a swift-service-lifecycle `Service`: a product of its own, so that users who
        // do not want it never build it.
        .library(name: "MultiprocessingServiceLifecycle", targets: ["MultiprocessingServiceLifecycle"]),
    ],
    traits: [
        // The cluster transport over Open MPI (`Pool.Configuration.cluster`): needs Open MPI's
        // headers and library (Debian: `apt-get install openmpi-bin libopenmpi-dev`).
        .trait(name: "MPI", description: "Run pools across an MPI job's ranks (Open MPI).")
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        // The demo's command line only; the library does not depend on it.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // MultiprocessingServiceLifecycle only.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // Documentation only: `swift package generate-documentation`.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // Syscalls Swift cannot call directly (variadic `prctl`/`syscall`) live here.
        .target(name: "CMultiprocessing"),
        // Accessors for Open MPI's handles, which are macros Swift cannot import (trait `MPI`).
        .systemLibrary(
            name: "CMPI", pkgConfig: "ompi",
            providers: [.apt(["libopenmpi-dev"])]),
        .target(
            name: "Multiprocessing",
            dependencies: [
                "CMultiprocessing",
                .target(name: "CMPI", condition: .when(traits: ["MPI"])),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MultiprocessingServiceLifecycle",
            dependencies: [
                "Multiprocessing",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "multiprocessing-demo",
            dependencies: [
                "Multiprocessing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // The pool functions the test suite runs, shared by the tests (parent side) and the
        // test worker executable (worker side).
        .target(
            name: "MultiprocessingTestSupport",
            dependencies: ["Multiprocessing"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "multiprocessing-test-worker",
            dependencies: [
                "Multiprocessing", "MultiprocessingTestSupport",
                // The `metrics` parent role bootstraps the global metrics system.
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The cluster pool's checks, run under a real `mpiexec` (built with the `MPI` trait).
        .executableTarget(
            name: "multiprocessing-cluster-check",
            dependencies: ["Multiprocessing", "MultiprocessingTestSupport"],
            swiftSettings: swiftSettings
        ),
        // mpi4py_pool.py's workloads on a cluster pool, for Scripts/compare-mpi4py (trait `MPI`).
        .executableTarget(
            name: "multiprocessing-cluster-bench",
            dependencies: ["Multiprocessing"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MultiprocessingTests",
            dependencies: [
                "Multiprocessing",
                "MultiprocessingTestSupport",
                "multiprocessing-test-worker",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MultiprocessingServiceLifecycleTests",
            dependencies: [
                "Multiprocessing",
                "MultiprocessingServiceLifecycle",
                "MultiprocessingTestSupport",
                "multiprocessing-test-worker",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
