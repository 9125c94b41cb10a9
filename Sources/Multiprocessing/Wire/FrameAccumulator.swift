// FrameAccumulator.swift
//
// Cuts the bytes read from a byte stream (a worker's shared ring, a pipe) into frames (see
// Frame.swift), attachments included: small frames out of a staging buffer, large ones read
// straight into a buffer of their own.

/// Where a ``FrameAccumulator`` reads from: a worker's ``SharedRing`` (``RingSource``), or a
/// non-blocking descriptor (``DescriptorSource``).
protocol ByteSource {
    /// Reads up to `count` bytes into `buffer`: the bytes there are now, or ``ReadOutcome/wouldBlock``
    /// when there are none (``ReadOutcome/endOfFile`` when there will be none).
    /// - Throws: ``SystemError`` for a failed read.
    mutating func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> ReadOutcome
}

/// A non-blocking descriptor as a ``ByteSource``.
struct DescriptorSource: ByteSource {
    let fd: Int32

    mutating func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> ReadOutcome {
        try readNonBlocking(fd, into: buffer, count: count)
    }
}

/// Splits the bytes read from a byte stream into frames.
///
/// Small frames are cut out of a staging buffer, so many results cost one `read`; a frame larger
/// than what is staged gets a buffer of its exact size that the pipe is then read into directly,
/// so a large payload is copied once from the kernel.
struct FrameAccumulator {
    /// A complete frame: the kind byte followed by the body.
    struct Frame {
        var bytes: [UInt8]
        /// The arrays that followed the frame (see Attachments.swift).
        var attachments: [[UInt8]] = []
        /// Where the body ends: before the attachment table, if any.
        var bodyEnd: Int
        /// Its packed results went straight into their list (see DirectResults.swift): this is
        /// the header alone. Set only by the parent, never read from the wire.
        var deliveredDirectly = false
        var kind: UInt8 { bytes[0] & ~Attachments.flag }
        /// A reader over the body (after the kind byte), with the frame's attachments.
        var bodyReader: ByteReader { ByteReader(bytes, offset: 1, end: bodyEnd, attachments: attachments) }

        init(bytes: [UInt8], attachments: [[UInt8]] = [], bodyEnd: Int? = nil, deliveredDirectly: Bool = false) {
            self.bytes = bytes
            self.attachments = attachments
            self.bodyEnd = bodyEnd ?? bytes.count
            self.deliveredDirectly = deliveredDirectly
        }
    }

    /// The first buffer of a large frame: frames up to this size are read into a buffer of
    /// their exact size; larger ones grow 4× at a time, as their bytes arrive.
    static let firstLargeBuffer = 16 << 20

    private var staging: [UInt8]
    private var stagedStart = 0
    private var stagedEnd = 0
    /// A large frame or an attachment being filled directly: its buffer, how much of it is
    /// filled, and its length. The buffer grows as bytes arrive (4× at a time), so a corrupt
    /// header that announces a huge frame costs nothing until the bytes really come.
    private var large: (buffer: [UInt8], filled: Int, length: Int)?
    /// A frame whose attachments are being read: the frame, where its body ends, the lengths of
    /// its attachments and those read so far.
    private var assembling: (frame: [UInt8], bodyEnd: Int, lengths: [Int], received: [[UInt8]])?

    /// Where large buffers come from when one is ready (the parent's readers: see
    /// PreparedBuffers.swift); nil: each is made when its frame starts (a worker, on its one
    /// thread).
    private let preparedBuffers: PreparedBuffers?

    init(stagingSize: Int = 64 * 1024, preparedBuffers: PreparedBuffers? = nil) {
        staging = [UInt8](repeating: 0, count: stagingSize)
        self.preparedBuffers = preparedBuffers
    }

    /// Reads what the non-blocking descriptor `fd` has now and appends the complete frames to
    /// `frames` (see ``read(from:into:returningOnFrame:)-(inout S,_,_)``).
    mutating func read(from fd: Int32, into frames: inout [Frame], returningOnFrame: Bool = false) throws -> Bool {
        var source = DescriptorSource(fd: fd)
        return try read(from: &source, into: &frames, returningOnFrame: returningOnFrame)
    }

