// A blocking wait with a timeout gives up once that time has passed, whichever way it waits: on
// the worker's pipe (a lone call that went straight to a worker) or for the I/O thread (a call of
// several chunks). Once, a lone call's `get(timeout:)` waited on the pipe until the deadline and
// then for the whole timeout again.

import Multiprocessing
import MultiprocessingTestSupport
import Testing

@Suite("Deadlines of blocking waits", .offCooperativePool) struct WaitDeadlineTests {
    enum Call: String, CaseIterable, Sendable {
        /// A lone `applyAsync`: the waiting thread reads its worker's pipe.
        case applyGet, applyWait
        /// A `mapAsync` of two chunks: the waiting thread is woken by the I/O thread.
        case mapGet, mapWait
    }

    @Test(
        "get(timeout:) and wait(timeout:) of 1 s on a call of 3 s give up after 1 s", .timeLimit(.minutes(1)),
        arguments: Call.allCases)
    func timeoutKeepsItsTime(_ call: Call) async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        // Warm: both workers are up and idle, so a lone call goes straight to one.
        #expect(try await pool.map(F.square, 0..<4, chunksize: 1) == [0, 1, 4, 9])
        let outcome = await runOnThread(within: .seconds(20)) { () -> (timedOut: Bool, elapsed: Duration) in
            // The wait alone is timed (from just before it starts): submitting is not the timeout's.
            var start = ContinuousClock.now
            let timedOut: Bool
            switch call {
            case .applyGet:
                let result = try pool.applyAsync(F.blockMs, 3_000)
                start = ContinuousClock.now
                timedOut = errorCode { try result.get(timeout: .seconds(1)) } == .timeout
            case .applyWait:
                let result = try pool.applyAsync(F.blockMs, 3_000)
                start = ContinuousClock.now
                timedOut = !result.wait(timeout: .seconds(1))
            case .mapGet:
                let result = try pool.mapAsync(F.blockMs, [3_000, 3_000], chunksize: 1)
                start = ContinuousClock.now
                timedOut = errorCode { try result.get(timeout: .seconds(1)) } == .timeout
            case .mapWait:
                let result = try pool.mapAsync(F.blockMs, [3_000, 3_000], chunksize: 1)
                start = ContinuousClock.now
                timedOut = !result.wait(timeout: .seconds(1))
            }
            return (timedOut, ContinuousClock.now - start)
        }
        let (timedOut, elapsed) = try #require(outcome).get()
        #expect(timedOut)
        #expect(elapsed >= .seconds(1), "gave up after \(elapsed)")
        #expect(elapsed < .milliseconds(1_500), "gave up after \(elapsed), not 1 s")
    }
}
