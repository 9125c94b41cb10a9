// A chunk of calls of one function, as one frame (parent → worker).
//
// Body layout: u64 job | u64 chunk index | u64 signature fingerprint | u8 flags |
//              string function name | u32 item count | items,
// where each item is `u32 byte length | the arguments, encoded one after another`. The length
// lets a worker skip an item whose arguments it cannot decode and go on with the next.
// Flags: bit 0 stop on error, bit 1 packed, bit 2 lone (the job's only chunk), bit 3 packed
// items attached (they are then the frame's only attachment, not in the body), bit 4 the result
// may wait (see ``TaskHeader/resultMayWait``). Packed items
// (see PackedLayout.swift) are instead `u32 stride | item count × stride raw bytes`: the
// parent's array of argument tuples as it is. How a function's arguments are encoded is in
// PoolFunction+Wire.swift.

/// The fields before the items of a task frame.
struct TaskHeader: Equatable {
    var job: UInt64
    var chunkIndex: UInt64
    var signature: UInt64
    /// Stop at the first failed item (map, apply); streams want every item's outcome.
    var stopOnError: Bool
    var functionName: String
    var itemCount: Int
    /// The stride of packed items; nil when items are encoded one by one.
    var packedStride: Int? = nil
    /// The job's only chunk (an `apply`, a short `map`): its caller is likely waiting for this
    /// result alone and may send the next call right after it, so the worker polls for a while
    /// before it sleeps.
    var lone = false
    /// The packed items are the frame's attachment rather than in its body.
    var packedItemsAttached = false
    /// No one sees this chunk's result before the whole job is in (a `map` of several chunks):
    /// the worker may hold the doorbell for it while it has more chunks queued, so that the
    /// parent wakes once for several results (see ResultWriter.swift).
    var resultMayWait = false

    /// - Parameter knownName: A name the function's probably is (the last task's): when it
    ///   is, that string is used rather than a new one made from the bytes.
    static func read(from reader: inout ByteReader, knownName: String? = nil) throws -> TaskHeader {
        let job = try reader.readUInt64()
        let chunkIndex = try reader.readUInt64()
        let signature = try reader.readUInt64()
        let flags = try reader.readUInt8()
        let name = try reader.readString(reusing: knownName)
        let count = Int(try reader.readUInt32())
        let stride = flags & 2 != 0 ? Int(try reader.readUInt32()) : nil
        return TaskHeader(
            job: job, chunkIndex: chunkIndex, signature: signature, stopOnError: flags & 1 != 0,
            functionName: name, itemCount: count, packedStride: stride, lone: flags & 4 != 0,
            packedItemsAttached: flags & 8 != 0, resultMayWait: flags & 16 != 0)
    }
}

/// Builds a task frame item by item.
@usableFromInline
struct TaskFrameBuilder {
    private(set) var writer: ByteWriter
    private let frameStart: Int
    private let countOffset: Int
    private(set) var itemCount = 0

    /// The stride of packed items, if the items are packed.
    @usableFromInline let packedStride: Int?
    private let flagsOffset: Int
    /// Packed items that travel as the frame's attachment.
    private var packedItems: OutgoingAttachment?

    init(
        job: JobID, chunkIndex: Int, functionName: String, signature: UInt64, stopOnError: Bool,
        packedStride: Int? = nil, lone: Bool = false, resultMayWait: Bool = false, capacity: Int = 256,
        attachingLargeBytes: Bool = false
    ) {
        writer = ByteWriter(reservingCapacity: capacity)
        writer.attachesLargeBytes = attachingLargeBytes
        frameStart = writer.beginFrame(.task)
        writer.writeUInt64(job.rawValue)
        writer.writeUInt64(UInt64(chunkIndex))
        writer.writeUInt64(signature)
        flagsOffset = writer.count
        writer.writeUInt8(
            (stopOnError ? 1 : 0) | (packedStride != nil ? 2 : 0) | (lone ? 4 : 0) | (resultMayWait ? 16 : 0))
        writer.writeString(functionName)
        countOffset = writer.reserveUInt32()
        self.packedStride = packedStride
        if let packedStride { writer.writeUInt32(UInt32(packedStride)) }
    }

    /// Appends packed items (the frame must have been made with their `packedStride`).
    mutating func appendPacked<T>(_ items: ArraySlice<T>) {
        precondition(packedStride == MemoryLayout<T>.stride, "packed items of the wrong stride")
        items.withUnsafeBytes { appendPacked(items: $0, count: items.count) }
    }

    /// Attaches packed items (the frame must have been made with their `packedStride`, and hold
    /// no other items): they are written from `items`' own memory after the frame.
    mutating func attachPacked<T>(_ items: ArraySlice<T>) {
        precondition(packedStride == MemoryLayout<T>.stride, "packed items of the wrong stride")
        precondition(itemCount == 0, "attached packed items after other items")
        packedItems = OutgoingAttachment(packed: items)
        writer.bytes[flagsOffset] |= 8
        itemCount = items.count
    }

    /// Appends one packed item (the frame must have been made with its `packedStride`).
    mutating func appendPacked<T>(_ item: T) {
        withUnsafeBytes(of: item) { appendPacked(bytes: $0, stride: MemoryLayout<T>.stride) }
    }

    /// Appends one packed item given as its bytes (`MemoryLayout.size` of them), padded to
    /// `stride`: not generic, for the typed side inlined into the caller's module.
    @usableFromInline
    mutating func appendPacked(bytes: UnsafeRawBufferPointer, stride: Int) {
        precondition(packedStride == stride && bytes.count <= stride, "a packed item of the wrong stride")
        writer.writeRaw(bytes)
        for _ in bytes.count..<stride { writer.writeUInt8(0) }
        itemCount += 1
    }

    /// Appends `count` packed items given as their bytes, `count × packedStride` of them (an
    /// array's memory): not generic, for the typed side inlined into the caller's module.
    @usableFromInline
    mutating func appendPacked(items bytes: UnsafeRawBufferPointer, count: Int) {
        precondition(packedStride.map { bytes.count == count * $0 } ?? false, "packed items of the wrong stride")
        writer.writeRaw(bytes)
        itemCount += count
    }

    /// Appends one item; `encode` writes its arguments. On failure the frame is left as it was.
    @usableFromInline
    mutating func appendItem(_ encode: (inout ByteWriter) throws -> Void) throws {
        precondition(packedStride == nil, "an encoded item in a frame of packed items")
        let mark = writer.count
        let attachmentMark = writer.attachments.count
        let lengthOffset = writer.reserveUInt32()
        do {
            try encode(&writer)
        } catch {
            writer.truncate(to: mark, attachmentCount: attachmentMark)
            throw error
        }
        writer.patchUInt32(UInt32(writer.count - lengthOffset - 4), at: lengthOffset)
        itemCount += 1
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
        var attachments = writer.attachments.map(OutgoingAttachment.init)
        if let packedItems { attachments.append(packedItems) }
        writer.writeAttachmentTable(attachments, frameStart: frameStart)
        writer.finishFrame(startingAt: frameStart)
        defer {
            writer.bytes = []
            writer.attachments = []
        }
        return OutgoingFrame(
            bytes: writer.bytes, attachments: attachments, keepsWhole: packedItems != nil && attachments.count == 1)
    }
}
