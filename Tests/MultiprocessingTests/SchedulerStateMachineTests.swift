// SchedulerStateMachineTests.swift
//
// Unit tests of the pool's scheduler (Scheduling/SchedulerStateMachine.swift), driven by hand the
// way PoolCore drives it: start → spawn actions → workerSpawned → workerReady → submit → send
// actions → chunkCompleted → …, workerExited after a kill. No process and no clock: time is
// `t0` plus milliseconds. Worker `n` always gets pid 1000 + n. The last test is a seeded
// randomized model that checks the machine's invariants after every event.

import DequeModule
import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

private typealias SM = SchedulerStateMachine<String>

/// An Equatable picture of an action (`SM.Action` carries a payload and is not Equatable).
private enum Act: Equatable {
    case spawn(Int), closeInput(Int), kill(Int, pid: Int32)
    case send(UInt64, Int, to: Int), deliver(UInt64, Int), failChunk(UInt64, Int, ChunkFailure, worker: Int?)
    case failJob(UInt64, ChunkFailure), finishJob(UInt64), stopped

    init(_ action: SM.Action) {
        switch action {
        case .spawn(let w): self = .spawn(w.rawValue)
        case .send(let chunk, to: let w): self = .send(chunk.job.rawValue, chunk.index, to: w.rawValue)
        case .closeInput(let w): self = .closeInput(w.rawValue)
        case .kill(let w, pid: let pid): self = .kill(w.rawValue, pid: pid)
        case .deliver(job: let job, index: let index): self = .deliver(job.rawValue, index)
        case .failChunk(job: let job, index: let index, let failure, worker: let w):
            self = .failChunk(job.rawValue, index, failure, worker: w?.rawValue)
        case .failJob(let job, let failure): self = .failJob(job.rawValue, failure)
        case .finishJob(let job): self = .finishJob(job.rawValue)
        case .stopped: self = .stopped
        }
    }
}

private func W(_ n: Int) -> WorkerID { WorkerID(rawValue: n) }
private func J(_ n: UInt64) -> JobID { JobID(rawValue: n) }
private func pid(_ worker: Int) -> Int32 { Int32(1000 + worker) }
private func chunk(_ job: UInt64, _ index: Int, timeout: Duration? = nil) -> SM.Chunk {
    SM.Chunk(job: J(job), index: index, payload: "\(job)/\(index)", timeout: timeout)
}

/// Drives one state machine; every event takes a time in ms after `t0` and returns `Act`s.
private struct Harness {
    var sm: SM
    let t0 = MonotonicInstant.now
    init(
        processes: Int = 2, maxTasksPerChild: Int? = nil, taskTimeout: Duration? = nil,
        configure: (inout SM.Configuration) -> Void = { _ in }
    ) {
        var configuration = SM.Configuration(
            processes: processes, maxTasksPerChild: maxTasksPerChild, taskTimeout: taskTimeout)
        configure(&configuration)
        sm = SM(configuration: configuration)
    }
    /// A harness whose workers were all started (spawned, and ready unless `ready` is false).
    static func running(
        processes: Int = 2, maxTasksPerChild: Int? = nil, taskTimeout: Duration? = nil, ready: Bool = true,
        configure: (inout SM.Configuration) -> Void = { _ in }
    ) -> Harness {
        var h = Harness(
            processes: processes, maxTasksPerChild: maxTasksPerChild, taskTimeout: taskTimeout, configure: configure)
        _ = h.start(ready: ready)
        return h
    }
    func at(_ ms: Int) -> MonotonicInstant { t0.advanced(by: .milliseconds(ms)) }
    func inFlight(_ w: Int) -> [String] { sm.worker(W(w)).map { $0.inFlight.map(\.payload) } ?? [] }
    func job(_ id: UInt64) -> SM.Job? { sm.jobs[J(id)] }
    /// `start`, then every requested worker is spawned (and ready unless `ready` is false).
    mutating func start(ready: Bool = true, at ms: Int = 0) -> [Act] {
        var out: [Act] = []
        for case .spawn(let w) in sm.start(now: at(ms)) { out += spawn(w.rawValue, ready: ready, at: ms) }
        return out
    }
    mutating func spawn(_ w: Int, ready: Bool = true, at ms: Int) -> [Act] {
        let out = sm.workerSpawned(W(w), pid: pid(w), now: at(ms)).map(Act.init)
        if ready { sm.workerReady(W(w), now: at(ms)) }
        return out
    }
    mutating func ready(_ w: Int, at ms: Int) { sm.workerReady(W(w), now: at(ms)) }
    mutating func submit(
        _ job: UInt64, _ count: Int, failFast: Bool = true, open: Bool = false, at ms: Int
    ) -> [Act] {
        let chunks = (0..<count).map { chunk(job, $0) }
        return sm.submit(job: J(job), chunks: chunks, failFast: failFast, open: open, now: at(ms)).map(Act.init)
    }
    mutating func append(_ job: UInt64, _ indices: Range<Int>, open: Bool, at ms: Int) -> [Act] {
        sm.appendChunks(job: J(job), indices.map { chunk(job, $0) }, open: open, now: at(ms)).map(Act.init)
    }
    mutating func complete(_ w: Int, _ job: UInt64, _ index: Int, failed: Bool = false, at ms: Int) -> [Act] {
        sm.chunkCompleted(worker: W(w), job: J(job), index: index, failed: failed, now: at(ms)).map(Act.init)
    }
    mutating func exit(
        _ w: Int, _ termination: ProcessTermination = .signaled(9), initializerError: String? = nil, at ms: Int
    ) -> [Act] {
        sm.workerExited(W(w), termination: termination, initializerError: initializerError, now: at(ms))
            .map(Act.init)
    }
    mutating func cancel(_ job: UInt64, stopRunning: Bool, at ms: Int) -> [Act] {
        sm.cancel(job: J(job), stopRunning: stopRunning, now: at(ms)).map(Act.init)
    }
    mutating func misbehaved(_ w: Int, at ms: Int) -> [Act] {
        sm.workerMisbehaved(W(w), detail: "corrupt frame", now: at(ms)).map(Act.init)
    }
    mutating func timeouts(at ms: Int) -> [Act] { sm.timeoutsExpired(now: at(ms)).map(Act.init) }
    mutating func close() -> [Act] { sm.close().map(Act.init) }
    mutating func terminate() -> [Act] { sm.terminate().map(Act.init) }
}

@Suite("Scheduler state machine", .cpuBound)
struct SchedulerStateMachineTests {
    // MARK: - Dispatching

    /// Guards: `start` asks for exactly `processes` workers; chunks wait for a spawned worker and
    /// then go one per idle worker.
    @Test func startSpawnsWorkersAndFeedsIdleOnes() {
        var h = Harness(processes: 2)
        #expect(h.sm.start(now: h.at(0)).map(Act.init) == [.spawn(0), .spawn(1)])
        #expect(h.sm.workers.map(\.phase) == [.spawning, .spawning])
        #expect(h.submit(1, 3, at: 0) == [])
        #expect(h.spawn(0, at: 1) == [.send(1, 0, to: 0)])
        #expect(h.spawn(1, at: 1) == [.send(1, 1, to: 1)])
        #expect(h.sm.queue.map(\.index) == [2])
        #expect(h.job(1)?.queued == 1 && h.job(1)?.inFlight == 2)
    }

