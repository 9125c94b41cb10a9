// The pool's scheduler as a pure state machine: the queue of chunks, the chunks in flight on
// every worker, and the life of every worker (started, ready, retired, killed, exited).
//
// It performs no I/O and reads no clock: each event is a `mutating` method that takes what it
// needs (including `now`) and returns the `Action`s the caller must perform. Every fault — a
// worker lost, a task timed out, a caller cancelled, the pool terminated — is one transition
// here, which is what lets the unit tests drive all of them without a process.

import DequeModule

/// Identifies one worker process over the pool's life (a replacement gets a new id).
struct WorkerID: Hashable, Comparable, Sendable, CustomStringConvertible {
    let rawValue: Int
    static func < (a: WorkerID, b: WorkerID) -> Bool { a.rawValue < b.rawValue }
    var description: String { "worker#\(rawValue)" }
}

/// Identifies one submitted call (`apply`, `map`, an `imap` stream, …).
struct JobID: Hashable, Sendable, CustomStringConvertible {
    let rawValue: UInt64
    var description: String { "job#\(rawValue)" }
}

/// Why a chunk (a batch of items of one job) did not produce results.
enum ChunkFailure: Equatable, Sendable {
    /// The worker running it died: `termination` says how, `detail` adds what we know.
    case workerLost(pid: Int32, termination: ProcessTermination, detail: String?)
    /// It ran longer than `limit` and its worker was killed.
    case timedOut(pid: Int32, limit: Duration)
    /// The pool was terminated before it finished.
    case terminated
    /// Workers could not be started (or kept dying before they were ready), so the pool broke.
    case startupFailed(detail: String, initializer: Bool)
}

/// The scheduling state machine. `Payload` is what travels with a chunk (the encoded frame in
/// the pool; anything in tests).
struct SchedulerStateMachine<Payload> {
    struct Configuration {
        /// How many workers to keep.
        var processes: Int
        /// Chunks a worker runs before it is replaced; nil for no limit.
        var maxTasksPerChild: Int?
        /// Limit on one chunk's run time; nil for none. A chunk's own timeout wins.
        var taskTimeout: Duration?
        /// How long a spawned worker may take to become ready; nil for no limit.
        var startTimeout: Duration?
        /// A worker gets a second chunk queued behind the running one only when its last chunk
        /// took less than this: short chunks then never wait for a round trip, and long ones are
        /// never stuck behind another while a different worker idles.
        var prefetchBelow: Duration = .milliseconds(5)
        /// Chunks in flight on one worker at most (1 running + queued in its pipe).
        var maxInFlightPerWorker: Int = 2
        /// How much work of chunks that may queue deeper (``Chunk/queuesDeep``: a map's, a
        /// stream's) a worker whose last chunk was short gets queued: about `budget` of them by
        /// its last chunk's time, at most `maxInFlight` in flight, while the queue has as many for
        /// every worker. The worker then runs from one chunk into the next without waiting for
        /// the parent to hand it more, and the parent, woken by one result, finds several and
        /// refills the worker's queue once for them; a map's worker also holds the doorbell for
        /// its results while more is queued (ResultWriter.swift), so the parent wakes once for
        /// several: at the default 2 in flight it would be rung for every one. The budget bounds
        /// how much work can sit behind one worker while another runs out at a job's end.
        var deepQueue: (budget: Duration, maxInFlight: Int) = (.milliseconds(2), 8)
        /// Workers that may die before becoming ready, in a row, before the pool gives up.
        var maxConsecutiveStartupFailures: Int = 3
        /// Workers that may be killed by someone else's SIGKILL (the OOM killer, an operator)
        /// before becoming ready, in a row, before the pool gives up. Such a death says nothing
        /// about the program, so it does not count as a startup failure; only a long run of them
        /// (a start that always runs out of memory) breaks the pool.
        var maxConsecutiveStartupKills: Int = 10
        /// Keep the wait and run time of every chunk in ``timings`` (for the metrics' timers).
        var recordsTimings = false
    }

    /// One batch of items of one job, sent to a worker as one frame.
    struct Chunk {
        let job: JobID
        let index: Int
        let payload: Payload
        /// Overrides the pool's task timeout for this chunk.
        let timeout: Duration?
        /// The items (calls of the function) in it, for the counts.
        var items = 1
        /// When it was queued (set by the scheduler, for its wait time).
        var submittedAt: MonotonicInstant?
        /// It may be queued deeper on a worker (``Configuration/deepQueue``): a chunk of a job of
        /// several whose caller does not wait for this one result alone, a `map`'s (whose results
        /// are seen together) or a stream's (whose consumer keeps a window of chunks ahead).
        var queuesDeep = false
    }

    enum KillReason: Equatable, CustomStringConvertible {
        case timedOut(limit: Duration)
        /// It was not ready within the start timeout.
        case startTimedOut(limit: Duration)
        case cancelled
        case terminated
        case protocolError(String)

        var description: String {
            switch self {
            case .timedOut(let limit): return "it ran past its timeout of \(limit)"
            case .startTimedOut(let limit): return "it was not ready within its start timeout of \(limit)"
            case .cancelled: return "its caller cancelled it"
            case .terminated: return "the pool was terminated"
            case .protocolError(let detail): return "the worker \(detail)"
            }
        }
    }

