// A shared ring starting over at its start: a producer that finds the ring drained writes a
// message that fits before its position at the ring's start (so that a ring taken a message at a
// time reuses the same pages), the consumer follows the skip, and a skip a broken peer wrote over
// reads as corrupt.

import Glibc
import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

@Suite("Shared ring starting over")
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
        let stream = try RingStream(capacity: 4096)
        let ring = stream.ring
        let first = pattern(1000, seed: 1)
        #expect(first.withUnsafeBytes { ring.write($0) } == 1000)
        #expect(readAll(ring) == first)
        let second = pattern(600, seed: 2)
        #expect(second.withUnsafeBytes { ring.write($0) } == 600)
        // Skipped from 1000 to the ring's end (4096), then 600 bytes from the start.
        #expect(tail(ring) == 4096 + 600)
        #expect(!ring.isEmpty)
        #expect(readAll(ring) == second)
        #expect(head(ring) == 4096 + 600)
        #expect(ring.isEmpty && ring.positionsAreValid)
        // Again: from 600 (the next ring's start is 8192).
        let third = pattern(500, seed: 3)
        #expect(third.withUnsafeBytes { ring.write($0) } == 500)
        #expect(tail(ring) == 8192 + 500)
        #expect(readAll(ring) == third)
    }

    @Test("Until the consumer follows a skip, only the space before the position is free")
    func skippedSpaceCountsAsUsed() throws {
        let stream = try RingStream(capacity: 4096)
        let ring = stream.ring
        #expect(pattern(3000, seed: 1).withUnsafeBytes { ring.write($0) } == 3000)
        _ = readAll(ring)
        let second = pattern(2000, seed: 2)
        #expect(second.withUnsafeBytes { ring.write($0) } == 2000)
        // 1096 bytes skipped, 2000 written: 1000 free, not more.
        let third = pattern(1500, seed: 3)
        #expect(third.withUnsafeBytes { ring.write($0) } == 1000)
        #expect(ring.positionsAreValid)
        #expect(readAll(ring) == second + third[..<1000])
        #expect(ring.isEmpty)
    }

    @Test("A message that does not fit before the position, or a ring with unread bytes, goes on after them")
    func noStartOverWhenItCannot() throws {
        let stream = try RingStream(capacity: 4096)
        let ring = stream.ring
        #expect(pattern(1000, seed: 1).withUnsafeBytes { ring.write($0) } == 1000)
        _ = readAll(ring)
        // Bytes that fit, of a message (a frame and its attachment) that does not.
        let header = pattern(100, seed: 2)
        #expect(header.withUnsafeBytes { ring.write($0, message: 1500) } == 100)
        #expect(tail(ring) == 1100)
        // Unread bytes in the ring: what comes goes after them.
        let rest = pattern(200, seed: 3)
        #expect(rest.withUnsafeBytes { ring.write($0) } == 200)
        #expect(tail(ring) == 1300)
        #expect(readAll(ring) == header + rest)
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
            // Every frame found the ring drained: those that fit before the position started over.
            let position = Int(before % UInt64(64 * 1024))
            if position != 0 && frame.count <= position {
                #expect(tail(stream.ring) % UInt64(64 * 1024) == UInt64(frame.count), "frame \(index) started over")
            }
        }
        #expect(stream.ring.isEmpty)
    }

    @Test("A skip a broken peer wrote over reads as corrupt, and moves nothing")
    func corruptSkipIsRefused() throws {
        let stream = try RingStream(capacity: 4096)
        let ring = stream.ring
        #expect(pattern(1000, seed: 1).withUnsafeBytes { ring.write($0) } == 1000)
        _ = readAll(ring)
        #expect(pattern(600, seed: 2).withUnsafeBytes { ring.write($0) } == 600)
        // The skip's end, beside the producer's position: not at a ring's start.
        (ring.control + 16).storeBytes(of: UInt64(4000), as: UInt64.self)
        var buffer = [UInt8](repeating: 0, count: 4096)
        #expect(buffer.withUnsafeMutableBytes { ring.read(into: $0.baseAddress!, count: $0.count) } == -1)
        // Past the producer's position.
        (ring.control + 16).storeBytes(of: UInt64(3 * 4096), as: UInt64.self)
        #expect(buffer.withUnsafeMutableBytes { ring.read(into: $0.baseAddress!, count: $0.count) } == -1)
        #expect(head(ring) == 1000, "the consumer's position did not move")
        var source = RingSource(ring: ring, wake: .futex)
        #expect(throws: FrameError.self) {
            _ = try buffer.withUnsafeMutableBytes { try source.read(into: $0.baseAddress!, count: $0.count) }
        }
    }
}
