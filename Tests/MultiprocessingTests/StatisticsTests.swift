// Tests of `pool.statistics` and the scheduler's counters it reads (SchedulerCounters.swift):
// first the scheduler driven by hand (no process: every outcome and restart cause, chunks of
// many items, the worker census, the chunk timings, and a seeded random run that checks every
// item is counted exactly once), then real pools whose workers are held on marker files while
// the test reads the statistics, so that nothing depends on timing.

import Foundation
import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

private typealias Scheduler = SchedulerStateMachine<Int>

/// Drives a scheduler the way PoolCore does, answering its spawn actions (worker `n` gets pid
/// 2000 + n), with time in milliseconds after `t0`.
private struct Driver {
    var sm: Scheduler
    let t0 = MonotonicInstant.now
    /// Spawn requests not answered yet (when `autoSpawn` is off).
    var pendingSpawns: [WorkerID] = []
    var autoSpawn = true

    init(processes: Int = 1, configure: (inout Scheduler.Configuration) -> Void = { _ in }) {
        var configuration = Scheduler.Configuration(processes: processes, maxTasksPerChild: nil, taskTimeout: nil)
        configure(&configuration)
        sm = Scheduler(configuration: configuration)
        handle(sm.start(now: t0), at: 0)
    }

    func at(_ ms: Int) -> MonotonicInstant { t0.advanced(by: .milliseconds(ms)) }
    var counters: SchedulerCounters { sm.counters }

    /// Answers spawn actions: the worker is spawned and ready at once.
    mutating func handle(_ actions: [Scheduler.Action], at ms: Int) {
        for case .spawn(let id) in actions {
            guard autoSpawn else {
                pendingSpawns.append(id)
                continue
            }
            let more = sm.workerSpawned(id, pid: Int32(2000 + id.rawValue), now: at(ms))
            sm.workerReady(id, now: at(ms))
            handle(more, at: ms)
        }
    }

    mutating func submit(_ job: UInt64, items: [Int], failFast: Bool = false, timeout: Duration? = nil, at ms: Int) {
        let chunks = items.enumerated().map { index, count in
            Scheduler.Chunk(job: JobID(rawValue: job), index: index, payload: index, timeout: timeout, items: count)
        }
        handle(sm.submit(job: JobID(rawValue: job), chunks: chunks, failFast: failFast, now: at(ms)), at: ms)
    }

    /// The worker running chunk `index` of `job`.
    func worker(running job: UInt64, _ index: Int) -> WorkerID? {
        sm.workers.first { $0.inFlight.first.map { $0.job.rawValue == job && $0.index == index } ?? false }?.id
    }

    mutating func complete(
        _ job: UInt64, _ index: Int, answered: Int? = nil, failed: Int = 0, at ms: Int
    ) {
        let id = worker(running: job, index)!
        let actions = sm.chunkCompleted(
            worker: id, job: JobID(rawValue: job), index: index, failed: failed > 0, answeredItems: answered,
            failedItems: failed, now: at(ms))
        handle(actions, at: ms)
        reap(actions, at: ms)
    }

    /// Workers whose input was closed exit at once; killed ones too.
    mutating func reap(_ actions: [Scheduler.Action], at ms: Int) {
        for action in actions {
            switch action {
            case .closeInput(let id): exit(id, .exited(0), at: ms)
            case .kill(let id, _): exit(id, .signaled(9), at: ms)
            default: break
            }
        }
    }

    mutating func exit(_ id: WorkerID, _ termination: ProcessTermination, at ms: Int) {
        let actions = sm.workerExited(id, termination: termination, now: at(ms))
        handle(actions, at: ms)
        reap(actions, at: ms)
    }

    mutating func perform(_ actions: [Scheduler.Action], at ms: Int) {
        handle(actions, at: ms)
        reap(actions, at: ms)
    }

    func ended(_ outcome: ItemOutcome) -> Int { counters[outcome: outcome] }
    func restarts(_ cause: RestartCause) -> Int { counters[restarts: cause] }
    var endedTotal: Int { ItemOutcome.allCases.reduce(0) { $0 + counters[outcome: $1] } }
}

@Suite("Scheduler counters", .cpuBound)
struct SchedulerCounterTests {
    /// Guards: items, not chunks: a running chunk of 512 counts 512 running; its answer with 3
    /// failed items counts 509 succeeded and 3 failed.
    @Test func aChunkCountsItsItems() {
        var d = Driver(processes: 1)
        d.submit(1, items: [512, 512], at: 0)
        #expect(d.counters.runningItems == 512 && d.counters.queuedItems == 512)
        d.complete(1, 0, failed: 3, at: 10)
        #expect(d.ended(.succeeded) == 509 && d.ended(.failed) == 3)
        #expect(d.counters.runningItems == 512 && d.counters.queuedItems == 0)
        d.complete(1, 1, at: 20)
        #expect(d.ended(.succeeded) == 1021 && d.counters.runningItems == 0 && d.endedTotal == 1024)
    }

