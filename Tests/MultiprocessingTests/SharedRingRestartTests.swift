// A shared ring starting over at its start: a producer that finds the ring drained writes a
// message that fits before its position at the ring's start (so that a ring taken a message at a
// time reuses the same pages), the consumer follows the skip, and a skip a broken peer wrote over
// reads as corrupt.

import Glibc
import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

@Suite("Shared ring starting over", .offCooperativePool)
struct SharedRingRestartTests {
    private func pattern(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &+ seed) &* 2_654_435_761 >> 7) }
    }

    /// The producer's position, as the control block holds it.
    private func tail(_ ring: SharedRing) -> UInt64 { ring.control.load(as: UInt64.self) }
    /// The consumer's position.
    private func head(_ ring: SharedRing) -> UInt64 { (ring.control + 64).load(as: UInt64.self) }

    /// Reads everything the ring has now.
    private func readAll(_ ring: SharedRing, upTo count: Int = 64 * 1024) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let n = buffer.withUnsafeMutableBytes { ring.read(into: $0.baseAddress!, count: $0.count) }
        return n > 0 ? Array(buffer[..<n]) : []
    }

    @Test("Into a drained ring, a message that fits before the position goes at the ring's start, and is read whole")
    func drainedRingStartsOver() throws {
        let stream = try RingStream(capacity: 64 * 1024)
        let ring = stream.ring
        // Messages of a quarter of the ring (16 KiB) or more: they start over where they fit.
        let first = pattern(40000, seed: 1)
        #expect(first.withUnsafeBytes { ring.write($0) } == 40000)
        #expect(readAll(ring) == first)
        let second = pattern(20000, seed: 2)
        #expect(second.withUnsafeBytes { ring.write($0) } == 20000)
        // Skipped from 40000 to the ring's end (65536), then 20000 bytes from the start.
        #expect(tail(ring) == 65536 + 20000)
        #expect(!ring.isEmpty)
        #expect(readAll(ring) == second)
        #expect(head(ring) == 65536 + 20000)
        #expect(ring.isEmpty && ring.positionsAreValid)
        // Again: from 20000 (the next ring's start is 131072).
        let third = pattern(18000, seed: 3)
        #expect(third.withUnsafeBytes { ring.write($0) } == 18000)
        #expect(tail(ring) == 131_072 + 18000)
        #expect(readAll(ring) == third)
    }

    @Test("A message under a quarter of the ring starts over only where it leaves room for the next one")
    func smallMessageLeavesRoom() throws {
        let stream = try RingStream(capacity: 1 << 20)
        let ring = stream.ring
        // 8,008 bytes: a result of 1000 packed `Int`s. Taken one at a time, they go on after one
        // another until the space before the position holds one and 64 KiB more.
        var restartedAt: UInt64?
        for index in 0..<20 {
            let before = tail(ring)
            let message = pattern(8008, seed: index)
            #expect(message.withUnsafeBytes { ring.write($0) } == 8008)
            if tail(ring) != before + 8008 {
                restartedAt = before
                #expect(tail(ring) % UInt64(1 << 20) == 8008, "message \(index) started over")
                break
            }
            #expect(readAll(ring) == message)
        }
        let restart = try #require(restartedAt, "no message started over")
        #expect(restart >= UInt64(8008 + 64 * 1024) && restart < UInt64(2 * 8008 + 64 * 1024))
        // The producer goes on two messages ahead of its consumer (the first after the skip not
        // read yet): the next ones fit whole. (Restarting where the message just fit left no room:
        // the second one found the ring full.)
        let ahead = (0..<3).map { pattern(8008, seed: 100 + $0) }
        for message in ahead { #expect(message.withUnsafeBytes { ring.write($0) } == 8008) }
        #expect(ring.positionsAreValid)
        var read: [UInt8] = []
        while true {
            let bytes = readAll(ring)
            if bytes.isEmpty { break }
            read += bytes
        }
        #expect(read.count == 4 * 8008)
        #expect(Array(read[8008...]) == ahead.flatMap { $0 })
    }

    @Test("Until the consumer follows a skip, only the space before the position is free")
    func skippedSpaceCountsAsUsed() throws {
        let stream = try RingStream(capacity: 64 * 1024)
        let ring = stream.ring
        #expect(pattern(48000, seed: 1).withUnsafeBytes { ring.write($0) } == 48000)
        _ = readAll(ring)
        let second = pattern(32000, seed: 2)
        #expect(second.withUnsafeBytes { ring.write($0) } == 32000)
        // 17536 bytes skipped, 32000 written: 16000 free, not more.
        let third = pattern(24000, seed: 3)
        #expect(third.withUnsafeBytes { ring.write($0) } == 16000)
        #expect(ring.positionsAreValid)
        #expect(readAll(ring) == second + third[..<16000])
        #expect(ring.isEmpty)
    }

    @Test(
        "A message that does not fit before the position, a small one, or one into a ring with unread bytes goes on after them"
    )
    func noStartOverWhenItCannot() throws {
        let stream = try RingStream(capacity: 64 * 1024)
        let ring = stream.ring
        #expect(pattern(16000, seed: 1).withUnsafeBytes { ring.write($0) } == 16000)
        _ = readAll(ring)
        // Bytes that fit, of a message (a frame and its attachment) that does not.
        let header = pattern(100, seed: 2)
        #expect(header.withUnsafeBytes { ring.write($0, message: 24000) } == 100)
        #expect(tail(ring) == 16100)
        // Unread bytes in the ring: what comes goes after them.
        let rest = pattern(5000, seed: 3)
        #expect(rest.withUnsafeBytes { ring.write($0) } == 5000)
        #expect(tail(ring) == 21100)
        #expect(readAll(ring) == header + rest)
        // A message under a page (SharedRing.smallestRestart).
        let small = pattern(1000, seed: 4)
        #expect(small.withUnsafeBytes { ring.write($0) } == 1000)
        #expect(tail(ring) == 22100)
        #expect(readAll(ring) == small)
    }

    @Test("A frame stream crosses a ring that starts over again and again, whole and in order", .timeLimit(.minutes(1)))
    func framesCrossWhileStartingOver() throws {
        let stream = try RingStream(capacity: 64 * 1024)
        var reader = stream.reader()
        let writer = ResultWriter(ring: stream.ring, doorbell: stream.doorbell.writeEnd)
        var random = SeededGenerator(seed: 5)
        for index in 0..<300 {
            // A frame of 1 to 40,000 bytes, its body a pattern.
            let bodyCount = Int(random.next() % 40_000) + 1
            var frame = [UInt8](repeating: 0, count: 4)
            withUnsafeBytes(of: UInt32(bodyCount).littleEndian) { frame.replaceSubrange(0..<4, with: $0) }
            frame += pattern(bodyCount, seed: index)
            frame[4] = FrameKind.result.rawValue
            let before = tail(stream.ring)
            frame.withUnsafeBytes { writer.send($0) }
            let next = try #require(try reader.next())
            #expect(next.bytes == Array(frame[4...]), "frame \(index)")
            // Every frame found the ring drained: those the rule lets (of a page or more, fitting
            // before the position) started over.
            let position = Int(before % UInt64(64 * 1024))
            if SharedRing.startsOver(message: frame.count, at: position, capacity: 64 * 1024) {
                #expect(tail(stream.ring) % UInt64(64 * 1024) == UInt64(frame.count), "frame \(index) started over")
            }
        }
        #expect(stream.ring.isEmpty)
    }

    @Test("A skip a broken peer wrote over reads as corrupt, and moves nothing")
    func corruptSkipIsRefused() throws {
        let stream = try RingStream(capacity: 64 * 1024)
        let ring = stream.ring
        #expect(pattern(40000, seed: 1).withUnsafeBytes { ring.write($0) } == 40000)
        _ = readAll(ring)
        #expect(pattern(20000, seed: 2).withUnsafeBytes { ring.write($0) } == 20000)
        // The skip's end, beside the producer's position: not at a ring's start.
        (ring.control + 16).storeBytes(of: UInt64(60000), as: UInt64.self)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        #expect(buffer.withUnsafeMutableBytes { ring.read(into: $0.baseAddress!, count: $0.count) } == -1)
        // Past the producer's position.
        (ring.control + 16).storeBytes(of: UInt64(3 * 65536), as: UInt64.self)
        #expect(buffer.withUnsafeMutableBytes { ring.read(into: $0.baseAddress!, count: $0.count) } == -1)
        #expect(head(ring) == 40000, "the consumer's position did not move")
        var source = RingSource(ring: ring, wake: .futex)
        #expect(throws: FrameError.self) {
            _ = try buffer.withUnsafeMutableBytes { try source.read(into: $0.baseAddress!, count: $0.count) }
        }
    }
}
