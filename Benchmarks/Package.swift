// swift-tools-version: 6.1
// Benchmarks of swift-multiprocessing, in a package of their own so that the library's users never
// build them: `pool-workloads` runs the workloads of ../../shared/reference/cpython_pool.py on
// our pool and prints the same JSON keys (Scripts/compare-cpython runs both side by side).
import Foundation
import PackageDescription

/// A path dependency's identity is its folder's name, which is whatever the clone was called.
let library = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "swift-multiprocessing-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: "..")],
    targets: [
        .executableTarget(
            name: "pool-workloads",
            dependencies: [.product(name: "Multiprocessing", package: library)],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
