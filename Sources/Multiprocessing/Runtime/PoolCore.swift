// The pool's storage: the scheduling state machine and the sinks of the jobs in flight, under one
// lock. Every event — a call, a result, a worker's start or death, a deadline — is one
// transition: under the lock the scheduler decides, and its actions become transport effects and
// sink events; both are performed after the lock is released (the transport writes, signals and
// closes; sinks deliver). Nothing under the lock makes a system call.

import DequeModule
import Logging
import Synchronization

final class PoolCore: Sendable {
    typealias Scheduler = SchedulerStateMachine<OutgoingFrame>

    struct Options: Sendable {
        var executable: String
        var arguments: [String]
        /// The first frame every worker gets (with the initializer's call, if any).
        var startFrame: [UInt8]
        var logger: Logger
        var processes: Int
        var maxTasksPerChild: Int?
        var taskTimeout: Duration?
        /// Resident bytes above which a worker is replaced after a task (the worker measures).
        var maxMemoryPerChild: Int?
        /// RLIMIT_DATA of every worker (the worker sets it on itself from the start frame).
        var workerMemoryLimit: Int?
        /// How long a worker may take to become ready.
        var startTimeout: Duration?
        /// The pool's swift-metrics; nil when no metrics system was bootstrapped.
        var metrics: PoolMetrics?
        /// Whether the runtime's crash reports reach the parent's stderr.
        var crashReports: Pool.Configuration.CrashReports = .forward
    }

    struct State {
        var scheduler: Scheduler
        var sinks = JobTable<SinkEntry>()
        /// The number of the next transport effect on each worker (see ``WorkerTransport``).
        var sequences = WorkerTable<UInt64>()
        /// What the last failed initializer threw: the `underlying` error of `.initializerFailed`.
        var initializerError: (any Error & Sendable)?
        var stopped = false
        /// What the metrics were last told (used only with metrics).
        var metricsLedger = MetricsLedger()
        /// Actions waiting for the jobs in flight when they were registered (``afterJobsInFlight``).
        var barriers: [JobBarrier] = []
        /// The transport stopped: every worker is gone, barriers run at once.
        var workersGone = false
    }

    /// An action to run once every job up to `newest` has finished.
    struct JobBarrier {
        let newest: JobID
        let action: @Sendable () -> Void
    }

    /// A job's sink, with the sequencer that keeps its events in order.
    struct SinkEntry {
        let sink: any JobSink
        /// Made with the job's first event that another thread's could overtake.
        private var sequencer: SinkSequencer?
        /// Events issued so far (under the lock): the next event's sequence number.
        private(set) var issued: UInt64 = 0
        /// Every event of the job is issued by one transition, which also finishes it (a lone
        /// call's result, or its failure): they run in order on that transition's thread, and
        /// no other thread can have or get one, so they need no sequencer.
        private var direct = false

        init(sink: any JobSink) {
            self.sink = sink
        }

        /// The next event. `finishing`: the transition issuing it also finishes the job.
        mutating func event(_ kind: SinkEvent.Kind, finishing: Bool) -> SinkEvent {
            defer { issued += 1 }
            if issued == 0 && finishing { direct = true }
            if !direct && sequencer == nil { sequencer = SinkSequencer() }
            return SinkEvent(sink: sink, sequencer: direct ? nil : sequencer, sequence: issued, kind: kind)
        }
    }

    /// A sink call to make once the lock is released.
    ///
    /// Events are issued under the lock but run after it is released, on whichever thread caused
    /// them (the I/O thread for results and deaths, a caller for terminate or cancel); the
    /// sequencer runs the events of one job in the order they were issued, whatever thread gets
    /// there first. (Without it, a job could see `finish` before the `failJob` of a terminate
    /// that happened earlier, or a stream its end before its last chunk.)
    struct SinkEvent {
        enum Kind {
            case deliver(index: Int, header: ResultHeader, items: ByteReader, pid: Int32)
            /// `deliver`, and the job's last event (its `finish` comes with it).
            case deliverLast(index: Int, header: ResultHeader, items: ByteReader, pid: Int32)
            case fail(index: Int, PoolError)
            case failJob(PoolError)
            case finish
        }
        let sink: any JobSink
        /// Nil: the event runs at once (see ``SinkEntry``).
        let sequencer: SinkSequencer?
        let sequence: UInt64
        let kind: Kind

        func run() {
            if let sequencer {
                sequencer.submit(self)
            } else {
                perform()
            }
        }