    enum WorkerPhase: Equatable {
        /// Asked to spawn; no pid yet.
        case spawning
        /// Takes chunks.
        case running
        /// Its task pipe is closed: it finishes and exits (retired after maxTasksPerChild, or
        /// the pool is closing).
        case inputClosed
        /// We sent SIGKILL.
        case killed(KillReason)
    }

    struct Worker {
        let id: WorkerID
        var pid: Int32 = 0
        var phase: WorkerPhase = .spawning
        /// Bootstrap (and initializer) finished in the worker.
        var ready = false
        /// Chunks sent and not yet answered, in the order the worker runs them; the first runs.
        var inFlight: Deque<Chunk> = []
        /// When the first chunk of `inFlight` started running.
        var headStartedAt: MonotonicInstant?
        /// The chunk (job, index) that was running when the worker was killed: the kill's reason
        /// applies to it only. A worker may answer that chunk before SIGKILL lands and start the
        /// next one, which is then lost for no fault of its own.
        var killTarget: (job: JobID, index: Int)?
        /// Chunks sent over its life (for maxTasksPerChild).
        var assigned = 0
        var lastChunkDuration: Duration?
        /// When its process was spawned (its start deadline counts from here).
        var spawnedAt: MonotonicInstant?
        /// It asked to be replaced (its memory is above `maxMemoryPerChild`): it takes no new
        /// chunks, and its input closes once the ones it has are answered.
        var retiring = false

        /// Counts toward the pool's size: a retiring worker's replacement starts at once.
        var isActive: Bool { (phase == .spawning || phase == .running) && !retiring }
    }

    struct Job {
        /// Stop the job at its first failed chunk (map/apply); streams go on.
        let failFast: Bool
        /// More chunks may still be submitted (a lazily fed stream).
        var open: Bool
        var queued = 0
        var inFlight = 0
        var failed = false
        var cancelled = false
        /// Cancelled with `stopRunning`: its running chunks are killed, not left to finish.
        var stopRunning = false
        /// How its items that are dropped without running count: cancelled (its caller gave
        /// up, or it stopped at a failed item) or terminated (the pool was).
        var dropOutcome = ItemOutcome.cancelled

        /// One of its queued chunks went to a worker.
        mutating func startOne() {
            queued -= 1
            inFlight += 1
        }
    }

    enum Lifecycle: Equatable {
        case running
        case closed
        case terminated
        /// Workers could not be kept alive; every job failed with this.
        case broken(ChunkFailure)
    }

    /// What the owner of the state machine must do.
    enum Action {
        /// Start a worker process and report ``workerSpawned`` or ``workerSpawnFailed``.
        case spawn(WorkerID)
        /// Write the chunk's payload to the worker.
        case send(Chunk, to: WorkerID)
        /// Close the worker's task pipe: it finishes and exits.
        case closeInput(WorkerID)
        /// SIGKILL the worker; its exit arrives later as ``workerExited``.
        case kill(WorkerID, pid: Int32)
        /// Deliver the result of this chunk (the owner has the bytes) to the job.
        case deliver(job: JobID, index: Int)
        /// The chunk failed: tell the job.
        case failChunk(job: JobID, index: Int, ChunkFailure, worker: WorkerID?)
        /// The whole job failed (terminate, broken pool): tell the job.
        case failJob(JobID, ChunkFailure)
        /// No more events will come for this job.
        case finishJob(JobID)
        /// Every worker is gone after close/terminate: the pool's I/O can stop.
        case stopped
    }

    private(set) var configuration: Configuration
    private(set) var lifecycle: Lifecycle = .running
    private(set) var workers: [Worker] = []
    private(set) var queue: Deque<Chunk> = []
    private(set) var jobs = JobTable<Job>()
    private var nextWorkerID = 0
    private var consecutiveStartupFailures = 0
    private var consecutiveStartupKills = 0
    private var stopReported = false
    /// Items queued, running and ended, and workers ended early: see ``SchedulerCounters``.
    private(set) var counters = SchedulerCounters()
    /// Chunk wait and run times since the last ``takeTimings()``, when
    /// ``Configuration/recordsTimings``.
    private(set) var timings: [ChunkTiming] = []
    /// The time of the event being handled.
    private var now: MonotonicInstant = .now

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    // MARK: - Queries

    /// The pids of the workers that take tasks now.
    var activeWorkerPIDs: [Int32] {
        workers.filter { $0.phase == .running && !$0.retiring }.map(\.pid)
    }

    /// True once close/terminate has happened and every worker is gone.
    var isStopped: Bool { lifecycle != .running && workers.isEmpty }

    /// The earliest instant at which a running chunk times out, or a starting worker's start
    /// timeout expires.
    var nextDeadline: MonotonicInstant? {
        var earliest: MonotonicInstant?
        // By index: this runs on every event, and copying each worker (its queue) would show.
        for i in workers.indices where workers[i].headStartedAt != nil || !workers[i].ready {
            guard workers[i].phase == .running || workers[i].phase == .inputClosed,
                let deadline = deadline(ofWorkerAt: i) ?? startDeadline(ofWorkerAt: i)
            else { continue }
            if earliest == nil || deadline < earliest! { earliest = deadline }
        }
        return earliest
    }

