// The local transport: worker processes on this machine, started with posix_spawn, reached
// through a shared-memory channel each (SharedChannel: a task ring written here, a result ring
// read by the I/O thread, see LocalTransport+EventLoop.swift), whose doorbells are a task pipe
// and a result pipe; a stderr pipe; noticed gone through a pidfd.
//
// Effects arrive after the storage released its lock, from any thread. What they touch here —
// the task rings, their outboxes, the pidfds that signals go through — is under the channel
// lock, never under the storage's: a copy that takes time, a `kill` or a `close` holds up no
// thread that submits work. A doorbell is rung after the channel lock is released: the write
// wakes the worker, which takes the waker microseconds, and the I/O thread, reading results,
// must not wait for it.

import DequeModule
import Dispatch
import Logging
import Synchronization

final class LocalTransport: WorkerTransport {
    struct Options: Sendable {
        var executable: String
        var arguments: [String]
        /// The first frame every worker gets (its initializer call, its limits).
        var startFrame: [UInt8]
        var logger: Logger
        var workerMemoryLimit: Int?
        var maxMemoryPerChild: Int?
        /// Whether the runtime's crash reports in workers' stderr reach the parent's stderr.
        var crashReports: Pool.Configuration.CrashReports = .forward
        /// Environment variables the workers do not inherit, by prefix (a node agent's MPI
        /// variables: a worker must not take itself for a rank).
        var droppedEnvironment: [String] = []
        /// Environment variables (`NAME=value`) the workers get besides this process's.
        var addedEnvironment: [String] = []
        /// Descriptors every worker gets as fds 6, 7, … (after its own channel, fd 5; -1 leaves
        /// a number closed). They stay their owner's, who keeps them open until the transport
        /// stopped (the pool's shared values' memory file, fd 6).
        var passedDescriptors: [Int32] = []
    }

    /// The parent's end of one worker's task stream (its ring and doorbell), what could not be
    /// written yet, and the worker's pidfd (signals go through it, so that none can reach a
    /// reused pid).
    ///
    /// Ownership: `input` is this channel's alone (nil once ``LocalTransport/closeInput(_:)``
    /// closed it); `pidFD` is shared with the worker's reader and a thread waiting for its own
    /// result, and closes when the last of them lets go; `shared`'s memory stays mapped while
    /// any of them holds it.
    struct TaskChannel {
        var pid: Int32
        var pidFD: SharedDescriptor?
        /// The write end of the task pipe, the worker's doorbell: rung after the channel lock is
        /// released, through ``SharedDescriptor/ifOpen(_:)`` (a `closeInput` meanwhile waits).
        var input: SharedDescriptor?
        /// The worker's shared memory: tasks go into its task ring, under the channel lock.
        var shared: SharedChannel
        var outbox: Deque<OutgoingFrame> = []
        /// Bytes of `outbox.first` (frame and attachments) already written.
        var written = 0
        var closeWhenFlushed = false
        /// The sequence number of the next effect to perform; effects that came early wait in
        /// `early` (see ``WorkerTransport``).
        var nextSequence: UInt64 = 0
        var early: [UInt64: Operation] = [:]
        /// Whether this channel is counted in ``LocalTransport/outboxesWaiting``.
        var countedWaiting = false
        /// How many bytes from the task ring's start this process's mapping has made present
        /// (see ``LocalTransport/makePresent(ahead:in:extent:)``).
        var presentExtent = 0
    }

    /// The smallest message before which the task ring's pages it may reach are made present in
    /// one call (see ``makePresent(ahead:in:extent:)``): a lone call's frame does not pay a
    /// system call.
    static let presentAheadMessage = 64 << 10

    /// A numbered effect on one worker's channel.
    enum Operation {
        case send(OutgoingFrame)
        case closeInput
    }

    struct Channels {
        var table = WorkerTable<TaskChannel>()
        /// Spawns the spawner must perform (WorkerSpawner.swift).
        var spawnQueue: [WorkerID] = []
        /// What the spawner started (or could not), for the I/O thread to register and report.
        var spawned: [SpawnOutcome] = []
        /// Spawns asked for and not registered by the I/O thread yet: the loop does not end
        /// while there are any (a worker started meanwhile must be seen exit and reaped).
        var spawnsPending = 0
        /// Every worker is gone after close/terminate: the loop ends once it has no reader left.
        var stopped = false
        /// The event loop has ended: the spawner ends too.
        var loopEnded = false
    }

