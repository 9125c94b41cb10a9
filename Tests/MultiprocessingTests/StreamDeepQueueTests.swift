// A stream's chunks queue deeper on a worker than a lone call's (SchedulerStateMachine's
// `deepQueue`): behind a running chunk, a worker whose last chunk was short gets about 2 ms of
// them by that chunk's time, at most 8 in flight, so that it goes from one into the next without
// waiting for the parent's I/O thread to hand it more. Before, a stream kept 2 in flight on a
// worker (one running, one queued), as a lone call does.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

@Suite("Stream deep queue", .offCooperativePool)
struct StreamDeepQueueTests {
    @Test(
        "Behind a long chunk, a worker whose chunks were short holds more of a stream's chunks than a lone call's two, up to the deep queue's most",
        .timeLimit(.minutes(1)))
    func streamChunksQueueDeep() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let configuration = PoolCore.Scheduler.Configuration(processes: 1)
        let most = configuration.deepQueue.maxInFlight
        let shallow = configuration.maxInFlightPerWorker
        // Five short items (their chunks' times make the worker's last chunk short), one that
        // blocks the worker for 3 s, then short ones: a window of chunks waits behind it.
        let blocking = 5
        let input = (0..<60).map { $0 == blocking ? 3000 : 0 }
        let stream = try pool.imap(F.blockMs, input, chunksize: 1)
        for index in 0..<blocking { #expect(try stream.next() == input[index]) }
        // While the long chunk runs, the short ones behind it are sent to the worker: more than
        // a lone call's 2 in flight (about 2 ms of them by the last chunk's time: the most, 8,
        // on a quiet machine, 7 in a loaded test run), and never more than the most.
        var deepest = 0
        _ = eventually(timeout: .seconds(2)) {
            deepest = max(deepest, pool.statistics.tasksRunning)
            return deepest >= most
        }
        #expect(deepest > shallow, "at most \(deepest) of the stream's chunks in flight on the worker")
        #expect(deepest <= most && pool.statistics.tasksRunning <= most)
        // Every item comes back in order, the long one included.
        var rest: [Int] = []
        while let value = try stream.next(timeout: .seconds(30)) { rest.append(value) }
        #expect(rest == Array(input[blocking...]))
    }
}