        func perform() {
            switch kind {
            case .deliver(let index, let header, let items, let pid):
                sink.deliver(index: index, header: header, items: items, workerPID: pid)
            case .deliverLast(let index, let header, let items, let pid):
                sink.deliverLast(index: index, header: header, items: items, workerPID: pid)
            case .fail(let index, let error): sink.fail(index: index, with: error)
            case .failJob(let error): sink.failJob(with: error)
            case .finish: sink.finish()
            }
        }
    }

    /// Context for performing actions: the result frame being delivered, the last words of a
    /// worker that just died.
    struct ActionContext {
        var result: (header: ResultHeader, items: ByteReader, pid: Int32)?
        var lastWords: [WorkerID: LastWords] = [:]
    }

    let options: Options
    let state: Mutex<State>
    /// Where workers live: processes on this machine.
    let transport: any WorkerTransport
    let stopped = Completion()
    /// Runs the callbacks of results, off the threads that read results.
    let callbacks: CallbackExecutor
    /// The memory of the pool's shared values (``Pool/share(_:)``); nil for a cluster's transport.
    let sharedSegment: SharedSegment?
    private let nextJob = Atomic<UInt64>(1)
    /// This core's number, unique in the process (from 1): what its sinks register under to take
    /// packed results straight from the rings (``DirectResults``), so that a sink left over from
    /// a core that is gone can never match a new one made at the same address.
    let serial = PoolCore.serials.wrappingAdd(1, ordering: .relaxed).oldValue
    private static let serials = Atomic<UInt64>(1)
    /// How many chunks' results went straight from a ring into their list (for the tests: per
    /// pool, so that tests running at the same time do not count each other's).
    let directChunks = Atomic<Int>(0)

    var logger: Logger { options.logger }

    /// - Parameter transport: Where the workers live; nil: processes on this machine.
    init(options: Options, transport: (any WorkerTransport)? = nil) throws {
        self.options = options
        let configuration = Scheduler.Configuration(
            processes: options.processes, maxTasksPerChild: options.maxTasksPerChild,
            taskTimeout: options.taskTimeout, startTimeout: options.startTimeout,
            recordsTimings: options.metrics != nil)
        self.state = Mutex(State(scheduler: Scheduler(configuration: configuration)))
        if let transport {
            self.transport = transport
            self.sharedSegment = nil
        } else {
            let segment: SharedSegment
            do {
                segment = try SharedSegment()
            } catch {
                throw PoolError(
                    .spawnFailed, "the pool could not create its shared memory file: \(error)", underlying: error)
            }
            var local = LocalTransport.Options(
                executable: options.executable, arguments: options.arguments, startFrame: options.startFrame,
                logger: options.logger, workerMemoryLimit: options.workerMemoryLimit,
                maxMemoryPerChild: options.maxMemoryPerChild, crashReports: options.crashReports)
            // fd 5 is the worker's own channel; the shared values' memory file is fd 6 of every worker.
            local.passedDescriptors = [segment.descriptor]
            self.transport = try LocalTransport(options: local)
            self.sharedSegment = segment
        }
        self.callbacks = CallbackExecutor(poolStopped: stopped)
        sharedSegment?.attach(to: self)
    }

    func makeJobID() -> JobID {
        JobID(rawValue: nextJob.wrappingAdd(1, ordering: .relaxed).oldValue)
    }

    // MARK: - Calls from users' threads

    /// Starts the I/O thread and the workers; returns once the first worker was spawned (the
    /// others start meanwhile).
    /// - Throws: `PoolError.spawnFailed` when a worker cannot be started.
    func start() throws(PoolError) {
        transition { $0.scheduler.start(now: .now) }
        do {
            try transport.start(events: self)
        } catch {
            terminate()
            throw error
        }
    }

    /// Waits for a one-chunk call's result on the worker's own channel, where the transport can.
    func waitDirect(worker id: WorkerID, deadline: MonotonicInstant?, until isDone: () -> Bool) {
        transport.waitDirect(worker: id, deadline: deadline, until: isDone)
    }