    /// Guards the prefetch rule: a second chunk is queued on a worker only after its last chunk
    /// was shorter than `prefetchBelow` (5 ms), never after a long one, and never more than
    /// `maxInFlightPerWorker`.
    @Test func prefetchOnlyAfterShortChunks() {
        var h = Harness.running(processes: 1)
        #expect(h.submit(1, 5, at: 0) == [.send(1, 0, to: 0)])
        // 1 ms: the next chunk, plus one queued behind it (2 in flight at most).
        #expect(h.complete(0, 1, 0, at: 1) == [.deliver(1, 0), .send(1, 1, to: 0), .send(1, 2, to: 0)])
        #expect(h.inFlight(0) == ["1/1", "1/2"])
        #expect(h.complete(0, 1, 1, at: 2) == [.deliver(1, 1), .send(1, 3, to: 0)])
        // Chunk 2 ran 2 → 20 ms: too long, no prefetch although a slot is free.
        #expect(h.complete(0, 1, 2, at: 20) == [.deliver(1, 2)])
        #expect(h.inFlight(0) == ["1/3"] && h.sm.queue.count == 1)

        var long = Harness.running(processes: 1)
        #expect(long.submit(1, 3, at: 0) == [.send(1, 0, to: 0)])
        #expect(long.complete(0, 1, 0, at: 10) == [.deliver(1, 0), .send(1, 1, to: 0)])
        #expect(long.complete(0, 1, 1, at: 20) == [.deliver(1, 1), .send(1, 2, to: 0)])

        var wide = Harness.running(processes: 1) { $0.maxInFlightPerWorker = 3 }
        _ = wide.submit(1, 5, at: 0)
        let sends: [Act] = [.send(1, 1, to: 0), .send(1, 2, to: 0), .send(1, 3, to: 0)]
        #expect(wide.complete(0, 1, 0, at: 1) == [.deliver(1, 0)] + sends)
    }

    /// Guards the deeper queue for chunks whose results may wait (a map's, which the worker holds
    /// the doorbell for while more are queued): about 2 ms of them by the last chunk's time
    /// behind the running one, at most 8 in flight; other chunks keep 2.
    @Test func heldResultsQueueDeeper() {
        var h = Harness.running(processes: 1)
        let held = (0..<20).map { index -> SM.Chunk in
            var c = chunk(1, index)
            c.queuesDeep = true
            return c
        }
        let at = { (us: Int) in h.t0.advanced(by: .microseconds(us)) }
        let first = h.sm.submit(job: J(1), chunks: held, failFast: true, open: false, now: at(0)).map(Act.init)
        #expect(first == [.send(1, 0, to: 0)])
        func complete(_ index: Int, at us: Int) -> [Act] {
            h.sm.chunkCompleted(worker: W(0), job: J(1), index: index, failed: false, now: at(us)).map(Act.init)
        }
        // 250 µs: 2 ms of such chunks is 8 more; 8 in flight at most.
        #expect(complete(0, at: 250) == [.deliver(1, 0)] + (1...8).map { .send(1, $0, to: 0) })
        #expect(h.inFlight(0).count == 8)
        // 50 µs: the one freed slot is filled again.
        #expect(complete(1, at: 300) == [.deliver(1, 1), .send(1, 9, to: 0)])
        // 1.5 ms: 2 ms is two such chunks, 3 in flight; 7 already are, so none is sent.
        #expect(complete(2, at: 1800) == [.deliver(1, 2)])
        #expect(h.inFlight(0).count == 7)

        // Chunks whose results are wanted one by one: 2 in flight, whatever their time.
        var plain = Harness.running(processes: 1)
        let start = plain.t0
        _ = plain.sm.submit(job: J(2), chunks: (0..<5).map { chunk(2, $0) }, failFast: true, open: false, now: start)
        let acts = plain.sm.chunkCompleted(
            worker: W(0), job: J(2), index: 0, failed: false, now: start.advanced(by: .microseconds(250))
        ).map(Act.init)
        #expect(acts == [.deliver(2, 0), .send(2, 1, to: 0), .send(2, 2, to: 0)])
    }

    /// Guards the deeper queue's two limits: a chunk whose result is wanted never goes deeper than
    /// `maxInFlightPerWorker` behind held ones, and a job's last chunks are not queued deep behind
    /// one worker while another could take them.
    @Test func heldResultsQueueLimits() {
        func held(_ job: UInt64, _ indices: Range<Int>) -> [SM.Chunk] {
            indices.map { index in
                var c = chunk(job, index)
                c.queuesDeep = true
                return c
            }
        }
        var h = Harness.running(processes: 1)
        let at = { (us: Int) in h.t0.advanced(by: .microseconds(us)) }
        _ = h.sm.submit(job: J(1), chunks: held(1, 0..<3), failFast: true, open: false, now: at(0))
        _ = h.sm.submit(job: J(2), chunks: (0..<5).map { chunk(2, $0) }, failFast: true, open: false, now: at(0))
        // 250 µs: the two held chunks left, then job 2's at the front: not queued deeper than 2.
        let first = h.sm.chunkCompleted(worker: W(0), job: J(1), index: 0, failed: false, now: at(250))
        #expect(first.map(Act.init) == [.deliver(1, 0), .send(1, 1, to: 0), .send(1, 2, to: 0)])
        #expect(h.sm.queue.map(\.payload) == ["2/0", "2/1", "2/2", "2/3", "2/4"])

        // Two workers, 12 held chunks: deeper only while the queue has as many for each.
        var two = Harness.running(processes: 2)
        let start = two.t0
        let sent = two.sm.submit(job: J(3), chunks: held(3, 0..<12), failFast: true, open: false, now: start)
        #expect(sent.map(Act.init) == [.send(3, 0, to: 0), .send(3, 1, to: 1)])
        let acts = two.sm.chunkCompleted(
            worker: W(0), job: J(3), index: 0, failed: false, now: start.advanced(by: .microseconds(100))
        ).map(Act.init)
        // Chunk 2 at once, 3 behind it (2 in flight), then 4 and 5 while 8 and 7 chunks are
        // left for two workers; with 6 left, a fifth would leave worker 1 too few.
        #expect(acts == [.deliver(3, 0)] + (2...5).map { .send(3, $0, to: 0) })
        #expect(two.sm.queue.count == 6)
    }

    /// Guards: idle workers are served before a busy short-chunk worker gets a prefetched chunk;
    /// a busy worker with long chunks gets none.
    @Test func idleWorkersBeforePrefetch() {
        var h = Harness.running(processes: 2)
        #expect(h.submit(1, 2, at: 0) == [.send(1, 0, to: 0), .send(1, 1, to: 1)])
        #expect(h.complete(0, 1, 0, at: 1) == [.deliver(1, 0)])  // worker 0: 1 ms
        #expect(h.submit(2, 1, at: 2) == [.send(2, 0, to: 0)])
        #expect(h.complete(1, 1, 1, at: 30) == [.deliver(1, 1), .finishJob(1)])  // worker 1: 30 ms, idle
        #expect(h.submit(3, 3, at: 31) == [.send(3, 0, to: 1), .send(3, 1, to: 0)])
        #expect(h.sm.queue.map(\.index) == [2])
    }

    // MARK: - Results

    /// Guards: completions deliver (in any order); the job finishes exactly when its last chunk
    /// is done; an empty job finishes at once.
    @Test func completionsDeliverAndFinishJob() {
        var h = Harness.running(processes: 2)
        #expect(h.submit(1, 2, at: 0) == [.send(1, 0, to: 0), .send(1, 1, to: 1)])
        #expect(h.complete(1, 1, 1, at: 10) == [.deliver(1, 1)])
        #expect(h.complete(0, 1, 0, at: 11) == [.deliver(1, 0), .finishJob(1)])
        #expect(h.job(1) == nil && h.submit(2, 0, at: 12) == [.finishJob(2)])
    }

    /// Guards: a result for a chunk the worker is not running is a protocol error: the worker is
    /// killed and its running chunk fails as lost; a corrupt frame (workerMisbehaved) kills too.
    @Test func resultForChunkNotRunningKillsWorker() {
        var h = Harness.running(processes: 1)
        _ = h.submit(1, 2, at: 0)
        #expect(h.complete(0, 1, 0, at: 10) == [.deliver(1, 0), .send(1, 1, to: 0)])
        #expect(h.complete(0, 1, 0, at: 11) == [.kill(0, pid: 1000)])  // chunk 0 again
        #expect(h.complete(7, 1, 1, at: 11) == [])  // unknown worker: ignored
        let lost = ChunkFailure.workerLost(
            pid: 1000, termination: .signaled(9), detail: "answered job#1 chunk 0, which it was not running")
        #expect(h.exit(0, at: 12) == [.failChunk(1, 1, lost, worker: 0), .finishJob(1), .spawn(1)])
        #expect(h.spawn(1, at: 13) == [])
        #expect(h.misbehaved(1, at: 14) == [.kill(1, pid: 1001), .spawn(2)])
    }

