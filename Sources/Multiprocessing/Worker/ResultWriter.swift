// The worker's side of the result stream: frames (and their attachments, each from where it is)
// into its shared ring, ringing the parent's doorbell only when the parent sleeps, and sleeping on
// a futex while the ring is full.

/// Writes the worker's frames into its result ring (see SharedRing.swift).
struct ResultWriter {
    let ring: SharedRing
    /// The parent's doorbell: the worker's end of the result pipe (its end of file tells the
    /// parent this process is gone).
    let doorbell: Int32

    /// How long one sleep on a full ring lasts before the worker looks again (a parent that
    /// reads wakes it at once).
    static let fullRingSleepMilliseconds: Int32 = 100

    /// Sends a frame, then its attachments, from where they are.
    func send(_ frame: OutgoingFrame) {
        frame.bytes.withUnsafeBytes { send($0) }
        for attachment in frame.attachments {
            // The closure cannot throw: it only copies.
            try? attachment.withBytes { send($0) }
        }
    }

    /// Sends `bytes`, waiting for space as long as the ring is full.
    func send(_ bytes: UnsafeRawBufferPointer) {
        var done = 0
        while done < bytes.count {
            let n = ring.write(UnsafeRawBufferPointer(rebasing: bytes[done...]))
            if n > 0 {
                done += n
                // The parent sleeps: wake it (once; it re-arms when it sleeps again).
                if ring.takeConsumerArmed() { ringDoorbell(doorbell) }
                continue
            }
            ring.markProducerWaiting()
            if ring.hasFreeSpace { continue }
            ring.sleepUntilSpace(timeoutMilliseconds: ResultWriter.fullRingSleepMilliseconds)
        }
    }
}
