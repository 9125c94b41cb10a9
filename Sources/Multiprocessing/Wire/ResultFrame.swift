// The results of one chunk, as one frame (worker → parent).
//
// Body layout: u64 job | u64 chunk index | u32 item count | u8 flags | u64 run time (ns) | items,
// where each item is `u8 outcome (0 value, 1 error) | u32 byte length | value or error record`.
// With stop-on-error the worker stops after the first failed item, so the count may be smaller
// than the chunk's. Flags: bit 0 some item failed, bit 1 packed. Packed results (plain numbers,
// none failed; see PackedLayout.swift) are `u32 stride | item count × stride raw bytes`.
// The run time is how long the worker took over the chunk's items, measured by the worker; a
// stream given no chunksize sizes its next chunks from it (AdaptiveChunking.swift).

/// The fields before the items of a result frame.
@usableFromInline
struct ResultHeader: Equatable, Sendable {
    var job: UInt64
    var chunkIndex: UInt64
    @usableFromInline var itemCount: Int
    var anyFailed: Bool
    /// The items are packed values.
    @usableFromInline var packed = false
    /// How long the worker ran the chunk, in nanoseconds (0: not measured).
    var runNanoseconds: UInt64 = 0
    /// The packed values are already in their place in the job's list (the parent's I/O thread
    /// copied them there from the ring, see DirectResults.swift); the frame has no items. Not on
    /// the wire: only the parent sets it, for a frame it took that way.
    var deliveredDirectly = false

    static func read(from reader: inout ByteReader) throws -> ResultHeader {
        let job = try reader.readUInt64()
        let chunkIndex = try reader.readUInt64()
        let count = Int(try reader.readUInt32())
        let flags = try reader.readUInt8()
        guard flags <= 2 else { throw FrameError(description: "bad result flags \(flags)") }
        let runNanoseconds = try reader.readUInt64()
        return ResultHeader(
            job: job, chunkIndex: chunkIndex, itemCount: count, anyFailed: flags & 1 != 0, packed: flags & 2 != 0,
            runNanoseconds: runNanoseconds)
    }
}

/// Builds a result frame item by item (in the worker).
struct ResultFrameBuilder {
    private(set) var writer: ByteWriter
    private let frameStart: Int
    private let countOffset: Int
    private let failedOffset: Int
    private let runTimeOffset: Int
    private(set) var itemCount = 0
    private(set) var anyFailed = false
    private var packed = false
    /// Where the packed results' stride is in the frame (``fillPacked(stride:count:_:)``).
    private var packedStart: Int?

