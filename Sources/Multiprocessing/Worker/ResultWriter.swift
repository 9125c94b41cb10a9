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
    /// How many sleeps on a full ring ran out without a wake-up (the parent, reading, wakes
    /// this side at once: only a parent that stops reading lets one run out).
    private(set) var fullRingTimeouts = 0

    /// How long one sleep on a full ring lasts before the worker looks again (a parent that
    /// reads wakes it at once).
    static let fullRingSleepMilliseconds: Int32 = 100
    /// How long a lone call's result may wait unread before its doorbell rings.
    static let deferredDoorbellDelay: Duration = .nanoseconds(deferredDoorbellDelayNanoseconds)
    /// The same in nanoseconds (no `Duration` arithmetic per result).
    static let deferredDoorbellDelayNanoseconds: Int64 = 20_000

    /// - Parameters:
    ///   - ring: The ring written, a view of `channel`'s memory (nil: the caller keeps it mapped).
    ///   - fullRingSleep: How long one sleep on a full ring lasts at most, in milliseconds.
    init(
        ring: SharedRing, doorbell: Int32, channel: SharedChannel? = nil,
        fullRingSleep: Int32 = ResultWriter.fullRingSleepMilliseconds
    ) {
        self.ring = ring
        self.doorbell = doorbell
        self.channel = channel
        self.fullRingSleep = fullRingSleep
    }

    /// Sends a frame, then its attachments, from where they are. `deferringDoorbell`: the
    /// result of a lone call (see the file's header); the caller then calls
    /// ``settleDoorbell(final:)`` while it spins and before it sleeps.
    func send(_ frame: OutgoingFrame, deferringDoorbell: Bool = false) {
        // The whole message (the frame's `count` adds up its attachments).
        var left = frame.attachments.isEmpty ? frame.bytes.count : frame.count
        frame.bytes.withUnsafeBytes { send($0, deferringDoorbell: deferringDoorbell, message: left) }
        left -= frame.bytes.count
        for attachment in frame.attachments {
            // The closure cannot throw: it only copies.
            try? attachment.withBytes { send($0, deferringDoorbell: deferringDoorbell, message: left) }
            left -= attachment.count
        }
        if deferringDoorbell && doorbellDue == nil {
            doorbellDue = MonotonicInstant.now.advanced(byNanoseconds: ResultWriter.deferredDoorbellDelayNanoseconds)
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
    /// into the ring). Waits, as ``send(_:deferringDoorbell:message:)`` does, while the parent
    /// has not yet read what keeps that room; nil when the ring can never have it (a frame larger
    /// than the ring, or a ring read to its end without room in one piece): the frame then goes
    /// the usual way. Nothing else may be sent before
    /// ``publishPacked(_:job:chunkIndex:count:stride:runNanoseconds:deferringDoorbell:)``.
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
    /// and publishes it, ringing the parent's doorbell as ``send(_:deferringDoorbell:)`` would.
    func publishPacked(
        _ reservation: SharedRing.Reservation, job: UInt64, chunkIndex: UInt64, count: Int, stride: Int,
        runNanoseconds: UInt64, deferringDoorbell: Bool
    ) {
        ResultFrameBuilder.writePackedPrefix(
            into: reservation.pointer, job: job, chunkIndex: chunkIndex, count: count, stride: stride,
            runNanoseconds: runNanoseconds)
        ring.publish(reservation)
        if !deferringDoorbell {
            ringIfArmed()
        } else if doorbellDue == nil {
            doorbellDue = MonotonicInstant.now.advanced(byNanoseconds: ResultWriter.deferredDoorbellDelayNanoseconds)
        }
    }

    /// Rings a deferred doorbell that is due (`final`: now, as the worker is about to sleep),
    /// unless the parent has read everything meanwhile.
    func settleDoorbell(final: Bool) {
        guard let due = doorbellDue else { return }
        if ring.isDrained {
            doorbellDue = nil
        } else if final || MonotonicInstant.now >= due {
            doorbellDue = nil
            ringIfArmed()
        }
    }

    private func ringIfArmed() {
        if ring.takeConsumerArmed() { ringDoorbell(doorbell) }
    }
}
