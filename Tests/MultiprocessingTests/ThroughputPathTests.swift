// The fast paths of many small items (issue 14): plain results copied once, from their frame
// straight into the caller's array (ListSink.swift, `ResultItems.copyPacked`); a worker's packed
// results stored straight into their frame (`ResultFrameBuilder.fillPacked`); and a stream's input
// pulled into its batch in place (`Pool.batches(of:)`). Each is checked against what the slower
// path gives, on the cases where the fast path must fall back or refuse.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

/// A result frame's body after its header, for chunk `index` of packed `values`.
private func packedResults<T>(_ values: [T], chunk index: UInt64 = 0) throws -> (ResultHeader, ByteReader) {
    var builder = ResultFrameBuilder(job: 1, chunkIndex: index)
    builder.setPacked(values)
    let bytes = builder.finish()
    var reader = ByteReader(bytes, offset: 5)
    return (try ResultHeader.read(from: &reader), reader)
}

/// A result frame's body after its header, for chunk `index` of `values` encoded one by one.
private func encodedResults<T: Encodable>(_ values: [T], chunk index: UInt64 = 0) throws -> (ResultHeader, ByteReader) {
    var builder = ResultFrameBuilder(job: 1, chunkIndex: index)
    for value in values { builder.appendValue(value, functionName: "f") }
    let bytes = builder.finish()
    var reader = ByteReader(bytes, offset: 5)
    return (try ResultHeader.read(from: &reader), reader)
}

private func makeSink<R: Decodable & Sendable>(_: R.Type, chunkSizes: [Int]) -> ListSink<R, [R]> {
    ListSink<R, [R]>(
        functionName: "f", chunkSizes: chunkSizes, makeValue: { $0 }, callback: nil, errorCallback: nil,
        callbacks: CallbackExecutor(poolStopped: Completion()))
}

@Suite("Throughput paths", .offCooperativePool) struct ThroughputPathTests {
    @Test("copyPacked copies packed results into place, and refuses the wrong stride or count untouched")
    func copyPackedIntoPlace() throws {
        let values: [Int32] = [7, -1, .max, .min]
        let (header, reader) = try packedResults(values)
        var destination = [Int32](repeating: 0, count: 6)
        let copied = destination.withUnsafeMutableBytes { raw in
            ResultItems.copyPacked(
                reader, header: header, expected: 4, as: Int32.self,
                into: UnsafeMutableRawBufferPointer(rebasing: raw[4..<20]))
        }
        #expect(copied)
        #expect(destination == [0, 7, -1, .max, .min, 0])

        // Read as Int (another stride), with another count, or not packed: nothing written.
        var untouched = [Int](repeating: 9, count: 4)
        let asInt = untouched.withUnsafeMutableBytes {
            ResultItems.copyPacked(reader, header: header, expected: 2, as: Int.self, into: $0)
        }
        #expect(!asInt)
        var fewer = [Int32](repeating: 9, count: 4)
        let wrongCount = fewer.withUnsafeMutableBytes {
            ResultItems.copyPacked(reader, header: header, expected: 3, as: Int32.self, into: $0)
        }
        #expect(!wrongCount)
        let (encodedHeader, encoded) = try encodedResults(values)
        let notPacked = fewer.withUnsafeMutableBytes {
            ResultItems.copyPacked(encoded, header: encodedHeader, expected: 4, as: Int32.self, into: $0)
        }
        #expect(!notPacked)
        #expect(untouched == [9, 9, 9, 9] && fewer == [9, 9, 9, 9])

        // A count that claims more than the frame holds.
        var lying = header
        lying.itemCount = 5
        var room = [Int32](repeating: 9, count: 5)
        let overrun = room.withUnsafeMutableBytes {
            ResultItems.copyPacked(reader, header: lying, expected: 5, as: Int32.self, into: $0)
        }
        #expect(!overrun && room == [9, 9, 9, 9, 9])
    }