    /// Guards: a `map` (fail fast) chunk that stopped at its failed item counts the items it
    /// never ran as cancelled, and so are the job's queued chunks it drops.
    @Test func stoppingAtAFailureCountsTheSkippedItemsCancelled() {
        var d = Driver(processes: 1)
        d.submit(1, items: [10, 5, 5], failFast: true, at: 0)
        d.complete(1, 0, answered: 4, failed: 1, at: 10)
        #expect(d.ended(.succeeded) == 3 && d.ended(.failed) == 1)
        #expect(d.ended(.cancelled) == 6 + 10)
        #expect(d.counters.queuedItems == 0 && d.counters.runningItems == 0 && d.endedTotal == 20)
    }

    /// Guards: a worker that dies running a chunk counts its items as worker lost and one
    /// `crashed` restart; the chunk queued behind it goes back to the queue, uncounted.
    @Test func aLostWorkerCountsItsChunkAndACrash() {
        var d = Driver(processes: 1)
        d.submit(1, items: [1, 7, 2], at: 0)
        d.complete(1, 0, at: 1)  // 1 ms: short, so chunk 2 is prefetched behind chunk 1
        #expect(d.sm.workers[0].inFlight.count == 2 && d.counters.runningItems == 9)
        d.exit(d.sm.workers[0].id, .signaled(11), at: 5)
        #expect(d.ended(.workerLost) == 7 && d.restarts(.crashed) == 1)
        #expect(d.sm.workers.count == 1 && d.counters.runningItems == 2 && d.counters.queuedItems == 0)
        #expect(RestartCause.allCases.reduce(0) { $0 + d.restarts($1) } == 1)
    }

    /// Guards: a chunk past its timeout counts its items as timed out and one `timedOut`
    /// restart.
    @Test func aTimeoutCountsTimedOut() {
        var d = Driver(processes: 1) { $0.taskTimeout = .milliseconds(50) }
        d.submit(1, items: [3], at: 0)
        d.perform(d.sm.timeoutsExpired(now: d.at(60)), at: 60)
        #expect(d.ended(.timedOut) == 3 && d.restarts(.timedOut) == 1 && d.endedTotal == 3)
        #expect(d.restarts(.crashed) == 0)
    }

    /// Guards: cancelling counts the dropped queued items and the killed running ones as
    /// cancelled, and the killed worker as a `cancelled` restart.
    @Test func cancelCountsCancelled() {
        var d = Driver(processes: 1)
        d.submit(1, items: [4, 6], at: 0)
        d.perform(d.sm.cancel(job: JobID(rawValue: 1), stopRunning: true, now: d.at(5)), at: 5)
        #expect(d.ended(.cancelled) == 10 && d.restarts(.cancelled) == 1)
        #expect(d.counters.queuedItems == 0 && d.counters.runningItems == 0)
    }

    /// Guards: terminate counts queued and running items as terminated and no restart.
    @Test func terminateCountsTerminated() {
        var d = Driver(processes: 2)
        d.submit(1, items: [2, 3, 4], at: 0)
        d.perform(d.sm.terminate(), at: 5)
        #expect(d.ended(.terminated) == 9 && d.endedTotal == 9)
        #expect(RestartCause.allCases.allSatisfy { d.restarts($0) == 0 })
        #expect(d.sm.workers.isEmpty)
    }

    /// Guards: a worker retired after maxTasksPerChild counts `maxTasks`; one over its memory
    /// limit counts `maxMemory`; workers ending because the pool closes count nothing.
    @Test func retirementsCountTheirCause() {
        var d = Driver(processes: 1) { $0.maxTasksPerChild = 2 }
        d.submit(1, items: [1, 1, 1], at: 0)
        d.complete(1, 0, at: 10)
        d.complete(1, 1, at: 20)
        #expect(d.restarts(.maxTasks) == 1)
        let id = d.worker(running: 1, 2)!
        d.perform(d.sm.workerOverMemory(id, now: d.at(25)), at: 25)
        d.complete(1, 2, at: 30)
        #expect(d.restarts(.maxMemory) == 1 && d.restarts(.maxTasks) == 1)
        d.perform(d.sm.close(), at: 40)
        #expect(d.sm.workers.isEmpty && d.restarts(.maxTasks) == 1 && d.restarts(.maxMemory) == 1)
        #expect(d.ended(.succeeded) == 3)
    }