    func worker(_ id: WorkerID) -> Worker? {
        workers.first { $0.id == id }
    }

    /// The workers by what they do now.
    var workerCensus: WorkerCensus {
        var census = WorkerCensus()
        for i in workers.indices {
            switch workers[i].phase {
            case .killed: census.stopping += 1
            case .spawning: census.starting += 1
            case .running, .inputClosed:
                if !workers[i].ready {
                    census.starting += 1
                } else if !workers[i].inFlight.isEmpty {
                    census.busy += 1
                } else if workers[i].phase == .inputClosed {
                    census.stopping += 1
                } else {
                    census.idle += 1
                }
            }
        }
        return census
    }

    /// The chunk timings recorded since the last call, which it clears.
    mutating func takeTimings() -> [ChunkTiming] {
        guard !timings.isEmpty else { return [] }
        let taken = timings
        timings = []
        return taken
    }

    // MARK: - Lifecycle events

    /// Starts the configured number of workers.
    mutating func start(now: MonotonicInstant) -> [Action] {
        self.now = now
        var actions: [Action] = []
        replenish(&actions)
        return actions
    }

    mutating func workerSpawned(_ id: WorkerID, pid: Int32, now: MonotonicInstant) -> [Action] {
        self.now = now
        guard let i = index(of: id) else { return [] }
        workers[i].pid = pid
        workers[i].spawnedAt = now
        var actions: [Action] = []
        switch workers[i].phase {
        case .spawning:
            workers[i].phase = .running
            dispatch(&actions)
            finishIfDrained(&actions)
        case .killed:
            // Dropped while it was being spawned (terminate, close): stop it now.
            actions.append(.kill(id, pid: pid))
        case .running, .inputClosed:
            break
        }
        return actions
    }

    mutating func workerSpawnFailed(_ id: WorkerID, detail: String, now: MonotonicInstant) -> [Action] {
        self.now = now
        guard let i = index(of: id) else { return [] }
        let worker = workers.remove(at: i)
        if case .killed = worker.phase {} else { counters.countRestart(.startFailed) }
        var actions: [Action] = []
        startupFailed(detail: detail, initializer: false, &actions)
        replenish(&actions)
        finishIfDrained(&actions)
        return actions
    }

    /// The worker finished its bootstrap and initializer.
    mutating func workerReady(_ id: WorkerID, now: MonotonicInstant) {
        self.now = now
        guard let i = index(of: id) else { return }
        workers[i].ready = true
        consecutiveStartupFailures = 0
        consecutiveStartupKills = 0
        if !workers[i].inFlight.isEmpty && workers[i].headStartedAt == nil {
            workers[i].headStartedAt = now
            recordWait(of: workers[i].inFlight[0])
        }
    }

    /// The worker process is gone (reaped). `initializerError` is what it said before dying, if
    /// it died before it was ready (its initializer threw); `lostDetail` what the owner knows of
    /// why it died (e.g. its memory limit), for the chunk it was running; `lastWords` the end of
    /// its stderr, which explains a death before it was ready.
    mutating func workerExited(
        _ id: WorkerID, termination: ProcessTermination, initializerError: String? = nil, lostDetail: String? = nil,
        lastWords: String = "", now: MonotonicInstant
    ) -> [Action] {
        self.now = now
        guard let i = index(of: id) else { return [] }
        let worker = workers.remove(at: i)
        countRestart(ofExited: worker)
        var actions: [Action] = []
        var inFlight = worker.inFlight
        let head = inFlight.popFirst()

        if case .killed(.startTimedOut(let limit)) = worker.phase {
            // Never ready: its chunks never started. It counts as a failed initializer.
            if let head { inFlight.prepend(head) }
            requeue(inFlight, &actions)
            inFlight = []
            let detail =
                "worker \(worker.pid) was not ready within its start timeout of \(limit) (the initializer, "
                + "or the program's code before Pool.bootstrap(serving:), did not finish) and was killed"
            startupFailed(detail: detail, initializer: true, &actions)
        } else if case .killed(let reason) = worker.phase {
            if let head, let target = worker.killTarget, target.job != head.job || target.index != head.index {
                // The chunk the kill was aimed at finished before SIGKILL landed, and this one
                // (queued behind it) had just started: it is not this chunk's fault, so it runs
                // again elsewhere rather than failing an unrelated call.
                inFlight.prepend(head)
            } else if let head {
                let failure: ChunkFailure?
                switch reason {
                case .timedOut(let limit): failure = .timedOut(pid: worker.pid, limit: limit)
                case .startTimedOut: failure = nil  // handled above
                case .cancelled: failure = nil
                case .terminated: failure = .terminated
                case .protocolError(let detail):
                    failure = .workerLost(pid: worker.pid, termination: termination, detail: detail)
                }
                chunkEnded(head, failure: failure, worker: id, &actions)
            }
        } else if !worker.ready && worker.phase != .inputClosed {
            // Died before it could run anything: its chunks never started.
            if let head { inFlight.prepend(head) }
            requeue(inFlight, &actions)
            inFlight = []
            let detail =
                initializerError ?? "worker \(worker.pid) \(termination) before it was ready"
                + (lostDetail.map { ": \($0)" } ?? "")
            if initializerError == nil && termination.isKill {
                startupKilled(detail: detail, &actions)
            } else if initializerError == nil {
                startupFailed(detail: detail + Self.notReadyCause(termination, lastWords), initializer: false, &actions)
            } else {
                startupFailed(detail: detail, initializer: true, &actions)
            }
        } else if let head {
            chunkEnded(
                head, failure: .workerLost(pid: worker.pid, termination: termination, detail: lostDetail), worker: id,
                &actions)
        }
        // Chunks queued behind the head never started: another worker runs them.
        requeue(inFlight, &actions)
        replenish(&actions)
        dispatch(&actions)
        finishIfDrained(&actions)
        return actions
    }

