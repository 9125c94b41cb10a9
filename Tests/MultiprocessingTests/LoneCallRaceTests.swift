// Lone calls racing what can end them: cancels at every point of a call, terminate and close
// while threads submit, progress streams read before or after the result. Written by a review of
// the lone call's own path (SchedulerStateMachine.startAtOnce/completeAtOnce, ApplySink's
// deliverLast and its lazily made progress); the scheduler's tests check the path's state, these
// what callers see when the races happen for real.

import Multiprocessing
import MultiprocessingTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Lone calls under races", .offCooperativePool, .serialized) struct LoneCallRaceTests {
    /// Guards terminate and close racing three threads of lone calls (blocking, and with
    /// callbacks): every call returns its value, `.terminated` or `.notRunning`, nothing hangs,
    /// and nothing is left queued or running.
    @Test(.timeLimit(.minutes(2)), arguments: [0, 1, 2, 3, 4, 5])
    func terminateRacesLoneCalls(round: Int) async throws {
        let pool = try TestPools.make(processes: 2)
        let errors = StressErrors()
        let ended = StressCounter()
        var threads: [Thread] = []
        for t in 0..<3 {
            threads.append(
                Thread {
                    var i = 0
                    while true {
                        i += 1
                        do {
                            if t == 2 {
                                let r = try pool.applyAsync(F.square, i) { _ in }
                                _ = try r.get(timeout: .seconds(20))
                            } else {
                                let v = try pool.apply(F.square, i)
                                if v != i * i { errors.m.withLock { $0.append("bad \(v)") } }
                            }
                        } catch let e as PoolError {
                            if e.code == .notRunning { break }
                            if e.code != .terminated {
                                errors.m.withLock { $0.append("\(e)") }
                                break
                            }
                        } catch { errors.m.withLock { $0.append("\(error)") } }
                    }
                    ended.a.add(1, ordering: .relaxed)
                })
        }
        try await Task.sleep(for: .milliseconds(30 + 20 * round))
        if round % 2 == 0 { pool.terminate() } else { pool.close() }
        try await pool.joined()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            _ = Thread {
                for t in threads { t.join() }
                c.resume()
            }
        }
        #expect(errors.m.withLock { $0 }.isEmpty, "\(errors.m.withLock { Array($0.prefix(10)) })")
        let s = pool.statistics
        #expect(s.tasksQueued == 0 && s.tasksRunning == 0, "\(s)")
    }

    /// Guards a cancel racing a lone call's result at every point (0–60 µs after submitting):
    /// exactly one of its callbacks runs, `get` gives the value exactly when the success
    /// callback ran, its progress always finishes, and every call is counted once.
    @Test(.timeLimit(.minutes(2))) func cancelRacesTheLonePath() async throws {
        let pool = try TestPools.make(processes: 2)
        let errors = StressErrors()
        let ok = StressCounter(), onError = StressCounter(), values = StressCounter(), cancels = StressCounter()
        let n = 600
        let t = Thread {
            for i in 0..<n {
                do {
                    let r = try pool.applyAsync(
                        F.square, i,
                        callback: { v in
                            if v != i * i { errors.m.withLock { $0.append("cb \(v)") } }
                            ok.a.add(1, ordering: .relaxed)
                        },
                        errorCallback: { _ in onError.a.add(1, ordering: .relaxed) })
                    let spin = StressClock.now() + UInt64(i % 60) * 1000
                    while StressClock.now() < spin {}
                    r.cancel()
                    do {
                        let v = try r.get(timeout: .seconds(20))
                        if v != i * i { errors.m.withLock { $0.append("get \(v)") } }
                        values.a.add(1, ordering: .relaxed)
                    } catch let e as PoolError where e.code == .cancelled {
                        cancels.a.add(1, ordering: .relaxed)
                    } catch { errors.m.withLock { $0.append("get threw \(error)") } }
                    if !r.progress.isFinished { errors.m.withLock { $0.append("progress \(r.progress)") } }
                } catch { errors.m.withLock { $0.append("submit threw \(error)") } }
            }
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            _ = Thread {
                t.join()
                c.resume()
            }
        }
        pool.close()
        try await pool.joined()
        #expect(errors.m.withLock { $0 }.isEmpty, "\(errors.m.withLock { Array($0.prefix(10)) })")
        #expect(ok.a.load(ordering: .relaxed) + onError.a.load(ordering: .relaxed) == n)
        #expect(values.a.load(ordering: .relaxed) == ok.a.load(ordering: .relaxed))
        #expect(values.a.load(ordering: .relaxed) + cancels.a.load(ordering: .relaxed) == n)
        let s = pool.statistics
        #expect(s.tasksCompleted.total == n, "\(s)")
    }

    /// Guards the lazily made progress of lone calls: whether first read before or after the
    /// result, every update stream ends at 1 of 1, finished.
    @Test(.timeLimit(.minutes(2))) func progressStreamsOfLoneCallsEnd() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        for i in 0..<300 {
            let r = try pool.applyAsync(F.square, i)
            if i % 2 == 0 { _ = r.progress }
            var last: PoolProgress?
            for await p in r.progressUpdates { last = p }
            #expect(last == PoolProgress(completed: 1, total: 1, isFinished: true))
            #expect(try await r.value == i * i)
        }
    }
}

private final class StressErrors: Sendable { let m = Mutex<[String]>([]) }
private final class StressCounter: Sendable { let a = Atomic<Int>(0) }

/// The monotonic clock in nanoseconds, for busy-waits of microseconds.
private enum StressClock {
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
