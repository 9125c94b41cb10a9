// The data plane's ring on its own, both ends in this process: bytes cross whole and in order
// however they wrap, a full ring holds its producer until the consumer makes room, and the
// doorbell rings exactly when the consumer sleeps (armed), once per sleep.

import Dispatch
import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

@Suite("Shared ring")
struct SharedRingTests {
    /// A pattern whose every byte depends on its position, so that a lost, repeated or moved byte
    /// shows.
    private func pattern(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &+ seed) &* 2_654_435_761 >> 7) }
    }

    @Test(
        "Bytes cross a small ring whole and in order, in pieces that wrap, the producer waiting while it is full",
        .timeLimit(.minutes(1)))
    func bytesCrossWhole() async throws {
        let stream = try RingStream(capacity: 64 * 1024)
        let sent = pattern(5 << 20, seed: 11)
        // A producer on a thread of its own: it sleeps on the futex while the ring is full.
        let producer = Task.detached {
            await onThread {
                var random = SeededGenerator(seed: 7)
                var offset = 0
                while offset < sent.count {
                    let piece = min(sent.count - offset, Int(random.next() % UInt64(200_000)) + 1)
                    sent[offset..<(offset + piece)].withUnsafeBytes {
                        ResultWriter(ring: stream.ring, doorbell: stream.doorbell.writeEnd).send($0)
                    }
                    offset += piece
                }
            }
        }
        var received = [UInt8](repeating: 0, count: sent.count)
        var source = RingSource(ring: stream.ring, wake: .futex)
        var filled = 0
        var random = SeededGenerator(seed: 3)
        let deadline = ContinuousClock.now + .seconds(30)
        while filled < received.count, ContinuousClock.now < deadline {
            let want = min(received.count - filled, Int(random.next() % UInt64(100_000)) + 1)
            let outcome = received.withUnsafeMutableBytes { source.read(into: $0.baseAddress! + filled, count: want) }
            if case .bytes(let n) = outcome { filled += n } else { await Task.yield() }
        }
        _ = await producer.value
        #expect(filled == sent.count)
        #expect(received == sent)
        #expect(stream.ring.isEmpty)
    }

    @Test("A producer rings only a consumer that is armed, once per arming")
    func doorbellOnlyWhenArmed() throws {
        let stream = try RingStream()
        let ring = stream.ring
        // Fresh: the consumer is armed (the parent's I/O thread sleeps in epoll).
        #expect(ring.takeConsumerArmed())
        #expect(!ring.takeConsumerArmed(), "taken once: the consumer is rung once per sleep")
        ring.disarmConsumer()
        #expect(!ring.takeConsumerArmed())
        ring.armConsumer()
        #expect(ring.takeConsumerArmed())

        // Through the writer: a spinning (disarmed) consumer costs no doorbell byte, an armed one
        // exactly one however many writes follow.
        ring.disarmConsumer()
        stream.write([1, 2, 3])
        #expect(drainDoorbell(stream.doorbell.readFD), "the doorbell is still open")
        #expect(doorbellBytes(stream) == 0)
        ring.armConsumer()
        stream.write([4, 5])
        stream.write([6])
        #expect(doorbellBytes(stream) == 1)
    }

    @Test("A lone call's deferred doorbell rings only if its result is still unread when it is settled")
    func deferredDoorbell() throws {
        let stream = try RingStream()
        let writer = ResultWriter(ring: stream.ring, doorbell: stream.doorbell.writeEnd)
        stream.ring.armConsumer()
        writer.send(OutgoingFrame(bytes: [9, 9, 9]), deferringDoorbell: true)
        #expect(doorbellBytes(stream) == 0, "deferred: not rung at once")
        writer.settleDoorbell(final: true)
        #expect(doorbellBytes(stream) == 1, "unread when the worker stops spinning: rung")

        // Read before it is settled: no doorbell at all.
        stream.ring.armConsumer()
        var bytes = [UInt8](repeating: 0, count: 16)
        _ = bytes.withUnsafeMutableBytes { stream.ring.read(into: $0.baseAddress!, count: 16) }
        writer.send(OutgoingFrame(bytes: [8]), deferringDoorbell: true)
        _ = bytes.withUnsafeMutableBytes { stream.ring.read(into: $0.baseAddress!, count: 16) }
        writer.settleDoorbell(final: true)
        #expect(doorbellBytes(stream) == 0, "read by a spinning caller: never rung")
    }

    @Test("A producer waiting for room is marked, and the consumer's read that frees room takes the mark")
    func producerWaitingForRoom() throws {
        let stream = try RingStream(capacity: 4096)
        let ring = stream.ring
        let full = [UInt8](repeating: 1, count: 4096)
        #expect(full.withUnsafeBytes { ring.write($0) } == 4096)
        #expect(!ring.hasFreeSpace)
        #expect([UInt8(2)].withUnsafeBytes { ring.write($0) } == 0)
        ring.markProducerWaiting()
        var woken = 0
        let doorbell = try FramePipe()
        var source = RingSource(ring: ring, wake: .doorbell(doorbell.writeEnd))
        var buffer = [UInt8](repeating: 0, count: 100)
        _ = buffer.withUnsafeMutableBytes { source.read(into: $0.baseAddress!, count: 100) }
        // The parent's side waits for its doorbell: one byte came.
        if case .bytes(let n) = buffer.withUnsafeMutableBytes({
            (try? readNonBlocking(doorbell.readFD, into: $0.baseAddress!, count: 100)) ?? .endOfFile
        }) {
            woken = n
        }
        #expect(woken == 1)
        #expect(!ring.takeProducerWaiting(), "the mark was taken by the read that freed room")
        #expect(ring.hasFreeSpace)
        doorbell.close()
    }

    @Test("A memory file that is not a worker channel is refused, not mapped as one")
    func attachRefusesOtherFiles() throws {
        let file = try createMemoryFile(name: "not-a-channel", size: 8192)
        #expect(throws: FrameError.self) { _ = try SharedChannel.attach(fd: file.rawValue) }
        let tiny = try createMemoryFile(name: "tiny", size: 16)
        #expect(throws: FrameError.self) { _ = try SharedChannel.attach(fd: tiny.rawValue) }
    }

    /// How many doorbell bytes are waiting (and drains them).
    private func doorbellBytes(_ stream: RingStream) -> Int {
        var buffer = [UInt8](repeating: 0, count: 64)
        let outcome = buffer.withUnsafeMutableBytes {
            (try? readNonBlocking(stream.doorbell.readFD, into: $0.baseAddress!, count: 64)) ?? .endOfFile
        }
        if case .bytes(let n) = outcome { return n }
        return 0
    }
}
