// A shared ring with its doorbell pipe, both ends in this process, for the tests of the data
// plane (SharedRingTests, FrameTests): bytes written by a ResultWriter as a worker writes them,
// read by a BlockingFrameReader or a FrameAccumulator as the parent reads them.

@testable import Multiprocessing

/// One ring of a fresh ``SharedChannel`` and a doorbell pipe. Each pipe end is closed once, by
/// this object (tests run in parallel: closing a descriptor twice could close another test's).
final class RingStream: @unchecked Sendable {
    let channel: SharedChannel
    let ring: SharedRing
    let doorbell: FramePipe

    init(capacity: Int = SharedChannel.defaultCapacity) throws {
        channel = try SharedChannel.create(capacity: capacity)
        channel.file?.close()
        ring = channel.tasks
        doorbell = try FramePipe()
    }

    /// Writes `bytes` as a worker writes its results (waiting while the ring is full).
    func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { ResultWriter(ring: ring, doorbell: doorbell.writeEnd).send($0) }
    }

    /// The producer's end: the reader reads what is left, then the end.
    func closeWriter() { doorbell.closeWriter() }

    /// A reader of the ring, as a worker reads its tasks.
    func reader(spin: Duration = .zero) -> BlockingFrameReader {
        BlockingFrameReader(ring: ring, doorbell: doorbell.readFD, spin: spin, wakeProducer: .futex)
    }

    deinit { doorbell.close() }
}