    /// Guards failFast: the first failed chunk drops the job's queued chunks, later completions
    /// of that job are not delivered, and it finishes once its in-flight chunks end (also when
    /// the failure is a lost worker). A stream (failFast false) goes on.
    @Test func failFastStopsJobStreamsGoOn() {
        var h = Harness.running(processes: 2)
        #expect(h.submit(1, 4, at: 0) == [.send(1, 0, to: 0), .send(1, 1, to: 1)])
        #expect(h.complete(0, 1, 0, failed: true, at: 10) == [.deliver(1, 0)])
        #expect(h.sm.queue.isEmpty && h.job(1)?.failed == true)
        #expect(h.complete(1, 1, 1, at: 11) == [.finishJob(1)])

        var s = Harness.running(processes: 2)
        _ = s.submit(1, 4, failFast: false, at: 0)
        #expect(s.complete(0, 1, 0, failed: true, at: 10) == [.deliver(1, 0), .send(1, 2, to: 0)])
        #expect(s.complete(1, 1, 1, at: 11) == [.deliver(1, 1), .send(1, 3, to: 1)])

        var l = Harness.running(processes: 1)
        _ = l.submit(1, 3, at: 0)
        let lost = ChunkFailure.workerLost(pid: 1000, termination: .signaled(11), detail: nil)
        #expect(l.exit(0, .signaled(11), at: 5) == [.failChunk(1, 0, lost, worker: 0), .finishJob(1), .spawn(1)])
        #expect(l.sm.queue.isEmpty)
    }

    // MARK: - Worker life

    /// Guards maxTasksPerChild: a worker stops getting chunks after N (prefetch included), gets
    /// `.closeInput` once idle, a replacement is spawned, and its exit is not a failure.
    @Test func maxTasksPerChildRetiresWorker() {
        var h = Harness.running(processes: 1, maxTasksPerChild: 2)
        #expect(h.submit(1, 3, at: 0) == [.send(1, 0, to: 0)])
        // A short chunk, but the next one is the worker's last: no third one prefetched.
        #expect(h.complete(0, 1, 0, at: 1) == [.deliver(1, 0), .send(1, 1, to: 0)])
        #expect(h.complete(0, 1, 1, at: 2) == [.deliver(1, 1), .closeInput(0), .spawn(1)])
        #expect(h.sm.worker(W(0))?.phase == .inputClosed)
        #expect(h.spawn(1, at: 3) == [.send(1, 2, to: 1)])
        #expect(h.exit(0, .exited(0), at: 4) == [])
        #expect(h.sm.activeWorkerPIDs == [1001])
        #expect(h.complete(1, 1, 2, at: 5) == [.deliver(1, 2), .finishJob(1)])
    }

    /// Guards: a ready worker dying mid-chunk fails only its running chunk (workerLost); chunks
    /// queued behind it are requeued for another worker, a replacement is spawned, and other
    /// jobs are unaffected.
    @Test func workerLostFailsHeadAndRequeuesRest() {
        var h = Harness.running(processes: 2)
        #expect(h.submit(2, 2, at: 0) == [.send(2, 0, to: 0), .send(2, 1, to: 1)])
        #expect(h.complete(0, 2, 0, at: 1) == [.deliver(2, 0)])
        // Worker 0 (short history) gets chunk 0 and chunk 1 prefetched; worker 1 is busy.
        #expect(h.submit(1, 3, failFast: false, at: 2) == [.send(1, 0, to: 0), .send(1, 1, to: 0)])
        let lost = ChunkFailure.workerLost(pid: 1000, termination: .signaled(9), detail: nil)
        #expect(h.exit(0, at: 3) == [.failChunk(1, 0, lost, worker: 0), .spawn(2)])
        #expect(h.sm.queue.map(\.payload) == ["1/1", "1/2"])
        #expect(h.spawn(2, at: 4) == [.send(1, 1, to: 2)])
        #expect(h.complete(1, 2, 1, at: 5) == [.deliver(2, 1), .finishJob(2), .send(1, 2, to: 1)])
        #expect(h.complete(2, 1, 1, at: 6) == [.deliver(1, 1)])
        #expect(h.complete(1, 1, 2, at: 7) == [.deliver(1, 2), .finishJob(1)])
    }

