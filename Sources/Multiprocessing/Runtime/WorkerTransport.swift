// The seam between deciding and moving: the pool's storage (`PoolCore`: the scheduler under a
// lock) decides what happens to workers and turns each decision into `TransportEffect`s; a
// `WorkerTransport` performs them — starts processes, moves frames, signals — after the lock is
// released, and reports what happens to workers back through `TransportEvents`.
//
// The local transport (`LocalTransport`: pipes, epoll, pidfds) is the one there is today; a
// transport that reaches workers on other machines implements the same two protocols.

/// What the storage asks of the transport, decided under its lock and performed after it.
enum TransportEffect {
    /// Start a worker process for `id`; its start is reported with
    /// ``TransportEvents/workerSpawned(_:pid:)`` or ``TransportEvents/workerSpawnFailed(_:detail:)``.
    case spawn(WorkerID)
    /// Write `frame` to the worker, as its `sequence`th operation (see ``WorkerTransport``).
    case send(OutgoingFrame, to: WorkerID, sequence: UInt64)
    /// Close the worker's input after everything sent before (its `sequence`th operation): it
    /// finishes and exits.
    case closeInput(WorkerID, sequence: UInt64)
    /// Kill the worker now (SIGKILL); its exit is reported as any other.
    case kill(WorkerID)
    /// A deadline came closer: the transport's loop must look at ``TransportEvents/nextDeadline``.
    case deadlineChanged
    /// Every worker is gone after close/terminate: the transport may stop once it has none left.
    case stop
}

/// Performs the storage's effects on worker processes.
///
/// Effects of one worker are numbered under the storage's lock (`sequence`, from 0 after the
/// worker was spawned) and performed in that order whatever thread performs them: two threads
/// that each made a decision may reach the transport in the other order.
protocol WorkerTransport: AnyObject, Sendable {
    /// Starts the transport's I/O, and returns once the first of the workers asked for so far
    /// (`.spawn` effects performed before) was started, or once they all were; events come back
    /// through `events`, which the transport keeps alive until it has stopped.
    /// - Throws: `PoolError.spawnFailed` when the I/O cannot start, or the first worker cannot.
    func start(events: any TransportEvents) throws(PoolError)

    /// Returns once every worker asked for before ``start(events:)`` was started or failed to
    /// start (at once for a transport whose `start` waits for them all).
    func waitForInitialWorkers()

    /// Performs `effects`, in order.
    func perform(_ effects: [TransportEffect])

    /// Performs one `send` effect (a lone call's, decided without an effect list). The default
    /// performs it as a list of one.
    func send(_ frame: OutgoingFrame, to id: WorkerID, sequence: UInt64)

    /// Waits for `isDone` by reading worker `id`'s results on the calling thread, where the
    /// transport can (a lone call that went straight to a worker); returns early when it cannot.
    func waitDirect(worker id: WorkerID, deadline: MonotonicInstant?, until isDone: () -> Bool)
}

extension WorkerTransport {
    func waitDirect(worker id: WorkerID, deadline: MonotonicInstant?, until isDone: () -> Bool) {}

    func waitForInitialWorkers() {}

    func send(_ frame: OutgoingFrame, to id: WorkerID, sequence: UInt64) {
        perform([.send(frame, to: id, sequence: sequence)])
    }
}

/// What happens to workers, reported by the transport to the storage.
protocol TransportEvents: AnyObject, Sendable {
    /// The worker's process runs (its start frame is on its way).
    func workerSpawned(_ id: WorkerID, pid: Int32)
    /// The worker's process could not be started.
    func workerSpawnFailed(_ id: WorkerID, detail: String)
    /// The worker finished its bootstrap and initializer.
    func workerReady(_ id: WorkerID)
    /// The worker's resident memory is above `maxMemoryPerChild` after a task.
    func workerOverMemory(_ id: WorkerID)
    /// The results of one chunk arrived (`items` is positioned at its first item).
    func chunkCompleted(_ id: WorkerID, header: ResultHeader, items: ByteReader, pid: Int32)
    /// The worker broke the protocol: it is to be killed.
    func workerMisbehaved(_ id: WorkerID, detail: String)
    /// The worker's process is gone and reaped.
    func workerExited(_ id: WorkerID, exit: WorkerExit)
    /// The earliest task or start deadline, at which ``deadlinesDue(now:)`` is to be called.
    var nextDeadline: MonotonicInstant? { get }
    /// The transport's clock reached ``nextDeadline``.
    func deadlinesDue(now: MonotonicInstant)
    /// The transport cannot go on (its event loop failed): the pool must terminate.
    func transportFailed(detail: String)
    /// The transport has stopped after ``TransportEffect/stop``: every worker is gone and reaped.
    func transportStopped()
    /// The number under which this pool's sinks take packed results straight from the rings
    /// (``DirectResults``): its core's ``PoolCore/serial``; 0, which no core has, for events that
    /// are no pool's (a node agent's relay).
    var directResultsSerial: UInt64 { get }
}

extension TransportEvents {
    var directResultsSerial: UInt64 { 0 }
}

/// How a worker ended, as the transport saw it.
struct WorkerExit: Sendable {
    var pid: Int32
    var termination: ProcessTermination
    /// What explains its death: the end of its stderr, and where it crashed.
    var lastWords: LastWords
    /// What its initializer threw, if it said so before dying: the error itself when its type
    /// is registered, else a ``RemoteError``.
    var initializerError: (any Error & Sendable)?
    /// What the transport knows of why it died (e.g. its memory limit).
    var detail: String?
}
