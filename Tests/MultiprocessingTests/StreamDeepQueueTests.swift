// A stream's chunks queue deeper on a worker than a lone call's (SchedulerStateMachine's
// `deepQueue`): behind a running chunk, a worker whose last chunk was short gets about 2 ms of
// them by that chunk's time, at most 8 in flight, so that it goes from one into the next without
// waiting for the parent's I/O thread to hand it more. Before, a stream kept 2 in flight on a
// worker (one running, one queued), as a lone call does. The depth is the scheduler's, tested
// with its own clock (SchedulerStateMachineTests); here, that a stream's chunks reach it marked.
// (A pool-level look at the depth reached depends on the chunk times the parent sees, which a
// loaded test run stretches past the budget.)

import MultiprocessingTestSupport
import Synchronization
import Testing

@testable import Multiprocessing

@Suite("Stream deep queue", .offCooperativePool)
struct StreamDeepQueueTests {
    @Test(
        "A stream's chunks go to the scheduler marked to queue deep, and come back in order",
        .timeLimit(.minutes(1)))
    func streamChunksQueueDeep() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        // The first item holds the only worker for 3 s: the rest of the window waits in the
        // scheduler's queue meanwhile, where its marks can be read.
        let input = [3000] + Array(repeating: 0, count: 59)
        let stream = try pool.imap(F.blockMs, input, chunksize: 1)
        #expect(eventually(timeout: .seconds(20)) { pool.statistics.tasksRunning >= 1 })
        let queued = pool.core.state.withLock { $0.scheduler.queue.map(\.queuesDeep) }
        #expect(!queued.isEmpty, "no chunk of the stream waited in the queue")
        #expect(queued.allSatisfy { $0 }, "\(queued.filter { !$0 }.count) of \(queued.count) queued chunks not marked")
        // How deep a worker's queue then goes, by the last chunk's time, is the scheduler's
        // (SchedulerStateMachineTests' deep-queue tests); every item comes back in order.
        var values: [Int] = []
        while let value = try stream.next(timeout: .seconds(30)) { values.append(value) }
        #expect(values == input)
    }
}