    @Test("A list of plain results is filled in place from chunks in any order, packed or not")
    func listFilledInPlace() throws {
        let sink = makeSink(Int.self, chunkSizes: [3, 2, 4])
        let (h2, r2) = try packedResults([6, 7, 8, 9], chunk: 2)
        sink.deliver(index: 2, header: h2, items: r2, workerPID: 1)
        // A chunk whose values came one by one (not packed) goes to its place too.
        let (h0, r0) = try encodedResults([0, 1, 2], chunk: 0)
        sink.deliver(index: 0, header: h0, items: r0, workerPID: 1)
        #expect(!sink.isSettled)
        let (h1, r1) = try packedResults([4, 5], chunk: 1)
        sink.deliver(index: 1, header: h1, items: r1, workerPID: 1)
        // A chunk delivered twice keeps its first results.
        let (again, againItems) = try packedResults([-4, -5], chunk: 1)
        sink.deliver(index: 1, header: again, items: againItems, workerPID: 1)
        sink.finish()
        #expect(try sink.completion.outcome?.get(as: [Int].self) == [0, 1, 2, 4, 5, 6, 7, 8, 9])
        #expect(sink.progress.snapshot.completed == 9)
    }

    @Test("A list of plain results fails when a chunk never came, or came unreadable")
    func listInPlaceFailures() throws {
        let missing = makeSink(Double.self, chunkSizes: [2, 2])
        let (h0, r0) = try packedResults([1.5, 2.5], chunk: 0)
        missing.deliver(index: 0, header: h0, items: r0, workerPID: 1)
        missing.finish()
        #expect(throws: PoolError.self) { try missing.completion.outcome?.get(as: [Double].self) }
        #expect(missing.completion.outcome?.error.flatMap(poolCode) == .workerLost)

        // Int32 results where Doubles are expected: the stride does not match.
        let unreadable = makeSink(Double.self, chunkSizes: [2])
        let (h, r) = try packedResults([Int32(1), 2], chunk: 0)
        unreadable.deliver(index: 0, header: h, items: r, workerPID: 1)
        unreadable.finish()
        #expect(unreadable.completion.outcome?.error.flatMap(poolCode) == .encodingFailed)
    }

    @Test("A worker's packed results are filled into their frame, and taken back to go item by item")
    func fillPackedAndTakeBack() throws {
        var builder = ResultFrameBuilder(job: 1, chunkIndex: 0)
        builder.fillPacked(stride: 8, count: 3) { raw in
            for index in 0..<3 { raw.storeBytes(of: index * 10, toByteOffset: index * 8, as: Int.self) }
        }
        var copy = builder
        let filled = try {
            let bytes = copy.finish()
            var reader = ByteReader(bytes, offset: 5)
            let header = try ResultHeader.read(from: &reader)
            return ResultItems.packedValues(reader, header: header, expected: 3, as: Int.self)
        }()
        #expect(filled == [0, 10, 20])

        let taken = builder.unsetPacked()
        #expect(taken.count == 24)
        #expect(taken.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: Int.self) } == 20)
        builder.appendValue(5, functionName: "f")
        let bytes = builder.finish()
        var reader = ByteReader(bytes, offset: 5)
        let header = try ResultHeader.read(from: &reader)
        #expect(!header.packed && header.itemCount == 1)
        let outcomes = ResultItems.decode(
            reader, header: header, expected: 1, as: Int.self, functionName: "f", workerPID: 1)
        #expect(outcomes.compactMap { try? $0.get() } == [5])
    }