    /// A worker answered the chunk it was running. `failed` says whether any item failed;
    /// `answeredItems` is how many items the answer has (fewer than the chunk's when it stopped
    /// at a failed item; nil: all) and `failedItems` how many of them failed (nil: 1 if `failed`).
    /// Returns `deliver` when the result should reach the job.
    mutating func chunkCompleted(
        worker id: WorkerID, job: JobID, index chunkIndex: Int, failed: Bool, answeredItems: Int? = nil,
        failedItems: Int? = nil, now: MonotonicInstant
    ) -> [Action] {
        self.now = now
        // A deliver and a send at least, most times: room for them at once (growing the array
        // from one element cost ~670 instructions a chunk).
        var actions: [Action] = []
        actions.reserveCapacity(3)
        guard let i = index(of: id), let head = workers[i].inFlight.first, head.job == job, head.index == chunkIndex
        else {
            // A worker that answers something it was not running is broken.
            if let i = index(of: id) {
                kill(
                    at: i, reason: .protocolError("answered \(job) chunk \(chunkIndex), which it was not running"),
                    &actions)
            }
            return actions
        }
        takeAnsweredHead(at: i, failed: failed, answeredItems: answeredItems, failedItems: failedItems)

        // One hash of the job for the whole update (its record is reached by index after it).
        if let j = jobs.index(forKey: job) {
            var record = jobs[at: j]
            record.inFlight -= 1
            if !record.cancelled && !(record.failed && record.failFast) {
                actions.append(.deliver(job: job, index: chunkIndex))
                if failed && record.failFast {
                    record.failed = true
                    dropQueued(of: job, &record)
                }
            }
            if !record.open, record.queued == 0, record.inFlight == 0 {
                jobs.remove(at: j)
                actions.append(.finishJob(job))
            } else {
                jobs[at: j] = record
            }
        }
        // The next chunk on this worker belongs to a cancelled job: stop it now.
        if let next = workers[i].inFlight.first, jobs[next.job]?.stopRunning ?? false, workers[i].phase == .running {
            kill(at: i, reason: .cancelled, &actions)
        }
        retireIfSpent(at: i, &actions)
        replenish(&actions)
        dispatch(&actions)
        finishIfDrained(&actions)
        return actions
    }

    /// Ends the chunk at the head of worker `i`'s queue, which it answered: counts its items
    /// and its run time, and starts the clock of the chunk behind it.
    private mutating func takeAnsweredHead(at i: Int, failed: Bool, answeredItems: Int?, failedItems: Int?) {
        let head = workers[i].inFlight.removeFirst()
        let answered = min(max(answeredItems ?? head.items, 0), head.items)
        let failedCount = min(max(failedItems ?? (failed ? 1 : 0), 0), answered)
        counters.runningItems -= head.items
        counters.count(answered - failedCount, .succeeded)
        counters.count(failedCount, .failed)
        // The rest of a chunk that stopped at a failed item never ran.
        counters.count(head.items - answered, .cancelled)
        if let started = workers[i].headStartedAt {
            workers[i].lastChunkDuration = started.duration(to: now)
            if configuration.recordsTimings { timings.append(.ran(started.duration(to: now))) }
        }
        workers[i].headStartedAt = workers[i].inFlight.isEmpty ? nil : now
        if let next = workers[i].inFlight.first { recordWait(of: next) }
    }

    // MARK: - The lone call, at once

    /// ``submit(job:chunks:failFast:open:now:)`` for a job of one chunk, in the case that decides
    /// nothing else: the pool runs, nothing is queued and a worker is idle. The chunk starts on
    /// the first idle worker, as `submit` would start it, and no action list is made (the only
    /// action would be its `send`). Returns that worker; nil, with nothing changed, when `submit`
    /// must decide.
    mutating func startAtOnce(job: JobID, chunk: Chunk, failFast: Bool, now: MonotonicInstant) -> WorkerID? {
        guard lifecycle == .running, queue.isEmpty,
            let i = workers.indices.first(where: {
                workers[$0].inFlight.isEmpty && canTake(at: $0, prefetch: false) == .yes
            })
        else { return nil }
        self.now = now
        jobs[job] = Job(failFast: failFast, open: false, queued: 0, inFlight: 1)
        var chunk = chunk
        if configuration.recordsTimings { chunk.submittedAt = now }
        counters.runningItems += chunk.items
        workers[i].headStartedAt = workers[i].ready ? now : nil
        if workers[i].ready { recordWait(of: chunk) }
        workers[i].inFlight.append(chunk)
        workers[i].assigned += 1
        return workers[i].id
    }