    /// Guards startup failures: a worker dying before ready gets its chunks requeued (not
    /// failed); failed spawns count too; after `maxConsecutiveStartupFailures` the pool is
    /// broken, every job fails with `.startupFailed`, an initializer error sets `initializer: true`.
    @Test func startupFailuresBreakThePool() {
        var h = Harness.running(processes: 1, ready: false) { $0.maxConsecutiveStartupFailures = 4 }
        #expect(h.submit(1, 1, at: 0) == [.send(1, 0, to: 0)])
        #expect(h.exit(0, .exited(1), at: 1) == [.spawn(1)])
        #expect(h.sm.queue.map(\.payload) == ["1/0"] && h.job(1)?.inFlight == 0)
        #expect(h.spawn(1, ready: false, at: 2) == [.send(1, 0, to: 1)])
        #expect(h.exit(1, .exited(1), at: 3) == [.spawn(2)])
        #expect(h.sm.workerSpawnFailed(W(2), detail: "ENOENT", now: h.at(4)).map(Act.init) == [.spawn(3)])
        #expect(h.spawn(3, ready: false, at: 5) == [.send(1, 0, to: 3)])
        let failure = ChunkFailure.startupFailed(detail: "init boom", initializer: true)
        #expect(
            h.exit(3, .exited(1), initializerError: "init boom", at: 6) == [
                .failJob(1, failure), .finishJob(1), .stopped,
            ])
        #expect(h.sm.lifecycle == .broken(failure))
        #expect(h.submit(2, 1, at: 7) == [.failJob(2, failure), .finishJob(2)])
        #expect(h.close() == [] && h.sm.lifecycle == .broken(failure))
    }

    /// Guards: a worker killed before it is ready by a SIGKILL the pool did not send (the OOM
    /// killer, a chaos test) is not a broken start: its chunks are requeued and a replacement
    /// comes, however many failures came before; only `maxConsecutiveStartupKills` in a row break
    /// the pool, and `workerReady` resets that count.
    @Test func externalKillsBeforeReadyAreNoStartupFailure() {
        var h = Harness.running(processes: 1, ready: false) {
            $0.maxConsecutiveStartupFailures = 2
            $0.maxConsecutiveStartupKills = 3
        }
        #expect(h.submit(1, 1, at: 0) == [.send(1, 0, to: 0)])
        #expect(h.exit(0, .exited(1), at: 1) == [.spawn(1)])  // 1 startup failure of 2
        #expect(h.spawn(1, ready: false, at: 2) == [.send(1, 0, to: 1)])
        #expect(h.exit(1, .signaled(9), at: 3) == [.spawn(2)])  // a kill: 1 of 3
        #expect(h.spawn(2, ready: false, at: 4) == [.send(1, 0, to: 2)])
        #expect(h.exit(2, .signaled(9), at: 5) == [.spawn(3)])  // 2 of 3
        #expect(h.sm.lifecycle == .running && h.sm.queue.map(\.payload) == ["1/0"])
        #expect(h.spawn(3, ready: true, at: 6) == [.send(1, 0, to: 3)])  // ready: resets both counts
        #expect(h.complete(3, 1, 0, at: 7) == [.deliver(1, 0), .finishJob(1)])
        #expect(h.exit(3, .signaled(9), at: 8) == [.spawn(4)])  // ready: neither
        for (w, ms) in [(4, 9), (5, 11)] {
            #expect(h.spawn(w, ready: false, at: ms) == [])
            #expect(h.exit(w, .signaled(9), at: ms + 1) == [.spawn(w + 1)])
        }
        #expect(h.spawn(6, ready: false, at: 13) == [])
        let detail =
            "3 workers in a row were killed by a SIGKILL this pool did not send (the out-of-memory killer?) "
            + "before they were ready; the last: worker 1006 killed by signal 9 (SIGKILL) before it was ready"
        #expect(h.exit(6, .signaled(9), at: 14) == [.stopped])
        #expect(h.sm.lifecycle == .broken(.startupFailed(detail: detail, initializer: false)))
    }

    /// Guards: `workerReady` resets the consecutive count; a ready worker's death does not count;
    /// the default detail names pid and termination; breaking kills the other workers.
    @Test func startupFailureCountIsConsecutive() {
        var h = Harness.running(processes: 2, ready: false) { $0.maxConsecutiveStartupFailures = 2 }
        h.ready(0, at: 0)
        #expect(h.submit(1, 1, at: 0) == [.send(1, 0, to: 0)])
        #expect(h.exit(1, .exited(1), at: 1) == [.spawn(2)])  // 1 failure
        #expect(h.spawn(2, ready: true, at: 2) == [])  // ready: back to 0
        #expect(h.exit(2, .exited(3), at: 3) == [.spawn(3)])  // was ready: no startup failure
        #expect(h.spawn(3, ready: false, at: 4) == [])
        #expect(h.exit(3, .exited(1), at: 5) == [.spawn(4)])  // 1 failure
        #expect(h.spawn(4, ready: false, at: 6) == [])
        let failure = ChunkFailure.startupFailed(
            detail: "worker 1004 exited with status 1 before it was ready. A worker executable must call "
                + "Pool.bootstrap(serving:) first thing in main; this one printed nothing on stderr",
            initializer: false)
        #expect(h.exit(4, .exited(1), at: 7) == [.failJob(1, failure), .kill(0, pid: 1000)])
        #expect(h.exit(0, at: 8) == [.finishJob(1), .stopped])
    }

    /// Guards maxMemoryPerChild: a worker that reports its memory above the bound while it runs
    /// a chunk gets no new chunk, is replaced at once (a replacement spawns), and its input
    /// closes after that chunk's result is delivered; its exit is no failure.
    @Test func overMemoryRetiresAfterTheResult() {
        var h = Harness.running(processes: 1)
        #expect(h.submit(1, 2, at: 0) == [.send(1, 0, to: 0)])
        #expect(h.sm.workerOverMemory(W(0), now: h.at(1)).map(Act.init) == [.spawn(1)])
        #expect(h.sm.activeWorkerPIDs == [])
        #expect(h.complete(0, 1, 0, at: 2) == [.deliver(1, 0), .closeInput(0)])
        #expect(h.spawn(1, at: 3) == [.send(1, 1, to: 1)])
        #expect(h.exit(0, .exited(0), at: 4) == [])
        #expect(h.complete(1, 1, 1, at: 5) == [.deliver(1, 1), .finishJob(1)])
        #expect(h.sm.activeWorkerPIDs == [1001])
        // Idle when it reports (the report raced its last result): its input closes at once.
        #expect(h.sm.workerOverMemory(W(1), now: h.at(6)).map(Act.init) == [.closeInput(1), .spawn(2)])
    }

    // MARK: - Start timeout

    /// Guards startTimeout: the deadline counts from the spawn and is the I/O thread's next
    /// wake-up; a worker not ready by then is killed, its chunks (never started) are requeued,
    /// and it counts as an initializer failure: the third in a row breaks the pool.
    @Test func startTimeoutKillsAndCountsAsInitializerFailure() {
        var h = Harness.running(processes: 1, ready: false) { $0.startTimeout = .milliseconds(100) }
        #expect(h.sm.nextDeadline == h.at(100))
        #expect(h.submit(1, 1, at: 10) == [.send(1, 0, to: 0)])
        #expect(h.timeouts(at: 99) == [])
        // The replacement is asked for at the kill, as for a task timeout.
        #expect(h.timeouts(at: 100) == [.kill(0, pid: 1000), .spawn(1)])
        #expect(h.exit(0, at: 101) == [])
        #expect(h.sm.queue.map(\.payload) == ["1/0"])
        #expect(h.spawn(1, ready: false, at: 102) == [.send(1, 0, to: 1)])
        #expect(h.sm.nextDeadline == h.at(202))
        #expect(h.timeouts(at: 202) == [.kill(1, pid: 1001), .spawn(2)])
        #expect(h.exit(1, at: 203) == [])
        #expect(h.spawn(2, ready: false, at: 204) == [.send(1, 0, to: 2)])
        #expect(h.timeouts(at: 304) == [.kill(2, pid: 1002), .spawn(3)])
        let detail =
            "worker 1002 was not ready within its start timeout of 0.1 seconds (the initializer, or the "
            + "program's code before Pool.bootstrap(serving:), did not finish) and was killed"
        let failure = ChunkFailure.startupFailed(detail: detail, initializer: true)
        #expect(h.exit(2, at: 305) == [.failJob(1, failure), .finishJob(1)])
        #expect(h.sm.lifecycle == .broken(failure))
        // The replacement being spawned is dropped: killed when it arrives.
        #expect(h.spawn(3, ready: false, at: 306) == [.kill(3, pid: 1003)])
        #expect(h.exit(3, at: 307) == [.stopped])
    }

    /// Guards: a worker ready in time has no start deadline any more, and a task's deadline
    /// starts when it is ready, not at the spawn.
    @Test func readyInTimeClearsTheStartDeadline() {
        var h = Harness.running(processes: 1, taskTimeout: .seconds(1), ready: false) {
            $0.startTimeout = .milliseconds(100)
        }
        #expect(h.submit(1, 1, at: 0) == [.send(1, 0, to: 0)])
        h.ready(0, at: 50)
        #expect(h.sm.nextDeadline == h.at(1050))
        #expect(h.timeouts(at: 500) == [])
        #expect(h.complete(0, 1, 0, at: 600) == [.deliver(1, 0), .finishJob(1)])
        #expect(h.sm.nextDeadline == nil)
    }

    // MARK: - Timeouts

    /// Guards: deadline = head start + limit (a chunk's own timeout overrides the pool's); the
    /// clock starts only once the worker is ready; expiry kills the worker, and its exit fails the
    /// chunk with `.timedOut(limit:)`.
    @Test func timeoutKillsAndFailsChunk() {
        var h = Harness.running(processes: 1, taskTimeout: .seconds(10), ready: false)
        let chunks = [chunk(1, 0), chunk(1, 1, timeout: .seconds(2))]
        #expect(
            h.sm.submit(job: J(1), chunks: chunks, failFast: true, now: h.at(0)).map(Act.init)
                == [.send(1, 0, to: 0)])
        #expect(h.sm.nextDeadline == nil)  // not ready: not running yet
        h.ready(0, at: 1000)
        #expect(h.sm.nextDeadline == h.at(11_000))
        #expect(h.timeouts(at: 10_999) == [])
        #expect(h.complete(0, 1, 0, at: 5000) == [.deliver(1, 0), .send(1, 1, to: 0)])
        #expect(h.sm.nextDeadline == h.at(7000))  // chunk 1's own 2 s
        #expect(h.timeouts(at: 6999) == [])
        #expect(h.timeouts(at: 7000) == [.kill(0, pid: 1000), .spawn(1)])
        #expect(h.sm.nextDeadline == nil)
        let timedOut = ChunkFailure.timedOut(pid: 1000, limit: .seconds(2))
        #expect(h.exit(0, at: 7001) == [.failChunk(1, 1, timedOut, worker: 0), .finishJob(1)])
    }

    /// Guards: a prefetched chunk's clock starts when it becomes the head, not when it was sent.
    @Test func prefetchedChunkClockStartsAtHead() {
        var h = Harness.running(processes: 1, taskTimeout: .milliseconds(100))
        _ = h.submit(1, 1, at: 0)
        _ = h.complete(0, 1, 0, at: 1)
        #expect(h.submit(2, 2, at: 2) == [.send(2, 0, to: 0), .send(2, 1, to: 0)])
        #expect(h.sm.nextDeadline == h.at(102))
        #expect(h.complete(0, 2, 0, at: 50) == [.deliver(2, 0)])
        #expect(h.sm.nextDeadline == h.at(150))
        #expect(h.timeouts(at: 120) == [])
    }

    // MARK: - Cancel

    /// Guards cancel(stopRunning: true): queued chunks dropped, workers running the job killed and
    /// replaced, no failChunk for it, it finishes when they exit; other jobs go on. With
    /// stopRunning false nothing is killed and the running chunk's result is not delivered.
    @Test func cancelStopRunningKillsWorkers() {
        var h = Harness.running(processes: 2)
        #expect(h.submit(1, 3, at: 0) == [.send(1, 0, to: 0), .send(1, 1, to: 1)])
        #expect(h.submit(2, 1, at: 1) == [])
        let stop = h.cancel(1, stopRunning: true, at: 5)
        #expect(stop == [.kill(0, pid: 1000), .kill(1, pid: 1001), .spawn(2), .spawn(3)])
        #expect(h.sm.queue.map(\.payload) == ["2/0"])
        #expect(h.exit(0, at: 6) == [])
        #expect(h.exit(1, at: 7) == [.finishJob(1)])
        #expect(h.spawn(2, at: 8) == [.send(2, 0, to: 2)])
        #expect(h.cancel(1, stopRunning: true, at: 9) == [])  // already gone

        // stopRunning false: nothing killed, queued chunks dropped, the result is not delivered.
        var n = Harness.running(processes: 1)
        _ = n.submit(1, 3, at: 0)
        #expect(n.cancel(1, stopRunning: false, at: 1) == [])
        #expect(n.sm.queue.isEmpty && n.sm.activeWorkerPIDs == [1000])
        #expect(n.complete(0, 1, 0, at: 2) == [.finishJob(1)])
    }

    /// Guards: a prefetched chunk of a job cancelled with stopRunning gets its worker killed as
    /// soon as it becomes the head.
    @Test func cancelledPrefetchedChunkKilledAtHead() {
        var h = Harness.running(processes: 1)
        _ = h.submit(1, 1, at: 0)
        _ = h.complete(0, 1, 0, at: 1)
        #expect(h.submit(2, 1, at: 2) == [.send(2, 0, to: 0)])
        #expect(h.submit(3, 1, at: 3) == [.send(3, 0, to: 0)])  // prefetched behind job 2
        #expect(h.cancel(3, stopRunning: true, at: 4) == [])  // job 2 runs: nothing to kill yet
        #expect(h.complete(0, 2, 0, at: 5) == [.deliver(2, 0), .finishJob(2), .kill(0, pid: 1000), .spawn(1)])
        #expect(h.exit(0, at: 6) == [.finishJob(3)])
    }

    // MARK: - Close and terminate

    /// Guards close: lifecycle `.closed`, queued work still runs, idle workers get `.closeInput`
    /// once the queue is empty, no replacements, `.stopped` once all exited; close twice is
    /// harmless; the machine fails a submit after close.
    @Test func closeDrainsThenStops() {
        var h = Harness.running(processes: 2)
        #expect(h.submit(1, 3, at: 0) == [.send(1, 0, to: 0), .send(1, 1, to: 1)])
        #expect(h.close() == [] && h.sm.lifecycle == .closed)
        #expect(h.complete(0, 1, 0, at: 10) == [.deliver(1, 0), .send(1, 2, to: 0)])
        #expect(h.complete(1, 1, 1, at: 11) == [.deliver(1, 1), .closeInput(1)])
        #expect(h.complete(0, 1, 2, at: 20) == [.deliver(1, 2), .finishJob(1), .closeInput(0)])
        #expect(h.exit(1, .exited(0), at: 21) == [])
        #expect(h.close() == [])
        #expect(h.exit(0, .exited(0), at: 22) == [.stopped])
        #expect(h.sm.isStopped && h.close() == [])
        #expect(h.submit(2, 1, at: 23) == [.failJob(2, .terminated), .finishJob(2)])
    }

    /// Guards terminate: every unfinished job gets `.failJob(.terminated)`, every worker `.kill`,
    /// no replacements, `.stopped` once all exited; terminate twice and close after are no-ops;
    /// submit after terminate fails the job at once.
    @Test func terminateFailsJobsAndKillsWorkers() {
        var h = Harness.running(processes: 2)
        _ = h.submit(1, 3, at: 0)
        _ = h.submit(2, 1, at: 0)
        let actions = h.terminate()
        // Jobs fail in dictionary order; job 2 had nothing in flight and finishes at once.
        let jobActions = Array(actions.prefix(3))
        for expected: Act in [.failJob(1, .terminated), .failJob(2, .terminated), .finishJob(2)] {
            #expect(jobActions.contains(expected))
        }
        #expect(jobActions.firstIndex(of: .failJob(2, .terminated))! < jobActions.firstIndex(of: .finishJob(2))!)
        #expect(actions.dropFirst(3) == [.kill(0, pid: 1000), .kill(1, pid: 1001)])
        #expect(h.sm.queue.isEmpty && h.sm.lifecycle == .terminated)
        #expect(h.terminate() == [] && h.close() == [])
        #expect(h.submit(3, 1, at: 1) == [.failJob(3, .terminated), .finishJob(3)])
        #expect(h.exit(0, at: 2) == [])
        #expect(h.exit(1, at: 3) == [.finishJob(1), .stopped])
    }

    /// Guards: a worker still spawning at terminate (or at close with nothing queued) is killed
    /// when `workerSpawned` arrives, and `.stopped` follows its exit.
    @Test func spawningWorkerKilledOnArrival() {
        var t = Harness(processes: 1)
        #expect(t.sm.start(now: t.at(0)).map(Act.init) == [.spawn(0)])
        #expect(t.terminate() == [])
        #expect(t.sm.worker(W(0))?.phase == .killed(.terminated))
        #expect(t.spawn(0, ready: false, at: 1) == [.kill(0, pid: 1000)])
        #expect(t.exit(0, at: 2) == [.stopped])

        var c = Harness(processes: 1)
        _ = c.sm.start(now: c.at(0))
        #expect(c.close() == [])
        #expect(c.spawn(0, ready: false, at: 1) == [.kill(0, pid: 1000)])
        #expect(c.exit(0, at: 2) == [.stopped])
    }

    // MARK: - Open jobs and queries

    /// Guards open jobs (streams): appended chunks run, and the job finishes only after
    /// `appendChunks(open: false)`.
    @Test func openJobFinishesOnlyWhenClosed() {
        var h = Harness.running(processes: 1)
        #expect(h.submit(1, 1, failFast: false, open: true, at: 0) == [.send(1, 0, to: 0)])
        #expect(h.complete(0, 1, 0, at: 10) == [.deliver(1, 0)])
        #expect(h.append(1, 1..<2, open: true, at: 11) == [.send(1, 1, to: 0)])
        #expect(h.complete(0, 1, 1, at: 20) == [.deliver(1, 1)])
        #expect(h.job(1)?.open == true)
        #expect(h.append(1, 2..<2, open: false, at: 21) == [.finishJob(1)])
        #expect(h.append(1, 2..<3, open: false, at: 22) == [])  // unknown job now: ignored
    }

    /// Guards `activeWorkerPIDs`: only spawned workers that take tasks (not spawning, killed or
    /// input-closed ones).
    @Test func activeWorkerPIDsListsRunningWorkers() {
        var h = Harness(processes: 3)
        _ = h.sm.start(now: h.at(0))
        #expect(h.sm.activeWorkerPIDs == [])
        _ = h.spawn(0, at: 0)
        _ = h.spawn(1, at: 0)
        #expect(h.sm.activeWorkerPIDs == [1000, 1001])
        _ = h.spawn(2, at: 0)
        #expect(h.misbehaved(1, at: 1) == [.kill(1, pid: 1001), .spawn(3)])
        #expect(h.sm.activeWorkerPIDs == [1000, 1002])
        #expect(h.close() == [.closeInput(0), .closeInput(2)])
        #expect(h.sm.activeWorkerPIDs == [])
    }

    // MARK: - Known issues

    /// Regression (found by these tests): a worker killed for a cancelled job may answer that chunk before it dies; the chunk
    /// of ANOTHER job prefetched behind it is then the head at exit and is dropped silently (kill
    /// reason `.cancelled` → no failure): the other job finishes without that chunk.
    @Test func cancelRaceMustNotLoseOtherJobsChunk() {
        var h = Harness.running(processes: 1)
        _ = h.submit(1, 1, at: 0)
        _ = h.complete(0, 1, 0, at: 1)
        #expect(h.submit(2, 1, at: 2) == [.send(2, 0, to: 0)])
        #expect(h.submit(3, 1, failFast: false, at: 3) == [.send(3, 0, to: 0)])  // prefetched
        #expect(h.cancel(2, stopRunning: true, at: 4) == [.kill(0, pid: 1000), .spawn(1)])
        #expect(h.complete(0, 2, 0, at: 5) == [.finishJob(2)])  // written just before SIGKILL
        let exit = h.exit(0, at: 6)
        let failed = exit.contains { if case .failChunk(3, 0, _, _) = $0 { true } else { false } }
        let requeued = h.sm.queue.contains { $0.payload == "3/0" }
        #expect(failed || requeued)
    }

    /// Regression (found by these tests): same race with a timeout: the timed-out chunk is answered (and delivered) before the
    /// kill lands, and the next chunk, which did not time out, is failed with `.timedOut`.
    @Test func timeoutRaceMustNotBlameNextChunk() {
        var h = Harness.running(processes: 1, taskTimeout: .milliseconds(100))
        _ = h.submit(1, 1, at: 0)
        _ = h.complete(0, 1, 0, at: 1)
        #expect(h.submit(2, 2, failFast: false, at: 2) == [.send(2, 0, to: 0), .send(2, 1, to: 0)])
        #expect(h.timeouts(at: 102) == [.kill(0, pid: 1000), .spawn(1)])
        #expect(h.complete(0, 2, 0, at: 103) == [.deliver(2, 0)])
        let exit = h.exit(0, at: 104)
        #expect(!exit.contains(.failChunk(2, 1, .timedOut(pid: 1000, limit: .milliseconds(100)), worker: 0)))
    }

    /// Regression (found by these tests): close() with an open job (a lazily fed imap stream) whose queue is momentarily empty
    /// closes every worker and reports `.stopped` while the job is unfinished; the stream's next
    /// `appendChunks` then asks for a spawn after the event loop was told to stop.
    @Test func closeMustWaitForOpenJobs() {
        var h = Harness.running(processes: 1)
        #expect(h.submit(1, 1, failFast: false, open: true, at: 0) == [.send(1, 0, to: 0)])
        #expect(h.complete(0, 1, 0, at: 1) == [.deliver(1, 0)])
        _ = h.close()
        let exit = h.exit(0, .exited(0), at: 2)
        #expect(h.job(1) != nil)  // the stream is still open
        #expect(!exit.contains(.stopped))
    }

    /// Regression (found by these tests): appendChunks after terminate (a stream's feeder racing terminate) sets `open` back to
    /// true on the cancelled job, so it never gets `.finishJob` when its last chunk ends.
    @Test func appendAfterTerminateMustNotReopenJob() {
        var h = Harness.running(processes: 1)
        _ = h.submit(1, 1, failFast: false, open: true, at: 0)
        #expect(h.terminate() == [.failJob(1, .terminated), .kill(0, pid: 1000)])
        #expect(h.append(1, 1..<2, open: true, at: 1) == [])
        let exit = h.exit(0, at: 2)
        #expect(exit.contains(.finishJob(1)))
    }

    // MARK: - The lone call's paths

    /// Guards `startAtOnce`: a lone chunk goes to the first idle worker as `submit` would send
    /// it; with no idle worker or a closed pool it declines and changes nothing.
    @Test func startAtOnceTakesAnIdleWorkerOrDeclines() {
        var h = Harness.running(processes: 2)
        let first = h.sm.startAtOnce(job: J(1), chunk: chunk(1, 0), failFast: true, now: h.at(1))
        #expect(first == W(0))
        #expect(h.inFlight(0) == ["1/0"] && h.job(1)?.inFlight == 1 && h.job(1)?.queued == 0)
        #expect(h.sm.counters.runningItems == 1 && h.sm.worker(W(0))?.headStartedAt == h.at(1))
        let second = h.sm.startAtOnce(job: J(2), chunk: chunk(2, 0), failFast: true, now: h.at(1))
        #expect(second == W(1))
        // Both busy: declined, nothing changed.
        let busy = Picture(h.sm)
        let third = h.sm.startAtOnce(job: J(3), chunk: chunk(3, 0), failFast: true, now: h.at(2))
        #expect(third == nil)
        #expect(Picture(h.sm) == busy && h.job(3) == nil)
        #expect(h.complete(0, 1, 0, at: 30) == [.deliver(1, 0), .finishJob(1)])
        _ = h.close()
        let closed = Picture(h.sm)
        let fourth = h.sm.startAtOnce(job: J(5), chunk: chunk(5, 0), failFast: true, now: h.at(31))
        #expect(fourth == nil)
        #expect(Picture(h.sm) == closed)
    }

    /// Guards `completeAtOnce`: it takes the result of a lone chunk as `chunkCompleted` would
    /// (counts, run time, the job gone), and declines, changing nothing, where `chunkCompleted`
    /// has more to do: the worker is spent (maxTasksPerChild) or has a second chunk, the job was
    /// cancelled or has another chunk, the pool is closed.
    @Test func completeAtOnceTakesLoneResultsOrDeclines() {
        func declines(_ h: inout Harness, _ w: Int, _ job: UInt64, _ index: Int, _ why: Comment) {
            let before = Picture(h.sm)
            let took = h.sm.completeAtOnce(
                worker: W(w), job: J(job), index: index, failed: false, answeredItems: nil, failedItems: nil,
                now: h.at(9))
            #expect(!took, why)
            #expect(Picture(h.sm) == before, why)
        }
        var h = Harness.running(processes: 2, maxTasksPerChild: 2)
        #expect(h.submit(1, 1, at: 0) == [.send(1, 0, to: 0)])
        let took = h.sm.completeAtOnce(
            worker: W(0), job: J(1), index: 0, failed: true, answeredItems: 1, failedItems: 1, now: h.at(4))
        #expect(took)
        #expect(h.sm.counters.failed == 1)
        #expect(h.job(1) == nil && h.inFlight(0).isEmpty)
        #expect(h.sm.counters.runningItems == 0 && h.sm.worker(W(0))?.lastChunkDuration == .milliseconds(4))
        // Its second task spends worker 0: chunkCompleted closes its input.
        #expect(h.submit(2, 1, at: 5) == [.send(2, 0, to: 0)])
        declines(&h, 0, 2, 0, "spent worker")
        // A job of two chunks, one on each worker.
        var g = Harness.running(processes: 2)
        #expect(g.submit(1, 2, at: 0) == [.send(1, 0, to: 0), .send(1, 1, to: 1)])
        declines(&g, 0, 1, 0, "a job with another chunk in flight")
        // Cancelled, its chunk left to finish.
        var k = Harness.running(processes: 2)
        #expect(k.submit(1, 1, at: 0) == [.send(1, 0, to: 0)])
        _ = k.cancel(1, stopRunning: false, at: 1)
        declines(&k, 0, 1, 0, "cancelled job")
        // A second chunk behind the first on one worker (prefetched after a short chunk).
        var p = Harness.running(processes: 1)
        #expect(p.submit(1, 1, at: 0) == [.send(1, 0, to: 0)])
        #expect(p.complete(0, 1, 0, at: 1) == [.deliver(1, 0), .finishJob(1)])
        #expect(p.submit(2, 3, at: 1) == [.send(2, 0, to: 0), .send(2, 1, to: 0)])
        declines(&p, 0, 2, 0, "two chunks on the worker")
        // Closed: chunkCompleted closes idle workers' inputs.
        var c = Harness.running(processes: 2)
        #expect(c.submit(1, 1, at: 0) == [.send(1, 0, to: 0)])
        _ = c.close()
        declines(&c, 0, 1, 0, "closed pool")
    }

    /// Guards that the randomized model (below) exercises the lone call's paths it checks.
    @Test func randomModelTakesTheLoneCallPaths() {
        var starts = 0, completions = 0
        for seed in UInt64(1)...UInt64(16) {
            var model = Model(seed: seed)
            for _ in 0..<400 { model.step() }
            model.drain()
            starts += model.fastStarts
            completions += model.fastCompletions
        }
        #expect(starts > 0 && completions > 0, "starts \(starts), completions \(completions)")
    }

    // MARK: - Randomized model

    /// Guards the invariants (see `Model`) under random interleavings of submit/append/spawn/
    /// ready/complete/crash/timeout/cancel/close/terminate, then close + drain.
    @Test(arguments: Array(UInt64(1)...UInt64(16)))
    func randomInterleavingsKeepInvariants(seed: UInt64) {
        var model = Model(seed: seed)
        for _ in 0..<400 { model.step() }
        model.drain()
    }
}