    /// Guards: a spawn that fails, a worker that dies before it is ready and one not ready
    /// within its start timeout count `startFailed`; their chunks go back to the queue.
    @Test func startFailuresCountStartFailed() {
        var d = Driver(processes: 1) { $0.startTimeout = .milliseconds(100) }
        d.autoSpawn = false
        d.handle(d.sm.workerSpawnFailed(d.sm.workers[0].id, detail: "no", now: d.at(1)), at: 1)
        #expect(d.restarts(.startFailed) == 1)
        let second = d.pendingSpawns.removeLast()
        d.handle(d.sm.workerSpawned(second, pid: 3000, now: d.at(2)), at: 2)
        d.submit(1, items: [5], at: 3)
        #expect(d.counters.runningItems == 5)
        d.exit(second, .exited(1), at: 4)
        #expect(d.restarts(.startFailed) == 2 && d.counters.queuedItems == 5 && d.endedTotal == 0)
        let third = d.pendingSpawns.removeLast()
        d.handle(d.sm.workerSpawned(third, pid: 3001, now: d.at(10)), at: 10)
        d.perform(d.sm.timeoutsExpired(now: d.at(200)), at: 200)
        #expect(d.restarts(.startFailed) == 3)
    }

    /// Guards the census: starting (spawning or not ready), busy, idle, stopping (killed, not yet
    /// reaped).
    @Test func workerCensus() {
        var d = Driver(processes: 3)
        d.autoSpawn = false
        #expect(d.sm.workerCensus == WorkerCensus(busy: 0, idle: 3, starting: 0, stopping: 0))
        d.submit(1, items: [1], at: 0)
        #expect(d.sm.workerCensus == WorkerCensus(busy: 1, idle: 2, starting: 0, stopping: 0))
        _ = d.sm.cancel(job: JobID(rawValue: 1), stopRunning: true, now: d.at(1))  // killed, not reaped
        #expect(d.sm.workerCensus.stopping == 1 && d.sm.workerCensus.idle == 2)
        #expect(d.sm.workerCensus.starting == 1)  // its replacement, asked for
    }

    /// Guards the timings: a chunk's wait runs from its submission to its start on a worker
    /// (the next one starts when the one before it is answered), its run from start to answer;
    /// nothing is kept unless asked.
    @Test func chunkTimings() {
        var d = Driver(processes: 1) { $0.recordsTimings = true }
        d.submit(1, items: [1, 1], at: 0)
        d.complete(1, 0, at: 30)
        d.complete(1, 1, at: 50)
        let timings = d.sm.takeTimings().map { timing -> String in
            switch timing {
            case .waited(let duration): return "waited \(duration)"
            case .ran(let duration): return "ran \(duration)"
            }
        }
        let ms = { (n: Int) in "\(Duration.milliseconds(n))" }
        #expect(timings == ["waited \(ms(0))", "ran \(ms(30))", "waited \(ms(30))", "ran \(ms(20))"])
        #expect(d.sm.takeTimings().isEmpty)

        var off = Driver(processes: 1)
        off.submit(1, items: [1], at: 0)
        off.complete(1, 0, at: 30)
        #expect(off.sm.timings.isEmpty)
    }