    /// ``chunkCompleted(worker:job:index:failed:answeredItems:failedItems:now:)`` in the case
    /// whose only actions would be the job's `deliver` and `finishJob`: the worker's one chunk,
    /// all of a job nobody cancelled, nothing queued, every worker the pool wants running and
    /// this one not due to retire. Returns true when it took the result (the caller delivers it
    /// and finishes the job); false, with nothing changed, when `chunkCompleted` must decide.
    mutating func completeAtOnce(
        worker id: WorkerID, job: JobID, index chunkIndex: Int, failed: Bool, answeredItems: Int?,
        failedItems: Int?, now: MonotonicInstant
    ) -> Bool {
        guard lifecycle == .running, queue.isEmpty, let i = index(of: id), workers[i].phase == .running,
            !workers[i].retiring, workers[i].inFlight.count == 1, let head = workers[i].inFlight.first,
            head.job == job, head.index == chunkIndex, let j = jobs.index(forKey: job)
        else { return false }
        let record = jobs[at: j]
        guard !record.open, !record.cancelled, !record.failed, record.queued == 0, record.inFlight == 1 else {
            return false
        }
        if let max = configuration.maxTasksPerChild, workers[i].assigned >= max { return false }
        // No worker to start in its place (`replenish`).
        guard workers.reduce(0, { $0 + ($1.isActive ? 1 : 0) }) >= configuration.processes else { return false }
        self.now = now
        takeAnsweredHead(at: i, failed: failed, answeredItems: answeredItems, failedItems: failedItems)
        jobs.remove(at: j)
        return true
    }

    /// The worker broke the protocol (a corrupt frame): kill it; its running chunk fails.
    mutating func workerMisbehaved(_ id: WorkerID, detail: String, now: MonotonicInstant) -> [Action] {
        self.now = now
        guard let i = index(of: id) else { return [] }
        var actions: [Action] = []
        kill(at: i, reason: .protocolError(detail), &actions)
        replenish(&actions)
        return actions
    }

    /// The worker's resident memory is above `maxMemoryPerChild` after a task: it takes no new
    /// chunks, and is replaced once the chunks it has are answered (at once if it has none).
    /// Its worker reports this before the result of the chunk it measured after.
    mutating func workerOverMemory(_ id: WorkerID, now: MonotonicInstant) -> [Action] {
        self.now = now
        guard let i = index(of: id), workers[i].phase == .running else { return [] }
        var actions: [Action] = []
        workers[i].retiring = true
        retireIfSpent(at: i, &actions)
        replenish(&actions)
        dispatch(&actions)
        return actions
    }

    // MARK: - Jobs

    /// Adds a job and its first chunks. `open` means more chunks follow (``appendChunks``).
    /// The caller checks ``lifecycle`` first.
    mutating func submit(
        job: JobID, chunks: [Chunk], failFast: Bool, open: Bool = false, now: MonotonicInstant
    ) -> [Action] {
        self.now = now
        var actions: [Action] = []
        guard lifecycle == .running else {
            for chunk in chunks { counters.count(chunk.items, .terminated) }
            actions.append(.failJob(job, failureForStoppedPool))
            actions.append(.finishJob(job))
            return actions
        }
        jobs[job] = Job(failFast: failFast, open: open, queued: chunks.count)
        enqueue(chunks)
        dispatch(&actions)
        // A job with chunks cannot be done yet: they are queued or in flight.
        if chunks.isEmpty { finishJobIfDone(job, &actions) }
        return actions
    }

    /// Adds chunks to an open job; `open: false` says they are the last.
    mutating func appendChunks(job: JobID, _ chunks: [Chunk], open: Bool, now: MonotonicInstant) -> [Action] {
        self.now = now
        var actions: [Action] = []
        // A cancelled (or terminated) job stays closed, whatever a late feeder says.
        guard var record = jobs[job], !record.cancelled else {
            let outcome = jobs[job]?.dropOutcome ?? .cancelled
            for chunk in chunks { counters.count(chunk.items, outcome) }
            return actions
        }
        record.open = open
        if !(record.failed && record.failFast) {
            if case .broken(let failure) = lifecycle {
                for chunk in chunks {
                    counters.count(chunk.items, .terminated)
                    actions.append(.failChunk(job: job, index: chunk.index, failure, worker: nil))
                }
            } else if lifecycle == .terminated {
                for chunk in chunks {
                    counters.count(chunk.items, .terminated)
                    actions.append(.failChunk(job: job, index: chunk.index, .terminated, worker: nil))
                }
            } else {
                record.queued += chunks.count
                enqueue(chunks)
            }
        } else {
            for chunk in chunks { counters.count(chunk.items, .cancelled) }
        }
        jobs[job] = record
        replenish(&actions)
        dispatch(&actions)
        finishJobIfDone(job, &actions)
        finishIfDrained(&actions)
        return actions
    }

