// Packed results straight from a worker's result ring into their list (DirectResults.swift): a
// frame whole in the ring is copied into its place once, across the ring's end too, and freed;
// anything else (a frame not yet whole, one its sink does not take) stays in the ring for the
// frame accumulator; the list's sink takes only what fits its chunk; a pool's `starmap` takes
// that path and gets the right values.

import MultiprocessingTestSupport
import Synchronization
import Testing

@testable import Multiprocessing

/// A target that keeps what it is given (or refuses it).
private final class RecordingTarget: DirectResultTarget, @unchecked Sendable {
    let accept: Bool
    let lock = Mutex<[(index: Int, values: [Int])]>([])
    init(accept: Bool = true) { self.accept = accept }

    func takeDirectly(index: Int, count: Int, stride: Int, _ copy: (UnsafeMutableRawPointer) -> Void) -> Bool {
        guard accept, stride == MemoryLayout<Int>.stride else { return false }
        let values = [Int](unsafeUninitializedCapacity: count) { buffer, initialized in
            copy(UnsafeMutableRawPointer(buffer.baseAddress!))
            initialized = count
        }
        lock.withLock { $0.append((index, values)) }
        return true
    }

    var taken: [(index: Int, values: [Int])] { lock.withLock { $0 } }
}

/// The result frame a worker sends for chunk `index` of job `job`: `values`, packed.
private func packedFrame(_ values: [Int], job: UInt64 = 7, index: UInt64 = 3) -> [UInt8] {
    var builder = ResultFrameBuilder(job: job, chunkIndex: index)
    builder.setPacked(values)
    builder.setRunDuration(nanoseconds: 12345)
    return builder.finish()
}

private func head(_ ring: SharedRing) -> UInt64 { (ring.control + 64).load(as: UInt64.self) }

/// Writes `count` bytes and reads them back: the ring's positions move on by `count`.
private func advance(_ ring: SharedRing, by count: Int) {
    let filler = [UInt8](repeating: 0xEE, count: count)
    #expect(filler.withUnsafeBytes { ring.write($0) } == count)
    var sink = [UInt8](repeating: 0, count: count)
    #expect(sink.withUnsafeMutableBytes { ring.read(into: $0.baseAddress!, count: count) } == count)
}

@Suite("Results straight into their list", .offCooperativePool)
struct DirectResultsTests {
    @Test("A packed result frame whole in the ring, across its end, is copied once into its target and freed")
    func wholeFrameAcrossTheEnd() throws {
        let stream = try RingStream(capacity: 64 * 1024)
        let ring = stream.ring
        // 48,038 bytes from position 30,000 of a 65,536-byte ring: it wraps (too big to start over).
        advance(ring, by: 30000)
        let values: [Int] = (0..<6000).map { $0 &* 2_654_435_761 }
        let frame = packedFrame(values)
        #expect(frame.withUnsafeBytes { ring.write($0) } == frame.count)
        #expect(head(ring) == 30000)

        let target = RecordingTarget()
        var frames: [FrameAccumulator.Frame] = []
        DirectResults.take(from: ring, target: { $0 == 7 ? target : nil }, into: &frames)

        #expect(target.taken.count == 1)
        #expect(target.taken.first?.index == 3)
        #expect(target.taken.first?.values == values)
        #expect(ring.isEmpty)
        #expect(head(ring) == 30000 + UInt64(frame.count))
        // What goes on to the scheduler: the header alone, marked as delivered.
        #expect(frames.count == 1)
        let delivered = try #require(frames.first)
        #expect(delivered.deliveredDirectly)
        #expect(delivered.kind == FrameKind.result.rawValue)
        var body = delivered.bodyReader
        let header = try ResultHeader.read(from: &body)
        #expect(header.job == 7 && header.chunkIndex == 3 && header.itemCount == 6000)
        #expect(header.packed && !header.anyFailed && header.runNanoseconds == 12345)
        #expect(body.remaining == 0)
    }

    @Test("A frame not yet whole, one its target refuses, or one of no registered job stays in the ring")
    func otherFramesStay() throws {
        let stream = try RingStream(capacity: 256 * 1024)
        let ring = stream.ring
        let values = Array(0..<8192)
        let frame = packedFrame(values)
        // Half of it: a worker still writing (or one that died mid-frame).
        let half = frame.count / 2
        #expect(frame.withUnsafeBytes { ring.write(UnsafeRawBufferPointer(rebasing: $0[..<half])) } == half)
        let target = RecordingTarget()
        var frames: [FrameAccumulator.Frame] = []
        DirectResults.take(from: ring, target: { _ in target }, into: &frames)
        #expect(target.taken.isEmpty && frames.isEmpty && head(ring) == 0)

        // Whole now, but refused, or nobody's: still there.
        let rest = frame.withUnsafeBytes { ring.write(UnsafeRawBufferPointer(rebasing: $0[half...])) }
        #expect(rest == frame.count - half)
        let refusing = RecordingTarget(accept: false)
        DirectResults.take(from: ring, target: { _ in refusing }, into: &frames)
        DirectResults.take(from: ring, target: { _ in nil }, into: &frames)
        #expect(frames.isEmpty && head(ring) == 0)

        // The frame accumulator then reads it the usual way, whole.
        var accumulator = FrameAccumulator()
        var source = RingSource(ring: ring, wake: .futex)
        _ = try accumulator.read(from: &source, into: &frames)
        #expect(frames.count == 1 && !frames[0].deliveredDirectly)
        #expect(Array(frames[0].bytes) == Array(frame[4...]))
    }

