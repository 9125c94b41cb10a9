// The frame layer: splitting a byte stream from a pipe into frames, and parsing task and result
// frames. A worker's bytes are untrusted input to the parent: random or truncated bytes must end
// in a clear error, never a crash or a hang.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

private func frame(kind: FrameKind, body: [UInt8]) -> [UInt8] {
    var writer = ByteWriter()
    let start = writer.beginFrame(kind)
    writer.writeBytes(body)
    writer.finishFrame(startingAt: start)
    return writer.bytes
}

/// Runs `body` on a thread of its own after `delay`.
private enum Rescue {
    static func detach(after delay: Duration, _ body: @escaping @Sendable () -> Void) {
        _ = try? startDetachedThread(name: "test-rescue") {
            var request = timespec(tv_sec: Int(delay.components.seconds), tv_nsec: 0)
            nanosleep(&request, nil)
            body()
        }
    }
}

@Suite("Frames", .offCooperativePool) struct FrameTests {
    @Test("Small, many and large frames come out whole", arguments: [0, 1, 100, 70_000, 5 << 20])
    func roundTrip(size: Int) throws {
        let pipe = try FramePipe()
        defer { pipe.close() }
        let body = (0..<size).map { UInt8(truncatingIfNeeded: $0) }
        var accumulator = FrameAccumulator()
        var frames: [FrameAccumulator.Frame] = []
        // Write from another thread: a large frame does not fit the pipe at once.
        let writer = Thread {
            for _ in 0..<3 { pipe.write(frame(kind: .result, body: body)) }
            pipe.closeWriter()
        }
        var open = true
        while open {
            open = try accumulator.read(from: pipe.readFD, into: &frames)
            if open { usleep(100) }
        }
        writer.join()
        #expect(frames.count == 3)
        for f in frames {
            #expect(f.kind == FrameKind.result.rawValue)
            #expect(Array(f.bytes.dropFirst()) == body)
        }
        #expect(!accumulator.hasPartialFrame)
    }

    @Test("A length out of range is a protocol error")
    func badLength() throws {
        let pipe = try FramePipe()
        defer { pipe.close() }
        pipe.write([0, 0, 0, 0, 1])  // length 0: no kind byte
        var accumulator = FrameAccumulator()
        var frames: [FrameAccumulator.Frame] = []
        #expect(throws: FrameError.self) { _ = try accumulator.read(from: pipe.readFD, into: &frames) }
        let huge = try FramePipe()
        defer { huge.close() }
        huge.write([0xff, 0xff, 0xff, 0xff, 1])
        var other = FrameAccumulator()
        #expect(throws: FrameError.self) { _ = try other.read(from: huge.readFD, into: &frames) }
    }

    @Test("A truncated frame is left partial at end of file")
    func truncated() throws {
        let pipe = try FramePipe()
        defer { pipe.close() }
        let whole = frame(kind: .result, body: Array(repeating: 7, count: 100))
        pipe.write(Array(whole.prefix(50)))
        pipe.closeWriter()
        var accumulator = FrameAccumulator()
        var frames: [FrameAccumulator.Frame] = []
        // A short read returns at once (the pipe was emptied); the next read finds the end.
        #expect(try accumulator.read(from: pipe.readFD, into: &frames) == true)
        #expect(try accumulator.read(from: pipe.readFD, into: &frames) == false)
        #expect(frames.isEmpty)
        #expect(accumulator.hasPartialFrame)
    }

    @Test("A blocking reader hands out frames that arrived together without waiting for more")
    func blockingReaderDoesNotWaitWithFramesInHand() throws {
        let stream = try RingStream()
        // Three frames that fill the reader's 64 KiB staging buffer exactly: its read is not
        // short, and a reader that went on reading would wait here with the frames in hand.
        let sizes = [10_000, 30_000, 65_536 - 40_000 - 3 * 5]
        let frames = sizes.map { frame(kind: .task, body: Array(repeating: 9, count: $0)) }
        let all = frames.flatMap { $0 }
        #expect(all.count == 65_536)
        stream.write(all)
        // Unblocks a reader that waits wrongly, so that the test fails instead of hanging.
        Rescue.detach(after: .seconds(5)) {
            stream.write(frame(kind: .ready, body: []))
            stream.closeWriter()
        }
        var reader = stream.reader()
        let start = ContinuousClock.now
        for size in sizes {
            let next = try reader.next()
            #expect(next?.kind == FrameKind.task.rawValue)
            #expect(next?.bytes.count == size + 1)
        }
        #expect(ContinuousClock.now - start < .seconds(4))
    }

