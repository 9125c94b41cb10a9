// Chunks of plain numbers run where they lie: a worker runs a task frame's packed items from its
// task ring and stores the results in place in its result ring (WorkerLoop's `runInPlace`); the
// parts that make it possible (room reserved in a ring and published, a reader that hands out a
// frame whose items stay in the ring, task frames that go into a ring whole or wait); and the
// parent making its workers' task rings present while idle (TaskRingPrefault.swift).

import MultiprocessingTestSupport
import Synchronization
import Testing

@testable import Multiprocessing

@Suite("Chunks run in place", .offCooperativePool)
struct InPlaceChunkTests {
    private func pattern(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &+ seed) &* 2_654_435_761 >> 7) }
    }

    /// Reads everything the ring has now.
    private func readAll(_ ring: SharedRing, upTo count: Int = 64 * 1024) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let n = buffer.withUnsafeMutableBytes { ring.read(into: $0.baseAddress!, count: $0.count) }
        return n > 0 ? Array(buffer[..<n]) : []
    }

    /// Stores `bytes` into `reservation` and publishes it.
    private func publish(_ bytes: [UInt8], in reservation: SharedRing.Reservation, _ ring: SharedRing) {
        bytes.withUnsafeBytes { reservation.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        ring.publish(reservation)
    }

    /// A task frame of `pairs` attached as its packed items.
    private func taskFrame(_ pairs: [(Int, Int)]) -> OutgoingFrame {
        var builder = TaskFrameBuilder(
            job: JobID(rawValue: 7), chunkIndex: 3, functionName: "add", signature: 42, stopOnError: true,
            packedStride: MemoryLayout<(Int, Int)>.stride)
        builder.attachPacked(pairs[...])
        return builder.finishWithAttachments()
    }

    @Test(
        "Room reserved in a ring is published whole, at the ring's start when it is drained, and never across its end")
    func reserveAndPublish() throws {
        let stream = try RingStream(capacity: 64 * 1024)
        let ring = stream.ring
        let first = pattern(10_000, seed: 1)
        let room = try #require(ring.reserve(first.count))
        #expect(room.pointer == ring.dataStart)
        // Nothing shows before it is published.
        #expect(ring.isEmpty)
        publish(first, in: room, ring)
        #expect(readAll(ring) == first)
        // Drained, at 10,000: a message that fits before the position goes at the start.
        let second = pattern(8000, seed: 2)
        let atStart = try #require(ring.reserve(second.count))
        #expect(atStart.pointer == ring.dataStart && atStart.skipFrom != nil)
        publish(second, in: atStart, ring)
        #expect(readAll(ring) == second)
        // Not drained, at 48,000: 25,536 bytes are free, 17,536 of them before the ring's end.
        #expect(pattern(40_000, seed: 3).withUnsafeBytes { ring.write($0) } == 40_000)
        #expect(ring.reserve(20_000) == nil)
        #expect(!ring.fitsWhole(20_000))
        let tail = try #require(ring.reserve(17_000))
        #expect(tail.pointer == ring.dataStart + 48_000)
        #expect(LocalTransport.takesWhole(17_000, ring) && !LocalTransport.takesWhole(20_000, ring))
        _ = readAll(ring)
        // Drained: a frame that keeps whole goes, whether it fits in one piece or not.
        #expect(LocalTransport.takesWhole(20_000, ring) && LocalTransport.takesWhole(60_000, ring))
        // Positions a broken worker wrote: no room, and a frame that keeps whole goes to the write,
        // which finds them corrupt (the worker is then killed), rather than waiting for ever.
        stream.overwritePositions(tail: 100, head: 1 << 40)
        #expect(ring.reserve(10) == nil)
        #expect(LocalTransport.takesWhole(20_000, ring))
    }

    @Test("A task frame of attached packed items is marked to go into a ring whole; other frames are not")
    func framesThatKeepWhole() {
        #expect(taskFrame([(1, 2), (3, 4)]).keepsWhole)
        var builder = TaskFrameBuilder(
            job: JobID(rawValue: 1), chunkIndex: 0, functionName: "add", signature: 42, stopOnError: true,
            packedStride: MemoryLayout<(Int, Int)>.stride)
        builder.appendPacked([(1, 2), (3, 4)][...])
        #expect(!builder.finishWithAttachments().keepsWhole)
    }

    @Test(
        "The reader hands out a frame whose packed items stay in the ring until freed; the usual way when they would wrap"
    )
    func readerLeavesItemsInRing() throws {
        let stream = try RingStream(capacity: 64 * 1024)
        let ring = stream.ring
        let pairs = (0..<2000).map { ($0, 3 * $0) }
        let expected = pairs.withUnsafeBytes { Array($0) }
        let writer = ResultWriter(ring: ring, doorbell: stream.doorbell.writeEnd)
        writer.send(taskFrame(pairs))
        var reader = stream.reader()
        reader.takesPackedItemsInPlace = true
        let frame = try #require(try reader.next())
        #expect(frame.attachments.isEmpty)
        var body = frame.bodyReader
        let header = try TaskHeader.read(from: &body)
        #expect(header.packedItemsAttached && header.itemCount == 2000 && header.chunkIndex == 3)
        let items = try #require(reader.itemsInRing)
        #expect(Array(items) == expected)
        // Still the reader's until freed.
        #expect(!ring.isEmpty)
        reader.releaseItemsInRing()
        #expect(ring.isEmpty && reader.itemsInRing == nil)

        // At about 32 KB of 64 KiB, drained: a message of about 40 KB fits neither before the
        // position nor before the ring's end, so its items wrap: they come as the frame's attachment.
        let wrapping = (0..<2500).map { ($0, $0) }
        writer.send(taskFrame(wrapping))
        let second = try #require(try reader.next())
        #expect(reader.itemsInRing == nil)
        #expect(second.attachments.count == 1)
        #expect(second.attachments.first == wrapping.withUnsafeBytes { Array($0) })
        #expect(ring.isEmpty)
    }

    /// Why the pool tests are skipped on the cluster backend.
    static let inPlaceComment: Comment =
        "checks the local data plane: a cluster pool's chunks cross its node agents"

    @Test(
        "Through a pool: chunks of plain numbers run from the ring, their results in place; a call that throws sends its error the usual way",
        .disabled(if: TestBackend.isCluster, inPlaceComment))
    func throughAPool() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.terminate() }
        let before = try await pool.apply(F.servedInPlace)
        // Four chunks of 80 KB of arguments, and their 80 KB of results.
        let squares = try await pool.map(F.square, 0..<40_000, chunksize: 10_000)
        #expect(squares == (0..<40_000).map { $0 * $0 })
        let after = try await pool.apply(F.servedInPlace)
        #expect(after[2] == before[2])
        #expect(after[0] - before[0] == 4)
        #expect(after[1] - before[1] == 4)
        // Attached packed items the packed loop does not run (an async body, results that are
        // not plain): copied out of the ring, the usual way.
        #expect(
            try await pool.map(F.packedAsyncFailNegative, 0..<20_000, chunksize: 10_000) == (0..<20_000).map { $0 &* 5 }
        )
        #expect(try await pool.map(F.packedLabel, 0..<10_000, chunksize: 10_000) == (0..<10_000).map { "#\($0)" })
        #expect(try await pool.apply(F.servedInPlace)[0] == after[0])
        // A chunk run in place whose sixth call throws: the error, the results the usual way.
        await #expect(throws: RemoteError.self) { try await pool.map(F.failOnFive, 0..<10_000, chunksize: 10_000) }
        let failed = try await pool.apply(F.servedInPlace)
        #expect(failed[0] - after[0] == 1)
        #expect(failed[1] == after[1])
    }

    @Test(
        "With maxMemoryPerChild, a chunk runs in place and its results go after the memory check, the usual way",
        .disabled(if: TestBackend.isCluster, inPlaceComment))
    func inPlaceWithMemoryBound() async throws {
        var configuration = TestPools.configuration(processes: 1)
        configuration.maxMemoryPerChild = 1 << 40
        let pool = try TestPools.make(configuration)
        defer { pool.terminate() }
        let before = try await pool.apply(F.servedInPlace)
        #expect(try await pool.map(F.square, 0..<20_000, chunksize: 10_000) == (0..<20_000).map { $0 * $0 })
        let after = try await pool.apply(F.servedInPlace)
        #expect(after[0] - before[0] == 2)
        #expect(after[1] == before[1])
    }

    @Test(
        "Run in place, a chunk's outcomes are those of the usual way: values stored at the output, or values and errors in order",
        arguments: [true, false])
    func inPlaceOutcomesMatchTheUsualWay(stopOnError: Bool) throws {
        let items = Array(0..<3000)
        let header = TaskHeader(
            job: 1, chunkIndex: 0, signature: F.failOnFive.signatureFingerprint, stopOnError: stopOnError,
            functionName: F.failOnFive.name, itemCount: items.count, packedStride: 8)
        let runner: any ChunkRunner = F.failOnFive
        #expect(runner.packedResultStride(forItemsOf: header, itemBytes: items.count * 8) == 8)
        #expect(runner.packedResultStride(forItemsOf: header, itemBytes: items.count * 8 - 1) == nil)
        // The usual way: the items in a frame's body.
        var usual = ResultFrameBuilder(job: 1, chunkIndex: 0)
        var reader = ByteReader(items.withUnsafeBytes { Array($0) })
        try runner.runChunkSynchronously(&reader, header: header, into: &usual)
        let expected = usual.finish()
        // In place, with and without room for the results.
        for withOutput in [true, false] {
            var results = ResultFrameBuilder(job: 1, chunkIndex: 0)
            var output = [Int](repeating: -1, count: items.count)
            let stored = items.withUnsafeBytes { input in
                output.withUnsafeMutableBytes { out in
                    runner.runPackedItems(
                        input.baseAddress!, header: header, output: withOutput ? out.baseAddress! : nil, into: &results)
                }
            }
            #expect(!stored)
            #expect(results.finish() == expected)
        }
        // A chunk that does not throw: every result at the output.
        var results = ResultFrameBuilder(job: 1, chunkIndex: 0)
        let fine = Array(6..<3006)
        var output = [Int](repeating: -1, count: fine.count)
        let stored = fine.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out in
                runner.runPackedItems(
                    input.baseAddress!,
                    header: TaskHeader(
                        job: 1, chunkIndex: 0, signature: header.signature, stopOnError: stopOnError,
                        functionName: header.functionName, itemCount: fine.count, packedStride: 8),
                    output: out.baseAddress!, into: &results)
            }
        }
        #expect(stored)
        #expect(output == fine)
        #expect(results.itemCount == 0)
    }

    @Test("A frame of packed results written in place is the frame the builder makes, byte for byte")
    func packedPrefixMatchesTheBuilder() {
        let values = (0..<300).map { $0 * 7 }
        var builder = ResultFrameBuilder(job: 9, chunkIndex: 4)
        builder.setPacked(values)
        builder.setRunDuration(nanoseconds: 0x1234_5678_9abc)
        let expected = builder.finish()
        var frame = [UInt8](repeating: 0, count: ResultFrameBuilder.packedPrefixSize + values.count * 8)
        frame.withUnsafeMutableBytes { raw in
            ResultFrameBuilder.writePackedPrefix(
                into: raw.baseAddress!, job: 9, chunkIndex: 4, count: values.count, stride: 8,
                runNanoseconds: 0x1234_5678_9abc)
            values.withUnsafeBytes {
                (raw.baseAddress! + ResultFrameBuilder.packedPrefixSize).copyMemory(
                    from: $0.baseAddress!, byteCount: $0.count)
            }
        }
        #expect(frame == expected)
        #expect(ResultFrameBuilder.packedPrefixSize == DirectResults.prefixSize)
    }

    @Test(
        "The parent makes a ready worker's task ring present in its own mapping while idle", .timeLimit(.minutes(1)),
        .disabled(if: TestBackend.isCluster, TestBackend.needsLocalWorkers))
    func parentPrefaultsTaskRings() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.terminate() }
        _ = try await pool.apply(F.square, 3)
        let transport = try #require(pool.core.transport as? LocalTransport)
        var extent = 0
        var capacity = 1
        for _ in 0..<500 {
            (extent, capacity) = transport.channels.withLock { channels in
                var found = (0, 1)
                for (_, channel) in channels.table { found = (channel.presentExtent, channel.shared.tasks.capacity) }
                return found
            }
            if extent == capacity { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(extent == capacity)
    }
}
