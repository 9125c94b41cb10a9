// Helpers of the PoolService tests: pools of the test worker executable (built next to the test
// bundle), pid marker files, error codes, process states, and suspending waits (the cooperative
// pool has only as many threads as cores).

import Foundation
import Multiprocessing

enum ServiceTestPools {
    /// `multiprocessing-test-worker`, built next to the test bundle by `swift test`.
    static let workerExecutable: String = {
        let bundle = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return bundle.deletingLastPathComponent().appendingPathComponent("multiprocessing-test-worker").path
    }()

    /// A pool of two test workers.
    static func make() throws -> Pool {
        try Pool(processes: 2, executable: workerExecutable)
    }

    /// A fresh path for `announceThenSleep` to write its worker's pid to.
    static func markerPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("pool-service-\(UUID().uuidString)").path
    }

    /// The pid written to `path`, 0 if none yet.
    static func pidInMarker(_ path: String) -> Int32 {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
        return Int32(text) ?? 0
    }

    /// Waits, suspending, for a pid in `path`; 0 if none comes within 30 s.
    static func awaitMarker(_ path: String) async -> Int32 {
        _ = await eventually(timeout: .seconds(30)) { pidInMarker(path) != 0 }
        return pidInMarker(path)
    }

    /// Polls `condition` every 10 ms, suspending between polls, until it holds or `timeout` passes.
    static func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    /// The `PoolError` code `body` throws; nil if it throws something else or nothing.
    static func code<T>(_ body: () throws -> T) -> PoolError.Code? {
        do {
            _ = try body()
            return nil
        } catch {
            return (error as? PoolError)?.code
        }
    }

    /// The `PoolError` code the async `body` throws; nil if it throws something else or nothing.
    static func code<T>(_ body: () async throws -> T) async -> PoolError.Code? {
        do {
            _ = try await body()
            return nil
        } catch {
            return (error as? PoolError)?.code
        }
    }

    /// Whether process `pid` exists and is not a zombie.
    static func processIsAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
        return state != "Z" && state != "X"
    }
}