    @Test("map's default chunks of plain numbers hold at most 2 MiB of arguments; others follow CPython")
    func defaultChunksOfPlainNumbers() {
        // 1e6 pairs of Int on 2 workers: CPython's 125 000 a chunk (2 MB, under the cap).
        #expect(Chunking.defaultChunksize(itemCount: 1_000_000, processes: 2, packedStride: 16) == 125_000)
        // 1e7 pairs: 131 072 (2 MiB), not CPython's 1 250 000; encoded items follow CPython.
        #expect(Chunking.defaultChunksize(itemCount: 10_000_000, processes: 2, packedStride: 16) == 131_072)
        #expect(Chunking.defaultChunksize(itemCount: 10_000_000, processes: 2, packedStride: nil) == 1_250_000)
        // Below the cap, CPython's rule; a stride above the cap, one item a chunk.
        #expect(Chunking.defaultChunksize(itemCount: 1000, processes: 2, packedStride: 8) == 125)
        #expect(Chunking.defaultChunksize(itemCount: 1000, processes: 2, packedStride: 4 << 20) == 1)
        #expect(Chunking.defaultChunksize(itemCount: 0, processes: 2, packedStride: 8) == 1)
    }

    @Test("A stream reads more input once a quarter of its window is free, not after every chunk")
    func refillByQuarters() {
        var sm = StreamStateMachine<String>(ordered: true, window: 8, chunksize: 10)
        while let index = sm.nextChunkToFeed { sm.chunkSubmitted(index: index, count: 10) }
        #expect(!sm.wantsRefill)
        sm.chunkConsumed(items: 10)
        #expect(!sm.wantsRefill)
        sm.chunkConsumed(items: 10)
        #expect(sm.wantsRefill)
        // A small window refills after every chunk; an input that ended, never.
        var small = StreamStateMachine<String>(ordered: true, window: 2, chunksize: 10)
        while let index = small.nextChunkToFeed { small.chunkSubmitted(index: index, count: 10) }
        small.chunkConsumed(items: 10)
        #expect(small.wantsRefill)
        small.inputEnded()
        #expect(!small.wantsRefill)
    }

    @Test(
        "After the last item of a chunk, the next ready chunk is loaded: its first item comes on the fast path",
        .timeLimit(.minutes(1)))
    func nextChunkPreloaded() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let stream = try pool.imap(TestFunctions.square, [1, 2, 3, 4, 5, 6], chunksize: 2)
        // Every chunk in, so that chunk 1 is ready when the last item of chunk 0 is taken.
        while !stream.storage.isComplete { try await Task.sleep(for: .milliseconds(5)) }
        #expect(try stream.next() == 1)
        #expect(try stream.next() == 4)
        #expect(stream.storage.nextBuffered() == 9)
        #expect(try stream.next() == 16)
        #expect(stream.storage.nextBuffered() == 25)
        #expect(try stream.next() == 36)
        #expect(try stream.next() == nil)
    }

    @Test("A stream's input is pulled in whole batches, past 64 Ki items, and never past its end")
    func batchesPullInPlace() {
        /// Counts the calls of `next()` made after it returned nil.
        final class Counter: @unchecked Sendable { var afterEnd = 0 }
        struct Counting: Sequence, IteratorProtocol {
            var remaining: Int
            let counter: Counter
            mutating func next() -> Int? {
                guard remaining > 0 else {
                    counter.afterEnd += 1
                    return nil
                }
                remaining -= 1
                return remaining
            }
        }
        let counter = Counter()
        let pull = Pool.batches(of: Counting(remaining: 100_005, counter: counter))
        var batch: [Int] = []
        pull(&batch, 70_000)
        #expect(batch.count == 70_000)
        #expect(batch.first == 100_004 && batch.last == 30_005)
        // A batch not emptied is topped up by appending.
        pull(&batch, 70_002)
        #expect(batch.count == 70_002 && batch.last == 30_003)
        batch.removeAll(keepingCapacity: true)
        pull(&batch, 50_000)
        #expect(batch.count == 30_003 && batch.last == 0)
        #expect(counter.afterEnd == 1)
        batch.removeAll()
        pull(&batch, 10)
        pull(&batch, 10)
        #expect(batch.isEmpty)
        #expect(counter.afterEnd == 1)
    }
}