    /// Reads what `source` has now and appends the complete frames to `frames`. Returns after a
    /// read that got fewer bytes than asked for.
    /// - Returns: false at end of file.
    /// - Throws: ``FrameError`` for a malformed stream, ``SystemError`` for a failed read.
    ///
    /// With `returningOnFrame`, also returns as soon as a frame is complete: a blocking reader
    /// must not wait for more bytes while it holds a frame to act on.
    mutating func read<S: ByteSource>(
        from source: inout S, into frames: inout [Frame], returningOnFrame: Bool = false
    ) throws -> Bool {
        while true {
            if returningOnFrame && !frames.isEmpty { return true }
            if var pending = large {
                large = nil
                if pending.filled == pending.buffer.count {
                    let grown = min(pending.length, pending.buffer.count * 4)
                    let filled = pending.filled
                    let old = pending.buffer
                    pending.buffer = uninitializedBytes(grown)
                    pending.buffer.withUnsafeMutableBytes { raw in
                        old.withUnsafeBytes { raw.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: filled) }
                    }
                }
                let requested = pending.buffer.count - pending.filled
                let outcome = try pending.buffer.withUnsafeMutableBytes { (raw) -> ReadOutcome in
                    try source.read(into: raw.baseAddress! + pending.filled, count: requested)
                }
                switch outcome {
                case .wouldBlock:
                    large = pending
                    return true
                case .endOfFile:
                    // Kept, so that the frame cut short shows as partial.
                    large = pending
                    return false
                case .bytes(let n):
                    pending.filled += n
                    if pending.filled == pending.length {
                        try completed(pending.buffer, into: &frames)
                    } else {
                        large = pending
                    }
                    // A short read emptied the pipe: asking again would only say EAGAIN.
                    if n < requested { return true }
                    continue
                }
            }
            // Make room at the end of the staging buffer.
            if stagedStart > 0 {
                let live = stagedEnd - stagedStart
                if live > 0 {
                    staging.withUnsafeMutableBytes { raw in
                        raw.baseAddress!.copyMemory(from: raw.baseAddress! + stagedStart, byteCount: live)
                    }
                }
                stagedStart = 0
                stagedEnd = live
            }
            let requested = staging.count - stagedEnd
            let outcome = try staging.withUnsafeMutableBytes { (raw) -> ReadOutcome in
                try source.read(into: raw.baseAddress! + stagedEnd, count: requested)
            }
            switch outcome {
            case .wouldBlock: return true
            case .endOfFile: return false
            case .bytes(let n):
                stagedEnd += n
                try cutFrames(into: &frames)
                // A short read emptied the pipe (or, on a blocking descriptor, took what was
                // there): return instead of asking again.
                if n < requested { return true }
            }
        }
    }

    private mutating func cutFrames(into frames: inout [Frame]) throws {
        while stagedEnd - stagedStart >= FrameLimits.headerSize {
            let length = Int(
                UInt32(staging[stagedStart]) | UInt32(staging[stagedStart + 1]) << 8
                    | UInt32(staging[stagedStart + 2]) << 16 | UInt32(staging[stagedStart + 3]) << 24)
            guard length >= 1, length <= FrameLimits.maxLength else {
                throw FrameError(description: "frame length \(length) is out of range")
            }
            let available = stagedEnd - stagedStart - FrameLimits.headerSize
            let bodyStart = stagedStart + FrameLimits.headerSize
            if available >= length {
                stagedStart = bodyStart + length
                try completed(Array(staging[bodyStart..<(bodyStart + length)]), into: &frames)
                // Attachments come next: they are read into buffers of their own.
                if large != nil { return }
            } else if length > staging.count - FrameLimits.headerSize {
                // Too big for the staging buffer: move it to a buffer of its own.
                stagedStart = bodyStart
                if let bytes = startDirect(length) { try completed(bytes, into: &frames) }
                return
            } else {
                return
            }
        }
    }

    /// Starts reading `length` bytes (a large frame, or an attachment) into a buffer of their
    /// own: first what is staged, then straight from the pipe (as ``large``).
    /// - Returns: the bytes, when they were all staged already.
    private mutating func startDirect(_ length: Int) -> [UInt8]? {
        let taken = min(length, stagedEnd - stagedStart)
        let size = max(taken, min(length, FrameAccumulator.firstLargeBuffer))
        var buffer = preparedBuffers?.take(size) ?? uninitializedBytes(size)
        buffer.withUnsafeMutableBytes { raw in
            staging.withUnsafeBytes { src in
                raw.baseAddress!.copyMemory(from: src.baseAddress! + stagedStart, byteCount: taken)
            }
        }
        stagedStart += taken
        if stagedStart == stagedEnd {
            stagedStart = 0
            stagedEnd = 0
        }
        if taken == length { return buffer }
        large = (buffer, taken, length)
        return nil
    }

    /// A frame or an attachment is complete: hands out the frame when it has all its parts, or
    /// starts reading the next attachment.
    private mutating func completed(_ bytes: [UInt8], into frames: inout [Frame]) throws {
        // Most frames: whole, with no attachment, none being assembled.
        if assembling == nil && bytes[0] & Attachments.flag == 0 {
            frames.append(Frame(bytes: bytes))
            return
        }
        var pending: (frame: [UInt8], bodyEnd: Int, lengths: [Int], received: [[UInt8]])
        if let assembling = assembling.take() {
            pending = assembling
            pending.received.append(bytes)
        } else if bytes[0] & Attachments.flag != 0 {
            let (lengths, bodyEnd) = try attachmentTable(of: bytes)
            pending = (bytes, bodyEnd, lengths, [])
        } else {
            frames.append(Frame(bytes: bytes))
            return
        }
        while pending.received.count < pending.lengths.count {
            guard let attachment = startDirect(pending.lengths[pending.received.count]) else {
                assembling = pending
                return
            }
            pending.received.append(attachment)
        }
        frames.append(Frame(bytes: pending.frame, attachments: pending.received, bodyEnd: pending.bodyEnd))
    }

    /// True when a frame has started but not finished (the peer died mid-frame).
    var hasPartialFrame: Bool { large != nil || assembling != nil || stagedEnd > stagedStart }
}

/// A byte array of `count` bytes whose contents are left as they are (every byte pattern is a
/// `UInt8`; the caller overwrites them): no zeroing of memory about to be filled by `read`.
///
/// A large one (``presentBufferSize`` or more: a large frame or attachment) is made present in
/// one system call rather than page by page as the read copies into it: 64 × 4 MiB echoed, 89 %
/// of the parent's 73,000 page faults were in that copy (`pool-workloads echo` under chrt, 10
/// runs alternating: median 2.6 → 3.45 GB/s). Huge pages are not advised: with them the median
/// fell to 1.5 GB/s, with runs at 0.7 (a huge page's allocation and zeroing stall the copy).
func uninitializedBytes(_ count: Int) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        if count >= presentBufferSize, let start = buffer.baseAddress {
            populateForWriting(start, count: count)
        }
        initialized = count
    }
}

/// The size from which ``uninitializedBytes(_:)`` makes its buffer present at once.
let presentBufferSize = 1 << 20
