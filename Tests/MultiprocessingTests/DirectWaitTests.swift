// A thread blocked in `get()` on a one-chunk call reads its worker's result pipe itself (the I/O
// thread leaves that pipe alone meanwhile). These tests pin what must not change on that path:
// the worker's death, a terminate, a timeout of the wait and a task timeout all reach the blocked
// thread at once; giving the pipe back leaves the pool whole.

import Dispatch
import Multiprocessing
import MultiprocessingTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("Waiting on the worker's pipe", .offCooperativePool) struct DirectWaitTests {
    @Test(
        "A thread blocked on its own result sees its worker's death even when a forked process keeps the pipe open",
        .timeLimit(.minutes(1)))
    func workerDiesLeavingPipeOpen() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let marker = pidMarkerPath()
        defer { unlink(marker) }
        // The holder keeps the pipe open for 20 s: a waiter that only watched the pipe would wait
        // that long. Timed on the waiting thread: a busy test run may start it late.
        let outcome = await onThread { () -> (Result<Int, any Error>, Duration) in
            let start = ContinuousClock.now
            let result = Result { try pool.apply(F.exitLeavingPipeOpen, marker, 20_000) }
            return (result, ContinuousClock.now - start)
        }
        let (result, elapsed) = try outcome.get()
        let holder = pidInMarker(marker)
        if holder > 0 { kill(holder, SIGKILL) }
        #expect(holder > 0)
        #expect(elapsed < .seconds(10), "the waiter stayed on a pipe the dead worker left open")
        #expect(throws: PoolError.self) { try result.get() }
        if case .failure(let error as PoolError) = result { #expect(error.code == .workerLost) }
        #expect(try await pool.apply(F.square, 7) == 49)
    }

    @Test("A thread blocked on its own result sees its worker's death at once", .timeLimit(.minutes(1)))
    func workerDiesUnderBlockedGet() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let marker = pidMarkerPath()
        defer { unlink(marker) }
        let killedAt = Mutex<ContinuousClock.Instant?>(nil)
        // Timed where the call returns, on its thread: the await after it may resume late on a
        // busy machine.
        async let outcome = onThread { () -> (result: Result<Int32, any Error>, at: ContinuousClock.Instant) in
            let result = Result<Int32, any Error> { try pool.apply(F.announceThenSleep, marker, 30_000) }
            return (result, ContinuousClock.now)
        }
        let victim = await awaitPIDMarker(marker)
        #expect(victim != 0)
        try? await Task.sleep(for: .milliseconds(200))  // the caller is in its wait by now
        killedAt.withLock { $0 = .now }
        kill(victim, SIGKILL)
        let returned = try await outcome.get()
        let (result, returnedAt) = (returned.result, returned.at)
        let elapsed = killedAt.withLock { returnedAt - $0! }
        #expect(elapsed < .seconds(3))
        #expect(result.failure.map(poolCode) == .workerLost)
        // The pool healed, and the pipe given back is gone with its worker: calls still work.
        #expect(await eventuallyAsync { pool.workerPIDs.count == 2 && !pool.workerPIDs.contains(victim) })
        #expect(
            try await onThread { try (0..<20).map { try pool.apply(F.square, $0) } }.get() == (0..<20).map { $0 * $0 })
    }

    @Test("terminate reaches a thread blocked on its own result", .timeLimit(.minutes(1)))
    func terminateUnderBlockedGet() async throws {
        let pool = try TestPools.make(processes: 1)
        let marker = pidMarkerPath()
        defer { unlink(marker) }
        async let outcome = onThread { try pool.apply(F.announceThenSleep, marker, 30_000) }
        #expect(await awaitPIDMarker(marker) != 0)
        try? await Task.sleep(for: .milliseconds(200))
        let start = ContinuousClock.now
        pool.terminate()
        let result = await outcome
        #expect(ContinuousClock.now - start < .seconds(3))
        #expect(result.failure.map(poolCode) == .terminated)
        try pool.join()
    }

    @Test("A wait that times out gives the pipe back; the result still arrives", .timeLimit(.minutes(1)))
    func waitTimesOutThenResultArrives() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        // Tasks far longer than the waits: a waiting thread that a busy machine starts late still
        // waits before the result is in.
        let result = try pool.applyAsync(F.blockMs, 2_500)
        let early = await onThread { try result.get(timeout: .milliseconds(100)) }
        #expect(early.failure.map(poolCode) == .timeout, "\(early)")
        // Read by the I/O thread this time (an async wait), or by a second blocking wait.
        #expect(try await result.value == 2_500)
        let again = try pool.applyAsync(F.blockMs, 1_500)
        #expect(await onThread { try again.get(timeout: .milliseconds(50)) }.failure.map(poolCode) == .timeout)
        #expect(try await onThread { try again.get(timeout: .seconds(10)) }.get() == 1_500)
        // Both pipes went back into the I/O thread's hands: streams and maps work.
        #expect(try await pool.map(F.square, 0..<100, chunksize: 7) == (0..<100).map { $0 * $0 })
    }

    @Test("A task timeout reaches a thread blocked on its own result", .timeLimit(.minutes(1)))
    func taskTimeoutUnderBlockedGet() async throws {
        let pool = try TestPools.make(processes: 1, taskTimeout: .milliseconds(300))
        defer { pool.stop() }
        #expect(try await pool.apply(F.square, 2) == 4)  // started: the time is the task's
        let outcome = await onThread { () -> (Result<Int, any Error>, Duration) in
            let start = ContinuousClock.now
            let result = Result { try pool.apply(F.blockMs, 30_000) }
            return (result, ContinuousClock.now - start)
        }
        let (result, elapsed) = try outcome.get()
        #expect(elapsed < .seconds(3))
        #expect(result.failure.map(poolCode) == .taskTimedOut)
        #expect(try await onThread { try pool.apply(F.square, 7) }.get() == 49)
    }

    @Test("Round trip after round trip, no result is left unread by a waiting thread", .timeLimit(.minutes(2)))
    func noResultTakenFromUnderAWaiter() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        // A result the I/O thread took after this thread began waiting on the pipe would leave
        // it waiting until its deadline: 10 s here, where a round trip takes microseconds.
        let slowest = try await onThread { () -> Duration in
            var slowest = Duration.zero
            for i in 0..<3_000 {
                let start = ContinuousClock.now
                let value = try pool.applyAsync(F.mul, i, 2).get(timeout: .seconds(10))
                precondition(value == 2 * i)
                slowest = max(slowest, ContinuousClock.now - start)
            }
            return slowest
        }.get()
        #expect(slowest < .seconds(9))
    }

    @Test("Many threads reading their own results at once get each its own", .timeLimit(.minutes(1)))
    func manyBlockedCallers() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let wrong = Atomic<Int>(0)
        _ = await onThread {
            DispatchQueue.concurrentPerform(iterations: 6) { thread in
                for i in 0..<300 where (try? pool.apply(F.mul, thread, i)) != thread * i {
                    wrong.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(wrong.load(ordering: .relaxed) == 0)
    }
}

extension Result {
    /// The error, if this is a failure.
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
