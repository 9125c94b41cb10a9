// The local transport's I/O thread: spawns workers, reads their results (from their shared
// rings, when their doorbells ring) and stderr, notices their exit through a pidfd, writes what
// the task rings would not take at once, and tells the storage when a deadline is due. Everything it learns goes to the storage as `TransportEvents`.

import Logging
import Synchronization

/// The read side of every worker. Touched only under `LocalTransport.loopLock`, which is what
/// makes the `@unchecked Sendable` sound.
final class EventLoopState: @unchecked Sendable {
    /// One worker's read side.
    ///
    /// Ownership: each descriptor closes when its last holder lets go of it: `stderrFD` and
    /// `resultFD` (the worker's doorbell to this side) are the reader's alone, `pidFD` is shared
    /// with the task channel. Nil: gone (or, for `pidFD`, a kernel without pidfds). `shared` is
    /// unmapped once the reader, the task channel and any thread spinning on it have let go of it.
    struct Reader {
        var pid: Int32
        var pidFD: SharedDescriptor?
        var resultFD: SharedDescriptor?
        /// The worker's shared memory, whose result ring this side reads.
        var shared: SharedChannel
        var stderrFD: SharedDescriptor?
        /// Large payloads go into buffers made present ahead of time (see PreparedBuffers.swift).
        var accumulator = FrameAccumulator(preparedBuffers: .shared)
        var stderrTail = StderrTail()
        /// What of its stderr goes on to the parent's (all, or all but a crash report).
        var crashReportFilter = CrashReportFilter(suppressing: false)
        /// What its initializer threw (itself when its type is registered).
        var initializerError: (any Error & Sendable)?
        /// Set when the result pipe reached end of file: if the process has not exited by then,
        /// it is killed (it closed its channel but lives on).
        var exitDeadline: MonotonicInstant?
        /// It reported ready (its task ring may then be made present while idle:
        /// TaskRingPrefault.swift).
        var ready = false
    }

    // `@exclusivity(unchecked)`: every access is under `loopLock` already, and the run-time
    // check of each access (the thread's access set) cost ~60 instructions, three times in a
    // lone call's wait for its result (callgrind).
    @exclusivity(unchecked) var readers = WorkerTable<Reader>()
    /// The frames a read of results cut, lent to each read in turn (see `readResults`).
    @exclusivity(unchecked) var frames: [FrameAccumulator.Frame]? = []
    /// Where events go: set when the I/O thread starts, cleared when it ends (the storage owns
    /// the transport; this reference keeps the storage alive while the thread runs).
    var events: (any TransportEvents)?
    /// Workers' stderr on its way to the parent's stderr, never blocking this thread.
    var stderr = StderrForwarder(output: NonBlockingOutput.openStandardError())
    /// Whether the parent's stderr is in the epoll set (for writability).
    var watchingStderrOutput = false
    /// Whether a ready worker's task ring may not be all present yet (TaskRingPrefault.swift).
    var taskRingsToPrefault = false
}

extension LocalTransport {
    /// How long a thread waiting for its own result watches the ring without sleeping.
    static let directWaitSpin: Duration = .nanoseconds(directWaitSpinNanoseconds)
    /// How long it spins before it yields the core now and then (a yield is a system call).
    static var directWaitSpinWithoutYield: Duration { .nanoseconds(directWaitSpinWithoutYieldNanoseconds) }
    /// The two in nanoseconds, for the spins' own arithmetic (no `Duration` on every call).
    static let directWaitSpinNanoseconds: Int64 = 50_000
    static var directWaitSpinWithoutYieldNanoseconds: Int64 {
        Int64(spinWithoutYieldNanoseconds.load(ordering: .relaxed))
    }
    /// ``directWaitSpinWithoutYield``, read at start: see ``spinWithoutYield(setting:cpus:)``. A
    /// node agent sets it to zero for itself and its workers: on a cluster's node more threads
    /// spin than there are cores, and a spin that holds its core keeps out the thread it waits for
    /// (see NodeAgent.swift).
    static let spinWithoutYieldNanoseconds = Atomic<Int>(
        spinWithoutYield(setting: environmentValue(spinWithoutYieldVariable), cpus: availableCPUCount()))
    static let spinWithoutYieldVariable = "MULTIPROCESSING_SPIN_WITHOUT_YIELD_US"

