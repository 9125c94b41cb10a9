// Attachments: large byte arrays that travel after their frame, not inside it.
//
// A `[UInt8]` argument or result of `attachmentThreshold` bytes or more is not copied into its
// frame: the frame holds the tag `attachedBytes` and an index, and the array itself follows the
// frame on the pipe, written from where it is (the frame first, then each attachment straight
// from its own array; see `OutgoingFrame.withUnwritten(after:)`).
// The reader reads each attachment into an array of its exact size, which the decoder hands out
// as the value itself. A 4 MiB result thus costs the parent one copy (from the kernel into the
// value the caller gets) instead of three (into a frame buffer, out of it into the value, and
// the page faults of both).
//
// Frame layout with attachments: the kind byte has ``attachmentsFlag`` set, and the body ends
// with `u64 length × count | u32 count`; `count` arrays of those lengths follow the frame.

/// Where attachments start, and the limits a reader holds a peer to.
enum Attachments {
    /// The smallest `[UInt8]` value that is attached rather than copied into its frame.
    static let threshold = 64 * 1024
    /// Set in a frame's kind byte when attachments follow it.
    static let flag: UInt8 = 0x80
    /// The most attachments one frame may have (a larger count is a corrupt frame).
    static let maxCount = 1 << 16
}

extension ByteWriter {
    /// Attaches `bytes` when it is large enough: writes its reference and returns true.
    mutating func attachIfLarge(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= Attachments.threshold else { return false }
        writeUInt8(WireTag.attachedBytes)
        writeVarint(UInt64(attachments.count))
        attachments.append(bytes)
        return true
    }

    /// Appends what `other` wrote, its attachments included. `other`'s references to them count
    /// from 0, so this writer must have none yet (an item encoded on its own, then framed alone).
    mutating func append(_ other: ByteWriter) {
        precondition(attachments.isEmpty || other.attachments.isEmpty, "attachment references would shift")
        writeBytes(other.bytes)
        attachments += other.attachments
    }

    /// Drops what was written after `count` bytes and `attachmentCount` attachments (an item
    /// that failed to encode).
    mutating func truncate(to count: Int, attachmentCount: Int) {
        bytes.removeSubrange(count...)
        attachments.removeSubrange(attachmentCount...)
    }

    /// Appends the table of `attachments` to the frame that starts at `frameStart` and marks
    /// it, when there are any. Call before ``finishFrame(startingAt:)``.
    mutating func writeAttachmentTable(_ attachments: [OutgoingAttachment], frameStart: Int) {
        guard !attachments.isEmpty else { return }
        for attachment in attachments { writeUInt64(UInt64(attachment.count)) }
        writeUInt32(UInt32(attachments.count))
        bytes[frameStart + FrameLimits.headerSize] |= Attachments.flag
    }
}

extension ByteReader {
    /// Reads an attached `[UInt8]` value (the attachment itself, not a copy).
    /// - Throws: ``FrameError`` when `T` is not `[UInt8]` or the index has no attachment.
    mutating func readAttachedBytes<T>(as _: T.Type) throws -> T {
        guard T.self == [UInt8].self else {
            throw FrameError(description: "attached bytes where a \(T.self) was expected")
        }
        try skip(1)
        let index = try readVarint()
        guard index < UInt64(attachments.count) else {
            throw FrameError(description: "attachment \(index) of \(attachments.count)")
        }
        return unsafeBitCast(attachments[Int(index)], to: T.self)
    }
}

/// The attachment lengths at the end of a frame's body (`frame` starts with the kind byte), and
/// where the body ends before them.
/// - Throws: ``FrameError`` for a table that does not fit the frame or breaks the limits.
func attachmentTable(of frame: [UInt8]) throws -> (lengths: [Int], bodyEnd: Int) {
    guard frame.count >= 5 else { throw FrameError(description: "frame too short for its attachment table") }
    var reader = ByteReader(frame, offset: frame.count - 4)
    let count = Int(try reader.readUInt32())
    guard count >= 1, count <= Attachments.maxCount, 1 + 4 + count * 8 <= frame.count else {
        throw FrameError(description: "attachment table of \(count) entries does not fit its frame")
    }
    let bodyEnd = frame.count - 4 - count * 8
    reader = ByteReader(frame, offset: bodyEnd)
    var lengths: [Int] = []
    lengths.reserveCapacity(count)
    for _ in 0..<count {
        let length = try reader.readUInt64()
        guard length <= UInt64(FrameLimits.maxLength) else {
            throw FrameError(description: "attachment length \(length) is out of range")
        }
        lengths.append(Int(length))
    }
    return (lengths, bodyEnd)
}
