// Held results: the chunks of a job seen only as a whole (a `map` of several chunks) are marked
// in their task frames; a worker holds the doorbell for their results while it has more chunks
// queued (ResultWriter.swift), ringing once for several; the reader tells it whether more are
// queued as it hands out each frame; and the pool hands out such chunks through the same paths,
// with the same results.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

@Suite("Held results", .offCooperativePool)
struct HeldResultsTests {
    /// A task frame of `job`, chunk `index`, one encoded item; `mayWait` its result.
    private func taskFrame(_ index: Int, mayWait: Bool, lone: Bool = false, job: UInt64 = 5) -> OutgoingFrame {
        var builder = TaskFrameBuilder(
            job: JobID(rawValue: job), chunkIndex: index, functionName: "square", signature: 9, stopOnError: true,
            lone: lone, resultMayWait: mayWait)
        try? builder.appendItem { $0.writeUInt64(UInt64(index)) }
        return builder.finishWithAttachments()
    }

    /// A task frame of attached packed pairs (a worker reads those in place, from the ring).
    private func packedFrame(_ index: Int) -> OutgoingFrame {
        var builder = TaskFrameBuilder(
            job: JobID(rawValue: 5), chunkIndex: index, functionName: "add", signature: 9, stopOnError: true,
            packedStride: MemoryLayout<(Int, Int)>.stride, resultMayWait: true)
        builder.attachPacked((0..<1000).map { ($0, $0) }[...])
        return builder.finishWithAttachments()
    }

    @Test("A task frame says whether its result may wait, and when the worker rings for it")
    func taskHeaderFlag() throws {
        for (mayWait, lone) in [(true, false), (false, false), (false, true)] {
            let frame = taskFrame(3, mayWait: mayWait, lone: lone)
            var body = ByteReader(frame.bytes, offset: 5)
            let header = try TaskHeader.read(from: &body)
            #expect(header.resultMayWait == mayWait && header.lone == lone)
            #expect(header.chunkIndex == 3 && header.itemCount == 1 && header.functionName == "square")
            #expect(header.doorbell == (lone ? .deferred : mayWait ? .held(job: 5) : .now))
        }
    }