    /// - Parameter attachingLargeBytes: Whether a large `[UInt8]` result travels after the frame
    ///   (see Attachments.swift); the frame must then be sent with ``finishWithAttachments()``.
    init(job: UInt64, chunkIndex: UInt64, capacity: Int = 256, attachingLargeBytes: Bool = false) {
        // The header in one append, stored field by field on the stack first: one append per
        // field cost ~50 instructions each, a tenth of a lone call's worker side.
        writer = ByteWriter(reservingCapacity: max(capacity, ResultFrameBuilder.headerSize))
        writer.attachesLargeBytes = attachingLargeBytes
        frameStart = 0
        countOffset = ResultFrameBuilder.countOffset
        failedOffset = ResultFrameBuilder.countOffset + 4
        runTimeOffset = ResultFrameBuilder.countOffset + 5
        // u32 length (patched by finishFrame) | u8 kind | u64 job | u64 chunk index | u32 count |
        // u8 flags | u64 run time: 34 bytes.
        var header: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &header) { raw in
            raw.storeBytes(of: FrameKind.result.rawValue, toByteOffset: FrameLimits.headerSize, as: UInt8.self)
            raw.storeBytes(of: job.littleEndian, toByteOffset: FrameLimits.headerSize + 1, as: UInt64.self)
            raw.storeBytes(of: chunkIndex.littleEndian, toByteOffset: FrameLimits.headerSize + 9, as: UInt64.self)
            writer.writeRaw(UnsafeRawBufferPointer(rebasing: raw[..<ResultFrameBuilder.headerSize]))
        }
    }

    /// Where the item count is: after the length, the kind, the job and the chunk index.
    private static let countOffset = FrameLimits.headerSize + 1 + 8 + 8
    /// The bytes before the items: the count, the flags and the run time after it.
    private static let headerSize = countOffset + 4 + 1 + 8

    /// Records how long the worker took over the chunk (sent in the header).
    mutating func setRunDuration(nanoseconds: UInt64) {
        writer.patchUInt32(UInt32(truncatingIfNeeded: nanoseconds), at: runTimeOffset)
        writer.patchUInt32(UInt32(truncatingIfNeeded: nanoseconds >> 32), at: runTimeOffset + 4)
    }

    /// Appends a value; if it cannot be encoded, appends an `.encodingFailed` error instead.
    mutating func appendValue<T: Encodable>(_ value: T, functionName: String) {
        precondition(!packed, "a value after packed results")
        let mark = writer.count
        let attachmentMark = writer.attachments.count
        writer.writeUInt8(0)
        let lengthOffset = writer.reserveUInt32()
        do {
            try WireCoding.encode(value, into: &writer)
            writer.patchUInt32(UInt32(writer.count - lengthOffset - 4), at: lengthOffset)
            itemCount += 1
        } catch {
            writer.truncate(to: mark, attachmentCount: attachmentMark)
            appendError(
                PoolError(
                    .encodingFailed,
                    "the result of '\(functionName)' (\(T.self)) could not be encoded: \(error)"))
        }
    }

    /// Sets the items to `values`, packed (plain values, none failed; nothing appended before).
    mutating func setPacked<T>(_ values: [T]) {
        values.withUnsafeBytes { setPacked(raw: $0, stride: MemoryLayout<T>.stride, count: values.count) }
    }

    /// Sets the items to `count` packed values of `stride` bytes, in `raw`.
    mutating func setPacked(raw: UnsafeRawBufferPointer, stride: Int, count: Int) {
        precondition(itemCount == 0 && !packed, "packed results after other items")
        precondition(raw.count == stride * count, "packed results of the wrong size")
        writer.writeUInt32(UInt32(stride))
        writer.writeRaw(raw)
        itemCount = count
        packed = true
    }

    /// Sets the items to `count` packed values of `stride` bytes that `fill` writes in place,
    /// in the frame itself (nothing appended before): the worker's packed loop stores its
    /// results there, with no array of its own to copy them from. (Measured: zeroing the frame's
    /// new bytes and storing into them takes 52 µs for 1 MiB, 0.3 µs for 8 KiB; a scratch array
    /// copied in after takes 950 µs and 0.9 µs, its fresh pages faulted in every time.)
    ///
    /// The values' bytes are not zeroed first: `fill` stores every value that is read (after a
    /// call that threw, ``unsetPacked()`` reads only the values stored). Zeroing them took
    /// 0.2 instructions a byte, and was the first touch of a large frame's fresh pages.
    mutating func fillPacked(stride: Int, count: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Void) {
        precondition(itemCount == 0 && !packed, "packed results after other items")
        let length = stride * count
        packedStart = writer.count
        if length <= ResultFrameBuilder.zeros.count {
            // Small (a lone call's result): in the buffer the header is in.
            writer.writeUInt32(UInt32(stride))
            let start = writer.count
            writer.bytes.append(contentsOf: ResultFrameBuilder.zeros[..<length])
            writer.bytes.withUnsafeMutableBytes {
                fill(UnsafeMutableRawBufferPointer(rebasing: $0[start..<start + length]))
            }
            itemCount = count
            packed = true
            return
        }
        let header = writer.bytes
        let start = header.count + 4
        writer.bytes = [UInt8](unsafeUninitializedCapacity: start + length) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            header.withUnsafeBytes { raw.copyMemory(from: $0) }
            raw.storeBytes(of: UInt32(stride).littleEndian, toByteOffset: header.count, as: UInt32.self)
            fill(UnsafeMutableRawBufferPointer(rebasing: raw[start..<start + length]))
            initialized = start + length
        }
        itemCount = count
        packed = true
    }

    /// What a small packed result is set to before it is stored (a copy, not a generic append).
    private static let zeros = [UInt8](repeating: 0, count: 256)

    /// Takes back the packed values ``fillPacked(stride:count:_:)`` set: their bytes, the frame
    /// left without items (so that they can go item by item, with errors among them).
    mutating func unsetPacked() -> [UInt8] {
        guard let start = packedStart, packed else { preconditionFailure("no packed results to take back") }
        let values = Array(writer.bytes[(start + 4)...])
        writer.truncate(to: start, attachmentCount: writer.attachments.count)
        packedStart = nil
        itemCount = 0
        packed = false
        return values
    }

    /// Appends an error.
    mutating func appendError(_ error: any Error) {
        precondition(!packed, "an error after packed results")
        writer.writeUInt8(1)
        let lengthOffset = writer.reserveUInt32()
        ErrorRecord.write(error, into: &writer)
        writer.patchUInt32(UInt32(writer.count - lengthOffset - 4), at: lengthOffset)
        itemCount += 1
        anyFailed = true
    }

    /// The finished frame, moved out of the builder (mutating in place, so that patching the
    /// header never copies the buffer on write).
    mutating func finish() -> [UInt8] {
        let frame = finishWithAttachments()
        precondition(frame.attachments.isEmpty, "a frame with attachments sent without them")
        return frame.bytes
    }

    /// The finished frame and the attachments that follow it, moved out of the builder.
    mutating func finishWithAttachments() -> OutgoingFrame {
        writer.patchUInt32(UInt32(itemCount), at: countOffset)
        writer.bytes[failedOffset] = (anyFailed ? 1 : 0) | (packed ? 2 : 0)
        let attachments = writer.attachments.map(OutgoingAttachment.init)
        writer.writeAttachmentTable(attachments, frameStart: frameStart)
        writer.finishFrame(startingAt: frameStart)
        defer {
            writer.bytes = []
            writer.attachments = []
        }
        return OutgoingFrame(bytes: writer.bytes, attachments: attachments)
    }
}

