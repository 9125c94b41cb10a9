// The worker's side of the result stream: frames (and their attachments, each from where it is)
// into its shared ring, ringing the parent's doorbell only when the parent sleeps, and sleeping on
// a futex while the ring is full.
//
// The result of a lone call is usually read by the caller's own thread, spinning on the ring
// (LocalTransport.waitDirect), which may start spinning a few microseconds after the worker
// answered. Ringing at once would then wake the parent's I/O thread for nothing, a third thread
// on two cores. So the doorbell for such a result is deferred: the worker, spinning for its next
// task anyway, rings only if the result is still unread after ``deferredDoorbellDelay`` (or when it
// stops spinning), and then only if the parent is armed.
//
// The result of a chunk no one sees before its whole job is in (a `map` of several chunks,
// ``TaskHeader/resultMayWait``) is held: while the worker takes more such chunks of the same job
// with more queued behind them, its doorbell waits until the worker takes the last of them, or
// another job's, or one whose result is wanted, or ``heldDoorbellDelay`` has passed, or the
// worker is about to sleep; one doorbell then tells the parent of every result since. (A failed
// result is never held: WorkerLoop rings for it at once.) A parent
// woken for each result of a `starmap` of 64 chunks of ~170 µs spent 2 ms of CPU a round (~56
// wake-ups, ~30 µs each on this VM), taken from the two workers on two cores; held, ~13 wake-ups
// and 1.2 ms (the scheduler queues such chunks deeper for it: `Configuration.deepQueue`).

/// Writes the worker's frames into its result ring (see SharedRing.swift). One per worker,
/// used on its one thread.
final class ResultWriter: @unchecked Sendable {
    let ring: SharedRing
    /// The parent's doorbell: the worker's end of the result pipe (its end of file tells the
    /// parent this process is gone).
    let doorbell: Int32
    /// The channel whose memory `ring` views: kept mapped while this writer lives.
    private let channel: SharedChannel?
    /// How long one sleep on a full ring lasts at most.
    private let fullRingSleep: Int32
    /// When a deferred doorbell is due (nil: none pending).
    private var doorbellDue: MonotonicInstant?
    /// When a held doorbell is due, in ``MonotonicInstant/nanoseconds`` (nil: none pending).
    private var heldDue: Int64?
    /// The job of the held results pending (while `heldDue` is set): they wait only behind
    /// chunks of the same job, whose end the job's caller waits for anyway.
    private var heldJob: UInt64 = 0
    /// How long a held result may wait at most, in nanoseconds.
    private let heldDelayNanoseconds: Int64
    /// How many sleeps on a full ring ran out without a wake-up (the parent, reading, wakes
    /// this side at once: only a parent that stops reading lets one run out).
    private(set) var fullRingTimeouts = 0
    /// Results sent with a held doorbell, and the doorbells rung for them (see the file's
    /// header): the first above the second is what holding saved the parent.
    private(set) var heldCounts = (results: 0, rung: 0)

    /// How long one sleep on a full ring lasts before the worker looks again (a parent that
    /// reads wakes it at once).
    static let fullRingSleepMilliseconds: Int32 = 100
    /// How long a lone call's result may wait unread before its doorbell rings.
    static let deferredDoorbellDelay: Duration = .nanoseconds(deferredDoorbellDelayNanoseconds)
    /// The same in nanoseconds (no `Duration` arithmetic per result).
    static let deferredDoorbellDelayNanoseconds: Int64 = 20_000
    /// How long a held result (see the file's header) may wait unread, at most, when the worker
    /// takes its next chunk. (A chunk that runs longer delays the results held before it; the
    /// scheduler queues deeper only behind chunks shorter than its budget.)
    static let heldDoorbellDelay: Duration = .milliseconds(1)

    /// When the doorbell for a frame rings.
    enum Doorbell: Equatable {
        /// At once, if the parent sleeps.
        case now
        /// A lone call's result: once the worker has spun a while or stops (see the file's header).
        case deferred
        /// A result that may wait for the later ones of its job (see the file's header).
        case held(job: UInt64)
    }

