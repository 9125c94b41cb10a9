// Packed results from a ring into their list (DirectResults.swift), on their own and reachable from
// the Benchmarks package: one chunk's result frame through the ring, taken straight into its place
// in a list, beside the way it went before (cut into a frame buffer of its own, then copied into
// the list). SPI, not API: `@_spi(Benchmarks) import Multiprocessing`.

/// A ring with both ends in this process and a list sink, for benchmarks.
@_spi(Benchmarks)
public final class DirectResultsBenchmarks: @unchecked Sendable {
    private let channel: SharedChannel
    private let frame: [UInt8]
    private let count: Int
    private var accumulator = FrameAccumulator()
    private var frames: [FrameAccumulator.Frame] = []
    private let sink: ListSink<Int, [Int]>

    /// - Parameter values: How many `Int` results a chunk has (32,768: a default `starmap` chunk).
    /// - Throws: `SystemError` when the shared memory cannot be made.
    public init(values: Int = 32768) throws {
        channel = try SharedChannel.create()
        channel.file?.close()
        count = values
        var builder = ResultFrameBuilder(job: 1, chunkIndex: 0)
        builder.setPacked(Array(0..<values))
        frame = builder.finish()
        sink = ListSink<Int, [Int]>(
            functionName: "bench", chunkSizes: [values], makeValue: { $0 }, callback: nil, errorCallback: nil,
            callbacks: CallbackExecutor(poolStopped: Completion()))
    }

    /// Writes the frame into the ring and takes its values straight into the list; returns how
    /// many frames were taken (1).
    public func takeDirectly() -> Int {
        write()
        let sink = self.sink
        frames.removeAll(keepingCapacity: true)
        DirectResults.take(from: channel.results, target: { _ in sink }, into: &frames)
        sink.forgetChunk(0)
        return frames.count
    }

    /// Writes the frame into the ring, cuts it into a frame buffer, and copies its values into
    /// the list from there (the way before); returns how many frames were read (1).
    public func takeThroughFrame() throws -> Int {
        write()
        frames.removeAll(keepingCapacity: true)
        var source = RingSource(ring: channel.results, wake: .futex)
        _ = try accumulator.read(from: &source, into: &frames)
        for frame in frames {
            var body = frame.bodyReader
            let header = try ResultHeader.read(from: &body)
            sink.deliver(index: 0, header: header, items: body, workerPID: 0)
        }
        sink.forgetChunk(0)
        return frames.count
    }

    private func write() {
        let written = frame.withUnsafeBytes { channel.results.write($0) }
        precondition(written == frame.count, "the benchmark's frame did not fit the ring")
    }
}