extension ResultFrameBuilder {
    /// The bytes of a frame of `count` packed results of `stride` bytes before the values
    /// themselves: its length, kind and header, then the stride (``packedPrefixSize`` bytes).
    static let packedPrefixSize = headerSize + 4

    /// Writes the ``packedPrefixSize`` bytes before `count` packed results of `stride` bytes at
    /// `destination` (the frame that ``fillPacked(stride:count:_:)`` and
    /// ``finishWithAttachments()`` make, byte for byte): for results stored in place in a ring.
    static func writePackedPrefix(
        into destination: UnsafeMutableRawPointer, job: UInt64, chunkIndex: UInt64, count: Int, stride: Int,
        runNanoseconds: UInt64
    ) {
        let length = UInt32(packedPrefixSize - FrameLimits.headerSize + count * stride)
        destination.storeBytes(of: length.littleEndian, as: UInt32.self)
        destination.storeBytes(of: FrameKind.result.rawValue, toByteOffset: FrameLimits.headerSize, as: UInt8.self)
        destination.storeBytes(of: job.littleEndian, toByteOffset: FrameLimits.headerSize + 1, as: UInt64.self)
        destination.storeBytes(of: chunkIndex.littleEndian, toByteOffset: FrameLimits.headerSize + 9, as: UInt64.self)
        destination.storeBytes(of: UInt32(count).littleEndian, toByteOffset: countOffset, as: UInt32.self)
        // Packed, none failed.
        destination.storeBytes(of: UInt8(2), toByteOffset: countOffset + 4, as: UInt8.self)
        destination.storeBytes(of: runNanoseconds.littleEndian, toByteOffset: countOffset + 5, as: UInt64.self)
        destination.storeBytes(of: UInt32(stride).littleEndian, toByteOffset: headerSize, as: UInt32.self)
    }
}

/// Reads the items of a result frame (in the parent); see `ResultDecoding.swift`.
enum ResultItems {}
