// BlockingFrameReader.swift
//
// The worker's side of the task stream: the next frame from its shared ring, spinning briefly
// before it sleeps on its doorbell (the task pipe), which also tells it the parent closed its
// input.

/// Reads frames from a ``SharedRing`` on the thread that waits for them (the worker's side).
struct BlockingFrameReader {
    let ring: SharedRing
    /// Readable when the producer rang (or closed it: end of input). Non-blocking.
    let doorbell: Int32
    private var source: RingSource
    private var accumulator = FrameAccumulator()
    private var frames: [FrameAccumulator.Frame] = []
    private var nextFrame = 0
    /// The doorbell reached end of file: what is in the ring is all there is.
    private var ended = false

    /// How long to look for the next frame, without sleeping, before sleeping on the doorbell.
    var spin: Duration {
        didSet { spinNanoseconds = Int64(spin.saturatingNanoseconds) }
    }
    /// `spin` in nanoseconds, worked out when it is set, not at every spin.
    private var spinNanoseconds: Int64
    /// Called while spinning (`final` false), and right before sleeping or handing out a frame
    /// (`final` true): the worker rings a deferred doorbell there
    /// (``ResultWriter/settleDoorbell(final:)``).
    var idle: ((_ final: Bool) -> Void)?
    /// Whether ``next()`` leaves settling the doorbells to its caller: it then does not call
    /// `idle(true)` as it hands out a frame, and notes ``moreQueued`` instead; the worker settles
    /// them once it knows what the task is (``ResultWriter/settleDoorbell(takingNext:)``).
    var callerSettlesOnHandOut = false
    /// Whether more bytes (a queued task) were already there behind the frame last handed out,
    /// when ``callerSettlesOnHandOut``.
    private(set) var moreQueued = false
    /// Work to do while no frame comes, a little at a time: once the reader has waited
    /// ``backgroundDelayMilliseconds`` for a frame in vain, it calls this instead of sleeping
    /// again, as long as it returns true (it did some), looking at the ring between two calls (a
    /// frame that came meanwhile is handed out first); false: nothing is left, and the reader no
    /// longer waits with a timeout. The worker makes its rings' pages present this way
    /// (``RingPrefault``).
    var background: (() -> Bool)?
    /// How long the reader waits for a frame before it does background work: a worker that
    /// answers one call and is then stopped (a pool's cold start) or gets the next call at once
    /// (a loop of `apply`) does none.
    static let backgroundDelayMilliseconds: Int32 = 1
    /// The last wait for a frame ran out: background work may go on until the next frame.
    private var waitedInVain = false
    /// Where the producer and this side last ran: a spin yields at once when they share a CPU.
    var producerCPU: CPUNotes?

    /// Whether a task frame's packed items are left where they lie in the ring (the worker
    /// runs them from there: no copy, no buffer of their own), when the frame and its items lie
    /// whole and in one piece at the front of the ring; the frame is then handed out without
    /// its attachment, and ``itemsInRing`` shows them until they are freed.
    var takesPackedItemsInPlace = false
    /// The packed items of the frame last handed out, in the ring (see
    /// ``takesPackedItemsInPlace``); nil when they came as its attachment, or are freed.
    private(set) var itemsInRing: UnsafeRawBufferPointer?
    /// The ring position after those items: freed up to there by ``releaseItemsInRing()``.
    private var itemsInRingEnd: UInt64 = 0
    /// The largest task frame (its items apart) looked at in place: a frame's header, its
    /// function's name and its attachment table.
    static let largestInPlaceFrame = 4096

    /// - Parameters:
    ///   - ring: The ring to read.
    ///   - doorbell: The pipe its producer rings (non-blocking).
    ///   - wakeProducer: How to wake the producer when it waits for space.
    init(ring: SharedRing, doorbell: Int32, spin: Duration = .zero, wakeProducer: RingSource.ProducerWake) {
        self.ring = ring
        self.doorbell = doorbell
        self.spin = spin
        self.spinNanoseconds = Int64(spin.saturatingNanoseconds)
        self.source = RingSource(ring: ring, wake: wakeProducer)
    }