// MARK: - Model

/// Everything of the machine's state that a decision can change, comparable: the lone call's
/// paths (`startAtOnce`, `completeAtOnce`) must leave exactly what the general ones leave.
private struct Picture: Equatable {
    struct WorkerPicture: Equatable {
        let id: Int, pid: Int32, phase: SM.WorkerPhase, ready: Bool, retiring: Bool, assigned: Int
        let inFlight: [String], headStartedAt: MonotonicInstant?, lastChunkDuration: Duration?
    }
    struct JobPicture: Equatable {
        let id: UInt64, failFast: Bool, open: Bool, queued: Int, inFlight: Int, failed: Bool, cancelled: Bool
        let stopRunning: Bool
    }
    let lifecycle: SM.Lifecycle
    let workers: [WorkerPicture]
    let queue: [String]
    let jobs: [JobPicture]
    let counters: SchedulerCounters
    let nextDeadline: MonotonicInstant?

    init(_ sm: SM) {
        lifecycle = sm.lifecycle
        workers = sm.workers.map {
            WorkerPicture(
                id: $0.id.rawValue, pid: $0.pid, phase: $0.phase, ready: $0.ready, retiring: $0.retiring,
                assigned: $0.assigned, inFlight: $0.inFlight.map(\.payload), headStartedAt: $0.headStartedAt,
                lastChunkDuration: $0.lastChunkDuration)
        }
        queue = sm.queue.map(\.payload)
        jobs = sm.jobs.sorted { $0.key.rawValue < $1.key.rawValue }.map { id, job in
            JobPicture(
                id: id.rawValue, failFast: job.failFast, open: job.open, queued: job.queued, inFlight: job.inFlight,
                failed: job.failed, cancelled: job.cancelled, stopRunning: job.stopRunning)
        }
        counters = sm.counters
        nextDeadline = sm.nextDeadline
    }
}

