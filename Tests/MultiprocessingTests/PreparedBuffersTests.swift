// Large read buffers made present ahead of need (PreparedBuffers.swift): a take finds a ready
// buffer of exactly its size once the preparer has caught up, other sizes are never handed out,
// spares go back when nobody takes them, and the parent's readers use them for large results,
// a worker's death in the middle of one included.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Two takes of `size` in a row (the second asks for spares), then waits for the spares.
private func prime(_ buffers: PreparedBuffers, _ size: Int) -> Bool {
    _ = buffers.take(size)
    _ = buffers.take(size)
    return eventually { buffers.readyCount == PreparedBuffers.spares }
}

@Suite("Prepared buffers", .offCooperativePool) struct PreparedBuffersTests {
    static let size = 4 << 20

    @Test("A second take of a size asks for buffers of it; the next takes get them, present and of that size")
    func takesReadyBuffers() throws {
        let buffers = PreparedBuffers()
        #expect(buffers.take(Self.size) == nil)  // none asked for before
        #expect(buffers.take(Self.size) == nil)  // asks for spares
        #expect(eventually { buffers.readyCount == PreparedBuffers.spares })
        var first = try #require(buffers.take(Self.size))
        let second = try #require(buffers.take(Self.size))
        #expect(first.count == Self.size && second.count == Self.size)
        #expect(buffers.takenCount == 2)
        // The second take, right after the first, asked for more, which were made (counted: once
        // made, the spares go back after 100 ms without a take, which a test thread held up on a
        // loaded machine can miss). The first alone may not have: making the spares ready can
        // take a loaded machine past 100 ms, and a take that long after the last is a lone one.
        #expect(eventually { buffers.madeCount > PreparedBuffers.spares })
        // Written all over, as a read would: the memory is the array's own.
        first.withUnsafeMutableBytes { _ = memset($0.baseAddress!, 0x5a, $0.count) }
        #expect(first.withUnsafeBytes { $0.allSatisfy { $0 == 0x5a } })
    }

    @Test("A take of another size drops the spares and prepares that size instead")
    func otherSize() throws {
        let buffers = PreparedBuffers()
        #expect(prime(buffers, Self.size))
        #expect(buffers.take(Self.size + 1) == nil)
        #expect(buffers.readyCount == 0)
        #expect(prime(buffers, Self.size + 1))
        #expect(try #require(buffers.take(Self.size + 1)).count == Self.size + 1)
        #expect(buffers.take(Self.size) == nil)
    }

    @Test("Sizes below 1 MiB or above the largest are never prepared")
    func outOfRange() {
        let buffers = PreparedBuffers()
        #expect(buffers.take(presentBufferSize - 1) == nil)
        #expect(buffers.take(PreparedBuffers.largest + 1) == nil)
        usleep(50_000)
        #expect(buffers.readyCount == 0)
    }

    @Test("Spares nobody takes are given back, and a later take starts preparing again")
    func idleRelease() throws {
        let buffers = PreparedBuffers()
        #expect(prime(buffers, Self.size))
        // Given back after `idleRelease` (100 ms) without a take; loosely bounded.
        #expect(eventually(timeout: .seconds(5)) { buffers.readyCount == 0 })
        #expect(prime(buffers, Self.size))
    }

    @Test("A lone large read, long after the last, prepares nothing")
    func loneTake() {
        let buffers = PreparedBuffers()
        #expect(buffers.take(Self.size) == nil)
        usleep(150_000)  // past `idleRelease`: the next take is lone too
        #expect(buffers.take(Self.size) == nil)
        usleep(50_000)
        #expect(buffers.readyCount == 0)
        #expect(buffers.takenCount == 0)
    }

    @Test("A frame's large attachment is read into a prepared buffer, whole")
    func accumulatorUsesPreparedBuffers() throws {
        let value = (0..<Self.size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
        var builder = ResultFrameBuilder(job: 1, chunkIndex: 0, attachingLargeBytes: true)
        builder.appendValue(value, functionName: "f")
        let frame = builder.finishWithAttachments()
        let wire = try frame.attachments.reduce(frame.bytes) { wire, part in wire + (try part.withBytes { Array($0) }) }
        // Spares ready just before the read (they go back after 100 ms unused).
        let buffers = PreparedBuffers()
        #expect(prime(buffers, Self.size))
        let pipe = try FramePipe()
        defer { pipe.close() }
        let writer = Thread {
            pipe.write(wire)
            pipe.closeWriter()
        }
        var accumulator = FrameAccumulator(preparedBuffers: buffers)
        var frames: [FrameAccumulator.Frame] = []
        while try accumulator.read(from: pipe.readFD, into: &frames) { usleep(100) }
        writer.join()
        #expect(frames.count == 1)
        #expect(frames.first?.attachments == [value])
        #expect(buffers.takenCount == 1)
    }

    @Test(
        "Through a pool: 4 MiB results come back whole, read into prepared buffers",
        .timeLimit(.minutes(1)), .disabled(if: TestBackend.isCluster, TestBackend.needsLocalWorkers))
    func throughPool() throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        // Distinct contents, made without a closure per byte (slow in a debug build).
        let blobs = (0..<4).map { seed in
            var blob = [UInt8](repeating: UInt8(seed), count: Self.size)
            for index in stride(from: seed, to: Self.size, by: 4093) { blob[index] = UInt8(truncatingIfNeeded: index) }
            return blob
        }
        let before = PreparedBuffers.shared.takenCount
        // Other tests' large reads may change the size prepared: a few rounds are allowed.
        var rounds = 0
        repeat {
            #expect(try pool.map(F.echoBytes, blobs, chunksize: 1) == blobs)
            rounds += 1
        } while PreparedBuffers.shared.takenCount == before && rounds < 5
        #expect(PreparedBuffers.shared.takenCount > before)
    }

    @Test(
        "A worker that dies in the middle of a large result fails that task only; the pool heals",
        .timeLimit(.minutes(1)), .disabled(if: TestBackend.isCluster, TestBackend.needsLocalWorkers))
    func deathMidAttachment() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        // A result frame that announces a 4 MiB attachment, then 1 MiB of it: the parent has
        // started reading it into a buffer of its own when the worker dies.
        var builder = ResultFrameBuilder(job: 1, chunkIndex: 0, attachingLargeBytes: true)
        builder.appendValue([UInt8](repeating: 1, count: Self.size), functionName: "f")
        let frame = builder.finishWithAttachments()
        let cut = frame.bytes + [UInt8](repeating: 1, count: 1 << 20)
        #expect(try pool.apply(F.echoBytes, [UInt8](repeating: 2, count: Self.size)).count == Self.size)
        let pending = try pool.applyAsync(F.corruptChannel, cut)
        usleep(200_000)
        for pid in pool.workerPIDs { kill(pid, SIGKILL) }
        let error = #expect(throws: PoolError.self) { try pending.get(timeout: .seconds(10)) }
        #expect(error?.code == .workerLost)
        var blob = [UInt8](repeating: 3, count: Self.size)
        for index in stride(from: 0, to: Self.size, by: 4093) { blob[index] = UInt8(truncatingIfNeeded: index) }
        #expect(try pool.map(F.echoBytes, [blob, blob], chunksize: 1) == [blob, blob])
    }
}