    /// The caller of this job gave up: drop its queued chunks and, with `stopRunning`, kill the
    /// workers running its chunks (a dropped stream lets them finish instead).
    mutating func cancel(job: JobID, stopRunning: Bool, now: MonotonicInstant) -> [Action] {
        self.now = now
        var actions: [Action] = []
        guard var record = jobs[job], !record.cancelled else { return actions }
        record.cancelled = true
        record.stopRunning = stopRunning
        record.open = false
        dropQueued(of: job, &record)
        jobs[job] = record
        if stopRunning {
            for i in workers.indices where workers[i].phase == .running && workers[i].inFlight.first?.job == job {
                kill(at: i, reason: .cancelled, &actions)
            }
        }
        finishJobIfDone(job, &actions)
        replenish(&actions)
        dispatch(&actions)
        finishIfDrained(&actions)
        return actions
    }

    // MARK: - Time

    /// Kills the workers whose running chunk is past its deadline, and those not ready within
    /// their start timeout.
    mutating func timeoutsExpired(now: MonotonicInstant) -> [Action] {
        self.now = now
        var actions: [Action] = []
        for i in workers.indices where workers[i].phase == .running || workers[i].phase == .inputClosed {
            if let deadline = startDeadline(ofWorkerAt: i), deadline <= now, let limit = configuration.startTimeout {
                kill(at: i, reason: .startTimedOut(limit: limit), &actions)
                continue
            }
            guard let deadline = deadline(ofWorkerAt: i), deadline <= now, let head = workers[i].inFlight.first
            else { continue }
            let limit = head.timeout ?? configuration.taskTimeout!
            kill(at: i, reason: .timedOut(limit: limit), &actions)
        }
        replenish(&actions)
        return actions
    }

    // MARK: - Pool lifecycle

    /// No new jobs; queued ones still run, then the workers exit.
    mutating func close() -> [Action] {
        var actions: [Action] = []
        guard lifecycle == .running else { return actions }
        lifecycle = .closed
        finishIfDrained(&actions)
        return actions
    }

    /// Kills every worker and fails every unfinished job with `.terminated`.
    mutating func terminate() -> [Action] {
        var actions: [Action] = []
        switch lifecycle {
        case .terminated: return actions
        case .broken: break
        case .running, .closed: lifecycle = .terminated
        }
        failAllJobs(.terminated, &actions)
        for i in workers.indices {
            switch workers[i].phase {
            case .killed: continue
            case .spawning:
                // Not started yet: nothing to kill; its spawn is answered with a kill.
                workers[i].phase = .killed(.terminated)
            default: kill(at: i, reason: .terminated, &actions)
            }
        }
        finishIfDrained(&actions)
        return actions
    }

    // MARK: - Internals

    private func index(of id: WorkerID) -> Int? {
        workers.firstIndex { $0.id == id }
    }

    /// Queues new chunks (stamped with their submission time when timings are kept).
    private mutating func enqueue(_ chunks: [Chunk]) {
        if configuration.recordsTimings {
            for var chunk in chunks {
                chunk.submittedAt = now
                counters.queuedItems += chunk.items
                queue.append(chunk)
            }
        } else {
            for chunk in chunks { counters.queuedItems += chunk.items }
            queue.append(contentsOf: chunks)
        }
    }

    /// Keeps how long `chunk`, which starts now, waited since it was queued.
    private mutating func recordWait(of chunk: Chunk) {
        guard configuration.recordsTimings, let submitted = chunk.submittedAt else { return }
        timings.append(.waited(submitted.duration(to: now)))
    }

    /// Counts the end of a worker that the pool did not ask to exit as a restart, by its cause.
    private mutating func countRestart(ofExited worker: Worker) {
        switch worker.phase {
        case .killed(.timedOut): counters.countRestart(.timedOut)
        case .killed(.startTimedOut): counters.countRestart(.startFailed)
        case .killed(.cancelled): counters.countRestart(.cancelled)
        case .killed(.protocolError): counters.countRestart(.crashed)
        case .killed(.terminated), .inputClosed: break
        case .spawning, .running: counters.countRestart(worker.ready ? .crashed : .startFailed)
        }
    }

    /// When a worker that is not ready yet must be: its spawn plus the start timeout.
    private func startDeadline(ofWorkerAt i: Int) -> MonotonicInstant? {
        guard !workers[i].ready, let spawnedAt = workers[i].spawnedAt, let limit = configuration.startTimeout
        else { return nil }
        return spawnedAt.advanced(by: limit)
    }

    private func deadline(ofWorkerAt i: Int) -> MonotonicInstant? {
        guard let started = workers[i].headStartedAt, let head = workers[i].inFlight.first,
            let limit = head.timeout ?? configuration.taskTimeout
        else { return nil }
        return started.advanced(by: limit)
    }

    /// A stream is still being fed: a closed pool keeps its workers for it.
    private var hasOpenJobs: Bool { jobs.values.contains { $0.open } }

    private var failureForStoppedPool: ChunkFailure {
        if case .broken(let failure) = lifecycle { return failure }
        return .terminated
    }

    private var needsWorkers: Bool {
        switch lifecycle {
        case .running: return true
        case .closed: return !queue.isEmpty || hasOpenJobs
        case .terminated, .broken: return false
        }
    }

