// Frames: how messages are delimited on the pipes between the parent and a worker.
//
// A frame is `u32 length (little endian) | u8 kind | body`, where `length` counts the kind byte
// and the body. A chunk of tasks travels as one frame and its results come back as one frame,
// so a chunk costs one write and (usually) one read each way.

/// The kinds of frame.
enum FrameKind: UInt8, Sendable {
    // Parent → worker
    /// The first frame a worker gets: whether to run an initializer, and its call.
    case start = 1
    /// A chunk of calls of one function.
    case task = 2

    // Worker → parent
    /// Bootstrap and initializer are done; tasks may run.
    case ready = 10
    /// The results of one chunk.
    case result = 11
    /// The initializer threw; the worker exits after this frame.
    case initializerFailed = 12
    /// The worker's resident memory (UInt64 bytes) is above the pool's `maxMemoryPerChild`
    /// after a chunk; sent before that chunk's result, so that no new chunk goes to it.
    case overMemory = 13
}

/// Limits that protect the parent from a corrupt or hostile frame.
enum FrameLimits {
    /// The largest frame either side accepts (1 GiB): a larger length is a corrupt stream.
    static let maxLength = 1 << 30
    /// Bytes of the length prefix.
    static let headerSize = 4
}

extension ByteWriter {
    /// Starts a frame of `kind`; finish it with ``finishFrame(startingAt:)``.
    /// - Returns: the offset of the length field.
    mutating func beginFrame(_ kind: FrameKind) -> Int {
        let offset = reserveUInt32()
        writeUInt8(kind.rawValue)
        return offset
    }

    /// Writes the length of the frame that ``beginFrame(_:)`` started.
    mutating func finishFrame(startingAt offset: Int) {
        patchUInt32(UInt32(count - offset - FrameLimits.headerSize), at: offset)
    }
}

/// A protocol violation found while reading frames: the peer is broken.
struct FrameError: Error, CustomStringConvertible {
    var description: String
}
