// The limits on a worker's life besides its task count: the start deadline (`startTimeout`),
// replacement after a task that left the worker's memory above `maxMemoryPerChild`, and the
// kernel-enforced `workerMemoryLimit`. Each runs real workers of the test executable.

import Multiprocessing
import MultiprocessingTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A test script could not be written.
private struct CannotWrite: Error {
    let path: String
}

/// A worker executable that never reaches `Pool.bootstrap` and never exits by itself.
private func neverBootstrappingExecutable() throws -> String {
    let path = TestFolder.uniquePath("never-ready") + ".sh"
    guard let file = fopen(path, "w") else { throw CannotWrite(path: path) }
    fputs("#!/bin/sh\nexec sleep 600\n", file)
    fclose(file)
    chmod(path, 0o755)
    return path
}

private let mebibyte = 1 << 20

@Suite("Worker limits", .offCooperativePool)
struct WorkerLimitTests {
    // MARK: - startTimeout

    @Test("A program that never reaches bootstrap fails calls with initializerFailed", .timeLimit(.minutes(1)))
    func neverReady() async throws {
        let executable = try neverBootstrappingExecutable()
        defer { unlink(executable) }
        let pool = try TestPools.make(
            Pool.Configuration(processes: 2, startTimeout: .milliseconds(300), executable: executable))
        defer { pool.stop() }
        // Timed where the pool acts (its error callback, on the pool's own thread), not after an
        // await that a busy cooperative pool may resume late.
        let failedAt = Mutex<ContinuousClock.Instant?>(nil)
        let started = ContinuousClock.now
        let result = try pool.applyAsync(
            F.square, 2, errorCallback: { _ in failedAt.withLock { $0 = ContinuousClock.now } })
        let error = await #expect(throws: PoolError.self) { try await result.value }
        #expect(error?.code == .initializerFailed)
        #expect(error?.description.contains("start timeout of 0.3 seconds") == true)
        // Two workers time out together, then the third: about two start timeouts.
        let elapsed = failedAt.withLock { $0 }.map { $0 - started }
        #expect(elapsed.map { $0 < .seconds(5) } == true, "failed after \(String(describing: elapsed))")
    }

    @Test("An initializer that never returns fails calls with initializerFailed", .timeLimit(.minutes(1)))
    func hangingInitializer() async throws {
        let pool = try TestPools.make(
            Pool.Configuration(
                processes: 1, initializer: try .init(F.slowSetUp, 60_000), startTimeout: .milliseconds(300),
                executable: TestPools.workerExecutable))
        defer { pool.stop() }
        let result = try pool.applyAsync(F.square, 3)
        let error = await #expect(throws: PoolError.self) { try await result.value }
        #expect(error?.code == .initializerFailed)
        #expect(error?.description.contains("not ready within its start timeout") == true)
        // Broken for good: later calls fail at once.
        #expect(errorCode { try pool.apply(F.square, 3) } == .initializerFailed)
    }

    @Test("A slow initializer within its start timeout runs every call", .timeLimit(.minutes(1)))
    func slowInitializerInTime() async throws {
        let pool = try TestPools.make(
            Pool.Configuration(
                processes: 2, initializer: try .init(F.slowSetUp, 400), startTimeout: .seconds(20),
                executable: TestPools.workerExecutable))
        defer { pool.stop() }
        #expect(try await pool.map(F.square, 0..<10, chunksize: 1) == (0..<10).map { $0 * $0 })
    }

    @Test("Limits out of range are refused")
    func invalidLimits() {
        let executable = TestPools.workerExecutable
        #expect(errorCode { try Pool(processes: 1, startTimeout: .zero, executable: executable) } == .invalidArgument)
        #expect(errorCode { try Pool(processes: 1, maxMemoryPerChild: 0, executable: executable) } == .invalidArgument)
        #expect(errorCode { try Pool(processes: 1, workerMemoryLimit: -1, executable: executable) } == .invalidArgument)
        #expect(Pool.defaultStartTimeout == .seconds(120))
    }

    // MARK: - maxMemoryPerChild

    @Test("A worker above maxMemoryPerChild after a task is replaced once its result is in", .timeLimit(.minutes(1)))
    func replacedAboveMemoryBound() async throws {
        let pool = try TestPools.make(
            Pool.Configuration(processes: 1, maxMemoryPerChild: 200 * mebibyte, executable: TestPools.workerExecutable))
        defer { pool.stop() }
        let first = try await pool.apply(F.leakMiB, 40)
        #expect(try await pool.apply(F.leakMiB, 40) == first, "still below the bound: the same worker")
        // This one ends above it: its result still arrives, from the same worker...
        #expect(try await pool.apply(F.leakMiB, 160) == first)
        // ...which is then replaced.
        let next = try await pool.apply(F.leakMiB, 1)
        #expect(next != first)
        #expect(await eventuallyAsync { !processIsAlive(first) })
        #expect(pool.workerPIDs == [next])
    }

    @Test("maxMemoryPerChild never cuts a map short", .timeLimit(.minutes(1)))
    func memoryBoundDuringMap() async throws {
        let pool = try TestPools.make(
            Pool.Configuration(processes: 2, maxMemoryPerChild: 100 * mebibyte, executable: TestPools.workerExecutable))
        defer { pool.stop() }
        let pids = try await pool.map(F.leakMiB, Array(repeating: 30, count: 12), chunksize: 1)
        #expect(pids.count == 12)
        // Each worker leaks 30 MiB a task: none can have run more than a few tasks.
        let most = Dictionary(grouping: pids, by: { $0 }).values.map(\.count).max() ?? 0
        #expect(most <= 4)
        #expect(Set(pids).count >= 3)
    }

    // MARK: - workerMemoryLimit

    @Test("A task past workerMemoryLimit fails with workerLost naming the limit", .timeLimit(.minutes(1)))
    func hardMemoryLimit() async throws {
        let pool = try TestPools.make(
            Pool.Configuration(processes: 1, workerMemoryLimit: 256 * mebibyte, executable: TestPools.workerExecutable))
        defer { pool.stop() }
        #expect(try await pool.apply(F.allocateMiB, 16) == 16 * mebibyte)
        let before = pool.workerPIDs
        let error = await #expect(throws: PoolError.self) { try await pool.apply(F.allocateMiB, 4096) }
        #expect(error?.code == .workerLost)
        #expect(error?.description.contains("workerMemoryLimit of \(256 * mebibyte) bytes (256 MiB)") == true)
        // The worker is replaced and the pool goes on.
        #expect(try await pool.apply(F.allocateMiB, 16) == 16 * mebibyte)
        #expect(pool.workerPIDs != before)
    }

    @Test("A workerMemoryLimit too low for a worker breaks the pool with a clear error", .timeLimit(.minutes(1)))
    func memoryLimitTooLowToStart() async throws {
        let pool = try TestPools.make(
            Pool.Configuration(processes: 1, workerMemoryLimit: mebibyte, executable: TestPools.workerExecutable))
        defer { pool.stop() }
        let error = await #expect(throws: PoolError.self) { try await pool.apply(F.square, 2) }
        #expect(error?.code == .initializerFailed)
        #expect(error?.description.contains("workerMemoryLimit of \(mebibyte) bytes (1 MiB) is too low") == true)
    }
}
