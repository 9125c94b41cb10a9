// swift-tools-version: 6.2
// Examples of swift-multiprocessing, in a package of their own so that the library's users never
// build them. `swift build --package-path Examples`, then e.g. `swift run --package-path Examples
// word-count Sources`.
import Foundation
import PackageDescription

/// A path dependency's identity is its folder's name, which is whatever the clone was called.
let library = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent.lowercased()

let settings: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "swift-multiprocessing-examples",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        // http-server only: a Hummingbird 2 app whose metrics Prometheus scrapes.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "word-count",
            dependencies: [.product(name: "Multiprocessing", package: library)],
            swiftSettings: settings),
        .executableTarget(
            name: "image-bands",
            dependencies: [.product(name: "Multiprocessing", package: library)],
            swiftSettings: settings),
        .executableTarget(
            name: "request-offload",
            dependencies: [.product(name: "Multiprocessing", package: library)],
            swiftSettings: settings),
        .executableTarget(
            name: "http-server",
            dependencies: [
                .product(name: "Multiprocessing", package: library),
                .product(name: "MultiprocessingServiceLifecycle", package: library),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings),
    ]
)