    /// Starts workers until `processes` take tasks (when there is a reason to).
    private mutating func replenish(_ actions: inout [Action]) {
        guard needsWorkers else { return }
        var active = workers.reduce(0) { $0 + ($1.isActive ? 1 : 0) }
        while active < configuration.processes {
            let id = WorkerID(rawValue: nextWorkerID)
            nextWorkerID += 1
            workers.append(Worker(id: id))
            actions.append(.spawn(id))
            active += 1
        }
    }

    /// Whether a worker may get another chunk now.
    private enum Take {
        case no, yes
        /// Only a chunk that may queue deeper (``Chunk/queuesDeep``): see
        /// ``Configuration/deepQueue``.
        case ifQueuesDeep
    }

    /// Whether the worker at `i` may get another chunk now; `prefetch`: queued behind the ones it
    /// has (else only when it has none). By index, its fields read in place: a copy of the worker
    /// for a call costs a copy of each of its fields, for every worker at every dispatch.
    private func canTake(at i: Int, prefetch: Bool) -> Take {
        guard workers[i].phase == .running, !workers[i].retiring else { return .no }
        if let max = configuration.maxTasksPerChild, workers[i].assigned >= max { return .no }
        let inFlight = workers[i].inFlight.count
        if inFlight == 0 { return .yes }
        guard prefetch, let last = workers[i].lastChunkDuration, last < configuration.prefetchBelow else {
            return .no
        }
        if inFlight < configuration.maxInFlightPerWorker { return .yes }
        // Chunks that may queue deeper: about `budget` of them by the last chunk's time behind
        // the running one, that is `last × (inFlight - 1) < budget` (no division: this runs for
        // every worker at every dispatch), and only while the queue holds as many for every
        // worker: a job's last chunks go to whichever worker is free first, not deep behind one.
        let (budget, most) = configuration.deepQueue
        guard inFlight < most, last * (inFlight - 1) < budget, queue.count >= workers.count * inFlight else {
            return .no
        }
        return .ifQueuesDeep
    }

    /// Hands queued chunks to workers: idle workers first, then a second chunk to workers
    /// whose chunks are short.
    private mutating func dispatch(_ actions: inout [Action]) {
        guard !queue.isEmpty, lifecycle == .running || lifecycle == .closed else { return }
        for pass in 0..<2 {
            let prefetch = pass == 1
            var progress = true
            while progress && !queue.isEmpty {
                progress = false
                for i in workers.indices where !queue.isEmpty {
                    let take = canTake(at: i, prefetch: prefetch)
                    if take == .no || (!prefetch && !workers[i].inFlight.isEmpty) { continue }
                    // Moved out of the queue (no copy); put back if it may not go this deep.
                    let chunk = queue.removeFirst()
                    if take == .ifQueuesDeep && !chunk.queuesDeep {
                        queue.prepend(chunk)
                        continue
                    }
                    // One look-up, then the record by index, in place: this runs for every chunk.
                    if let j = jobs.index(forKey: chunk.job) { jobs[at: j].startOne() }
                    counters.queuedItems -= chunk.items
                    counters.runningItems += chunk.items
                    if workers[i].inFlight.isEmpty {
                        workers[i].headStartedAt = workers[i].ready ? now : nil
                        if workers[i].ready { recordWait(of: chunk) }
                    }
                    workers[i].inFlight.append(chunk)
                    workers[i].assigned += 1
                    actions.append(.send(chunk, to: workers[i].id))
                    progress = true
                }
            }
        }
    }

    private mutating func kill(at i: Int, reason: KillReason, _ actions: inout [Action]) {
        if let head = workers[i].inFlight.first { workers[i].killTarget = (head.job, head.index) }
        switch workers[i].phase {
        case .killed: return
        case .spawning:
            workers[i].phase = .killed(reason)
        case .running, .inputClosed:
            workers[i].phase = .killed(reason)
            actions.append(.kill(workers[i].id, pid: workers[i].pid))
        }
    }

    private mutating func retireIfSpent(at i: Int, _ actions: inout [Action]) {
        guard workers[i].phase == .running, workers[i].inFlight.isEmpty else { return }
        let spent = configuration.maxTasksPerChild.map { workers[i].assigned >= $0 } ?? false
        guard spent || workers[i].retiring else { return }
        counters.countRestart(workers[i].retiring ? .maxMemory : .maxTasks)
        workers[i].phase = .inputClosed
        actions.append(.closeInput(workers[i].id))
    }

    /// Ends one chunk that will not be answered: fails it (or drops it when its job was
    /// cancelled) and updates its job.
    private mutating func chunkEnded(
        _ chunk: Chunk, failure: ChunkFailure?, worker: WorkerID?, _ actions: inout [Action]
    ) {
        counters.runningItems -= chunk.items
        switch failure {
        case .workerLost?: counters.count(chunk.items, .workerLost)
        case .timedOut?: counters.count(chunk.items, .timedOut)
        case .terminated?, .startupFailed?: counters.count(chunk.items, .terminated)
        case nil: counters.count(chunk.items, .cancelled)
        }
        guard var record = jobs[chunk.job] else { return }
        record.inFlight -= 1
        if let failure, !record.cancelled, !(record.failed && record.failFast) {
            actions.append(.failChunk(job: chunk.job, index: chunk.index, failure, worker: worker))
            if record.failFast {
                record.failed = true
                dropQueued(of: chunk.job, &record)
            }
        }
        jobs[chunk.job] = record
        finishJobIfDone(chunk.job, &actions)
    }