/// The owner of the state machine and its worker processes (which never answer after a kill):
/// performs every action and checks after every event that no chunk is reported twice, after
/// its job ended or was cancelled, or (failFast) after its job failed; that chunks go only to
/// running workers and never sit on two; that the machine's in-flight chunks per worker match
/// what the worker was sent (≤ maxInFlightPerWorker); that activeWorkerPIDs lists the running
/// workers. At the end: every job finished once, every chunk of an unfailed, uncancelled job
/// was delivered or failed, all workers exited and `.stopped` came exactly once.
private struct Model {
    struct Key: Equatable { let job: UInt64, index: Int }
    struct Proc {
        let pid: Int32
        var ready = false, inputClosed = false, dying = false, sent: [Key] = []
    }
    struct JobInfo {
        let failFast: Bool
        var open: Bool, chunks: Int
        var cancelled = false, failedJob = false, anyFailure = false, finished = false, outcomes: [Int: Int] = [:]
        var live: Bool { !finished && !cancelled && !failedJob }
    }

    var sm: SM
    var rng: SeededGenerator
    let t0 = MonotonicInstant.now
    var ms = 0, stopped = 0, nextJob: UInt64 = 1
    var pendingSpawns: [Int] = [], procs: [Int: Proc] = [:], jobs: [UInt64: JobInfo] = [:]
    /// Results the lone call's `completeAtOnce` took (the test checks that the path was taken).
    var fastCompletions = 0
    /// Lone chunks `startAtOnce` started.
    var fastStarts = 0

