// Attachments: a large `[UInt8]` argument or result travels after its frame and is read into an
// array of its own. The frames must still come out whole, in order, at any split of the stream;
// a corrupt attachment table must be a clear protocol error; a cut attachment a partial frame.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A result frame of `values` (attached when large) as it goes on the pipe: frame, then attachments.
private func resultWire(_ values: [[UInt8]], job: UInt64 = 1) throws -> (wire: [UInt8], attachments: Int) {
    var builder = ResultFrameBuilder(job: job, chunkIndex: 0, attachingLargeBytes: true)
    for value in values { builder.appendValue(value, functionName: "f") }
    let frame = builder.finishWithAttachments()
    return (
        try frame.attachments.reduce(frame.bytes) { wire, part in wire + (try part.withBytes { Array($0) }) },
        frame.attachments.count
    )
}

/// Reads every frame of `wire` written `chunk` bytes at a time (from another thread).
private func readAll(_ wire: [UInt8], chunk: Int) throws -> (frames: [FrameAccumulator.Frame], partial: Bool) {
    let pipe = try FramePipe()
    defer { pipe.close() }
    let writer = Thread {
        var start = 0
        while start < wire.count {
            pipe.write(Array(wire[start..<min(start + chunk, wire.count)]))
            start += chunk
        }
        pipe.closeWriter()
    }
    var accumulator = FrameAccumulator()
    var frames: [FrameAccumulator.Frame] = []
    var open = true
    while open {
        open = try accumulator.read(from: pipe.readFD, into: &frames)
        if open { usleep(100) }
    }
    writer.join()
    return (frames, accumulator.hasPartialFrame)
}

private func decodedResults(_ frame: FrameAccumulator.Frame) throws -> [[UInt8]] {
    var reader = frame.bodyReader
    let header = try ResultHeader.read(from: &reader)
    return try ResultItems.decode(
        reader, header: header, expected: header.itemCount, as: [UInt8].self, functionName: "f", workerPID: 1
    ).map { try $0.get() }
}

@Suite("Attachments", .offCooperativePool) struct AttachmentTests {
    static let large = (0..<(3 * Attachments.threshold + 5)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    static let atThreshold = [UInt8](repeating: 3, count: Attachments.threshold)
    static let small = [UInt8](repeating: 9, count: Attachments.threshold - 1)

    @Test(
        "Large byte values travel after the frame and come back whole, at any split of the stream",
        arguments: [1, 4096, 65_536, 1 << 20])
    func roundTrip(chunk: Int) throws {
        let values = [Self.large, Self.small, Self.atThreshold, [], Self.large]
        let one = try resultWire(values, job: 1)
        #expect(one.attachments == 3)  // the two large ones and the one at the threshold
        let two = try resultWire([Self.small], job: 2)
        #expect(two.attachments == 0)
        let (frames, partial) = try readAll(one.wire + two.wire + one.wire, chunk: chunk)
        #expect(!partial)
        #expect(frames.count == 3)
        #expect(try decodedResults(frames[0]) == values)
        #expect(try decodedResults(frames[1]) == [Self.small])
        #expect(try decodedResults(frames[2]) == values)
        #expect(frames[0].attachments.count == 3 && frames[1].attachments.isEmpty)
    }

    @Test("An attachment cut short leaves a partial frame")
    func cutAttachment() throws {
        let (wire, _) = try resultWire([Self.large])
        let (frames, partial) = try readAll(Array(wire.dropLast(10)), chunk: 1 << 16)
        #expect(frames.isEmpty && partial)
    }

    @Test("A corrupt attachment table is a protocol error")
    func corruptTable() throws {
        func frameWithTable(_ table: [UInt8]) -> [UInt8] {
            var writer = ByteWriter()
            let start = writer.beginFrame(.result)
            writer.writeBytes([1, 2, 3] + table)
            writer.finishFrame(startingAt: start)
            writer.bytes[start + FrameLimits.headerSize] |= Attachments.flag
            return writer.bytes
        }
        func count(_ n: UInt32) -> [UInt8] { withUnsafeBytes(of: n.littleEndian) { Array($0) } }
        func length(_ n: UInt64) -> [UInt8] { withUnsafeBytes(of: n.littleEndian) { Array($0) } }
        let corrupt: [[UInt8]] = [
            frameWithTable(count(0)),  // flagged, but no attachments
            frameWithTable(count(5)),  // more entries than the frame holds
            frameWithTable(count(UInt32(Attachments.maxCount + 1))),
            frameWithTable(length(UInt64(FrameLimits.maxLength) + 1) + count(1)),  // too long
        ]
        for wire in corrupt {
            #expect(throws: FrameError.self) { _ = try readAll(wire, chunk: 1 << 16) }
        }
    }

    @Test("A value refers to an attachment the frame has, of its own type")
    func danglingReference() throws {
        var writer = ByteWriter()
        writer.writeUInt8(WireTag.attachedBytes)
        writer.writeVarint(0)
        var reader = ByteReader(writer.bytes)
        #expect(throws: FrameError.self) { _ = try WireCoding.decode([UInt8].self, from: &reader) }
        var typed = ByteReader(writer.bytes, attachments: [[1, 2]])
        #expect(throws: FrameError.self) { _ = try WireCoding.decode(String.self, from: &typed) }
        var good = ByteReader(writer.bytes, attachments: [[1, 2]])
        #expect(try WireCoding.decode([UInt8].self, from: &good) == [1, 2])
    }

    @Test("An item that fails to encode takes its attachments with it")
    func failedItem() throws {
        struct Refused: Error {}
        var builder = TaskFrameBuilder(
            job: JobID(rawValue: 1), chunkIndex: 0, functionName: "f", signature: 1, stopOnError: true,
            attachingLargeBytes: true)
        try builder.appendItem { writer in try WireCoding.encode(Self.small, into: &writer) }
        #expect(throws: Refused.self) {
            try builder.appendItem { writer in
                try WireCoding.encode(Self.large, into: &writer)
                throw Refused()
            }
        }
        let frame = builder.finishWithAttachments()
        #expect(frame.attachments.isEmpty && builder.itemCount == 1)
    }

