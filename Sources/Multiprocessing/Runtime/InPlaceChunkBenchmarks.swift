// A worker's side of one chunk of plain numbers, on its own and reachable from the Benchmarks
// package: a task frame of packed `(Int, Int)` items attached (as `starmap` sends them) through a
// task ring, run by the packed loop, its results through a result ring; either in place (the
// items run where they lie in the task ring, the results stored in place in the result ring:
// WorkerLoop's `runInPlace`) or the way before (the items copied out of the ring into a buffer
// of their own, the results into a frame buffer, then copied into the ring). Both include the
// parent's write of the task and its read of the result's bytes. SPI, not API:
// `@_spi(Benchmarks) import Multiprocessing`.

/// A task ring and a result ring with both ends in this process, and a served function, for
/// benchmarks of a worker's chunk.
@_spi(Benchmarks)
public final class InPlaceChunkBenchmarks: @unchecked Sendable {
    private let channel: SharedChannel
    private let frame: OutgoingFrame
    private let count: Int
    private var reader: BlockingFrameReader
    private let writer: ResultWriter
    private let add = PoolFunction("bench-add") { (a: Int, b: Int) in a &+ b }

    /// - Parameter pairs: How many `(Int, Int)` items the chunk has (32,768: 512 KiB of them).
    /// - Throws: `SystemError` when the shared memory cannot be made.
    public init(pairs: Int = 32768) throws {
        channel = try SharedChannel.create()
        channel.file?.close()
        count = pairs
        var builder = TaskFrameBuilder(
            job: JobID(rawValue: 1), chunkIndex: 0, functionName: add.name, signature: add.signatureFingerprint,
            stopOnError: true, packedStride: MemoryLayout<(Int, Int)>.stride)
        builder.attachPacked((0..<pairs).map { ($0, $0) }[...])
        frame = builder.finishWithAttachments()
        // Nobody sleeps on either ring: no doorbell is rung.
        channel.tasks.disarmConsumer()
        channel.results.disarmConsumer()
        reader = BlockingFrameReader(ring: channel.tasks, doorbell: -1, wakeProducer: .futex)
        writer = ResultWriter(ring: channel.results, doorbell: -1)
    }

    /// One chunk in place; returns the result frame's length.
    public func runInPlace() throws -> Int {
        try run(inPlace: true)
    }

    /// One chunk the way before; returns the result frame's length.
    public func runCopying() throws -> Int {
        try run(inPlace: false)
    }

    private func run(inPlace: Bool) throws -> Int {
        let ring = channel.tasks
        let written = frame.bytes.withUnsafeBytes { ring.write($0, message: frame.count) }
        precondition(written == frame.bytes.count, "the benchmark's task frame did not fit the ring")
        try frame.attachments[0].withBytes { bytes in
            precondition(ring.write(bytes) == bytes.count, "the benchmark's chunk did not fit the ring")
        }
        reader.takesPackedItemsInPlace = inPlace
        guard let task = try reader.next() else { preconditionFailure("no task") }
        var body = task.bodyReader
        let header = try TaskHeader.read(from: &body)
        var results = ResultFrameBuilder(job: header.job, chunkIndex: header.chunkIndex)
        if let items = reader.itemsInRing {
            let reservation = writer.reservePacked(count: header.itemCount, stride: 8)
            let stored = add.runPackedItems(
                items.baseAddress!, header: header, output: reservation.map(ResultWriter.packedValues(in:)),
                into: &results)
            reader.releaseItemsInRing()
            precondition(stored && reservation != nil, "the benchmark's results did not go in place")
            writer.publishPacked(
                reservation!, job: header.job, chunkIndex: header.chunkIndex, count: header.itemCount, stride: 8,
                runNanoseconds: 0, doorbell: .now)
        } else {
            try add.runChunkSynchronously(&body, header: header, into: &results)
            writer.send(results.finishWithAttachments())
        }
        // The parent's side: the result frame's bytes read and freed.
        guard let (position, available) = channel.results.readable() else { preconditionFailure("corrupt ring") }
        channel.results.consume(to: position &+ UInt64(available))
        precondition(available == ResultFrameBuilder.packedPrefixSize + count * 8, "a result frame of the wrong size")
        return available
    }
}