    init(seed: UInt64) {
        rng = SeededGenerator(state: seed)
        var configuration = SM.Configuration(
            processes: 3, maxTasksPerChild: seed % 2 == 0 ? 4 : nil, taskTimeout: .milliseconds(40))
        configuration.maxConsecutiveStartupFailures = 4
        sm = SM(configuration: configuration)
        perform(sm.start(now: now))
    }

    var now: MonotonicInstant { t0.advanced(by: .milliseconds(ms)) }
    mutating func chance(_ n: Int) -> Bool { Int.random(in: 0..<n, using: &rng) == 0 }
    mutating func pick(_ procs: [Int: Proc], where test: (Proc) -> Bool) -> Int? {
        procs.filter { test($0.value) }.keys.sorted().randomElement(using: &rng)
    }

    mutating func step() {
        switch Int.random(in: 0..<1000, using: &rng) {
        case 0..<120: submit()
        case 120..<180:
            if let job = jobs.filter({ $0.value.open && $0.value.live }).keys.sorted().randomElement(using: &rng) {
                append(job)
            }
        case 180..<280: if let w = pendingSpawns.first { spawn(w, fail: chance(25)) }
        case 280..<360: if let w = pick(procs, where: { !$0.ready && !$0.dying }) { ready(w) }
        case 360..<660:
            let busy = pick(procs, where: { $0.ready && !$0.dying && !$0.sent.isEmpty })
            if let w = busy { complete(w, failed: chance(5)) }
        case 660..<690: if let w = pick(procs, where: { !$0.dying }) { exit(w, crash: true) }
        case 690..<760: if let w = pick(procs, where: { $0.dying || ($0.inputClosed && $0.sent.isEmpty) }) { exit(w) }
        case 760..<880: tick(by: Int.random(in: 0...12, using: &rng))
        case 880..<940:
            guard let job = jobs.filter({ !$0.value.finished }).keys.sorted().randomElement(using: &rng) else { break }
            jobs[job]!.cancelled = true
            perform(sm.cancel(job: J(job), stopRunning: Bool.random(using: &rng), now: now))
        case 940: closePool()
        case 941: perform(sm.terminate())
        default: tick(by: 1)
        }
        check()
    }

    // MARK: Events