    @Test("A frame and its attachments are written part by part, from any offset")
    func unwrittenParts() throws {
        let frame = OutgoingFrame(bytes: [1, 2, 3], attachments: [[4, 5], [], [6]].map(OutgoingAttachment.init))
        #expect(frame.count == 6)
        let rest = try (0..<6).map { offset in try frame.withUnwritten(after: offset) { Array($0) } }
        #expect(rest == [[1, 2, 3], [2, 3], [3], [4, 5], [5], [6]])
    }

    @Test("A chunk's packed items of 64 KiB or more travel as its attachment, written from the caller's array")
    func packedItemsAttached() throws {
        func encoded(_ count: Int) throws -> (TaskHeader, OutgoingFrame) {
            let pairs = (0..<count).map { ($0, -$0) }
            let (chunks, _) = try Pool.encodeChunks(
                pairs, chunksize: count, job: JobID(rawValue: 1), functionName: F.packedMulAdd.name,
                signature: F.packedMulAdd.signatureFingerprint, stopOnError: true, timeout: nil,
                packedStride: F.packedMulAdd.packedArgumentStride,
                encode: { item, writer in try F.packedMulAdd.encodeArguments(item.0, item.1, into: &writer) })
            var reader = ByteReader(chunks[0].payload.bytes, offset: 5)
            return (try TaskHeader.read(from: &reader), chunks[0].payload)
        }
        let stride = MemoryLayout<(Int, Int)>.stride
        let (big, bigFrame) = try encoded(Attachments.threshold / stride)
        #expect(big.packedItemsAttached && big.packedStride == stride)
        #expect(bigFrame.attachments.map(\.count) == [Attachments.threshold])
        #expect(bigFrame.bytes.count < 100)
        let (small, smallFrame) = try encoded(Attachments.threshold / stride - 1)
        #expect(!small.packedItemsAttached && smallFrame.attachments.isEmpty)
    }

    @Test("Through a pool: packed items attached or inline give the same results", .timeLimit(.minutes(1)))
    func packedThroughPool() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let pairs = (0..<50_000).map { ($0, $0 % 97) }
        let expected = pairs.map { $0.0 &* 31 &+ $0.1 }
        #expect(try await pool.starmap(F.packedMulAdd, pairs, chunksize: 20_000) == expected)
        #expect(try await pool.starmap(F.packedMulAdd, pairs, chunksize: 100) == expected)
    }

    @Test("Through a pool: large byte arguments and results, alone and in chunks", .timeLimit(.minutes(1)))
    func throughPool() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let blobs = [Self.large, Self.small, Self.atThreshold, [], Array(Self.large.reversed())]
        #expect(try await pool.map(F.echoBytes, blobs, chunksize: 2) == blobs)
        // Frames whose attachments do not fit the pipe at once: written over many turns.
        let huge = (0..<(5 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 1) }
        let hugeBlobs = [huge, Self.small, Array(huge.reversed()), huge]
        #expect(try await pool.map(F.echoBytes, hugeBlobs, chunksize: 2) == hugeBlobs)
        #expect(try await pool.apply(F.echoBytes, Self.large) == Self.large)
        let blocking = try await onThread { try pool.apply(F.echoBytes, Self.atThreshold) }.get()
        #expect(blocking == Self.atThreshold)
    }
}