    /// - Parameters:
    ///   - ring: The ring written, a view of `channel`'s memory (nil: the caller keeps it mapped).
    ///   - fullRingSleep: How long one sleep on a full ring lasts at most, in milliseconds.
    ///   - heldDoorbellDelay: How long a held result may wait at most (``heldDoorbellDelay``;
    ///     tests set their own).
    init(
        ring: SharedRing, doorbell: Int32, channel: SharedChannel? = nil,
        fullRingSleep: Int32 = ResultWriter.fullRingSleepMilliseconds,
        heldDoorbellDelay: Duration = ResultWriter.heldDoorbellDelay
    ) {
        self.ring = ring
        self.doorbell = doorbell
        self.channel = channel
        self.fullRingSleep = fullRingSleep
        self.heldDelayNanoseconds = Int64(heldDoorbellDelay.saturatingNanoseconds)
    }

    /// Sends a frame, then its attachments, from where they are, ringing the parent's doorbell
    /// as `doorbell` says (see the file's header); for one not rung at once, the caller then calls
    /// ``settleDoorbell(final:)`` while it spins and before it sleeps, and
    /// ``settleDoorbell(takingNext:)`` as it takes its next task.
    func send(_ frame: OutgoingFrame, doorbell: Doorbell = .now) {
        // The whole message (the frame's `count` adds up its attachments).
        var left = frame.attachments.isEmpty ? frame.bytes.count : frame.count
        // A message larger than the ring goes through it only as the parent reads: it is woken
        // as the first bytes are written, as it would be for any message, so that the two copy at
        // once rather than in turns, each waiting for the other to fill or drain the ring.
        let deferring = doorbell != .now && left <= ring.capacity
        frame.bytes.withUnsafeBytes { send($0, deferringDoorbell: deferring, message: left) }
        left -= frame.bytes.count
        for attachment in frame.attachments {
            // The closure cannot throw: it only copies.
            try? attachment.withBytes { send($0, deferringDoorbell: deferring, message: left) }
            left -= attachment.count
        }
        postpone(doorbell)
    }

    /// Notes when a doorbell not rung at once is due.
    private func postpone(_ doorbell: Doorbell) {
        switch doorbell {
        case .now:
            break
        case .deferred:
            guard doorbellDue == nil else { return }
            doorbellDue = MonotonicInstant.now.advanced(byNanoseconds: ResultWriter.deferredDoorbellDelayNanoseconds)
        case .held(let job):
            heldCounts.results &+= 1
            if heldDue != nil && heldJob == job { return }
            // Another job's held results pending (the worker rings for them before it takes
            // another job's task, so only a caller that skips that does this): ring for them now.
            if heldDue != nil { settle(deferred: false, held: true) }
            heldJob = job
            heldDue = MonotonicInstant.now.nanoseconds &+ heldDelayNanoseconds
        }
    }

    /// Sends `bytes`, waiting for space as long as the ring is full.
    /// - Parameter message: The bytes of the message still to send, these included (see
    ///   ``SharedRing/write(_:message:)``); 0 when these are all of it.
    func send(_ bytes: UnsafeRawBufferPointer, deferringDoorbell: Bool = false, message: Int = 0) {
        var done = 0
        while done < bytes.count {
            let n = ring.write(UnsafeRawBufferPointer(rebasing: bytes[done...]), message: message - done)
            if n > 0 {
                done += n
                // The parent sleeps: wake it (once; it re-arms when it sleeps again).
                if !deferringDoorbell { ringIfArmed() }
                continue
            }
            // Full: the parent must be awake to make room.
            ringIfArmed()
            ring.markProducerWaiting()
            if ring.hasFreeSpace { continue }
            if !ring.sleepUntilSpace(timeoutMilliseconds: fullRingSleep) { fullRingTimeouts += 1 }
        }
    }

    /// Room in the ring for a whole frame of `count` packed results of `stride` bytes, whose
    /// values a chunk's loop stores in place, at ``packedValues(in:)`` (no frame buffer, no copy
    /// into the ring). Waits, as ``send(_:doorbell:)`` does, while the parent
    /// has not yet read what keeps that room; nil when the ring can never have it (a frame larger
    /// than the ring, or a ring read to its end without room in one piece): the frame then goes
    /// the usual way. Nothing else may be sent before
    /// ``publishPacked(_:job:chunkIndex:count:stride:runNanoseconds:doorbell:)``.
    func reservePacked(count: Int, stride: Int) -> SharedRing.Reservation? {
        let size = ResultFrameBuilder.packedPrefixSize + count * stride
        while true {
            if let reservation = ring.reserve(size) { return reservation }
            if size > ring.capacity || ring.isDrained { return nil }
            // The parent must be awake to make room.
            ringIfArmed()
            ring.markProducerWaiting()
            if ring.reserve(size) != nil || ring.isDrained { continue }
            if !ring.sleepUntilFreed(timeoutMilliseconds: fullRingSleep) { fullRingTimeouts += 1 }
        }
    }