    @Test("Frames under the smallest payload, or with an error among their results, go the usual way")
    func smallOrFailedFramesStay() throws {
        let stream = try RingStream(capacity: 256 * 1024)
        let ring = stream.ring
        let small = packedFrame(Array(0..<100))
        #expect(small.withUnsafeBytes { ring.write($0) } == small.count)
        let target = RecordingTarget()
        var frames: [FrameAccumulator.Frame] = []
        DirectResults.take(from: ring, target: { _ in target }, into: &frames)
        #expect(target.taken.isEmpty && head(ring) == 0)
        var builder = ResultFrameBuilder(job: 7, chunkIndex: 0)
        for value in 0..<5000 { builder.appendValue(value, functionName: "f") }
        builder.appendError(PoolError(.invalidArgument, "no"))
        let failed = builder.finish()
        var reader = [UInt8](repeating: 0, count: small.count)
        _ = reader.withUnsafeMutableBytes { ring.read(into: $0.baseAddress!, count: small.count) }
        #expect(failed.withUnsafeBytes { ring.write($0) } == failed.count)
        DirectResults.take(from: ring, target: { _ in target }, into: &frames)
        #expect(target.taken.isEmpty && frames.isEmpty)
    }

    @Test("The list's sink takes a chunk of its size and stride into its place, drops a duplicate, refuses the rest")
    func listSinkTakesItsChunks() throws {
        let sink = ListSink<Int, [Int]>(
            functionName: "f", chunkSizes: [3, 2], makeValue: { $0 }, callback: nil, errorCallback: nil,
            callbacks: CallbackExecutor(poolStopped: Completion()))
        func offer(_ index: Int, _ values: [Int], stride: Int = 8) -> (taken: Bool, copied: Bool) {
            var copied = false
            let taken = sink.takeDirectly(index: index, count: values.count, stride: stride) { destination in
                copied = true
                values.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
            return (taken, copied)
        }
        #expect(offer(0, [1, 2]) == (false, false))  // the wrong count
        #expect(offer(0, [1, 2, 3], stride: 4) == (false, false))  // the wrong stride
        #expect(offer(5, [1, 2, 3]) == (false, false))  // no such chunk
        #expect(offer(1, [40, 50]) == (true, true))
        #expect(offer(1, [0, 0]) == (true, false))  // a duplicate: dropped
        // The scheduler's event for it changes nothing; the other chunk comes the usual way.
        let header = ResultHeader(
            job: 1, chunkIndex: 1, itemCount: 2, anyFailed: false, packed: true, deliveredDirectly: true)
        sink.deliver(index: 1, header: header, items: ByteReader([]), workerPID: 1)
        var builder = ResultFrameBuilder(job: 1, chunkIndex: 0)
        builder.setPacked([10, 20, 30])
        let bytes = builder.finish()
        var reader = ByteReader(bytes, offset: 5)
        sink.deliver(index: 0, header: try ResultHeader.read(from: &reader), items: reader, workerPID: 1)
        sink.finish()
        guard case .success(let value)? = sink.completion.outcome else {
            Issue.record("the list did not complete")
            return
        }
        #expect(value as? [Int] == [10, 20, 30, 40, 50])
        // After the outcome: dropped, not copied.
        let late = offer(0, [0, 0, 0])
        #expect(late.taken && !late.copied)
    }

    @Test(
        "A sink left registered by a pool that is gone is never found for a later pool's job",
        .timeLimit(.minutes(1)))
    func leftoverSinkMatchesNoLaterPool() throws {
        let target = RecordingTarget()
        let first = try TestPools.make(processes: 1)
        let gone = first.core.serial
        // As a result handle kept past its pool would leave it (its sink not yet deinitialized).
        DirectResults.register(target, pool: gone, job: 1)
        defer { DirectResults.unregister(pool: gone, job: 1) }
        first.terminate()
        try first.join()
        // Many pools in turn: a core made at the address of the one that is gone (what a key by
        // address would confuse) still has a serial number of its own.
        for _ in 0..<4 {
            let later = try TestPools.make(processes: 1)
            #expect(later.core.serial != gone)
            #expect(DirectResults.target(pool: later.core.serial, job: 1) == nil)
            later.terminate()
            try later.join()
        }
        #expect(DirectResults.target(pool: gone, job: 1) === target)
    }

    @Test(
        "A starmap's large packed chunks go straight into the list, with the right values", .timeLimit(.minutes(1)),
        .disabled(
            if: TestBackend.isCluster,
            "on a cluster the workers' rings are read by node agents, which relay the frames to rank 0 as they are"))
    func starmapTakesThePath() throws {
        let pool = try TestPools.make(processes: 2)
        defer {
            pool.terminate()
            try? pool.join()
        }
        let pairs = (0..<300_000).map { ($0, 3) }
        let products = try pool.starmap(TestFunctions.mul, pairs)
        #expect(products == (0..<300_000).map { $0 * 3 })
        // 300,000 pairs in chunks of 37,500 (CPython's rule): eight chunks, most of them taken straight (counted
        // by this pool alone: other tests' pools run meanwhile).
        let afterStarmap = pool.core.directChunks.load(ordering: .relaxed)
        #expect(afterStarmap > 0)
        // And the next job of the pool too (its sink registered under its own job).
        let squares = try pool.map(TestFunctions.square, 0..<100_000)
        #expect(squares == (0..<100_000).map { $0 * $0 })
        #expect(pool.core.directChunks.load(ordering: .relaxed) > afterStarmap)
    }
}
