// The data plane's ring on its own, both ends in this process: bytes cross whole and in order
// however they wrap, a full ring holds its producer until the consumer makes room, and the
// doorbell rings exactly when the consumer sleeps (armed), once per sleep.

import Dispatch
import Glibc
import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

@Suite("Shared ring", .offCooperativePool)
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
        let sent = pattern(2 << 20, seed: 11)
        // A producer on a thread of its own: it sleeps on the futex while the ring is full.
        let producer = try OwnThread {
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
        // The consumer on a thread of its own too, reading until it has every byte: a consumer
        // that gave up early would leave the producer waiting for room forever.
        let received = try await OwnThread { () -> [UInt8] in
            var received = [UInt8](repeating: 0, count: sent.count)
            var source = RingSource(ring: stream.ring, wake: .futex)
            var filled = 0
            var random = SeededGenerator(seed: 3)
            while filled < received.count {
                let want = min(received.count - filled, Int(random.next() % UInt64(100_000)) + 1)
                let outcome = try received.withUnsafeMutableBytes {
                    try source.read(into: $0.baseAddress! + filled, count: want)
                }
                if case .bytes(let n) = outcome { filled += n } else { usleep(20) }
            }
            return received
        }.result.get()
        _ = try await producer.result.get()
        #expect(received == sent)
        #expect(stream.ring.isEmpty)
    }

    @Test(
        "A producer that fills a small ring again and again is always woken by the reader, never left to its timeout",
        .timeLimit(.minutes(1)))
    func fullRingWakeUpsAreNeverLost() async throws {
        // A small ring fills on every write: thousands of sleeps and wake-ups (kept to a few
        // thousand: the suite's other tests share the machine's two cores with this one).
        let stream = try RingStream(capacity: 4096)
        let piece = pattern(1 << 20, seed: 5)
        let rounds = 8
        // A wake that got lost would leave the producer asleep for its whole timeout (here 5 s,
        // so that a slow machine cannot pass for a lost wake-up).
        let writer = ResultWriter(ring: stream.ring, doorbell: stream.doorbell.writeEnd, fullRingSleep: 5_000)
        stream.ring.disarmConsumer()
        let producer = try OwnThread {
            for _ in 0..<rounds { piece.withUnsafeBytes { writer.send($0) } }
        }
        let received = try await OwnThread { () -> [UInt8] in
            var source = RingSource(ring: stream.ring, wake: .futex)
            var received = [UInt8](repeating: 0, count: rounds * piece.count)
            var count = 0
            while count < received.count {
                let outcome = try received.withUnsafeMutableBytes {
                    try source.read(into: $0.baseAddress! + count, count: $0.count - count)
                }
                if case .bytes(let n) = outcome { count += n } else { usleep(1) }
            }
            return received
        }.result.get()
        _ = try await producer.result.get()
        #expect(received.count == rounds * piece.count)
        #expect(received.prefix(piece.count).elementsEqual(piece) && received.suffix(piece.count).elementsEqual(piece))
        #expect(writer.fullRingTimeouts == 0, "a wake-up was lost: the producer slept until its timeout")
    }

    @Test("A ring whose positions were written over reads as corrupt, not out of bounds, and takes nothing")
    func corruptPositionsAreRefused() throws {
        let stream = try RingStream(capacity: 4096)
        let ring = stream.ring
        #expect([UInt8](repeating: 1, count: 100).withUnsafeBytes { ring.write($0) } == 100)
        #expect(ring.positionsAreValid)
        // A broken peer moves the consumer's position past the producer's (what is between them
        // would be more than the ring holds).
        stream.overwritePositions(tail: 100, head: 200)
        #expect(!ring.positionsAreValid)
        var source = RingSource(ring: ring, wake: .futex)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        #expect(throws: FrameError.self) {
            _ = try buffer.withUnsafeMutableBytes { try source.read(into: $0.baseAddress!, count: $0.count) }
        }
        #expect([UInt8(1)].withUnsafeBytes { ring.write($0) } == 0, "no room is taken from impossible positions")
        #expect(!ring.hasFreeSpace)
        stream.overwritePositions(tail: 1 << 40, head: 0)
        #expect(throws: FrameError.self) {
            _ = try buffer.withUnsafeMutableBytes { try source.read(into: $0.baseAddress!, count: $0.count) }
        }
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
        #expect(stream.doorbellBytes() == 0)
        ring.armConsumer()
        stream.write([4, 5])
        stream.write([6])
        #expect(stream.doorbellBytes() == 1)
    }

    @Test("A lone call's deferred doorbell rings only if its result is still unread when it is settled")
    func deferredDoorbell() throws {
        let stream = try RingStream()
        let writer = ResultWriter(ring: stream.ring, doorbell: stream.doorbell.writeEnd)
        stream.ring.armConsumer()
        writer.send(OutgoingFrame(bytes: [9, 9, 9]), doorbell: .deferred)
        #expect(stream.doorbellBytes() == 0, "deferred: not rung at once")
        writer.settleDoorbell(final: true)
        #expect(stream.doorbellBytes() == 1, "unread when the worker stops spinning: rung")

        // Read before it is settled: no doorbell at all.
        stream.ring.armConsumer()
        var bytes = [UInt8](repeating: 0, count: 16)
        _ = bytes.withUnsafeMutableBytes { stream.ring.read(into: $0.baseAddress!, count: 16) }
        writer.send(OutgoingFrame(bytes: [8]), doorbell: .deferred)
        _ = bytes.withUnsafeMutableBytes { stream.ring.read(into: $0.baseAddress!, count: 16) }
        writer.settleDoorbell(final: true)
        #expect(stream.doorbellBytes() == 0, "read by a spinning caller: never rung")
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
        _ = try buffer.withUnsafeMutableBytes { try source.read(into: $0.baseAddress!, count: 100) }
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

}