    let options: Options
    let channels = Mutex(Channels())
    let poller: Poller
    /// The read side of every worker: touched by the I/O thread, and by a thread reading its own
    /// result (`waitDirect`), always under `loopLock`. Lock order: `loopLock`, then the storage's
    /// lock (events), then `channels`.
    let loop: EventLoopState
    let loopLock = Mutex(())
    /// How many channels keep frames their full task ring did not take (each counted before it
    /// marks itself waiting for room, uncounted once its outbox is empty): a worker's doorbell
    /// for room is worth a look at the channels only then, so that reading results does not
    /// take the channel lock at every read.
    let outboxesWaiting = Atomic<Int>(0)
    /// How many frames went to workers' channels: the I/O thread makes task rings present only
    /// while this stays as it was (TaskRingPrefault.swift).
    let tasksSent = Atomic<Int>(0)
    /// Lone calls whose worker shared the caller's CPU (Colocation.swift).
    let colocation = Mutex(Colocation())
    /// Whether `colocation` is not idle: a call that did not share its CPU looks at it only then.
    let colocationActive = Atomic<Bool>(false)
    /// Signalled once per spawn request, and when the event loop has ended (WorkerSpawner.swift).
    let spawnerWake = DispatchSemaphore(value: 0)
    /// Completed once the workers asked for before ``start(events:)`` were registered (or failed
    /// to start): what `workerPIDs` waits for, so that a new pool lists all its workers.
    let initialWorkers = Completion()

    var logger: Logger { options.logger }

    /// - Throws: ``PoolError/Code/spawnFailed`` with the ``SystemError`` as its `underlying`
    ///   error when the poller cannot be set up.
    init(options: Options) throws(PoolError) {
        self.options = options
        do {
            self.poller = try Poller()
        } catch {
            throw PoolError(.spawnFailed, "the pool could not set up its event loop: \(error)", underlying: error)
        }
        self.loop = EventLoopState()
    }

    // MARK: - Effects

    func perform(_ effects: [TransportEffect]) {
        var wake = false
        for effect in effects {
            switch effect {
            case .spawn(let id):
                channels.withLock { channels in
                    channels.spawnQueue.append(id)
                    channels.spawnsPending += 1
                }
                wakeSpawner()
            case .send(let frame, let id, let sequence):
                apply(.send(frame), to: id, sequence: sequence)
            case .closeInput(let id, let sequence):
                apply(.closeInput, to: id, sequence: sequence)
            case .kill(let id):
                kill(id)
            case .deadlineChanged:
                wake = true
            case .stop:
                channels.withLock { $0.stopped = true }
                wake = true
            }
        }
        if wake { wakeLoop() }
    }

    func send(_ frame: OutgoingFrame, to id: WorkerID, sequence: UInt64) {
        apply(.send(frame), to: id, sequence: sequence)
    }

    /// Rings a worker's task doorbell (after the channel lock was released), unless its task
    /// pipe was closed meanwhile. EPIPE: the worker is gone; its exit is handled through its pidfd.
    func ring(_ doorbell: SharedDescriptor?) {
        guard let doorbell else { return }
        _ = doorbell.ifOpen { fd in withSIGPIPEBlocked { !ringDoorbell(fd) } }
    }

    /// Wakes the I/O thread, unless it has ended. Under the channel lock, where the poller is
    /// closed: no wake-up can write to a reused descriptor.
    func wakeLoop() {
        channels.withLock { _ in poller.wake() }
    }

