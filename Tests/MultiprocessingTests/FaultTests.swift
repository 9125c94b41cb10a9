// Faults that break CPython's Pool: a dying worker, a task that runs too long, a caller that gives
// up, a corrupt stream. Each must fail exactly the affected results, promptly, and the pool must
// heal.

import Multiprocessing
import MultiprocessingTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("Faults", .offCooperativePool) struct FaultTests {
    @Test("A worker killed with SIGKILL fails its task with workerLost; the pool heals", .timeLimit(.minutes(1)))
    func sigkilledWorker() throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        // The task tells which worker runs it.
        let marker = pidMarkerPath()
        defer { unlink(marker) }
        let slow = try pool.applyAsync(F.announceThenSleep, marker, 30_000)
        let victim = readPIDMarker(marker)
        #expect(victim != 0)
        let start = ContinuousClock.now
        kill(victim, SIGKILL)
        let error = #expect(throws: PoolError.self) { try slow.get(timeout: .seconds(10)) }
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(error?.code == .workerLost)
        #expect(error?.workerPID == victim)
        #expect(error?.functionName == "announceThenSleep")
        #expect(error?.description.contains("SIGKILL") == true)
        // Healed: two workers, a new pid, and work goes on.
        #expect(eventually { pool.workerPIDs.count == 2 && !pool.workerPIDs.contains(victim) })
        #expect(try pool.map(F.square, 0..<20) == (0..<20).map { $0 * $0 })
    }

    @Test("A trap in a task reports the runtime's last words", .timeLimit(.minutes(1)))
    func trapInTask() throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let error = #expect(throws: PoolError.self) { try pool.apply(F.trapAt, 3, 3) }
        #expect(error?.code == .workerLost)
        #expect(error?.functionName == "trapAt")
        #expect(error?.description.contains("Fatal error") == true)
        #expect(error?.description.contains("Index out of range") == true)
        // Other work goes on, on a replacement.
        #expect(try pool.starmap(F.trapAt, (0..<10).map { ($0, -1) }) == Array(0..<10))
    }

    @Test("fatalError's message reaches the caller", .timeLimit(.minutes(1)))
    func fatalErrorInTask() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let error = #expect(throws: PoolError.self) { try pool.apply(F.fatal, "the disk is on fire") }
        #expect(error?.code == .workerLost)
        #expect(error?.description.contains("the disk is on fire") == true)
        #expect(try pool.apply(F.square, 5) == 25)
    }

    @Test("exit(3) in a task is reported with its status", .timeLimit(.minutes(1)))
    func exitInTask() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let before = pool.workerPIDs
        let error = #expect(throws: PoolError.self) { try pool.apply(F.exitWith, 3) }
        #expect(error?.code == .workerLost)
        #expect(error?.description.contains("exited with status 3") == true)
        #expect(try pool.apply(F.square, 4) == 16)
        #expect(pool.workerPIDs != before)
    }

    @Test("Only the chunk on the dead worker fails; a map fails, other calls succeed", .timeLimit(.minutes(1)))
    func onlyAffectedResultsFail() throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let crash = try pool.applyAsync(F.exitWith, 9)
        let fine = try pool.mapAsync(F.square, 0..<200, chunksize: 10)
        #expect(try fine.get(timeout: .seconds(20)) == (0..<200).map { $0 * $0 })
        #expect(errorCode { try crash.get() } == .workerLost)
    }

    @Test("A task running past taskTimeout is killed in well under 3 s", .timeLimit(.minutes(1)))
    func taskTimeout() throws {
        let pool = try TestPools.make(processes: 2, taskTimeout: .milliseconds(300))
        defer { pool.stop() }
        let start = ContinuousClock.now
        let error = #expect(throws: PoolError.self) { try pool.apply(F.blockMs, 30_000) }
        #expect(ContinuousClock.now - start < .seconds(3))
        #expect(error?.code == .taskTimedOut)
        #expect(error?.functionName == "blockMs")
        #expect(error?.description.contains("0.3 seconds") == true)
        // Short tasks are unaffected, and the pool has healed.
        #expect(try pool.map(F.blockMs, [1, 2, 3], chunksize: 1) == [1, 2, 3])
        #expect(eventually { pool.workerPIDs.count == 2 })
    }

    @Test("Timeouts hold on a warm, idle pool too", .timeLimit(.minutes(1)))
    func timeoutOnIdlePool() throws {
        let pool = try TestPools.make(processes: 1, taskTimeout: .milliseconds(300))
        defer { pool.stop() }
        #expect(try pool.apply(F.square, 2) == 4)
        usleep(400_000)  // the I/O thread is asleep with no timer
        let start = ContinuousClock.now
        #expect(errorCode { try pool.apply(F.blockMs, 5_000) } == .taskTimedOut)
        #expect(ContinuousClock.now - start < .seconds(3))
        usleep(400_000)
        let perCall = try pool.applyAsync(F.blockMs, 5_000, timeout: .milliseconds(200))
        #expect(errorCode { try perCall.get(timeout: .seconds(4)) } == .taskTimedOut)
    }

    @Test("A per-call timeout overrides the pool's", .timeLimit(.minutes(1)))
    func perCallTimeout() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let result = try pool.applyAsync(F.blockMs, 30_000, timeout: .milliseconds(200))
        let error = #expect(throws: PoolError.self) { try result.get(timeout: .seconds(10)) }
        #expect(error?.code == .taskTimedOut)
        let mapped = try pool.mapAsync(F.blockMs, [10_000], timeout: .milliseconds(200))
        #expect(errorCode { try mapped.get(timeout: .seconds(10)) } == .taskTimedOut)
        #expect(try pool.apply(F.square, 3) == 9)
    }

    @Test("Cancelling an awaiting task stops its work promptly", .timeLimit(.minutes(2)))
    func cancellation() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let marker = pidMarkerPath()
        defer { unlink(marker) }
        let task = Task { try await pool.apply(F.announceThenSleep, marker, 30_000) }
        let victim = await awaitPIDMarker(marker)
        #expect(victim != 0)
        let start = ContinuousClock.now
        task.cancel()
        // The pool reacts at once, inside `cancel()`: the worker running the call is killed.
        // (Measured here, on the test's own thread, with a short blocking poll: the awaiting task
        // may wait for a thread of the cooperative pool, which other tests keep busy.)
        #expect(eventually(timeout: .seconds(1)) { !processIsAlive(victim) })
        #expect(ContinuousClock.now - start < .seconds(1))
        await #expect(throws: CancellationError.self) { try await task.value }
        // A replacement took its place.
        #expect(await eventuallyAsync { pool.workerPIDs.count == 1 && !pool.workerPIDs.contains(victim) })
        #expect(try await pool.apply(F.square, 6) == 36)
    }

    @Test("Cancelling an async map drops chunks not started", .timeLimit(.minutes(2)))
    func cancelMap() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        // Tasks may wait for a thread while other tests keep the cooperative pool busy: wait
        // until this one runs, then until its first chunks do.
        // Its tasks would take a minute each: the map cannot end before the cancel, however late a
        // busy cooperative pool runs this test (a map of short tasks once finished before it).
        let started = Atomic<Bool>(false)
        let task = Task {
            started.store(true, ordering: .releasing)
            return try await pool.map(F.blockMs, Array(repeating: 60_000, count: 100), chunksize: 1)
        }
        #expect(await eventuallyAsync(timeout: .seconds(45)) { started.load(ordering: .acquiring) })
        #expect(await eventuallyAsync(timeout: .seconds(45)) { pool.statistics.tasksRunning == 2 })
        let busy = pool.workerPIDs
        let start = ContinuousClock.now
        task.cancel()
        // The workers running its chunks are killed at once (measured on this thread, see above).
        #expect(eventually(timeout: .seconds(1)) { !busy.contains(where: processIsAlive) })
        #expect(ContinuousClock.now - start < .seconds(1))
        await #expect(throws: CancellationError.self) { try await task.value }
        // Nothing of it keeps the workers busy: a new call is answered at once.
        let quick = ContinuousClock.now
        #expect(try await pool.apply(F.square, 2) == 4)
        #expect(ContinuousClock.now - quick < .seconds(2))
    }

    @Test("Cancelling a task iterating a stream stops it", .timeLimit(.minutes(1)))
    func cancelStream() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let task = Task {
            var seen = 0
            for try await _ in try pool.imap(F.blockMs, Array(repeating: 100, count: 1000)) { seen += 1 }
            return seen
        }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }

    @Test("A corrupt frame from a worker fails its task and replaces it", .timeLimit(.minutes(1)))
    func corruptFrame() throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let garbage: [UInt8] = [0xff, 0xff, 0xff, 0x7f, 0x42, 1, 2, 3]
        let error = #expect(throws: PoolError.self) { try pool.apply(F.corruptChannel, garbage) }
        #expect(error?.code == .workerLost)
        #expect(error?.description.contains("corrupt") == true)
        #expect(try pool.map(F.square, 0..<10) == (0..<10).map { $0 * $0 })
    }

    @Test("A truncated frame (a valid header, then death) fails cleanly", .timeLimit(.minutes(1)))
    func truncatedFrame() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        // A result frame header that promises 100 bytes, then the worker is killed by the test.
        let header: [UInt8] = [100, 0, 0, 0, 11, 1, 2]
        _ = try pool.apply(F.square, 1)  // the worker is ready: the task below starts at once
        let pending = try pool.applyAsync(F.corruptChannel, header)
        usleep(200_000)
        for pid in pool.workerPIDs { kill(pid, SIGKILL) }
        let error = #expect(throws: PoolError.self) { try pending.get(timeout: .seconds(10)) }
        #expect(error?.code == .workerLost)
        #expect(try pool.apply(F.square, 9) == 81)
    }

    @Test("terminate fails every pending result at once", .timeLimit(.minutes(1)))
    func terminatePending() throws {
        let pool = try TestPools.make(processes: 2)
        let results = try (0..<6).map { _ in try pool.applyAsync(F.blockMs, 20_000) }
        let stream = try pool.imap(F.blockMs, [20_000, 20_000])
        usleep(100_000)
        pool.terminate()
        for result in results {
            #expect(errorCode { try result.get(timeout: .seconds(5)) } == .terminated)
        }
        #expect(errorCode { try stream.next(timeout: .seconds(5)) } == .terminated)
        try pool.join()
    }

    @Test("An initializer that always throws breaks the pool with initializerFailed", .timeLimit(.minutes(1)))
    func failingInitializer() throws {
        var configuration = TestPools.configuration(processes: 1)
        configuration.initializer = try .init(F.failingSetUp)
        let pool = try TestPools.make(configuration)
        defer { pool.stop() }
        let error = #expect(throws: PoolError.self) { try pool.apply(F.square, 2) }
        #expect(error?.code == .initializerFailed)
        #expect(error?.description.contains("setup failed") == true)
        // What the initializer threw, as itself (its type is registered), for pending and later calls.
        #expect(error?.underlying as? TestFailure == TestFailure(reason: "setup failed", value: 0))
        let later = #expect(throws: PoolError.self) { try pool.apply(F.square, 3) }
        #expect(later?.underlying as? TestFailure == TestFailure(reason: "setup failed", value: 0))
    }

    @Test("A missing worker executable fails Pool.init with spawnFailed", .timeLimit(.minutes(1)))
    func missingExecutable() throws {
        let error = #expect(throws: PoolError.self) {
            _ = try TestPools.make(
                TestPools.configuration(processes: 1, executable: "/nonexistent/multiprocessing-worker"))
        }
        #expect(error?.code == .spawnFailed)
        #expect(error?.description.contains("/nonexistent/multiprocessing-worker") == true)
    }

    @Test("A worker executable that never bootstraps fails calls instead of hanging", .timeLimit(.minutes(1)))
    func executableWithoutBootstrap() throws {
        let pool = try TestPools.make(TestPools.configuration(processes: 1, executable: "/bin/true"))
        defer { pool.stop() }
        let error = #expect(throws: PoolError.self) { try pool.apply(F.square, 2) }
        #expect(error?.code == .spawnFailed)
        #expect(error?.description.contains("bootstrap") == true)
    }
}