    /// Guards that every item is counted exactly once, whatever happens: a seeded random run of
    /// submissions, answers (some with failed or skipped items), deaths, timeouts, cancels,
    /// memory retirements, then terminate. After every event the queue and running counts are
    /// the items actually queued and in flight, and queued + running + ended is what was
    /// submitted.
    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64]) func everyItemIsCountedOnce(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        var d = Driver(processes: 3) {
            $0.maxTasksPerChild = 4
            $0.taskTimeout = .milliseconds(40)
        }
        var submitted = 0
        var nextJob: UInt64 = 1
        var ms = 0
        func check(_ d: Driver, _ step: Int) {
            let queued = d.sm.queue.reduce(0) { $0 + $1.items }
            let running = d.sm.workers.reduce(0) { $0 + $1.inFlight.reduce(0) { $0 + $1.items } }
            #expect(d.counters.queuedItems == queued, "step \(step)")
            #expect(d.counters.runningItems == running, "step \(step)")
            #expect(queued + running + d.endedTotal == submitted, "step \(step)")
        }
        for step in 0..<400 {
            ms += Int.random(in: 0...10, using: &rng)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0, 1:
                let items = (0..<Int.random(in: 1...4, using: &rng)).map { _ in Int.random(in: 1...20, using: &rng) }
                submitted += items.reduce(0, +)
                d.submit(nextJob, items: items, failFast: Bool.random(using: &rng), at: ms)
                nextJob += 1
            case 2, 3, 4:
                let busy = d.sm.workers.filter { !$0.inFlight.isEmpty && $0.phase == .running }
                guard let worker = busy.randomElement(using: &rng), let head = worker.inFlight.first else { break }
                let answered = Bool.random(using: &rng) ? head.items : Int.random(in: 1...head.items, using: &rng)
                let failed = Int.random(in: 0...answered, using: &rng)
                d.complete(head.job.rawValue, head.index, answered: answered, failed: failed, at: ms)
            case 5:
                guard let worker = d.sm.workers.randomElement(using: &rng), worker.phase != .spawning else { break }
                d.exit(worker.id, .signaled(9), at: ms)
            case 6:
                d.perform(d.sm.timeoutsExpired(now: d.at(ms)), at: ms)
            case 7:
                guard nextJob > 1 else { break }
                let job = JobID(rawValue: UInt64.random(in: 1..<nextJob, using: &rng))
                d.perform(d.sm.cancel(job: job, stopRunning: Bool.random(using: &rng), now: d.at(ms)), at: ms)
            case 8:
                guard let worker = d.sm.workers.randomElement(using: &rng) else { break }
                d.perform(d.sm.workerOverMemory(worker.id, now: d.at(ms)), at: ms)
            default:
                break
            }
            check(d, step)
        }
        d.perform(d.sm.terminate(), at: ms + 1)
        check(d, 400)
        #expect(d.counters.queuedItems == 0 && d.counters.runningItems == 0 && d.endedTotal == submitted)
    }
}

// MARK: - Real pools

/// A pool of the test worker built from a configuration (metrics, label, limits), on the suite's
/// backend.
func statisticsPool(processes: Int = 2, configure: (inout Pool.Configuration) -> Void = { _ in }) throws -> Pool {
    var configuration = TestPools.configuration(processes: processes)
    configure(&configuration)
    return try TestPools.make(configuration)
}

/// Held tasks for `count` items: each writes its own marker and waits for `release`.
func heldTasks(_ count: Int, values: [Int]? = nil) -> (tasks: [HeldTask], markers: [String], release: String) {
    let release = TestFolder.uniquePath("release")
    let markers = (0..<count).map { _ in TestFolder.uniquePath("held") }
    let tasks = (0..<count).map { HeldTask(marker: markers[$0], release: release, value: values?[$0] ?? $0) }
    return (tasks, markers, release)
}

/// Creates the file `path` (a release for held tasks).
func touch(_ path: String) {
    _ = FileManager.default.createFile(atPath: path, contents: Data())
}

@Suite("Pool statistics", .offCooperativePool)
struct PoolStatisticsTests {
    /// Guards: a new pool reads all zeros but its workers; after an `imap` of 20 items of which
    /// 5 throw (chunks of 4, two failures in the first), 15 succeeded and 5 failed, nothing queued or running.
    @Test(.timeLimit(.minutes(1))) func imapWithFailuresCountsItems() async throws {
        let pool = try statisticsPool()
        defer { pool.stop() }
        #expect(await eventuallyAsync(timeout: .seconds(20)) { pool.statistics.idleWorkers == 2 })
        let fresh = pool.statistics
        #expect(fresh.tasksCompleted.total == 0 && fresh.workerRestarts.total == 0 && fresh.workers == 2)
        let inputs = (0..<20).map { [1, 2, 9, 13, 17].contains($0) ? -$0 : $0 }  // two in the first chunk
        var failures = 0
        var iterator = try pool.imap(F.checkedSqrt, inputs, chunksize: 4).makeAsyncIterator()
        for _ in 0..<20 {
            do { _ = try await iterator.next() } catch { failures += 1 }
        }
        #expect(failures == 5)
        let statistics = pool.statistics
        #expect(statistics.tasksCompleted.succeeded == 15)
        #expect(statistics.tasksCompleted.failed == 5)
        #expect(statistics.tasksCompleted.total == 20)
        #expect(statistics.tasksQueued == 0 && statistics.tasksRunning == 0)
    }

    /// Guards: a `map` chunk of 512 items counts 512 tasks (1024 items in two chunks: 1024).
    @Test(.timeLimit(.minutes(1))) func mapChunksCountEveryItem() async throws {
        let pool = try statisticsPool()
        defer { pool.stop() }
        _ = try await pool.map(F.square, 0..<1024, chunksize: 512)
        #expect(pool.statistics.tasksCompleted.succeeded == 1024)
        #expect(pool.statistics.tasksCompleted.total == 1024)
    }