    /// Performs `operation` as the `sequence`th effect on worker `id`, or keeps it until the ones
    /// before it came; drops it when the worker is gone.
    private func apply(_ operation: Operation, to id: WorkerID, sequence: UInt64) {
        tasksSent.add(1, ordering: .relaxed)
        let doorbell = channels.withLock { channels in
            channels.table.update(id) { channel -> SharedDescriptor? in
                guard sequence == channel.nextSequence else {
                    channel.early[sequence] = operation
                    return nil
                }
                var next: Operation? = operation
                while let operation = next {
                    switch operation {
                    case .send(let frame): channel.outbox.append(frame)
                    case .closeInput: channel.closeWhenFlushed = true
                    }
                    channel.nextSequence += 1
                    next = channel.early.isEmpty ? nil : channel.early.removeValue(forKey: channel.nextSequence)
                }
                // Here, in place: a second look-up of the channel for the flush cost as much.
                return flush(&channel)
            } ?? nil
        }
        ring(doorbell)
    }

    /// SIGKILLs the worker through its pidfd (by pid where the kernel has no pidfd: the pid
    /// cannot have been reused, as the worker is reaped only under this same lock).
    private func kill(_ id: WorkerID) {
        channels.withLock { channels in
            guard let channel = channels.table[id] else { return }
            killProcess(pid: channel.pid, pidFD: channel.pidFD?.rawValue ?? -1)
            logger.debug("killed worker", metadata: ["pid": "\(channel.pid)", "worker": "\(id)"])
        }
    }

    // MARK: - Task streams (under the channel lock)

    /// Copies into the worker's task ring what it takes now. A full ring keeps the rest here:
    /// the worker, once it freed space, rings this side's doorbell (its result pipe), and the
    /// I/O thread flushes again. Closes the task pipe once everything before a `closeInput` is
    /// in the ring.
    /// - Returns: the worker's doorbell when it sleeps and was given something: the caller rings
    ///   it (``ring(_:)``) once it released the channel lock.
    func flush(_ id: WorkerID, _ channels: inout Channels) -> SharedDescriptor? {
        channels.table.update(id) { flush(&$0) } ?? nil
    }

    /// ``flush(_:_:)`` on the channel itself (in place: its outbox is not copied).
    private func flush(_ channel: inout TaskChannel) -> SharedDescriptor? {
        guard let input = channel.input else { return nil }
        defer { uncountIfEmpty(&channel) }
        let ring = channel.shared.tasks
        var wrote = false
        // A worker spinning for its next task looks where its producer runs (CPUNotes.swift).
        if !channel.outbox.isEmpty { channel.shared.parentCPUNotes.note() }
        while let frame = channel.outbox.first {
            if channel.written == 0 && frame.keepsWhole && !LocalTransport.takesWhole(frame.count, ring) {
                // Whole or not at all (see ``OutgoingFrame/keepsWhole``): waits for room as for
                // a full ring, the worker ringing once it freed its last chunk.
                if !channel.countedWaiting {
                    channel.countedWaiting = true
                    outboxesWaiting.add(1, ordering: .sequentiallyConsistent)
                }
                ring.markProducerWaiting()
                if LocalTransport.takesWhole(frame.count, ring) { continue }
                break
            }
            if channel.written == 0 && frame.count >= LocalTransport.presentAheadMessage {
                LocalTransport.makePresent(ahead: frame.count, in: ring, extent: &channel.presentExtent)
            }
            // Copying cannot fail: `withUnwritten` throws only what its body throws.
            let (n, requested) =
                (try? frame.withUnwritten(after: channel.written) { raw in
                    (ring.write(raw, message: frame.count - channel.written), raw.count)
                }) ?? (0, 0)
            if n > 0 { wrote = true }
            channel.written += n
            if n < requested {
                if n == 0 && !ring.positionsAreValid {
                    // The worker wrote over its ring's control block: it is broken. Killed, its
                    // calls fail as a lost worker's and it is replaced.
                    logger.error("a worker's task ring is corrupt: killing it", metadata: ["pid": "\(channel.pid)"])
                    killProcess(pid: channel.pid, pidFD: channel.pidFD?.rawValue ?? -1)
                    channel.outbox.removeAll()
                    channel.written = 0
                    break
                }
                // Counted before the mark: the worker's doorbell for room, rung once it sees the
                // mark, finds the count up.
                if !channel.countedWaiting {
                    channel.countedWaiting = true
                    outboxesWaiting.add(1, ordering: .sequentiallyConsistent)
                }
                ring.markProducerWaiting()
                // The worker may have freed space since: look once more, after the mark.
                if ring.hasFreeSpace { continue }
                break
            }
            if channel.written < frame.count { continue }
            channel.outbox.removeFirst()
            channel.written = 0
        }
        // Rung by the caller, after the lock, and before a `closeInput` here closes the pipe:
        // the worker reads what is in its ring before the end of file.
        let doorbell = wrote && ring.takeConsumerArmed() ? input : nil
        if channel.outbox.isEmpty && channel.closeWhenFlushed {
            if let doorbell { self.ring(doorbell) }
            closeInput(&channel)
            return nil
        }
        return doorbell
    }