    /// Where the values go in a frame ``reservePacked(count:stride:)`` made room for.
    static func packedValues(in reservation: SharedRing.Reservation) -> UnsafeMutableRawPointer {
        reservation.pointer + ResultFrameBuilder.packedPrefixSize
    }

    /// Sends the frame of packed results stored in `reservation`: writes its header before them
    /// and publishes it, ringing the parent's doorbell as ``send(_:doorbell:)`` would.
    func publishPacked(
        _ reservation: SharedRing.Reservation, job: UInt64, chunkIndex: UInt64, count: Int, stride: Int,
        runNanoseconds: UInt64, doorbell: Doorbell
    ) {
        ResultFrameBuilder.writePackedPrefix(
            into: reservation.pointer, job: job, chunkIndex: chunkIndex, count: count, stride: stride,
            runNanoseconds: runNanoseconds)
        ring.publish(reservation)
        if doorbell == .now { ringIfArmed() } else { postpone(doorbell) }
    }

    /// Rings a doorbell not rung at once that is due (`final`: now, as the worker is about to
    /// sleep), unless the parent has read everything meanwhile.
    func settleDoorbell(final: Bool) {
        if doorbellDue == nil && heldDue == nil { return }
        let now = MonotonicInstant.now
        settle(
            deferred: final || doorbellDue.map { now >= $0 } ?? false,
            held: final || heldDue.map { now.nanoseconds >= $0 } ?? false)
    }

    /// As the worker takes its next task: rings a lone call's deferred doorbell (the task may run
    /// long), and a held one unless `mayHold` (the task's result may wait too, and more tasks are
    /// already there behind it) and it is not yet due; either only if the parent has not read
    /// everything meanwhile.
    func settleDoorbell(takingNext mayHold: Bool) {
        guard let held = heldDue else {
            if doorbellDue != nil { settle(deferred: true, held: false) }
            return
        }
        settle(deferred: true, held: !mayHold || MonotonicInstant.now.nanoseconds >= held)
    }

    /// ``settleDoorbell(takingNext:)`` as the worker takes the task of `header`, with
    /// `moreQueued` tasks behind it or not: held results wait only behind a task of their own job
    /// whose result may wait too. A task whose result is wanted (a stream's, a lone call's, one
    /// under a timeout, whose clock starts when the parent learns that the task before it ended)
    /// has them rung for first, and so has another job's task, which may run long or for ever
    /// while the held results' job could be done.
    func settleDoorbell(taking header: TaskHeader, moreQueued: Bool) {
        settleDoorbell(takingNext: moreQueued && header.resultMayWait && (heldDue == nil || heldJob == header.job))
    }

    /// Rings for the pending doorbells named (once for both), and forgets them; forgets any
    /// pending one when the parent has read everything.
    private func settle(deferred: Bool, held: Bool) {
        if ring.isDrained {
            doorbellDue = nil
            heldDue = nil
            return
        }
        var ringing = (deferred: false, held: false)
        if deferred, doorbellDue != nil {
            doorbellDue = nil
            ringing.deferred = true
        }
        if held, heldDue != nil {
            heldDue = nil
            ringing.held = true
        }
        if ringing.deferred || ringing.held, ringIfArmed(), ringing.held { heldCounts.rung &+= 1 }
    }

    /// Rings the doorbell if the parent sleeps (once: it re-arms when it sleeps again); returns
    /// whether it rang.
    @discardableResult
    private func ringIfArmed() -> Bool {
        guard ring.takeConsumerArmed() else { return false }
        ringDoorbell(doorbell)
        return true
    }
}

extension TaskHeader {
    /// When the doorbell for this task's result rings (see ResultWriter.swift).
    var doorbell: ResultWriter.Doorbell {
        lone ? .deferred : resultMayWait ? .held(job: job) : .now
    }
}