    mutating func submit() {
        let running = sm.lifecycle == .running
        if !running && !chance(10) { return }  // the owner checks lifecycle; sometimes try anyway
        let job = nextJob
        nextJob += 1
        let count = Int.random(in: 0...4, using: &rng)
        let info = JobInfo(failFast: Bool.random(using: &rng), open: chance(4), chunks: count)
        jobs[job] = info
        let chunks = (0..<info.chunks).map { makeChunk(job, $0) }
        // A lone chunk: the lone call's `startAtOnce`, checked against `submit` on a copy.
        if chunks.count == 1 && !info.open && Bool.random(using: &rng) {
            var general = sm
            let actions = general.submit(job: J(job), chunks: chunks, failFast: info.failFast, open: false, now: now)
            let before = Picture(sm)
            if let w = sm.startAtOnce(job: J(job), chunk: chunks[0], failFast: info.failFast, now: now) {
                fastStarts += 1
                #expect(actions.map(Act.init) == [.send(job, 0, to: w.rawValue)], "startAtOnce where submit did more")
                #expect(Picture(sm) == Picture(general), "startAtOnce left another state than submit")
            } else {
                #expect(Picture(sm) == before, "startAtOnce changed the state and declined")
                sm = general
            }
            perform(actions)
            if !running { #expect(jobs[job]!.failedJob && jobs[job]!.finished) }
            return
        }
        perform(sm.submit(job: J(job), chunks: chunks, failFast: info.failFast, open: info.open, now: now))
        if !running { #expect(jobs[job]!.failedJob && jobs[job]!.finished) }
    }

    mutating func makeChunk(_ job: UInt64, _ index: Int) -> SM.Chunk {
        chunk(job, index, timeout: chance(5) ? .milliseconds(Int.random(in: 5...60, using: &rng)) : nil)
    }

    mutating func append(_ job: UInt64) {
        let first = jobs[job]!.chunks
        let count = Int.random(in: 0...3, using: &rng)
        let open = Bool.random(using: &rng)
        jobs[job]!.chunks += count
        jobs[job]!.open = open
        let chunks = (first..<first + count).map { makeChunk(job, $0) }
        perform(sm.appendChunks(job: J(job), chunks, open: open, now: now))
    }

    mutating func spawn(_ w: Int, fail: Bool) {
        pendingSpawns.removeAll { $0 == w }
        if fail { return perform(sm.workerSpawnFailed(W(w), detail: "spawn failed", now: now)) }
        procs[w] = Proc(pid: pid(w))
        perform(sm.workerSpawned(W(w), pid: pid(w), now: now))
    }

    mutating func ready(_ w: Int) {
        procs[w]!.ready = true
        sm.workerReady(W(w), now: now)
    }

    mutating func complete(_ w: Int, failed: Bool) {
        let key = procs[w]!.sent.removeFirst()
        // Half the time the lone call's `completeAtOnce`, checked against `chunkCompleted` on a copy.
        if Bool.random(using: &rng) {
            var general = sm
            let actions = general.chunkCompleted(
                worker: W(w), job: J(key.job), index: key.index, failed: failed, now: now)
            let before = Picture(sm)
            if sm.completeAtOnce(
                worker: W(w), job: J(key.job), index: key.index, failed: failed, answeredItems: nil, failedItems: nil,
                now: now)
            {
                #expect(
                    actions.map(Act.init) == [.deliver(key.job, key.index), .finishJob(key.job)],
                    "completeAtOnce where chunkCompleted did more")
                #expect(Picture(sm) == Picture(general), "completeAtOnce left another state than chunkCompleted")
                fastCompletions += 1
            } else {
                #expect(Picture(sm) == before, "completeAtOnce changed the state and declined")
                sm = general
            }
            perform(actions)
        } else {
            perform(sm.chunkCompleted(worker: W(w), job: J(key.job), index: key.index, failed: failed, now: now))
        }
        if failed { jobs[key.job]?.anyFailure = true }
    }

    /// A crash (any time), a killed worker dying, or an input-closed worker exiting normally.
    mutating func exit(_ w: Int, crash: Bool = false) {
        let proc = procs.removeValue(forKey: w)!
        let termination: ProcessTermination = crash ? .signaled(11) : proc.dying ? .signaled(9) : .exited(0)
        let initializerError = crash && !proc.ready && chance(3) ? "initializer threw" : nil
        perform(sm.workerExited(W(w), termination: termination, initializerError: initializerError, now: now))
    }

    mutating func tick(by step: Int) {
        ms += step
        let due = sm.nextDeadline.map { $0 <= now } ?? false
        let actions = sm.timeoutsExpired(now: now)
        if !due { #expect(!actions.contains { if case .kill = $0 { true } else { false } }, "kill before deadline") }
        perform(actions)
    }

    /// Like StreamStorage, ends the open jobs first (closing with an open job is a known issue).
    mutating func closePool() {
        for (job, info) in jobs where info.open && info.live {
            jobs[job]!.open = false
            perform(sm.appendChunks(job: J(job), [], open: false, now: now))
        }
        perform(sm.close())
    }

    /// Closes the pool and runs everything to the end, then checks that all of it ended.
    mutating func drain() {
        closePool()
        for _ in 0..<10_000 {
            if let w = pendingSpawns.first {
                spawn(w, fail: false)
            } else if let w = pick(procs, where: { !$0.ready && !$0.dying }) {
                ready(w)
            } else if let w = pick(procs, where: { $0.ready && !$0.dying && !$0.sent.isEmpty }) {
                complete(w, failed: false)
            } else if let w = pick(procs, where: { $0.dying || ($0.inputClosed && $0.sent.isEmpty) }) {
                exit(w)
            } else {
                break
            }
            ms += 1
            check()
        }
        #expect(procs.isEmpty && pendingSpawns.isEmpty && sm.workers.isEmpty, "left: \(sm.workers.map(\.phase))")
        #expect(sm.isStopped && stopped == 1)
        #expect(sm.jobs.isEmpty && sm.queue.isEmpty)
        for (job, info) in jobs.sorted(by: { $0.key < $1.key }) {
            #expect(info.finished, "job \(job) never finished")
            guard !info.cancelled && !info.failedJob && !(info.failFast && info.anyFailure) else { continue }
            for index in 0..<info.chunks {
                #expect(info.outcomes[index] == 1, "job \(job) chunk \(index) was never delivered or failed")
            }
        }
    }

    // MARK: Actions and invariants

    mutating func perform(_ actions: [SM.Action]) {
        for action in actions {
            switch action {
            case .spawn(let w):
                #expect(procs[w.rawValue] == nil && !pendingSpawns.contains(w.rawValue))
                pendingSpawns.append(w.rawValue)
            case .send(let chunk, to: let w):
                let key = Key(job: chunk.job.rawValue, index: chunk.index)
                #expect(procs.values.allSatisfy { !$0.sent.contains(key) }, "\(key) is on two workers")
                #expect(jobs[key.job]?.finished == false, "\(key) sent after its job finished")
                guard let proc = procs[w.rawValue], !proc.inputClosed, !proc.dying else {
                    Issue.record("\(key) sent to \(w), which is not running")
                    continue
                }
                procs[w.rawValue]!.sent.append(key)
            case .closeInput(let w):
                #expect(procs[w.rawValue].map { !$0.inputClosed && !$0.dying } == true, "closeInput(\(w))")
                procs[w.rawValue]?.inputClosed = true
            case .kill(let w, pid: let pid):
                #expect(procs[w.rawValue]?.pid == pid, "kill(\(w)) of a worker that is not spawned")
                procs[w.rawValue]?.dying = true
            case .deliver(job: let job, index: let index): outcome(job.rawValue, index)
            case .failChunk(job: let job, index: let index, _, worker: _):
                outcome(job.rawValue, index)
                jobs[job.rawValue]?.anyFailure = true
            case .failJob(let job, _):
                #expect(jobs[job.rawValue].map { !$0.failedJob && !$0.finished } == true, "failJob(\(job))")
                jobs[job.rawValue]?.failedJob = true
            case .finishJob(let job):
                #expect(jobs[job.rawValue]?.finished == false, "finishJob(\(job)) twice")
                jobs[job.rawValue]?.finished = true
            case .stopped:
                stopped += 1
                #expect(stopped == 1, "stopped twice")
            }
        }
    }

    mutating func outcome(_ job: UInt64, _ index: Int) {
        guard let info = jobs[job] else {
            Issue.record("result for unknown job \(job)")
            return
        }
        #expect(info.live, "job \(job) chunk \(index) reported after its end or cancel")
        #expect(!(info.failFast && info.anyFailure), "failFast job \(job) chunk \(index) after its failure")
        #expect(index < info.chunks)
        jobs[job]!.outcomes[index, default: 0] += 1
        #expect(jobs[job]!.outcomes[index] == 1, "job \(job) chunk \(index) reported twice")
    }

    func check() {
        for worker in sm.workers {
            #expect(worker.inFlight.count <= sm.configuration.maxInFlightPerWorker)
            let keys = worker.inFlight.map { Key(job: $0.job.rawValue, index: $0.index) }
            if let proc = procs[worker.id.rawValue] {
                #expect(keys == proc.sent, "\(worker.id): machine and worker disagree")
            } else {
                #expect(pendingSpawns.contains(worker.id.rawValue) && keys.isEmpty, "\(worker.id) unknown")
            }
        }
        for id in procs.keys { #expect(sm.worker(W(id)) != nil, "worker#\(id) forgotten") }
        for id in sm.jobs.keys { #expect(jobs[id.rawValue]?.finished == false) }
        let running = procs.values.filter { !$0.inputClosed && !$0.dying }.map(\.pid).sorted()
        #expect(sm.activeWorkerPIDs.sorted() == running)
    }
}
