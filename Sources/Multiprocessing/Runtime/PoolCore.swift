// The pool's storage: the scheduling state machine under a lock, the write ends of the task
// pipes, and the sinks of the jobs in flight. It performs the state machine's actions; sinks are
// called only after the lock is released.

import DequeModule
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

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
    }

    /// The parent's end of one worker's task pipe, with what could not be written yet.
    struct TaskChannel {
        var pid: Int32
        var fd: Int32
        var outbox: Deque<OutgoingFrame> = []
        /// Bytes of `outbox.first` (frame and attachments) already written.
        var written = 0
        var watchingWritable = false
        var closeWhenFlushed = false
    }

    struct State {
        var scheduler: Scheduler
        var channels = WorkerTable<TaskChannel>()
        var sinks: [JobID: SinkEntry] = [:]
        /// Spawns the I/O thread must perform.
        var spawnQueue: [WorkerID] = []
        var stopped = false
    }

    /// A job's sink, with the sequencer that keeps its events in order.
    struct SinkEntry {
        let sink: any JobSink
        let sequencer = SinkSequencer()
        /// Events issued so far (under the lock): the next event's sequence number.
        var issued: UInt64 = 0

        mutating func event(_ kind: SinkEvent.Kind) -> SinkEvent {
            defer { issued += 1 }
            return SinkEvent(sink: sink, sequencer: sequencer, sequence: issued, kind: kind)
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
            case fail(index: Int, PoolError)
            case failJob(PoolError)
            case finish
        }
        let sink: any JobSink
        let sequencer: SinkSequencer
        let sequence: UInt64
        let kind: Kind

        func run() {
            sequencer.submit(self)
        }

        func perform() {
            switch kind {
            case .deliver(let index, let header, let items, let pid):
                sink.deliver(index: index, header: header, items: items, workerPID: pid)
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
    let poller: Poller
    let stopped = Completion()
    /// Runs the callbacks of results, off the threads that read results.
    let callbacks: CallbackExecutor
    private let nextJob = Atomic<UInt64>(1)
    /// The read side of the workers: touched by the I/O thread, and by a thread reading its own
    /// result (`waitDirect`), always under `loopLock`. Lock order: `loopLock`, then `state`.
    let loop: EventLoopState
    let loopLock = Mutex(())

    var logger: Logger { options.logger }

    init(options: Options) throws {
        self.options = options
        let configuration = Scheduler.Configuration(
            processes: options.processes, maxTasksPerChild: options.maxTasksPerChild,
            taskTimeout: options.taskTimeout, startTimeout: options.startTimeout)
        self.state = Mutex(State(scheduler: Scheduler(configuration: configuration)))
        self.poller = try Poller()
        self.loop = EventLoopState()
        self.callbacks = CallbackExecutor(poolStopped: stopped)
    }

    func makeJobID() -> JobID {
        JobID(rawValue: nextJob.wrappingAdd(1, ordering: .relaxed).oldValue)
    }

    // MARK: - Calls from users' threads

    /// Starts the I/O thread and the workers; returns once the first workers were spawned.
    /// - Throws: `PoolError.spawnFailed` when a worker cannot be started.
    func start() throws(PoolError) {
        transition { $0.scheduler.start(now: .now) }
        let firstSpawns = Completion()
        do {
            try startDetachedThread(name: "multiprocessing") { [self] in
                runEventLoop(reportingFirstSpawns: firstSpawns)
            }
        } catch {
            throw PoolError(.spawnFailed, "the pool's I/O thread could not start: \(error)")
        }
        if let error = firstSpawns.wait(until: nil)?.error {
            terminate()
            throw error as? PoolError ?? PoolError(.spawnFailed, "\(error)")
        }
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

    var lifecycle: Scheduler.Lifecycle { state.withLock { $0.scheduler.lifecycle } }

    var workerPIDs: [Int32] { state.withLock { $0.scheduler.activeWorkerPIDs } }

    func notRunningError(functionName: String?) -> PoolError {
        switch lifecycle {
        case .broken(let failure):
            return failure.poolError(functionName: functionName ?? "?", lastWords: nil)
        case .terminated:
            return PoolError(.notRunning, "the pool was terminated; create a new pool", functionName: functionName)
        default:
            return PoolError(.notRunning, "the pool was closed; create a new pool", functionName: functionName)
        }
    }

    // MARK: - Performing actions (under the lock)

    /// One transition: under the lock, `body` feeds an event to the scheduler and returns its
    /// actions, which are performed; the sink events they produce run after the lock is released.
    /// - Returns: what `body` returned besides the actions.
    @discardableResult
    func transition<T: Sendable>(
        _ context: ActionContext = ActionContext(), _ body: @Sendable (inout State) -> ([Scheduler.Action], T)
    ) -> T {
        let (events, value) = state.withLock { state -> ([SinkEvent], T) in
            let deadlineBefore = state.scheduler.nextDeadline
            let (actions, value) = body(&state)
            var events: [SinkEvent] = []
            perform(actions, &state, &events, context)
            // A task that started (or a timeout that came closer) on this thread: the I/O thread
            // may be asleep without a timer, or with a later one; wake it to arm the new deadline.
            if let deadline = state.scheduler.nextDeadline, deadlineBefore.map({ deadline < $0 }) ?? true,
                !state.stopped
            {
                poller.wake()
            }
            return (events, value)
        }
        for event in events { event.run() }
        return value
    }

    /// A transition whose body returns only actions.
    func transition(_ context: ActionContext = ActionContext(), _ body: @Sendable (inout State) -> [Scheduler.Action]) {
        transition(context) { state in (body(&state), ()) }
    }

    func perform(
        _ actions: [Scheduler.Action], _ state: inout State, _ events: inout [SinkEvent], _ context: ActionContext
    ) {
        var wake = false
        for action in actions {
            switch action {
            case .spawn(let id):
                state.spawnQueue.append(id)
                wake = true
            case .send(let chunk, let id):
                guard state.channels[id] != nil else { continue }
                state.channels[id]!.outbox.append(chunk.payload)
                flush(id, &state)
            case .closeInput(let id):
                guard state.channels[id] != nil else { continue }
                if state.channels[id]!.outbox.isEmpty {
                    closeTaskChannel(id, &state)
                } else {
                    state.channels[id]!.closeWhenFlushed = true
                }
            case .kill(let id, let pid):
                if pid > 0 {
                    Glibc.kill(pid, SIGKILL)
                    logger.debug("killed worker", metadata: ["pid": "\(pid)", "worker": "\(id)"])
                }
            case .deliver(let job, let index):
                guard state.sinks[job] != nil, let result = context.result else { continue }
                events.append(
                    state.sinks[job]!.event(
                        .deliver(index: index, header: result.header, items: result.items, pid: result.pid)))
            case .failChunk(let job, let index, let failure, let worker):
                guard let entry = state.sinks[job] else { continue }
                let name = (entry.sink as? any NamedSink)?.functionName ?? "?"
                let lastWords = worker.flatMap { context.lastWords[$0] }
                let error = failure.poolError(functionName: name, lastWords: lastWords)
                events.append(state.sinks[job]!.event(.fail(index: index, error)))
            case .failJob(let job, let failure):
                guard let entry = state.sinks[job] else { continue }
                let name = (entry.sink as? any NamedSink)?.functionName ?? "?"
                events.append(state.sinks[job]!.event(.failJob(failure.poolError(functionName: name, lastWords: nil))))
            case .finishJob(let job):
                if var entry = state.sinks.removeValue(forKey: job) { events.append(entry.event(.finish)) }
            case .stopped:
                state.stopped = true
                wake = true
            }
        }
        if wake { poller.wake() }
    }

    /// Writes what the worker's pipe takes now; watches for writability if something is left.
    func flush(_ id: WorkerID, _ state: inout State) {
        guard var channel = state.channels[id], channel.fd >= 0 else { return }
        defer { state.channels[id] = channel }
        withSIGPIPEBlocked {
            while let frame = channel.outbox.first {
                let (n, requested): (Int, Int)
                do {
                    (n, requested) = try frame.withUnwritten(after: channel.written) { raw in
                        (try writeNonBlocking(channel.fd, raw), raw.count)
                    }
                } catch {
                    // EPIPE: the worker is gone; its exit is handled through its pidfd.
                    channel.outbox.removeAll()
                    channel.written = 0
                    return true
                }
                channel.written += n
                // The pipe is full: the rest when it is writable again.
                if n < requested { return false }
                if channel.written < frame.count { continue }
                channel.outbox.removeFirst()
                channel.written = 0
            }
            return false
        }
        let wantsWritable = !channel.outbox.isEmpty
        if wantsWritable != channel.watchingWritable {
            do {
                if wantsWritable {
                    try poller.register(channel.fd, token: EventToken.taskWritable(id), readable: false, writable: true)
                } else {
                    poller.unregister(channel.fd)
                }
                channel.watchingWritable = wantsWritable
            } catch {
                logger.error("cannot watch a worker's task pipe", metadata: ["error": "\(error)"])
            }
        }
        if channel.outbox.isEmpty && channel.closeWhenFlushed {
            state.channels[id] = channel
            closeTaskChannel(id, &state)
            channel = state.channels[id] ?? channel
        }
    }

    func closeTaskChannel(_ id: WorkerID, _ state: inout State) {
        guard var channel = state.channels[id], channel.fd >= 0 else { return }
        if channel.watchingWritable { poller.unregister(channel.fd) }
        closeDescriptor(channel.fd)
        channel.fd = -1
        channel.watchingWritable = false
        channel.outbox.removeAll()
        state.channels[id] = channel
    }
}

/// A sink that knows the function its job runs (for error messages).
protocol NamedSink {
    var functionName: String { get }
}

/// What an epoll event is about.
enum EventToken {
    static func make(_ id: WorkerID, _ kind: UInt64) -> UInt64 { UInt64(id.rawValue) << 3 | kind }
    static func results(_ id: WorkerID) -> UInt64 { make(id, 0) }
    static func stderr(_ id: WorkerID) -> UInt64 { make(id, 1) }
    static func exit(_ id: WorkerID) -> UInt64 { make(id, 2) }
    static func taskWritable(_ id: WorkerID) -> UInt64 { make(id, 3) }
    /// The parent's stderr (one per pool, not per worker).
    static let stderrOutput: UInt64 = make(WorkerID(rawValue: 0), 4)

    static func decode(_ token: UInt64) -> (WorkerID, kind: UInt64) {
        (WorkerID(rawValue: Int(token >> 3)), token & 7)
    }
}