    /// Adds a job. The sink is registered before any result can arrive.
    /// - Returns: the worker the job's only chunk went to at once, if it is a one-chunk job that
    ///   did (its caller may then wait for the result on that worker's pipe: `waitDirect`).
    /// - Throws: `PoolError.notRunning` after close/terminate.
    @discardableResult
    func submit(
        job: JobID, chunks: [Scheduler.Chunk], failFast: Bool, open: Bool = false, sink: any JobSink,
        functionName: String
    ) throws(PoolError) -> WorkerID? {
        if chunks.count == 1 && !open,
            let sentTo = submitAtOnce(job: job, chunk: chunks[0], failFast: failFast, sink: sink)
        {
            return sentTo
        }
        let (accepted, sentTo) = transition { state -> ([Scheduler.Action], (Bool, WorkerID?)) in
            guard state.scheduler.lifecycle == .running else { return ([], (false, nil)) }
            state.sinks[job] = SinkEntry(sink: sink)
            let actions = state.scheduler.submit(job: job, chunks: chunks, failFast: failFast, open: open, now: .now)
            var sentTo: WorkerID?
            if chunks.count == 1 && !open {
                for case .send(let chunk, let worker) in actions where chunk.job == job { sentTo = worker }
            }
            return (actions, (true, sentTo))
        }
        guard accepted else { throw notRunningError(functionName: functionName) }
        return sentTo
    }

    /// A job of one chunk that an idle worker starts at once (the scheduler's `startAtOnce`): the
    /// transition without its lists (actions, effects, events), the chunk sent straight to the
    /// transport. Nil when the general transition must decide (nothing happened then).
    /// Not with metrics, whose ledger every transition keeps.
    private func submitAtOnce(job: JobID, chunk: Scheduler.Chunk, failFast: Bool, sink: any JobSink) -> WorkerID? {
        guard options.metrics == nil else { return nil }
        let limited = chunk.timeout != nil || options.taskTimeout != nil
        let started = state.withLock { state -> (worker: WorkerID, sequence: UInt64, wake: Bool)? in
            guard !state.stopped else { return nil }
            let deadlineBefore = limited ? state.scheduler.nextDeadline : nil
            guard let id = state.scheduler.startAtOnce(job: job, chunk: chunk, failFast: failFast, now: .now) else {
                return nil
            }
            state.sinks[job] = SinkEntry(sink: sink)
            // A spawned worker always has its sequence (set by its `spawn`).
            let sequence = state.sequences[id] ?? 0
            state.sequences[id] = sequence + 1
            // As `transition`: a deadline that came closer wakes the I/O thread to arm it.
            var wake = false
            if limited, let deadline = state.scheduler.nextDeadline {
                wake = deadlineBefore.map { deadline < $0 } ?? true
            }
            return (id, sequence, wake)
        }
        guard let started else { return nil }
        transport.send(chunk.payload, to: started.worker, sequence: started.sequence)
        if started.wake { transport.perform([.deadlineChanged]) }
        return started.worker
    }

    /// A result that ends its job, taken by the scheduler's `completeAtOnce`: the job's sink
    /// delivers and finishes in one event, run here, without the transition's lists. False
    /// when the general transition must decide (nothing happened then).
    func completeAtOnce(
        _ id: WorkerID, header: ResultHeader, items: ByteReader, pid: Int32, failedItems: Int
    )
        -> Bool
    {
        guard options.metrics == nil else { return false }
        let job = JobID(rawValue: header.job)
        let taken = state.withLock { state -> (sink: any JobSink, due: [JobBarrier])? in
            // Events issued before this one run through its sequencer: then the general path.
            guard let s = state.sinks.index(forKey: job), state.sinks[at: s].issued == 0,
                state.scheduler.completeAtOnce(
                    worker: id, job: job, index: Int(header.chunkIndex), failed: header.anyFailed,
                    answeredItems: header.itemCount, failedItems: failedItems, now: .now)
            else { return nil }
            let sink = state.sinks.remove(at: s).value.sink
            return (sink, dueBarriers(&state))
        }
        guard let taken else { return false }
        taken.sink.deliverLast(index: Int(header.chunkIndex), header: header, items: items, workerPID: pid)
        for barrier in taken.due { barrier.action() }
        return true
    }

    /// Adds chunks to an open job (a stream being fed).
    func append(job: JobID, chunks: [Scheduler.Chunk], open: Bool) {
        transition { $0.scheduler.appendChunks(job: job, chunks, open: open, now: .now) }
    }

    /// The job's caller gave up: drop what has not started, stop what runs (if `stopRunning`).
    func cancel(job: JobID, stopRunning: Bool) {
        transition { $0.scheduler.cancel(job: job, stopRunning: stopRunning, now: .now) }
    }

