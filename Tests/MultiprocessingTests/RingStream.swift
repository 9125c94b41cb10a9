// A shared ring with its doorbell pipe, both ends in this process, for the tests of the data
// plane (SharedRingTests, FrameTests): bytes written by a ResultWriter as a worker writes them,
// read by a BlockingFrameReader or a FrameAccumulator as the parent reads them.

import Synchronization

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

    /// Bytes waiting in the doorbell pipe (each one ring of the doorbell), taken.
    func doorbellBytes() -> Int {
        var buffer = [UInt8](repeating: 0, count: 64)
        let outcome = buffer.withUnsafeMutableBytes {
            (try? readNonBlocking(doorbell.readFD, into: $0.baseAddress!, count: 64)) ?? .endOfFile
        }
        if case .bytes(let n) = outcome { return n }
        return 0
    }

    /// The producer's end: the reader reads what is left, then the end.
    func closeWriter() { doorbell.closeWriter() }

    /// A reader of the ring, as a worker reads its tasks.
    func reader(spin: Duration = .zero) -> BlockingFrameReader {
        BlockingFrameReader(ring: ring, doorbell: doorbell.readFD, spin: spin, wakeProducer: .futex)
    }

    /// Writes over the ring's two positions, as a broken peer could (the test of corrupt rings).
    func overwritePositions(tail: UInt64, head: UInt64) {
        // The control block: the producer's position, then the consumer's 64 bytes on.
        ring.control.storeBytes(of: tail, as: UInt64.self)
        (ring.control + 64).storeBytes(of: head, as: UInt64.self)
    }

    deinit { doorbell.close() }
}

/// A thread of its own (not one of Dispatch's, which the cooperative pool shares) running a ring
/// test's producer or consumer: both must run at once whatever else waits for a thread, or the
/// one would wait for the other as long as the suite's other tests keep the pool busy. Started
/// at once, from the calling thread; its result is awaited by polling, which holds no thread.
final class OwnThread<T: Sendable>: Sendable {
    private let outcome = Mutex<Result<T, any Error>?>(nil)

    init(_ body: @escaping @Sendable () throws -> T) throws {
        try startDetachedThread(name: "ring-test") { [self] in
            let result = Result { try body() }
            outcome.withLock { $0 = result }
        }
    }

    /// What the body returned or threw, once it has.
    var result: Result<T, any Error> {
        get async {
            while true {
                if let result = outcome.withLock({ $0 }) { return result }
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
    }
}