    private mutating func requeue(_ chunks: Deque<Chunk>, _ actions: inout [Action]) {
        for chunk in chunks.reversed() {
            counters.runningItems -= chunk.items
            guard var record = jobs[chunk.job] else {
                counters.count(chunk.items, .cancelled)
                continue
            }
            record.inFlight -= 1
            if record.cancelled || (record.failed && record.failFast) {
                counters.count(chunk.items, record.dropOutcome)
                jobs[chunk.job] = record
                finishJobIfDone(chunk.job, &actions)
                continue
            }
            record.queued += 1
            jobs[chunk.job] = record
            counters.queuedItems += chunk.items
            queue.prepend(chunk)
        }
    }

    private mutating func dropQueued(of job: JobID, _ record: inout Job) {
        guard record.queued > 0 else { return }
        var items = 0
        queue.removeAll { chunk in
            guard chunk.job == job else { return false }
            items += chunk.items
            return true
        }
        counters.queuedItems -= items
        counters.count(items, record.dropOutcome)
        record.queued = 0
    }

    private mutating func finishJobIfDone(_ job: JobID, _ actions: inout [Action]) {
        guard let record = jobs[job], !record.open, record.queued == 0, record.inFlight == 0 else { return }
        jobs[job] = nil
        actions.append(.finishJob(job))
    }

    private mutating func failAllJobs(_ failure: ChunkFailure, _ actions: inout [Action]) {
        queue.removeAll()
        counters.count(counters.queuedItems, .terminated)
        counters.queuedItems = 0
        for (id, var record) in jobs {
            if !record.cancelled { actions.append(.failJob(id, failure)) }
            record.queued = 0
            record.cancelled = true
            record.dropOutcome = .terminated
            record.open = false
            jobs[id] = record
            // Chunks still on workers are accounted for when those workers exit.
            finishJobIfDone(id, &actions)
        }
    }

    /// What explains a worker that exited before it was ready: what it printed on stderr (a
    /// program that failed on its own, e.g. parsing its command line), and the missing
    /// `Pool.bootstrap` when that is the likely cause: it exited 0 (a program that ran to its end
    /// without serving) or with a status and not a word.
    static func notReadyCause(_ termination: ProcessTermination, _ lastWords: String) -> String {
        var cause = ""
        let silent = lastWords.isEmpty
        let withoutBootstrap: Bool
        switch termination {
        case .exited(let status): withoutBootstrap = status == 0 || silent
        case .signaled, .unknown: withoutBootstrap = false
        }
        if withoutBootstrap {
            cause += ". A worker executable must call Pool.bootstrap(serving:) first thing in main"
            if silent { cause += "; this one printed nothing on stderr" }
        }
        if !silent { cause += ". Its last words on stderr:\n\(lastWords)" }
        return cause
    }

    private mutating func startupFailed(detail: String, initializer: Bool, _ actions: inout [Action]) {
        consecutiveStartupFailures += 1
        guard consecutiveStartupFailures >= configuration.maxConsecutiveStartupFailures else { return }
        breakPool(.startupFailed(detail: detail, initializer: initializer), &actions)
    }

    /// A worker was killed by a SIGKILL the pool did not send before it was ready.
    private mutating func startupKilled(detail: String, _ actions: inout [Action]) {
        consecutiveStartupKills += 1
        guard consecutiveStartupKills >= configuration.maxConsecutiveStartupKills else { return }
        let detail =
            "\(consecutiveStartupKills) workers in a row were killed by a SIGKILL this pool did not send "
            + "(the out-of-memory killer?) before they were ready; the last: \(detail)"
        breakPool(.startupFailed(detail: detail, initializer: false), &actions)
    }

    private mutating func breakPool(_ failure: ChunkFailure, _ actions: inout [Action]) {
        switch lifecycle {
        case .terminated, .broken: return
        case .running, .closed: break
        }
        lifecycle = .broken(failure)
        failAllJobs(failure, &actions)
        for i in workers.indices {
            kill(at: i, reason: .terminated, &actions)
        }
    }

    /// After close (queue drained) or terminate: close the inputs of idle workers, and report
    /// `.stopped` once no worker is left.
    private mutating func finishIfDrained(_ actions: inout [Action]) {
        if lifecycle == .closed && queue.isEmpty && !hasOpenJobs {
            for i in workers.indices where workers[i].phase == .running && workers[i].inFlight.isEmpty {
                workers[i].phase = .inputClosed
                actions.append(.closeInput(workers[i].id))
            }
            // Workers not yet spawned are no longer needed.
            for i in workers.indices where workers[i].phase == .spawning {
                workers[i].phase = .killed(.terminated)
            }
        }
        if isStopped && !stopReported {
            stopReported = true
            actions.append(.stopped)
        }
    }
}

extension SchedulerStateMachine.Chunk: Sendable where Payload: Sendable {}