    @Test("A map's chunks are marked as results that may wait; a job of one chunk is a lone call instead")
    func encodedChunksAreMarked() throws {
        let (chunks, _) = try Pool.encodeChunks(
            Array(0..<10), chunksize: 3, job: JobID(rawValue: 1), functionName: "square", signature: 9,
            stopOnError: true, timeout: nil, packedStride: nil
        ) { item, writer in writer.writeUInt64(UInt64(item)) }
        #expect(chunks.count == 4 && chunks.allSatisfy(\.queuesDeep))
        for chunk in chunks {
            var body = ByteReader(chunk.payload.bytes, offset: 5)
            let header = try TaskHeader.read(from: &body)
            #expect(header.resultMayWait && !header.lone)
        }
        let (one, _) = try Pool.encodeChunks(
            Array(0..<3), chunksize: 3, job: JobID(rawValue: 2), functionName: "square", signature: 9,
            stopOnError: true, timeout: nil, packedStride: nil
        ) { item, writer in writer.writeUInt64(UInt64(item)) }
        var body = ByteReader(try #require(one.first).payload.bytes, offset: 5)
        let header = try TaskHeader.read(from: &body)
        #expect(header.lone && !header.resultMayWait && !one[0].queuesDeep)
        // Under a timeout (the call's, or the pool's: `resultsMayWait` false) they are not held.
        for (timeout, poolAllows) in [(Duration.seconds(1), true), (nil, false)] {
            let (timed, _) = try Pool.encodeChunks(
                Array(0..<10), chunksize: 3, job: JobID(rawValue: 3), functionName: "square", signature: 9,
                stopOnError: true, timeout: timeout, packedStride: nil, resultsMayWait: poolAllows
            ) { item, writer in writer.writeUInt64(UInt64(item)) }
            #expect(timed.count == 4 && !timed.contains(where: \.queuesDeep))
            var timedBody = ByteReader(timed[1].payload.bytes, offset: 5)
            #expect(try !TaskHeader.read(from: &timedBody).resultMayWait)
        }
    }

    /// How a timeout reaches the map of ``timedChunkBehindShortOnes(_:)``.
    enum TimeoutSource: CaseIterable, Sendable {
        case pool, call
    }

    @Test(
        "Under a timeout a map's results are not held: a hung chunk among short ones times out after its timeout, not twice it",
        .timeLimit(.minutes(1)), arguments: TimeoutSource.allCases)
    func timedChunkBehindShortOnes(_ source: TimeoutSource) throws {
        let limit = Duration.milliseconds(400)
        let pool = try TestPools.make(processes: 1, taskTimeout: source == .pool ? limit : nil)
        defer { pool.stop() }
        #expect(try pool.apply(F.square, 3) == 9)
        let before = try pool.apply(F.heldDoorbells)
        // Short chunks, one that hangs, and more queued behind it: held, the result before the
        // hung chunk would reach the parent only at that chunk's own deadline.
        let items = [Int](repeating: 0, count: 30) + [5_000] + [Int](repeating: 0, count: 10)
        let start = ContinuousClock.now
        let code = errorCode { try pool.map(F.blockMs, items, chunksize: 1, timeout: source == .call ? limit : nil) }
        let elapsed = ContinuousClock.now - start
        #expect(code == .taskTimedOut)
        #expect(elapsed >= limit, "failed after \(elapsed)")
        #expect(elapsed < limit * 1.75, "timed out after \(elapsed), not about \(limit)")
        // The worker that ran them was replaced; the new one held nothing either.
        #expect(try pool.map(F.square, 0..<40, chunksize: 1, timeout: source == .call ? limit : nil).count == 40)
        let after = try pool.apply(F.heldDoorbells)
        #expect(after[2] != before[2], "the hung chunk's worker was killed")
        #expect(after[0] == 0, "no result held under a timeout")
    }

    @Test(
        "A held result's doorbell waits while more tasks are queued, and rings once for several when the last is taken"
    )
    func heldUntilTheLastQueuedTask() throws {
        let stream = try RingStream()
        // Never due here, however slowly the test runs.
        let writer = ResultWriter(
            ring: stream.ring, doorbell: stream.doorbell.writeEnd, heldDoorbellDelay: .seconds(3600))
        stream.ring.armConsumer()
        writer.send(OutgoingFrame(bytes: [1, 1]), doorbell: .held(job: 5))
        #expect(stream.doorbellBytes() == 0, "held: not rung as it is sent")
        writer.settleDoorbell(takingNext: true)
        #expect(stream.doorbellBytes() == 0, "more tasks queued behind the next: still held")
        writer.send(OutgoingFrame(bytes: [2, 2]), doorbell: .held(job: 5))
        writer.settleDoorbell(takingNext: false)
        #expect(stream.doorbellBytes() == 1, "the last queued task taken: one doorbell for both results")
        #expect(writer.heldCounts.results == 2 && writer.heldCounts.rung == 1)
        writer.settleDoorbell(takingNext: false)
        writer.settleDoorbell(final: true)
        #expect(stream.doorbellBytes() == 0, "nothing left pending")
    }

    @Test("A held result rings once it has waited its delay, or as the worker is about to sleep, unless read")
    func heldUntilDueOrSleep() async throws {
        let stream = try RingStream()
        let writer = ResultWriter(
            ring: stream.ring, doorbell: stream.doorbell.writeEnd, heldDoorbellDelay: .milliseconds(2))
        stream.ring.armConsumer()
        writer.send(OutgoingFrame(bytes: [3]), doorbell: .held(job: 5))
        // Past its delay: the next look while spinning rings.
        try await Task.sleep(for: .milliseconds(6))
        writer.settleDoorbell(final: false)
        #expect(stream.doorbellBytes() == 1, "due while spinning: rung")

        stream.ring.armConsumer()
        writer.send(OutgoingFrame(bytes: [4]), doorbell: .held(job: 5))
        writer.settleDoorbell(final: true)
        #expect(stream.doorbellBytes() == 1, "about to sleep: rung")

        // Read by the parent before the worker settles it: never rung.
        stream.ring.armConsumer()
        var bytes = [UInt8](repeating: 0, count: 16)
        _ = bytes.withUnsafeMutableBytes { stream.ring.read(into: $0.baseAddress!, count: 16) }
        writer.send(OutgoingFrame(bytes: [5]), doorbell: .held(job: 5))
        _ = bytes.withUnsafeMutableBytes { stream.ring.read(into: $0.baseAddress!, count: 16) }
        writer.settleDoorbell(takingNext: false)
        writer.settleDoorbell(final: true)
        #expect(stream.doorbellBytes() == 0, "read meanwhile: no doorbell")
        #expect(writer.heldCounts.results == 3 && writer.heldCounts.rung == 2)
    }

    @Test("Held results are rung for before a task whose result is wanted, whatever is queued behind it")
    func heldBeforeAWantedTask() throws {
        let stream = try RingStream()
        let writer = ResultWriter(
            ring: stream.ring, doorbell: stream.doorbell.writeEnd, heldDoorbellDelay: .seconds(3600))
        func header(mayWait: Bool, lone: Bool = false, job: UInt64 = 5) throws -> TaskHeader {
            var body = ByteReader(taskFrame(1, mayWait: mayWait, lone: lone, job: job).bytes, offset: 5)
            return try TaskHeader.read(from: &body)
        }
        stream.ring.armConsumer()
        writer.send(OutgoingFrame(bytes: [1]), doorbell: .held(job: 5))
        writer.settleDoorbell(taking: try header(mayWait: true), moreQueued: true)
        #expect(stream.doorbellBytes() == 0, "another held chunk, more behind it: still held")
        for (mayWait, lone, job) in [(false, false, 5), (false, true, 5), (true, false, 6)] as [(Bool, Bool, UInt64)] {
            writer.settleDoorbell(taking: try header(mayWait: mayWait, lone: lone, job: job), moreQueued: true)
            #expect(stream.doorbellBytes() == 1, "a chunk whose result is wanted, or another job's: rung first")
            stream.ring.armConsumer()
            writer.send(OutgoingFrame(bytes: [2]), doorbell: .held(job: 5))
        }
    }

    @Test(
        "A map's held results do not wait behind another map's long chunk, and failed results are never held",
        .timeLimit(.minutes(1)))
    func heldNotBehindLongWork() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        #expect(try pool.apply(F.square, 3) == 9)
        // Map A's short chunks, then map B's, whose first runs 3 s with more of B's behind it.
        let short = [Int](repeating: 100, count: 30)
        let first = try pool.mapAsync(F.spinMicroseconds, short, chunksize: 1)
        let second = try pool.mapAsync(F.blockMs, [3_000, 0, 0, 0], chunksize: 1)
        let start = ContinuousClock.now
        #expect(try first.get(timeout: .seconds(2)) == short)
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(try second.get(timeout: .seconds(10)) == [3_000, 0, 0, 0])

        // Failed results are rung for at once, never held: the parent drops the rest of a map
        // that stops at its first failure as soon as it can.
        let before = try pool.apply(F.heldDoorbells)
        #expect(throws: TestFailure.self) {
            try pool.map(F.blockMsOrFail, [Int](repeating: -1, count: 20), chunksize: 1)
        }
        let after = try pool.apply(F.heldDoorbells)
        #expect(after[2] == before[2] && after[0] == before[0], "a failed result was held")
    }

    @Test("A lone call's deferred doorbell still rings as the next task is taken, whatever is queued")
    func loneRingsOnTaking() throws {
        let stream = try RingStream()
        let writer = ResultWriter(ring: stream.ring, doorbell: stream.doorbell.writeEnd)
        stream.ring.armConsumer()
        writer.send(OutgoingFrame(bytes: [6]), doorbell: .deferred)
        writer.settleDoorbell(takingNext: true)
        #expect(stream.doorbellBytes() == 1)
        #expect(writer.heldCounts.results == 0)
    }

    @Test("The reader says, as it hands out each frame, whether more are queued behind it, in place or copied")
    func readerReportsQueuedFrames() throws {
        let stream = try RingStream(capacity: 256 * 1024)
        let writer = ResultWriter(ring: stream.ring, doorbell: stream.doorbell.writeEnd)
        var seen: [Bool] = []
        var reader = stream.reader()
        reader.callerSettlesOnHandOut = true
        // Copied frames: three, then one.
        for index in 0..<3 { writer.send(taskFrame(index, mayWait: true)) }
        for _ in 0..<3 {
            _ = try #require(try reader.next())
            seen.append(reader.moreQueued)
        }
        writer.send(taskFrame(3, mayWait: true))
        _ = try #require(try reader.next())
        seen.append(reader.moreQueued)
        #expect(seen == [true, true, false, false])

        // Frames whose packed items stay in the ring: two, then one.
        seen = []
        reader.takesPackedItemsInPlace = true
        writer.send(packedFrame(0))
        writer.send(packedFrame(1))
        _ = try #require(try reader.next())
        #expect(reader.itemsInRing != nil)
        seen.append(reader.moreQueued)
        _ = try #require(try reader.next())
        seen.append(reader.moreQueued)
        writer.send(packedFrame(2))
        // Taken before the reader frees the last one's items: the one behind it counts.
        reader.releaseItemsInRing()
        _ = try #require(try reader.next())
        seen.append(reader.moreQueued)
        #expect(reader.itemsInRing != nil)
        #expect(seen == [true, false, false])
    }

    @Test(
        "A call under a timeout among a map's held results and another's times out after its timeout, and neither map loses a result",
        .timeLimit(.minutes(1)))
    func timedCallBehindHeldResults() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        #expect(try pool.apply(F.square, 3) == 9)
        let limit = Duration.milliseconds(400)
        // Held chunks, then a call that hangs under a timeout, then more held chunks: the call's
        // clock starts only once the parent has read the results before it.
        // Chunks of 100 µs: about 2 ms of them queued, and the call with some of the second map
        // behind it.
        let short = [Int](repeating: 100, count: 60)
        let first = try pool.mapAsync(F.spinMicroseconds, short, chunksize: 1)
        let start = ContinuousClock.now
        let hung = try pool.applyAsync(F.blockMs, 5_000, timeout: limit)
        let second = try pool.mapAsync(F.spinMicroseconds, short, chunksize: 1)
        #expect(errorCode { try hung.get(timeout: .seconds(4)) } == .taskTimedOut)
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < limit * 1.75, "timed out after \(elapsed), not about \(limit)")
        // Neither map lost a result (the second's queued chunks went to the new worker).
        #expect(try first.get(timeout: .seconds(10)) == short)
        #expect(try second.get(timeout: .seconds(10)) == short)
    }

    @Test(
        "Through a pool: a map of many short chunks has the same results, and its worker rang fewer doorbells than it sent results"
    )
    func throughAPool() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.terminate() }
        let before = try await pool.apply(F.heldDoorbells)
        // 300 chunks of ~100 µs: the scheduler queues several behind the running one.
        let spins = try await pool.map(F.spinMicroseconds, Array(repeating: 100, count: 300), chunksize: 1)
        #expect(spins == Array(repeating: 100, count: 300))
        let after = try await pool.apply(F.heldDoorbells)
        #expect(after[2] == before[2], "one worker throughout")
        let held = after[0] - before[0]
        let rung = after[1] - before[1]
        #expect(held == 300, "every chunk of the map is held")
        #expect(rung < held / 2, "one doorbell for several results (\(rung) for \(held))")
        // A lone call is not held.
        _ = try await pool.apply(F.spinMicroseconds, 10)
        #expect(try await pool.apply(F.heldDoorbells)[0] == after[0])
        // Mixed with a failing chunk: the error still ends the map.
        await #expect(throws: RemoteError.self) { try await pool.map(F.failOnFive, 0..<40, chunksize: 1) }
        #expect(try await pool.map(F.square, 0..<2000, chunksize: 10) == (0..<2000).map { $0 * $0 })
    }
}