    /// How long, in nanoseconds, a spin waits before it yields the core now and then: the
    /// microseconds of `MULTIPROCESSING_SPIN_WITHOUT_YIELD_US` (`setting`, 0–1000) when it is set,
    /// else 15 µs, or 0 in a process that may run on one CPU only (`cpus`, its affinity mask:
    /// `taskset -c 0`, a container's cpuset). There the thread a spin waits for can only run when
    /// the spinner gives up the core, so every spin before a yield is lost: 2000 `apply` round
    /// trips under `taskset -c 0` took 37.6–39.5 µs each with 15 µs, 6.0–8.4 µs with 0 (three
    /// alternating runs of `pool-workloads apply`). Workers inherit the mask, so they decide alike.
    static func spinWithoutYield(setting: String?, cpus: Int) -> Int {
        if let microseconds = setting.flatMap({ Int($0) }) { return max(0, min(microseconds, 1000)) * 1000 }
        return cpus > 1 ? 15_000 : 0
    }

    /// The time slice the pool's own threads ask for (the I/O thread and the spawner;
    /// `requestTimeSlice`): woken while the workers compute on every core, they run at once, so a
    /// worker's next task or result waits for no other worker's slice. Zero for the system's;
    /// `MULTIPROCESSING_SLICE_US` sets it (microseconds; the kernel keeps it within 100 µs–100 ms).
    static let ioSlice: Duration = .microseconds(
        environmentValue(ioSliceVariable).flatMap { Int($0) }.map { max(0, $0) } ?? 100)
    static let ioSliceVariable = "MULTIPROCESSING_SLICE_US"

    /// How long a worker may live after closing its result pipe before it is killed.
    static let exitGrace: Duration = .seconds(1)

    /// How long a stopping pool goes on passing workers' stderr to a parent's stderr that takes
    /// nothing, before it drops the rest (a reader that takes bytes keeps it going).
    static let stderrDrainGrace: Duration = .seconds(1)

    /// Starts the spawner and the I/O thread, and returns once the first of the workers asked
    /// for so far runs (or could not start: then this throws its error). The others start
    /// meanwhile; ``initialWorkers`` completes once they have.
    func start(events: any TransportEvents) throws(PoolError) {
        let firstSpawns = Completion()
        let initial = channels.withLock { $0.spawnsPending }
        if initial == 0 {
            _ = firstSpawns.complete(.success(()))
            _ = initialWorkers.complete(.success(()))
        }
        do {
            try startSpawner()
            try startDetachedThread(name: "multiprocessing") { [self] in
                runEventLoop(events: events, reportingFirstSpawns: firstSpawns, initialSpawns: initial)
            }
        } catch {
            throw PoolError(
                .spawnFailed, "the pool's I/O thread could not start: \(error)", underlying: error as? SystemError)
        }
        if let error = firstSpawns.wait(until: nil)?.error {
            throw error as? PoolError ?? PoolError(.spawnFailed, "\(error)")
        }
    }

    func waitForInitialWorkers() {
        _ = initialWorkers.wait(until: nil)
    }

    /// The storage's events, for code that runs under the loop lock.
    private var events: any TransportEvents { loop.events! }

    private func runEventLoop(
        events: any TransportEvents, reportingFirstSpawns firstSpawns: Completion, initialSpawns: Int
    ) {
        requestTimeSlice(LocalTransport.ioSlice)
        loopLock.withLock { _ in loop.events = events }
        let tokens = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: 64)
        defer { tokens.deallocate() }
        // Outcomes of the spawns asked for before the start still to come.
        var initialLeft = initialSpawns
        // Task rings to make present while idle (TaskRingPrefault.swift): whether some may be
        // left (set when a worker reports ready), and whether the last wait ran out (slices then
        // go on without waiting).
        var idle = false
        var sendsAtLastLook = -1