    func close() {
        transition { $0.scheduler.close() }
        // Streams still being fed read the rest of their input now, so that `join` can finish
        // (as CPython's `imap` does after `close`); their results wait for their consumers.
        let open = state.withLock { $0.sinks.values.map(\.sink) }
        for sink in open { sink.poolClosed() }
    }

    func terminate() {
        transition { $0.scheduler.terminate() }
    }

    /// Runs `action` once every job submitted until now has finished (at once when none is in
    /// flight, or every worker is gone): no task that could use what the action frees is still
    /// running or about to run. A job counts from when its sink is registered (`submit`): its
    /// caller holds its arguments until then.
    func afterJobsInFlight(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            guard !state.workersGone, let newest = state.sinks.keys.max(by: { $0.rawValue < $1.rawValue }) else {
                return true
            }
            state.barriers.append(JobBarrier(newest: newest, action: action))
            return false
        }
        if now { action() }
    }

    /// The barriers whose jobs have all finished, taken out of `state` (under the lock).
    private func dueBarriers(_ state: inout State) -> [JobBarrier] {
        guard !state.barriers.isEmpty else { return [] }
        let oldest = state.workersGone ? nil : state.sinks.keys.min(by: { $0.rawValue < $1.rawValue })
        guard let oldest else {
            defer { state.barriers.removeAll() }
            return state.barriers
        }
        var due: [JobBarrier] = []
        state.barriers.removeAll { barrier in
            guard barrier.newest.rawValue < oldest.rawValue else { return false }
            due.append(barrier)
            return true
        }
        return due
    }

    /// Every worker is gone: the barriers run now, and the shared values' memory file closes
    /// (no spawn needs it any more).
    func workersStopped() {
        let due = state.withLock { state -> [JobBarrier] in
            state.workersGone = true
            return dueBarriers(&state)
        }
        for barrier in due { barrier.action() }
        sharedSegment?.closeDescriptor()
    }

    var lifecycle: Scheduler.Lifecycle { state.withLock { $0.scheduler.lifecycle } }

    /// The workers' pids: once the first workers have all started (a new pool lists them all).
    var workerPIDs: [Int32] {
        transport.waitForInitialWorkers()
        return state.withLock { $0.scheduler.activeWorkerPIDs }
    }

    /// A snapshot of the workers and the tasks, taken under the lock in one go.
    var statistics: PoolStatistics {
        state.withLock { PoolStatistics(counters: $0.scheduler.counters, census: $0.scheduler.workerCensus) }
    }

    func notRunningError(functionName: String?) -> PoolError {
        switch lifecycle {
        case .broken(let failure):
            return state.withLock { $0.poolError(failure, functionName: functionName ?? "?", lastWords: nil) }
        case .terminated:
            return PoolError(.notRunning, "the pool was terminated; create a new pool", functionName: functionName)
        default:
            return PoolError(.notRunning, "the pool was closed; create a new pool", functionName: functionName)
        }
    }

    // MARK: - Transitions

    /// One transition: under the lock, `body` feeds an event to the scheduler and returns its
    /// actions, which become transport effects and sink events; both are performed after the
    /// lock is released, effects first (then the metrics, then the sink events).
    /// - Returns: what `body` returned besides the actions.
    @discardableResult
    func transition<T: Sendable>(
        _ context: ActionContext = ActionContext(), _ body: @Sendable (inout State) -> ([Scheduler.Action], T)
    ) -> T {
        let metrics = options.metrics
        let (effects, events, report, value, due) = state.withLock {
            state -> ([TransportEffect], [SinkEvent], MetricsReport?, T, [JobBarrier]) in
            let deadlineBefore = state.scheduler.nextDeadline
            let (actions, value) = body(&state)
            var effects: [TransportEffect] = []
            var events: [SinkEvent] = []
            translate(actions, &state, &effects, &events, context)
            // A task that started (or a timeout that came closer) on this thread: the I/O thread
            // may be asleep without a timer, or with a later one; wake it to arm the new deadline.
            if let deadline = state.scheduler.nextDeadline, deadlineBefore.map({ deadline < $0 }) ?? true,
                !state.stopped
            {
                effects.append(.deadlineChanged)
            }
            let report = metrics == nil ? nil : state.metricsLedger.report(&state.scheduler)
            return (effects, events, report, value, dueBarriers(&state))
        }
        if !effects.isEmpty { transport.perform(effects) }
        // Before the sink events: a caller woken by its result finds the metrics counted.
        if let metrics, let report, !report.isEmpty { metrics.record(report) }
        for event in events { event.run() }
        for barrier in due { barrier.action() }
        return value
    }

    /// A transition whose body returns only actions.
    func transition(_ context: ActionContext = ActionContext(), _ body: @Sendable (inout State) -> [Scheduler.Action]) {
        transition(context) { state in (body(&state), ()) }
    }

    /// Turns the scheduler's actions into transport effects (numbered per worker) and sink
    /// events. Pure bookkeeping: it runs under the lock.
    func translate(
        _ actions: [Scheduler.Action], _ state: inout State, _ effects: inout [TransportEffect],
        _ events: inout [SinkEvent], _ context: ActionContext
    ) {
        for (k, action) in actions.enumerated() {
            // A result's events come in twos (deliver, finish): one allocation for both.
            if events.isEmpty, actions.count > 1, action.isSinkEvent { events.reserveCapacity(actions.count) }
            // The scheduler finishes a job right after its last event: then no sequencer is needed.
            func finishing(_ job: JobID) -> Bool {
                guard k + 1 < actions.count, case .finishJob(job) = actions[k + 1] else { return false }
                return true
            }
            switch action {
            case .spawn(let id):
                state.sequences[id] = 0
                effects.append(.spawn(id))
            case .send(let chunk, let id):
                guard let sequence = state.sequences[id] else { continue }
                state.sequences[id] = sequence + 1
                effects.append(.send(chunk.payload, to: id, sequence: sequence))
            case .closeInput(let id):
                guard let sequence = state.sequences[id] else { continue }
                state.sequences[id] = sequence + 1
                effects.append(.closeInput(id, sequence: sequence))
            case .kill(let id, _):
                effects.append(.kill(id))
            case .deliver(let job, let index):
                // By index: one hash of the job, not two.
                guard let result = context.result, let s = state.sinks.index(forKey: job) else { continue }
                if finishing(job) {
                    // The job's last result: one event delivers and finishes (its `finishJob`,
                    // next, finds the entry gone).
                    var entry = state.sinks.remove(at: s).value
                    events.append(
                        entry.event(
                            .deliverLast(index: index, header: result.header, items: result.items, pid: result.pid),
                            finishing: true))
                    continue
                }
                events.append(
                    state.sinks[at: s].event(
                        .deliver(index: index, header: result.header, items: result.items, pid: result.pid),
                        finishing: false))
            case .failChunk(let job, let index, let failure, let worker):
                guard let entry = state.sinks[job] else { continue }
                let name = (entry.sink as? any NamedSink)?.functionName ?? "?"
                let lastWords = worker.flatMap { context.lastWords[$0] }
                let error = state.poolError(failure, functionName: name, lastWords: lastWords)
                events.append(state.sinks[job]!.event(.fail(index: index, error), finishing: finishing(job)))
            case .failJob(let job, let failure):
                guard let entry = state.sinks[job] else { continue }
                let name = (entry.sink as? any NamedSink)?.functionName ?? "?"
                events.append(
                    state.sinks[job]!.event(
                        .failJob(state.poolError(failure, functionName: name, lastWords: nil)),
                        finishing: finishing(job)))
            case .finishJob(let job):
                if var entry = state.sinks.removeValue(forKey: job) {
                    events.append(entry.event(.finish, finishing: true))
                }
            case .stopped:
                state.stopped = true
                effects.append(.stop)
            }
        }
    }
}

extension PoolCore.State {
    /// The error a caller sees for `failure`; an initializer's failure carries what the
    /// initializer threw as its `underlying` error.
    func poolError(_ failure: ChunkFailure, functionName: String, lastWords: LastWords?) -> PoolError {
        let error = failure.poolError(functionName: functionName, lastWords: lastWords)
        guard case .startupFailed(_, initializer: true) = failure else { return error }
        return PoolError(
            error.code, error.message, functionName: error.functionName, workerPID: error.workerPID,
            underlying: initializerError, crashFrames: error.crashFrames)
    }
}

/// A sink that knows the function its job runs (for error messages).
protocol NamedSink {
    var functionName: String { get }
}

extension SchedulerStateMachine.Action {
    /// Whether the action becomes a sink event (rather than a transport effect).
    var isSinkEvent: Bool {
        switch self {
        case .deliver, .failChunk, .failJob, .finishJob: true
        case .spawn, .send, .closeInput, .kill, .stopped: false
        }
    }
}