    @Test("A blocking reader throws for a stream cut inside a frame, small or large", arguments: [100, 200_000])
    func blockingReaderCutFrame(size: Int) throws {
        let stream = try RingStream()
        let whole = frame(kind: .task, body: Array(repeating: 3, count: size))
        stream.write(Array(whole.prefix(whole.count * 3 / 4)))
        stream.closeWriter()
        var reader = stream.reader()
        #expect(throws: FrameError.self) { _ = try reader.next() }
    }

    @Test("A blocking reader returns nil at the end of a stream of whole frames, after the last frame")
    func blockingReaderEnd() throws {
        let stream = try RingStream()
        stream.write(frame(kind: .task, body: [1, 2, 3]))
        stream.closeWriter()
        var reader = stream.reader()
        #expect(try reader.next()?.bytes == [FrameKind.task.rawValue, 1, 2, 3])
        #expect(try reader.next() == nil)
    }

    @Test("Task and result frames parse back", .timeLimit(.minutes(1)))
    func taskAndResultFrames() throws {
        let square = PoolFunction("square") { (x: Int) in x * x }
        var task = TaskFrameBuilder(
            job: JobID(rawValue: 7), chunkIndex: 3, functionName: "square", signature: square.signatureFingerprint,
            stopOnError: true)
        for i in 0..<5 { try task.appendItem { writer in try square.encodeArguments(i, into: &writer) } }
        let taskBytes = task.finish()
        var reader = ByteReader(taskBytes, offset: 5)
        let header = try TaskHeader.read(from: &reader)
        #expect(
            header
                == TaskHeader(
                    job: 7, chunkIndex: 3, signature: square.signatureFingerprint, stopOnError: true,
                    functionName: "square", itemCount: 5))

        var results = ResultFrameBuilder(job: 7, chunkIndex: 3)
        results.appendValue(4, functionName: "square")
        results.appendError(PoolError(.encodingFailed, "nope"))
        let resultBytes = results.finish()
        var resultReader = ByteReader(resultBytes, offset: 5)
        let resultHeader = try ResultHeader.read(from: &resultReader)
        #expect(resultHeader == ResultHeader(job: 7, chunkIndex: 3, itemCount: 2, anyFailed: true))
        let outcomes = ResultItems.decode(
            resultReader, header: resultHeader, expected: 2, as: Int.self, functionName: "square", workerPID: 1)
        #expect(try outcomes[0].get() == 4)
        #expect((try? outcomes[1].get()) == nil)
    }

    @Test("Random bytes never crash or hang the frame reader and parsers", arguments: [1, 2, 3, 4])
    func fuzz(seed: UInt64) throws {
        var rng = SeededGenerator(state: seed)
        let valid: [[UInt8]] = {
            var results = ResultFrameBuilder(job: 1, chunkIndex: 0)
            results.appendValue([1, 2, 3], functionName: "f")
            results.appendError(RemoteError(typeName: "E", message: "m", functionName: "f", workerPID: 1))
            var task = TaskFrameBuilder(
                job: JobID(rawValue: 1), chunkIndex: 0, functionName: "f", signature: 1,
                stopOnError: false)
            try? task.appendItem { try WireCoding.encode("x", into: &$0) }
            return [results.finish(), task.finish()]
        }()
        for round in 0..<500 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0..<200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                // A valid frame with a few bytes flipped, or cut short.
                bytes = valid[round / 2 % valid.count]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                if Bool.random(using: &rng) {
                    bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &rng)))
                }
            }
            let pipe = try FramePipe()
            pipe.write(bytes)
            pipe.closeWriter()
            var accumulator = FrameAccumulator()
            var frames: [FrameAccumulator.Frame] = []
            var reads = 0
            // Between reads, wait for the pipe to be readable: a child another test is spawning
            // holds a copy of the write end until its exec, so the end of file may come late.
            while reads < 100, (try? accumulator.read(from: pipe.readFD, into: &frames)) == true {
                reads += 1
                var ready = pollfd(fd: pipe.readFD, events: Int16(POLLIN), revents: 0)
                _ = poll(&ready, 1, 1_000)
            }
            #expect(reads < 100, "the reader must reach end of file or an error")
            pipe.close()
            for frame in frames {
                var reader = frame.bodyReader
                switch FrameKind(rawValue: frame.kind) {
                case .result:
                    if let header = try? ResultHeader.read(from: &reader) {
                        _ = ResultItems.decode(
                            reader, header: header, expected: min(header.itemCount, 1000), as: [Int].self,
                            functionName: "f", workerPID: 1)
                    }
                case .task:
                    _ = try? TaskHeader.read(from: &reader)
                case .initializerFailed:
                    _ = try? ErrorRecord.read(from: &reader, functionName: "f", workerPID: 1)
                default:
                    break
                }
            }
        }
    }
}