    /// Before a large message goes into a task ring: makes the ring's pages it can reach present
    /// in this process's mapping, in one system call, rather than one page fault per page as the
    /// copy reaches them. The message goes at the producer's position or, starting over, at the
    /// ring's start (see SharedRing.swift): either way within the first `position + count`
    /// bytes. `extent` (the channel's ``TaskChannel/presentExtent``) is how far the ring's start
    /// is present already; only what lies beyond it is asked for. Pages the worker already made
    /// present (RingPrefault.swift) are only mapped: measured on the development VM, 2 MiB of
    /// such pages took 0.5–0.7 ms made present at once and 0.7–1.2 ms faulted in by the copy;
    /// pages never touched took 1.8–2.7 ms made present, 1.9–2.9 ms faulted in.
    static func makePresent(ahead count: Int, in ring: SharedRing, extent: inout Int) {
        let reach = min(ring.capacity, ring.producerOffset + count)
        guard reach > extent else { return }
        ring.makePresent(offset: extent, count: reach - extent)
        extent = reach
    }

    /// Whether a frame of `count` bytes that ``OutgoingFrame/keepsWhole`` may go into `ring` now:
    /// it fits there whole, in one piece; or it never will (larger than the ring, or a drained
    /// ring without such a piece), and then goes as any other; or the worker wrote over the
    /// ring's positions, which the write then finds (and kills the worker).
    static func takesWhole(_ count: Int, _ ring: SharedRing) -> Bool {
        count > ring.capacity || ring.fitsWhole(count) || ring.isDrained || !ring.positionsAreValid
    }

    /// Takes the channel out of ``outboxesWaiting`` once it has nothing left to write.
    private func uncountIfEmpty(_ channel: inout TaskChannel) {
        guard channel.countedWaiting, channel.outbox.isEmpty else { return }
        channel.countedWaiting = false
        outboxesWaiting.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Closes the worker's task pipe: once it has read what is in its ring, it reads end of
    /// file, finishes and exits. Closed explicitly, as copies of the channel may outlive this
    /// call: the worker must see the end now.
    func closeInput(_ channel: inout TaskChannel) {
        guard let input = channel.input else { return }
        input.close()
        channel.input = nil
        channel.outbox.removeAll()
        uncountIfEmpty(&channel)
    }

    /// Forgets a worker that is gone: closes its task pipe and lets go of its pidfd (closed
    /// when its other holders let go of it too).
    func removeChannel(_ id: WorkerID, _ channels: inout Channels) {
        guard var channel = channels.table.removeValue(forKey: id) else { return }
        closeInput(&channel)
    }
}

/// What a poller event is about.
enum EventToken {
    static func make(_ id: WorkerID, _ kind: UInt64) -> UInt64 { UInt64(id.rawValue) << 3 | kind }
    static func results(_ id: WorkerID) -> UInt64 { make(id, 0) }
    static func stderr(_ id: WorkerID) -> UInt64 { make(id, 1) }
    static func exit(_ id: WorkerID) -> UInt64 { make(id, 2) }
    /// The parent's stderr (one per pool, not per worker).
    static let stderrOutput: UInt64 = make(WorkerID(rawValue: 0), 4)

    static func decode(_ token: UInt64) -> (WorkerID, kind: UInt64) {
        (WorkerID(rawValue: Int(token >> 3)), token & 7)
    }
}
