// Shared helpers of the test suite: pools that run the test worker executable, their errors,
// processes' states, pid markers, and waiting for a condition. Beside it: TestFolder.swift (the
// run's temporary folder), Threads.swift (blocking work on threads of its own), FramePipe.swift,
// ParentProgram.swift (the test worker executable run as a parent program).

import Logging
import Multiprocessing
import MultiprocessingTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

typealias F = TestFunctions

enum TestPools {
    /// `multiprocessing-test-worker`, built next to the test bundle by `swift test`.
    static let workerExecutable: String = {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let path = String(decoding: buffer[0..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        Pool.registerErrorType(TestFailure.self)
        return directory + "/multiprocessing-test-worker"
    }()

    /// A pool of the test worker, on the suite's backend (``TestBackend``).
    static func make(
        processes: Int = 2, maxTasksPerChild: Int? = nil, taskTimeout: Duration? = nil
    ) throws -> Pool {
        try make(
            configuration(processes: processes, maxTasksPerChild: maxTasksPerChild, taskTimeout: taskTimeout))
    }

    /// A configuration of the test worker, on the suite's backend: what a test changes further
    /// (an initializer, a logger) before it makes the pool with ``make(_:)`` or `withPool`.
    static func configuration(
        processes: Int? = 2, maxTasksPerChild: Int? = nil, taskTimeout: Duration? = nil,
        executable: String? = TestPools.workerExecutable, logger: Logger? = nil
    ) -> Pool.Configuration {
        onBackend(
            Pool.Configuration(
                processes: processes, maxTasksPerChild: maxTasksPerChild, taskTimeout: taskTimeout,
                executable: executable, logger: logger))
    }

    /// `configuration` on the suite's backend: a cluster pool when ``TestBackend/isCluster``.
    static func onBackend(_ configuration: Pool.Configuration) -> Pool.Configuration {
        guard TestBackend.isCluster else { return configuration }
        #if MPI
            TestBackend.joinCluster
            var configuration = configuration
            configuration.cluster = .mpi
            return configuration
        #else
            fatalError("MULTIPROCESSING_TEST_BACKEND=mpi needs a build with the MPI trait (swift build --traits MPI)")
        #endif
    }

    /// A pool of `configuration` on the suite's backend.
    static func make(_ configuration: Pool.Configuration) throws -> Pool {
        try Pool(onBackend(configuration))
    }
}

/// Which backend the suite's pools run on. Local by default; with
/// `MULTIPROCESSING_TEST_BACKEND=mpi` (a build with the `MPI` trait, run as rank 0 of an MPI job
/// whose other ranks run `multiprocessing-test-worker`: Scripts/test-cluster) every pool made
/// through ``TestPools`` is a cluster pool, its workers under the other ranks' node agents. Tests
/// that do not apply to a cluster pool say so with `.disabled(if: TestBackend.isCluster, …)`.
enum TestBackend {
    static let isCluster: Bool = environment("MULTIPROCESSING_TEST_BACKEND") == "mpi"

    /// Why a test is skipped on the cluster backend when what it checks is about this process
    /// being the workers' parent (descriptors it passes them, children it reaps).
    static let needsLocalWorkers: Comment =
        "checks this process as the workers' parent: a cluster pool's workers are the node agents' children"

    /// Why a test is skipped on the cluster backend when it runs the test worker as a parent program
    /// of its own: that program's pools are local pools (the cluster pool is not what it tests),
    /// and it would inherit rank 0's MPI launcher variables and take itself for rank 0.
    static let parentProgram: Comment =
        "runs a parent program whose pools are local: nothing of it runs on the cluster"

    /// Why a test is skipped on the cluster backend when it shares values with `pool.share`.
    static let sharesMemory: Comment =
        "pool.share maps this machine's memory into the workers: a cluster pool refuses it (.invalidArgument)"

    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    #if MPI
        /// Makes this process rank 0 of the MPI job (the parent end, whose pools use the other ranks'
        /// agents), once: `Pool.bootstrap` does that under an MPI launcher. The test runner's `main`
        /// is not ours, so the first cluster pool does it.
        static let joinCluster: Void = {
            guard environment("OMPI_COMM_WORLD_RANK") == "0" || environment("PMIX_RANK") == "0" else {
                fatalError(
                    "MULTIPROCESSING_TEST_BACKEND=mpi: the test runner must be rank 0 of an MPI job whose other "
                        + "ranks run multiprocessing-test-worker (mpiexec -n 1 <tests> : -n 2 <worker>)")
            }
            Pool.bootstrap(serving: [], errorTypes: [TestFailure.self])
        }()
    #endif
}

/// The `PoolError` code of `error`, if it is one.
func poolCode(_ error: any Error) -> PoolError.Code? {
    (error as? PoolError)?.code
}

/// The `PoolError` code `body` throws; nil if it throws something else or nothing.
func errorCode<T>(_ body: () throws -> T) -> PoolError.Code? {
    do {
        _ = try body()
        return nil
    } catch {
        return (error as? PoolError)?.code
    }
}

/// Whether a process exists (and is not a zombie).
func processIsAlive(_ pid: Int32) -> Bool {
    // A zombie still answers kill(0): look at its state.
    guard kill(pid, 0) == 0, let state = processState(pid) else { return false }
    return state != "Z" && state != "X"
}

/// The one-letter state of a process (`R`, `S`, `T` stopped, `Z` zombie…), nil if it is gone.
func processState(_ pid: pid_t) -> Character? {
    guard let file = fopen("/proc/\(pid)/stat", "r") else { return nil }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 512)
    guard fgets(&buffer, 512, file) != nil else { return nil }
    let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let close = line.lastIndex(of: ")"), line.distance(from: close, to: line.endIndex) > 2 else { return nil }
    return line[line.index(close, offsetBy: 2)]
}

/// A fresh path (in the run's temporary folder) for `F.announceThenSleep` to write its worker's
/// pid to.
func pidMarkerPath() -> String {
    TestFolder.uniquePath("pid-marker")
}

/// The pid `F.announceThenSleep` wrote to `path`, or 0 if it has not yet.
func pidInMarker(_ path: String) -> Int32 {
    guard let file = fopen(path, "r") else { return 0 }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 32)
    guard fgets(&buffer, 32, file) != nil else { return 0 }
    return Int32(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) ?? 0
}

/// Waits (blocking) for `F.announceThenSleep` to write its pid to `path`; 0 if it never does.
func readPIDMarker(_ path: String, timeout: Duration = .seconds(20)) -> Int32 {
    _ = eventually(timeout: timeout) { pidInMarker(path) != 0 }
    return pidInMarker(path)
}

/// Waits (suspending, so the thread serves other tasks) for `F.announceThenSleep` to write its
/// pid to `path`; 0 if it never does.
func awaitPIDMarker(_ path: String, timeout: Duration = .seconds(45)) async -> Int32 {
    _ = await eventuallyAsync(timeout: timeout) { pidInMarker(path) != 0 }
    return pidInMarker(path)
}

/// Polls `condition`, sleeping without holding a thread, until it holds or `timeout` passes.
/// Async tests use it for long waits: the cooperative pool has only as many threads as cores,
/// and a test blocking one can starve the tasks it waits for.
func eventuallyAsync(timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// A deterministic generator, so that fuzz failures reproduce.
typealias SeededGenerator = SplitMix64

/// A counter that is not atomic: only a lock keeps its increments from being lost (the lock
/// tests count with it beside the guarded value).
final class PlainCounter: @unchecked Sendable {
    var value = 0
}