        turns: while true {
            // Everything but the wait happens under the loop lock: a thread waiting for its own
            // result may read a worker's pipe itself (see `waitDirect`), and the readers are
            // shared with it.
            let turn: (timeout: Int32, deadline: MonotonicInstant?)? = loopLock.withLock { _ in
                // One look at the shared state a turn.
                let (spawned, isStopped, spawnsPending) = channels.withLock { channels in
                    defer { channels.spawned.removeAll() }
                    return (channels.spawned, channels.stopped, channels.spawnsPending)
                }
                let deadline = events.nextDeadline
                if !spawned.isEmpty {
                    for outcome in spawned {
                        let error = register(outcome)
                        if initialLeft > 0 {
                            // The first outcome decides whether the pool starts; the others
                            // come to the scheduler like a replacement's.
                            if initialLeft == initialSpawns {
                                _ = firstSpawns.complete(error.map { .failure($0) } ?? .success(()))
                            }
                            initialLeft -= 1
                            if initialLeft == 0 { _ = initialWorkers.complete(.success(())) }
                        }
                    }
                    return (0, nil)
                }
                if isStopped && loop.readers.isEmpty && spawnsPending == 0 { return nil }

                var wakeAt = deadline
                var pollWithoutPidFD = false
                // In place: this runs at every turn of the loop.
                loop.readers.updateEach { _, reader in
                    if let exitDeadline = reader.exitDeadline {
                        wakeAt = wakeAt.map { min($0, exitDeadline) } ?? exitDeadline
                        if reader.pidFD == nil { pollWithoutPidFD = true }
                    }
                }
                var timeout: Int32 = -1
                if let wakeAt {
                    let remaining = MonotonicInstant.now.duration(to: wakeAt)
                    let ms = remaining <= .zero ? 0 : Int32(clamping: remaining.milliseconds + 1)
                    timeout = ms
                }
                if pollWithoutPidFD { timeout = timeout < 0 ? 20 : min(timeout, 20) }
                if loop.taskRingsToPrefault && !isStopped {
                    let wait = idle ? 0 : LocalTransport.idleDelayMilliseconds
                    timeout = timeout < 0 ? wait : min(timeout, wait)
                }
                return (timeout, deadline)
            }
            guard let turn else { break turns }

            let count: Int
            do {
                count = try poller.wait(into: tokens, timeoutMilliseconds: turn.timeout)
            } catch {
                logger.critical("the pool's event loop failed", metadata: ["error": "\(error)"])
                events.transportFailed(detail: "the pool's event loop failed: \(error)")
                count = 0
            }
            loopLock.withLock { _ in
                if loop.taskRingsToPrefault {
                    // Idle: the wait ran out, and no task went to a worker since the last look
                    // (a loop of `apply` makes no event here, its caller reading its results).
                    let sends = tasksSent.load(ordering: .relaxed)
                    idle = count == 0 && sends == sendsAtLastLook
                    sendsAtLastLook = sends
                    if idle { loop.taskRingsToPrefault = prefaultTaskRingSlice() }
                }
                for i in 0..<count {
                    let token = tokens[i]
                    if token == Poller.wakeToken {
                        poller.drainWakeups()
                        continue
                    }
                    let (id, kind) = EventToken.decode(token)
                    switch kind {
                    case 0: readResults(of: id)
                    case 1: readStderr(of: id)
                    case 2: workerExited(id)
                    default: flushStderr()
                    }
                }
                fireTimers(deadline: turn.deadline)
            }
        }
        // Every worker is gone: what they printed that the parent's stderr has not taken yet goes
        // on while it takes some; then the rest is dropped and counted.
        loopLock.withLock { _ in drainStderrAtStop() }
        // Release what is left.
        channels.withLock { channels in
            channels.loopEnded = true
            for id in channels.table.keys { removeChannel(id, &channels) }
            // Under the lock, like every `wake()`: no wake-up can write to a reused descriptor.
            poller.close()
        }
        // Every worker it started is reaped: the spawner may end (see WorkerSpawner.swift).
        wakeSpawner()
        logger.debug("pool stopped")
        loopLock.withLock { _ in loop.events = nil }
        events.transportStopped()
    }

    // MARK: - Spawning

    /// Registers a worker the spawner started (its pipes in the epoll set, its reader and task
    /// channel, its start frame on its way) and reports it; or reports that it could not start.
    /// Returns the failure, if any.
    private func register(_ outcome: SpawnOutcome) -> PoolError? {
        let id = outcome.id
        defer { channels.withLock { $0.spawnsPending -= 1 } }
        do {
            let worker = try outcome.result.get()
            // From here on each descriptor has its holders (reader, channel), and closes when
            // they let go of it: on the failure below, at once.
            let pid = worker.pid
            let pidFD = worker.pidFD
            do {
                try poller.register(
                    worker.resultFD.rawValue, token: EventToken.results(id), readable: true, writable: false)
                try poller.register(
                    worker.stderrFD.rawValue, token: EventToken.stderr(id), readable: true, writable: false)
                // The parent's stderr is full: this one waits like the others.
                if loop.stderr.paused { try poller.pause(worker.stderrFD.rawValue, token: EventToken.stderr(id)) }
                if let pidFD {
                    try poller.register(pidFD.rawValue, token: EventToken.exit(id), readable: true, writable: false)
                }
            } catch {
                // Closing them (below, as they are dropped) takes them out of the epoll set.
                killProcess(pid: pid, pidFD: pidFD?.rawValue ?? -1)
                _ = reap(pid)
                throw PoolError(
                    .spawnFailed, "cannot watch the worker started from '\(options.executable)': \(error)",
                    underlying: error)
            }
            loop.readers[id] = EventLoopState.Reader(
                pid: pid, pidFD: pidFD, resultFD: worker.resultFD, shared: worker.shared, stderrFD: worker.stderrFD,
                crashReportFilter: CrashReportFilter(suppressing: options.crashReports == .suppress))
            // Its start frame first, before anything the storage sends it.
            let doorbell = channels.withLock { channels in
                var channel = TaskChannel(pid: pid, pidFD: pidFD, input: worker.taskFD, shared: worker.shared)
                channel.outbox.append(OutgoingFrame(bytes: options.startFrame))
                channels.table[id] = channel
                return flush(id, &channels)
            }
            ring(doorbell)
            events.workerSpawned(id, pid: pid)
            logger.debug("worker started", metadata: ["pid": "\(pid)", "worker": "\(id)"])
            return nil
        } catch {
            let failure = error as? PoolError ?? PoolError(.spawnFailed, "\(error)")
            logger.error("worker could not be started", metadata: ["error": "\(failure.message)"])
            events.workerSpawnFailed(id, detail: failure.message)
            return failure
        }
    }

    // MARK: - Reading

    /// Reads what worker `id` put in its result ring, and acts on each frame. The doorbell first:
    /// its end of file means the worker is gone, and then what is in the ring is all there is.
    /// `fromDoorbell` (the I/O thread, which sleeps in epoll): the doorbell is emptied, and the
    /// consumer armed so that the worker rings it for its next result; a thread that spins on
    /// the ring itself reads without either (no system call).
    private func readResults(of id: WorkerID, fromDoorbell: Bool = true) {
        // One look-up, in place (`update`): a copy of the reader out of the table retains and
        // releases every reference it holds (~500 instructions a look-up, on every result).
        // The frames read, in the loop's own array (kept with its capacity, not made each time).
        var frames = loop.frames.take() ?? []
        defer {
            frames.removeAll(keepingCapacity: true)
            loop.frames = frames
        }
        var open = true
        var failure: String?
        // In place: a copy of the reader would make its staging buffer copy on write.
        let found = loop.readers.update(id) { reader -> Int32? in
            guard let fd = reader.resultFD?.rawValue else { return nil }
            let ring = reader.shared.results
            if fromDoorbell {
                open = drainDoorbell(fd)
                // Armed before the last look: a result published after it rings again.
                ring.armConsumer()
            }
            var source = RingSource(ring: ring, wake: .futex)
            // Packed results whole in the ring go straight into their lists, at a frame boundary
            // (see DirectResults.swift); the rest, from the first frame that does not, as before.
            if ring.mayHave(DirectResults.smallestFrame), !reader.accumulator.hasPartialFrame,
                let events = loop.events
            {
                let pool = events.directResultsSerial
                DirectResults.take(from: ring, target: { DirectResults.target(pool: pool, job: $0) }, into: &frames)
            }
            do {
                _ = try reader.accumulator.read(from: &source, into: &frames)
            } catch {
                failure = "sent a corrupt frame: \(error)"
            }
            return reader.pid
        }
        guard let found, let pid = found else { return }
        for frame in frames where failure == nil {
            failure = handle(frame, from: id, pid: pid)
        }
        // The worker rings this side for room in its task ring too: write what waits for it
        // (only when some outbox waits: most reads take no channel lock).
        if outboxesWaiting.load(ordering: .sequentiallyConsistent) > 0 {
            let doorbell = channels.withLock { channels in
                // In place (a copy of the channel would retain what it holds).
                channels.table.update(id, { !$0.outbox.isEmpty }) == true ? flush(id, &channels) : nil
            }
            ring(doorbell)
        }
        if let failure {
            guard loop.readers.update(id, { stopReadingResults(&$0) }) != nil else { return }
            logger.warning("worker broke the protocol", metadata: ["pid": "\(pid)", "detail": "\(failure)"])
            events.workerMisbehaved(id, detail: failure)
        } else if !open {
            loop.readers.update(id) { reader in
                stopReadingResults(&reader)
                reader.exitDeadline = .now + LocalTransport.exitGrace
            }
        }
    }

    /// Takes the result pipe out of the epoll set and lets go of it (it closes with the reader).
    private func stopReadingResults(_ reader: inout EventLoopState.Reader) {
        guard let resultFD = reader.resultFD else { return }
        poller.unregister(resultFD.rawValue)
        reader.resultFD = nil
    }

    // MARK: - Reading one's own result

    /// Waits a little for `isDone` by watching worker `id`'s result ring on this thread, and
    /// reading it as soon as bytes come, instead of being woken by the I/O thread after it read
    /// them: while this thread spins, the worker does not ring, and a round trip costs neither
    /// side a system call. A short task answers within a few microseconds; a thread that sleeps
    /// takes tens of microseconds to be woken and run on this machine.
    ///
    /// Returns when `isDone()` holds, or once the spin (``directWaitSpin``, or less before
    /// `deadline`) is over; the caller then waits the usual way for whatever is left (the I/O
    /// thread reads the result, and sees the worker's death, a kill or the pipe's end).
    func waitDirect(worker id: WorkerID, deadline: MonotonicInstant?, until isDone: () -> Bool) {
        guard !isDone() else { return }
        // Never wait for the loop lock here: the I/O thread holds it only briefly, and waiting
        // the usual way then costs nothing.
        guard let shared = loopLock.withLockIfAvailable({ _ in loop.readers.update(id) { $0.shared } }) ?? nil else {
            return
        }
        let ring = shared.results
        let notes = shared.parentCPUNotes
        // This thread holds the memory while it spins: it cannot be unmapped under it.
        withExtendedLifetime(shared) {
            // The worker, spinning for the next task, looks where this thread runs.
            notes.note()
            let start = MonotonicInstant.now
            var until = start.advanced(byNanoseconds: LocalTransport.directWaitSpinNanoseconds)
            if let deadline, deadline < until { until = deadline }
            let yieldAfter = start.advanced(byNanoseconds: LocalTransport.directWaitSpinWithoutYieldNanoseconds)
            ring.disarmConsumer()
            var turns = 0
            var sharedCPU = false
            defer { colocationCheck(shared: sharedCPU, since: start, notes: notes) }
            while true {
                if !ring.isEmpty {
                    let ours = loopLock.withLock { _ -> Bool in
                        guard loop.readers.update(id, { $0.shared === shared }) == true else { return false }
                        readResults(of: id, fromDoorbell: false)
                        return true
                    }
                    // Reading took time too: the spin ends on time whatever keeps coming.
                    if !ours || isDone() || MonotonicInstant.now >= until { break }
                    continue
                }
                turns &+= 1
                if turns & 63 == 0 {
                    let now = MonotonicInstant.now
                    if now >= until { break }
                    // A worker that shares this core (a fresh pool, a busy machine) must get to
                    // run: at once when it was last seen on this CPU (CPUNotes.swift).
                    if notes.otherSideSharesThisCPU {
                        sharedCPU = true
                        yieldProcessor()
                    } else if now >= yieldAfter {
                        yieldProcessor()
                    }
                }
            }
            // The I/O thread reads from here on: the worker rings it again, and what came
            // before the arm is read now.
            ring.armConsumer()
            if !ring.isEmpty {
                loopLock.withLock { _ in
                    if loop.readers.update(id, { $0.shared === shared }) == true {
                        readResults(of: id, fromDoorbell: false)
                    }
                }
            }
        }
    }

    /// Handles one frame from a worker; returns a description of a protocol violation.
    private func handle(_ frame: FrameAccumulator.Frame, from id: WorkerID, pid: Int32) -> String? {
        var body = frame.bodyReader
        switch FrameKind(rawValue: frame.kind) {
        case .ready:
            loop.readers.update(id) { $0.ready = true }
            loop.taskRingsToPrefault = true
            events.workerReady(id)
            logger.trace("worker ready", metadata: ["pid": "\(pid)"])
            return nil
        case .initializerFailed:
            do {
                let error = try ErrorRecord.read(from: &body, functionName: "initializer", workerPID: pid)
                loop.readers[id]?.initializerError = error
                logger.error("pool initializer failed", metadata: ["pid": "\(pid)", "error": "\(error)"])
                return nil
            } catch {
                return "sent an unreadable initializer error: \(error)"
            }
        case .overMemory:
            guard let resident = try? body.readUInt64() else { return "sent an unreadable memory report" }
            logger.info(
                "worker replaced: its resident memory is above maxMemoryPerChild",
                metadata: [
                    "pid": "\(pid)", "worker": "\(id)", "residentBytes": "\(resident)",
                    "maxMemoryPerChild": "\(options.maxMemoryPerChild ?? 0)",
                ])
            events.workerOverMemory(id)
            return nil
        case .result:
            var header: ResultHeader
            do {
                header = try ResultHeader.read(from: &body)
            } catch {
                return "sent an unreadable result header: \(error)"
            }
            header.deliveredDirectly = frame.deliveredDirectly
            events.chunkCompleted(id, header: header, items: body, pid: pid)
            return nil
        default:
            return "sent a frame of unknown kind \(frame.kind)"
        }
    }

    /// Reads what worker `id` printed on stderr: kept in its tail (to explain a death) and passed
    /// on to the parent's stderr. While the parent's stderr takes nothing and the buffer before
    /// it is full, workers' stderr is not read (they wait in their `write`), except at `exiting`:
    /// the last words of a worker that died are read whole.
    private func readStderr(of id: WorkerID, exiting: Bool = false) {
        guard var reader = loop.readers[id], let stderrFD = reader.stderrFD else { return }
        // An event from before the pause (or its one hang-up report): read it when resumed.
        if loop.stderr.paused && !exiting { return }
        defer { loop.readers[id] = reader }
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let outcome = buffer.withUnsafeMutableBytes { raw in
                (try? readNonBlocking(stderrFD.rawValue, into: raw.baseAddress!, count: raw.count)) ?? .endOfFile
            }
            switch outcome {
            case .wouldBlock:
                return
            case .endOfFile:
                // Closes once this copy of the reader replaces the table's (the defer above).
                poller.unregister(stderrFD.rawValue)
                reader.stderrFD = nil
                reader.crashReportFilter.finish { part in forwardingStderr { $0.forward(part, force: true) } }
                return
            case .bytes(let n):
                let change = buffer.withUnsafeBytes { raw in
                    let chunk = UnsafeRawBufferPointer(rebasing: raw[0..<n])
                    reader.stderrTail.append(chunk)
                    // A worker's stderr is the user's: pass it on unchanged (but for a crash report,
                    // if the configuration keeps those out).
                    return reader.crashReportFilter.pass(chunk) { part in
                        forwardingStderr { $0.forward(part, force: exiting) }
                    }
                }
                if change == .pause && !exiting { return }
            }
        }
    }

    /// The parent's stderr is writable: pass on what waits for it.
    private func flushStderr() {
        _ = forwardingStderr { $0.flush() }
    }

    /// Runs one step of the forwarder (with SIGPIPE blocked: a closed stderr must not kill the
    /// parent), then pauses or resumes reading workers' stderr and watches the parent's stderr
    /// as the step requires.
    private func forwardingStderr(_ step: (inout StderrForwarder) -> StderrForwarder.Change) -> StderrForwarder.Change {
        var change = StderrForwarder.Change.none
        withSIGPIPEBlocked {
            change = step(&loop.stderr)
            return loop.stderr.failed
        }
        switch change {
        case .none: break
        case .pause, .resume:
            let pause = change == .pause
            for (id, reader) in loop.readers {
                guard let stderrFD = reader.stderrFD?.rawValue else { continue }
                do {
                    if pause {
                        try poller.pause(stderrFD, token: EventToken.stderr(id))
                    } else {
                        try poller.modify(stderrFD, token: EventToken.stderr(id), readable: true, writable: false)
                    }
                } catch {
                    logger.error("cannot watch a worker's stderr", metadata: ["error": "\(error)"])
                }
            }
            if pause {
                logger.debug(
                    "the parent's stderr takes nothing: workers' stderr waits",
                    metadata: ["pendingBytes": "\(loop.stderr.pendingCount)"])
            }
        }
        watchStderrOutput(loop.stderr.wantsWritable)
        return change
    }

    private func watchStderrOutput(_ watch: Bool) {
        guard watch != loop.watchingStderrOutput, let output = loop.stderr.output else { return }
        do {
            if watch {
                try poller.register(output.fd, token: EventToken.stderrOutput, readable: false, writable: true)
            } else {
                poller.unregister(output.fd)
            }
            loop.watchingStderrOutput = watch
        } catch {
            logger.error("cannot watch the parent's stderr", metadata: ["error": "\(error)"])
        }
    }

    /// At the pool's end: goes on writing what workers printed while the parent's stderr takes
    /// some of it within ``stderrDrainGrace``; drops and logs the rest.
    private func drainStderrAtStop() {
        var lastProgress = MonotonicInstant.now
        while loop.stderr.pendingCount > 0, let output = loop.stderr.output, !loop.stderr.failed,
            MonotonicInstant.now.duration(to: lastProgress.advanced(by: LocalTransport.stderrDrainGrace)) > .zero
        {
            output.waitWritable(timeoutMilliseconds: 50)
            let before = loop.stderr.pendingCount
            flushStderr()
            if loop.stderr.pendingCount < before { lastProgress = .now }
        }
        watchStderrOutput(false)
        let dropped = loop.stderr.finish()
        if dropped > 0 {
            logger.warning(
                "dropped worker stderr the parent's stderr did not take",
                metadata: ["droppedBytes": "\(dropped)"])
        }
    }

    // MARK: - Exit

    /// The worker process exited (its pidfd is readable, or it was killed after closing its pipe).
    private func workerExited(_ id: WorkerID) {
        guard loop.readers[id] != nil else { return }
        // Whatever it wrote before dying still counts.
        readResults(of: id)
        readStderr(of: id, exiting: true)
        guard var reader = loop.readers.removeValue(forKey: id) else { return }
        // Out of the epoll set; they close as their holders let go of them (this copy, the
        // channel, a thread still polling them).
        stopReadingResults(&reader)
        if let stderrFD = reader.stderrFD { poller.unregister(stderrFD.rawValue) }
        if let pidFD = reader.pidFD { poller.unregister(pidFD.rawValue) }
        let lastWords = reader.stderrTail.lastWords()
        let detail = options.workerMemoryLimit.flatMap { limit in
            reportsAllocationFailure(lastWords.text)
                ? "it ran out of memory: the pool's workerMemoryLimit of \(limit) bytes (\(limit >> 20) MiB) "
                    + "stopped an allocation" : nil
        }
        let termination = channels.withLock { channels in
            // Reaped under the channel lock, where every kill is sent: no kill can reach a reused
            // pid (where there is no pidfd to send it through).
            let termination = reap(reader.pid)
            removeChannel(id, &channels)
            return termination
        }
        events.workerExited(
            id,
            exit: WorkerExit(
                pid: reader.pid, termination: termination, lastWords: lastWords,
                initializerError: reader.initializerError, detail: detail))
    }

    // MARK: - Timers

    /// Fires the task timeouts due by now (`deadline` is the earliest, as read at the top of this
    /// iteration: one that came closer since then woke the poller, and is seen in the next) and
    /// kills workers that outlived their exit grace.
    private func fireTimers(deadline: MonotonicInstant?) {
        let now = MonotonicInstant.now
        if let deadline, deadline <= now {
            // A result already in a ring counts before its chunk's deadline: one may have come
            // without its doorbell yet (a lone call's is deferred, rung for only if it is still
            // unread 20 µs later: ResultWriter.swift; held results are never under a deadline),
            // and a doorbell rung meanwhile is in the next wait.
            for id in loop.readers.keys { readResults(of: id, fromDoorbell: false) }
            events.deadlinesDue(now: now)
        }
        for (id, reader) in loop.readers {
            guard let deadline = reader.exitDeadline else { continue }
            if reader.pidFD == nil, hasExited(reader.pid) {
                workerExited(id)
            } else if deadline <= now {
                channels.withLock { _ in killProcess(pid: reader.pid, pidFD: reader.pidFD?.rawValue ?? -1) }
                if reader.pidFD == nil { workerExited(id) }
                loop.readers[id]?.exitDeadline = nil
            }
        }
    }
}