    /// Guards the live numbers: with both workers held on markers and two more tasks waiting,
    /// 2 busy, 0 idle, 2 running, 2 queued; after the release, 4 succeeded, 2 idle.
    @Test(.timeLimit(.minutes(1))) func busyAndQueuedWhileWorkersAreHeld() async throws {
        let pool = try statisticsPool()
        defer { pool.stop() }
        let (tasks, markers, release) = heldTasks(4)
        let result = try pool.mapAsync(F.holdUntilReleased, tasks, chunksize: 1)
        #expect(await eventuallyAsync(timeout: .seconds(30)) { markers.filter { pidInMarker($0) != 0 }.count == 2 })
        // A worker runs its task before the pool has read its "ready" (it counts as starting
        // until then); held, nothing else changes.
        #expect(await eventuallyAsync(timeout: .seconds(10)) { pool.statistics.busyWorkers == 2 })
        let held = pool.statistics
        #expect(held.busyWorkers == 2 && held.idleWorkers == 0 && held.startingWorkers == 0)
        #expect(held.tasksRunning == 2 && held.tasksQueued == 2)
        #expect(held.tasksCompleted.total == 0)
        touch(release)
        #expect(try await result.value == [0, 1, 2, 3])
        #expect(await eventuallyAsync(timeout: .seconds(10)) { pool.statistics.idleWorkers == 2 })
        let done = pool.statistics
        #expect(done.busyWorkers == 0 && done.tasksRunning == 0 && done.tasksQueued == 0)
        #expect(done.tasksCompleted.succeeded == 4)
    }

    /// Guards: a worker that crashes mid-task counts one task `workerLost` and one `crashed`
    /// restart, and the other tasks succeed.
    @Test(.timeLimit(.minutes(1))) func aCrashCountsWorkerLostAndACrashedRestart() async throws {
        let pool = try statisticsPool()
        defer { pool.stop() }
        let result = try pool.starmapAsync(F.trapAt, (0..<4).map { ($0, 2) }, chunksize: 1)
        _ = try? await result.value
        #expect(await eventuallyAsync(timeout: .seconds(20)) { pool.statistics.workerRestarts.crashed == 1 })
        #expect(await eventuallyAsync(timeout: .seconds(20)) { pool.statistics.tasksCompleted.total == 4 })
        let statistics = pool.statistics
        #expect(statistics.tasksCompleted.workerLost == 1)
        #expect(statistics.workerRestarts.total == 1)
        #expect(statistics.tasksCompleted.succeeded + statistics.tasksCompleted.cancelled == 3)
    }

    /// Guards: a task past its timeout counts `timedOut`, and its worker a `timedOut` restart.
    @Test(.timeLimit(.minutes(1))) func aTimeoutCountsTimedOut() async throws {
        let pool = try statisticsPool(processes: 1)
        defer { pool.stop() }
        await #expect(throws: PoolError.self) { try await pool.apply(F.blockMs, 10_000, timeout: .milliseconds(200)) }
        #expect(await eventuallyAsync(timeout: .seconds(20)) { pool.statistics.workerRestarts.timedOut == 1 })
        #expect(pool.statistics.tasksCompleted.timedOut == 1)
        #expect(pool.statistics.tasksCompleted.total == 1)
    }

    /// Guards: terminating with held and queued tasks counts them all terminated, no restart.
    @Test(.timeLimit(.minutes(1))) func terminateCountsTerminated() async throws {
        let pool = try statisticsPool()
        let (tasks, markers, release) = heldTasks(5)
        defer { touch(release) }
        let result = try pool.mapAsync(F.holdUntilReleased, tasks, chunksize: 1)
        #expect(await eventuallyAsync(timeout: .seconds(30)) { markers.filter { pidInMarker($0) != 0 }.count == 2 })
        pool.terminate()
        try await pool.joined()
        _ = try? await result.value
        let statistics = pool.statistics
        #expect(statistics.tasksCompleted.terminated == 5 && statistics.tasksCompleted.total == 5)
        #expect(statistics.workerRestarts.total == 0 && statistics.workers == 0)
    }

    /// Guards the label's validation.
    @Test func anEmptyLabelIsRejected() {
        var configuration = Pool.Configuration()
        configuration.label = ""
        #expect(errorCode { try configuration.validate() } == .invalidArgument)
    }
}