    /// The next frame, waiting for it; nil once the producer closed its end and the ring is empty.
    /// - Throws: ``FrameError`` for a malformed stream or one that ends inside a frame.
    mutating func next() throws -> FrameAccumulator.Frame? {
        releaseItemsInRing()
        while nextFrame == frames.count {
            // One frame at a time, mostly: removeLast keeps the capacity, as removeAll(keepingCapacity:)
            // does, without its generic range replacement (~130 instructions a frame).
            while !frames.isEmpty { frames.removeLast() }
            nextFrame = 0
            // The bytes of a frame whose items will lie in place, seen so far (nil: none).
            var partial: Int?
            if takesPackedItemsInPlace {
                switch try lookInPlace() {
                case .frame(let frame, let items, let end):
                    // Handed out (see ``callerSettlesOnHandOut``).
                    if callerSettlesOnHandOut { moreQueued = ring.hasBytes(beyond: end) } else { idle?(true) }
                    waitedInVain = false
                    itemsInRing = items
                    itemsInRingEnd = end
                    return frame
                case .coming(let seen) where !ended:
                    partial = seen
                case .coming, .none:
                    break
                }
            }
            if partial == nil {
                _ = try accumulator.read(from: &source, into: &frames, returningOnFrame: true)
                if !frames.isEmpty { break }
                if ended {
                    guard ring.isEmpty else { continue }
                    if accumulator.hasPartialFrame { throw FrameError(description: "end of input inside a frame") }
                    return nil
                }
                // A frame that follows within `spin` is read without the wake-up of a sleeping
                // process (what that costs: see the performance article).
                if spin > .zero, spinUntilReadable() { continue }
            }
            idle?(true)
            if waitedInVain, let background {
                if background() { continue }
                self.background = nil
            }
            ring.armConsumer()
            // More bytes since the last look: look again. (A frame whose items are still being
            // written waits for the rest, which its producer rings for once it is written.)
            if partial.map({ (ring.readable()?.count ?? 0) > $0 }) ?? !ring.isEmpty {
                ring.disarmConsumer()
                continue
            }
            let timeout = background == nil ? -1 : BlockingFrameReader.backgroundDelayMilliseconds
            let woken = pollReadable(doorbell, or: -1, timeoutMilliseconds: timeout)
            if !woken.ready && !woken.interrupted { waitedInVain = true }
            if !drainDoorbell(doorbell) { ended = true }
            ring.disarmConsumer()
        }
        // The worker is about to work: a deferred doorbell cannot wait for the task to end.
        if callerSettlesOnHandOut {
            moreQueued = nextFrame + 1 < frames.count || accumulator.hasPartialFrame || !ring.isEmpty
        } else {
            idle?(true)
        }
        waitedInVain = false
        defer { nextFrame += 1 }
        return frames[nextFrame]
    }

    /// Frees the ring's bytes of the packed items handed out in place (``itemsInRing``), and wakes
    /// the producer if it waits for room. Done by ``next()`` at the latest.
    mutating func releaseItemsInRing() {
        guard itemsInRing != nil else { return }
        itemsInRing = nil
        ring.consume(to: itemsInRingEnd)
        source.wakeProducerIfWaiting()
    }

    /// What lies at the front of the ring, for ``takesPackedItemsInPlace``.
    private enum InPlace {
        /// No task frame whose items can be run in place: the usual way.
        case none
        /// Such a frame whole, its items (in the ring) and the position after them.
        case frame(FrameAccumulator.Frame, items: UnsafeRawBufferPointer, end: UInt64)
        /// Such a frame whose items are still being written: `seen` bytes of it are there.
        case coming(seen: Int)
    }

    /// Looks at the front of the ring, at a frame boundary, for a task frame with packed items
    /// attached, small enough and whole, whose items will lie in one piece in the ring (its
    /// producer writes a frame and its attachments one after another: a message that fits the
    /// ring is then written whole without the consumer freeing anything).
    /// - Throws: ``FrameError`` for an attachment table that does not fit its frame.
    private func lookInPlace() throws -> InPlace {
        guard !accumulator.hasPartialFrame, let (position, available) = ring.readable(),
            available >= FrameLimits.headerSize + 1
        else { return .none }
        var prefix: (UInt32, UInt32) = (0, 0)
        let (length, kind) = withUnsafeMutableBytes(of: &prefix) { raw in
            ring.copy(from: position, count: FrameLimits.headerSize + 1, into: raw.baseAddress!)
            return (Int(raw.loadUnaligned(as: UInt32.self).littleEndian), raw[FrameLimits.headerSize])
        }
        // Flags: the byte after the kind, the job, the chunk index and the signature.
        let flagsOffset = 1 + 8 + 8 + 8
        guard kind == FrameKind.task.rawValue | Attachments.flag, length > flagsOffset,
            length <= BlockingFrameReader.largestInPlaceFrame, FrameLimits.headerSize + length <= available
        else { return .none }
        let frame = [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            ring.copy(from: position &+ UInt64(FrameLimits.headerSize), count: length, into: buffer.baseAddress!)
            initialized = length
        }
        // Packed (bit 1) and attached (bit 3): see TaskFrame.swift.
        guard frame[flagsOffset] & 0b1010 == 0b1010 else { return .none }
        let (lengths, bodyEnd) = try attachmentTable(of: frame)
        guard lengths.count == 1 else { return .none }
        let message = FrameLimits.headerSize + length + lengths[0]
        let itemsStart = position &+ UInt64(FrameLimits.headerSize + length)
        guard message <= ring.capacity, let items = ring.contiguousBytes(at: itemsStart, count: lengths[0]) else {
            return .none
        }
        guard available >= message else { return .coming(seen: available) }
        return .frame(
            FrameAccumulator.Frame(bytes: frame, bodyEnd: bodyEnd), items: items,
            end: itemsStart &+ UInt64(lengths[0]))
    }

    /// Looks at the ring for up to `spin`; returns whether bytes came. Past the first few
    /// microseconds, yields the core now and then: when the producer shares it (a busy machine),
    /// spinning alone would keep it out.
    private func spinUntilReadable() -> Bool {
        let start = MonotonicInstant.now
        let until = start.advanced(byNanoseconds: spinNanoseconds)
        let yieldAfter = start.advanced(byNanoseconds: LocalTransport.directWaitSpinWithoutYieldNanoseconds)
        var turns = 0
        while ring.isEmpty {
            turns &+= 1
            if turns & 15 == 0 { idle?(false) }
            if turns & 63 == 0 {
                let now = MonotonicInstant.now
                if now >= until { return false }
                // At once when the producer was last seen on this CPU (CPUNotes.swift).
                if now >= yieldAfter || producerCPU?.otherSideSharesThisCPU == true { yieldProcessor() }
            }
        }
        return true
    }
}
