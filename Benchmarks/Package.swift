// swift-tools-version: 6.1
// Benchmarks of swift-multiprocessing, in a package of their own so that the library's users never
// build them:
// - `pool-workloads` runs the workloads of ../../shared/reference/cpython_pool.py on our pool and
//   prints the same JSON keys (Scripts/compare-cpython runs both side by side);
// - `PoolMicro` (Benchmarks/PoolMicro) holds package-benchmark micro-benchmarks of the per-task
//   costs: the wire coder, one `apply` round trip, chunk throughput. Run them with
//   `swift package --disable-sandbox benchmark` (see README.md). Its pools run `bench-worker`,
//   whose `main` calls `Pool.bootstrap`, since package-benchmark writes the benchmark's `main`.
import Foundation
import PackageDescription

/// A path dependency's identity is its folder's name, which is whatever the clone was called.
let library = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "swift-multiprocessing-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        // The MallocInterposer trait alone: the default traits add a runtime interposer on Linux
        // with Swift 6.3 that is a package of its own. Needs no system package (no jemalloc).
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "pool-workloads",
            dependencies: [.product(name: "Multiprocessing", package: library)],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The pool functions of the micro-benchmarks, shared by the benchmark (parent side) and
        // the worker executable (worker side).
        .target(
            name: "PoolMicroFunctions",
            dependencies: [.product(name: "Multiprocessing", package: library)],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The program the micro-benchmarks' pools start as workers.
        .executableTarget(
            name: "bench-worker",
            dependencies: [.product(name: "Multiprocessing", package: library), "PoolMicroFunctions"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "PoolMicro",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Multiprocessing", package: library),
                "PoolMicroFunctions",
                // Built with the benchmark (a build dependency only), so that it lies beside it.
                "bench-worker",
            ],
            path: "Benchmarks/PoolMicro",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
