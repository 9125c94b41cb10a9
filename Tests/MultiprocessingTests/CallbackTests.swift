// Callbacks run on a thread of the pool's own, so a callback may use the pool: call it and wait
// (blocking `apply`/`map`, `get()` of a call with a callback of its own), `terminate()`,
// `close()` and `join()`. Once, callbacks ran on the thread that reads results, and a callback
// that waited on the pool waited for itself forever. Every wait here is bounded, so such a
// regression fails instead of hanging.

import Multiprocessing
import MultiprocessingTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("Callbacks that use the pool", .offCooperativePool) struct CallbackTests {
    enum BlockingCall: String, CaseIterable, Sendable {
        /// One call, which the waiting thread reads from its worker's pipe.
        case apply
        /// Several chunks, which come through the I/O thread.
        case map
    }

    @Test(
        "A callback may call the pool and wait for the answer", .timeLimit(.minutes(1)),
        arguments: BlockingCall.allCases)
    func blockingCallFromCallback(_ call: BlockingCall) async throws {
        let pool = try TestPools.make(processes: 2)
        let inner = Mutex<Result<[Int], any Error>?>(nil)
        let outer = try pool.applyAsync(
            F.square, 3,
            callback: { value in
                let answer = Result { () throws -> [Int] in
                    switch call {
                    case .apply: return [try pool.apply(F.square, value)]
                    case .map: return try pool.map(F.square, 0..<8, chunksize: 2)
                    }
                }
                inner.withLock { $0 = answer }
            })
        let got = await runOnThread(within: .seconds(15)) { try outer.get(timeout: .seconds(10)) }
        await pool.stopWithin()
        #expect(try #require(got, "get() on the outer call hung").get() == 9)
        let answer = try #require(inner.withLock { $0 }, "the callback's call never returned")
        switch call {
        case .apply: #expect(try answer.get() == [81])
        case .map: #expect(try answer.get() == (0..<8).map { $0 * $0 })
        }
    }

    @Test(
        "A callback may submit a call with a callback and wait for it: the inner callback runs first",
        .timeLimit(.minutes(1)))
    func nestedCallbackWaitedForInCallback() async throws {
        let pool = try TestPools.make(processes: 2)
        let events = Mutex<[String]>([])
        let outer = try pool.applyAsync(
            F.square, 3,
            callback: { value in
                do {
                    let inner = try pool.applyAsync(
                        F.square, value, callback: { v in events.withLock { $0.append("inner callback \(v)") } })
                    let v = try inner.get(timeout: .seconds(10))
                    events.withLock { $0.append("got \(v), ready \(inner.ready())") }
                } catch {
                    events.withLock { $0.append("failed: \(error)") }
                }
            })
        let got = await runOnThread(within: .seconds(15)) { try outer.get(timeout: .seconds(12)) }
        await pool.stopWithin()
        #expect(try #require(got, "get() on the outer call hung").get() == 9)
        #expect(events.withLock { $0 } == ["inner callback 81", "got 81, ready true"])
    }

    @Test("A callback that waits for its own result is told at once that it is not ready", .timeLimit(.minutes(1)))
    func callbackWaitsForItself() async throws {
        let pool = try TestPools.make(processes: 1)
        let handle = Mutex<AsyncResult<Int>?>(nil)
        let seen = Mutex<(code: PoolError.Code?, waited: Bool, elapsed: Duration)?>(nil)
        let gate = Atomic<Bool>(false)
        let result = try pool.applyAsync(
            F.square, 5,
            callback: { _ in
                while !gate.load(ordering: .acquiring) { usleep(1_000) }
                let me = handle.withLock { $0 }!
                let start = ContinuousClock.now
                let code = errorCode { try me.get(timeout: .seconds(5)) }
                let waited = me.wait(timeout: .seconds(5))
                seen.withLock { $0 = (code, waited, ContinuousClock.now - start) }
            })
        handle.withLock { $0 = result }
        gate.store(true, ordering: .releasing)
        let got = await runOnThread(within: .seconds(20)) { try result.get(timeout: .seconds(15)) }
        await pool.stopWithin()
        #expect(try #require(got).get() == 25)
        let (code, waited, elapsed) = try #require(seen.withLock { $0 })
        #expect(code == .notReady)
        #expect(!waited)
        #expect(elapsed < .seconds(1))
    }

    @Test("terminate() and join() from a callback: the rest fails with .terminated", .timeLimit(.minutes(1)))
    func terminateAndJoinFromCallback() async throws {
        let pool = try TestPools.make(processes: 2)
        #expect(try await pool.apply(F.square, 1) == 1)
        let long = try pool.applyAsync(F.blockMs, 30_000)
        let joined = Mutex<Result<Void, any Error>?>(nil)
        let trigger = try pool.applyAsync(
            F.square, 2,
            callback: { _ in
                pool.terminate()
                joined.withLock { $0 = Result { try pool.join() } }
            })
        let got = await runOnThread(within: .seconds(15)) { try trigger.get(timeout: .seconds(10)) }
        let longOutcome = await runOnThread(within: .seconds(5)) { try long.get(timeout: .seconds(3)) }
        await pool.stopWithin()
        #expect(try #require(got, "get() on the call whose callback joined hung").get() == 4)
        let join = try #require(joined.withLock { $0 }, "join() in the callback never returned")
        #expect(throws: Never.self) { try join.get() }
        #expect(throws: PoolError.self) { try longOutcome?.get() }
        if case .failure(let error)? = longOutcome { #expect(poolCode(error) == .terminated) }
        #expect(errorCode { try pool.apply(F.square, 1) } == .notRunning)
    }

    @Test(
        "close() and join() from a callback wait for the rest of the work and its callbacks, not for itself",
        .timeLimit(.minutes(1)))
    func closeAndJoinFromCallback() async throws {
        let pool = try TestPools.make(processes: 2)
        #expect(try await pool.map(F.square, 0..<2, chunksize: 1) == [0, 1])
        let laterCallbackRan = Atomic<Bool>(false)
        let later = try pool.applyAsync(
            F.blockMs, 500, callback: { _ in laterCallbackRan.store(true, ordering: .releasing) })
        let seenAfterJoin = Mutex<(joined: Result<Void, any Error>, laterRan: Bool, laterReady: Bool)?>(nil)
        let trigger = try pool.applyAsync(
            F.square, 2,
            callback: { _ in
                pool.close()
                let joined = Result { try pool.join() }
                seenAfterJoin.withLock {
                    $0 = (joined, laterCallbackRan.load(ordering: .acquiring), later.ready())
                }
            })
        let got = await runOnThread(within: .seconds(15)) { try trigger.get(timeout: .seconds(10)) }
        await pool.stopWithin()
        #expect(try #require(got, "get() on the call whose callback joined hung").get() == 4)
        let (joined, laterRan, laterReady) = try #require(seenAfterJoin.withLock { $0 }, "join() never returned")
        #expect(throws: Never.self) { try joined.get() }
        #expect(laterRan)
        #expect(laterReady)
        #expect(try later.get() == 500)
    }

    @Test("join() and joined() return only after queued callbacks have run", .timeLimit(.minutes(1)))
    func joinWaitsForCallbacks() async throws {
        for useAsync in [false, true] {
            let pool = try TestPools.make(processes: 2)
            let ran = Atomic<Int>(0)
            for i in 0..<3 {
                _ = try pool.applyAsync(
                    F.square, i,
                    callback: { _ in
                        usleep(200_000)
                        ran.add(1, ordering: .relaxed)
                    })
            }
            pool.close()
            if useAsync {
                try await pool.joined()
            } else {
                let joined = await runOnThread(within: .seconds(15)) { try pool.join() }
                #expect(throws: Never.self) { try #require(joined).get() }
            }
            #expect(ran.load(ordering: .relaxed) == 3, "async: \(useAsync)")
        }
    }

    @Test("A callback that blocks holds up no other call", .timeLimit(.minutes(1)))
    func blockedCallbackDoesNotBlockResults() async throws {
        let pool = try TestPools.make(processes: 2)
        let started = Atomic<Bool>(false)
        let release = Atomic<Bool>(false)
        _ = try pool.applyAsync(
            F.square, 1,
            callback: { _ in
                started.store(true, ordering: .releasing)
                // Blocks until the test has its other call's answer (at most 20 s).
                for _ in 0..<2_000 where !release.load(ordering: .acquiring) { usleep(10_000) }
            })
        #expect(await eventuallyAsync(timeout: .seconds(10)) { started.load(ordering: .acquiring) })
        let other = await runOnThread(within: .seconds(15)) {
            try pool.mapAsync(F.square, 0..<8, chunksize: 1).get(timeout: .seconds(5))
        }
        release.store(true, ordering: .releasing)
        await pool.stopWithin()
        #expect(try #require(other).get() == (0..<8).map { $0 * $0 })
    }
}
