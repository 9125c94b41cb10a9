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
    dependencies: [.package(path: "..")],
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
    ]
)
