// AdaptiveChunkingTests.swift
//
// The chunk sizes of an `imap` stream given no chunksize (Scheduling/AdaptiveChunking.swift),
// driven with made-up run times and sizes; the stream state machine cutting chunks by them and
// bounding the items it reads ahead; the run time the worker sends with every result; and real
// pools, whose workers are replaced after a few tasks so that the number of distinct worker pids
// tells how many chunks ran.

import Multiprocessing
import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

/// Feeds `chunking` `rounds` chunks of its current size whose items take `nanosecondsPerItem`.
private func run(_ chunking: inout AdaptiveChunking, rounds: Int, nanosecondsPerItem: Double) -> [Int] {
    var sizes: [Int] = []
    for _ in 0..<rounds {
        let size = chunking.size
        sizes.append(size)
        chunking.chunkRan(items: size, nanoseconds: UInt64(Double(size) * nanosecondsPerItem))
    }
    return sizes
}

@Suite("Adaptive chunk sizes", .offCooperativePool)
struct AdaptiveChunkingTests {
    // MARK: - The sizing rule

    @Test("Starts at one item and doubles while chunks are fast, up to the maximum")
    func growsToMaximum() {
        var chunking = AdaptiveChunking()
        #expect(chunking.size == 1)
        // 50 ns an item: even 8192 items take 0.4 ms, below the 2 ms target.
        let sizes = run(&chunking, rounds: 16, nanosecondsPerItem: 50)
        #expect(sizes == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 8192, 8192])
        #expect(chunking.size == AdaptiveChunking.defaultMaximum)
    }

    @Test(
        "Settles where a chunk takes about the target, whatever an item costs",
        arguments: [1_000.0, 20_000, 77_000, 250_000, 900_000])
    func settlesAtTarget(nanosecondsPerItem: Double) {
        var chunking = AdaptiveChunking()
        _ = run(&chunking, rounds: 30, nanosecondsPerItem: nanosecondsPerItem)
        let settled = chunking.size
        // Stable: more chunks of the same items keep it.
        #expect(run(&chunking, rounds: 10, nanosecondsPerItem: nanosecondsPerItem).allSatisfy { $0 == settled })
        let chunkMilliseconds = Double(settled) * nanosecondsPerItem / 1e6
        #expect(chunkMilliseconds >= 1 && chunkMilliseconds <= 4, "chunks of \(settled) take \(chunkMilliseconds) ms")
    }

    @Test("Items slower than the target go one to a chunk")
    func slowItemsAlone() {
        var chunking = AdaptiveChunking()
        #expect(run(&chunking, rounds: 10, nanosecondsPerItem: 10_000_000).allSatisfy { $0 == 1 })
        #expect(run(&chunking, rounds: 5, nanosecondsPerItem: 3_000_000).allSatisfy { $0 == 1 })
    }

    @Test("Items that turn slow shrink the chunks within a few chunks, to what fits the target")
    func shrinks() {
        var chunking = AdaptiveChunking()
        _ = run(&chunking, rounds: 14, nanosecondsPerItem: 50)
        #expect(chunking.size == 8192)
        // Now 100 µs an item: a chunk of 8192 would take 0.8 s. Three such chunks make it real.
        let sizes = run(&chunking, rounds: 6, nanosecondsPerItem: 100_000)
        #expect(sizes.prefix(3) == [8192, 8192, 8192], "\(sizes)")
        #expect(sizes[3...].allSatisfy { $0 >= 10 && $0 <= 20 }, "\(sizes)")
    }

    @Test("Chunks slowed down now and then by a busy machine do not shrink the chunks")
    func slowChunksNowAndThen() {
        var chunking = AdaptiveChunking()
        _ = run(&chunking, rounds: 14, nanosecondsPerItem: 100)
        #expect(chunking.size == 8192)
        // A worker that lost its core for 20 ms, twice in a row: 8192 × 0.1 µs + 20 ms.
        for _ in 0..<2 {
            chunking.chunkRan(items: 8192, nanoseconds: 8192 * 100 + 20_000_000)
            #expect(chunking.size == 8192)
        }
        _ = run(&chunking, rounds: 1, nanosecondsPerItem: 100)
        chunking.chunkRan(items: 8192, nanoseconds: 8192 * 100 + 20_000_000)
        #expect(chunking.size == 8192)
    }

    @Test("Faster items make chunks grow again at once")
    func fasterAgain() {
        var chunking = AdaptiveChunking()
        _ = run(&chunking, rounds: 10, nanosecondsPerItem: 100_000)
        #expect(chunking.size == 16)
        _ = run(&chunking, rounds: 1, nanosecondsPerItem: 1_000)
        #expect(chunking.size == 32)
    }

    @Test("Large items make smaller chunks: about 1 MiB of arguments or results a chunk")
    func byteBound() {
        var chunking = AdaptiveChunking()
        _ = run(&chunking, rounds: 14, nanosecondsPerItem: 50)
        chunking.chunkCarried(items: 2048, bytes: 2048 * 64 << 10)
        #expect(chunking.size == 16)
        // Results of 2 MiB: one item a chunk.
        chunking.chunkRan(items: 16, nanoseconds: 800, resultBytes: 16 * 2 << 20)
        #expect(chunking.size == 1)
        // Small again: the bound fades.
        for _ in 0..<40 { chunking.chunkCarried(items: 2048, bytes: 2048 * 8) }
        #expect(chunking.size == AdaptiveChunking.defaultMaximum)
    }

    @Test("A chunk without items or with no time says nothing bad")
    func degenerate() {
        var chunking = AdaptiveChunking()
        chunking.chunkRan(items: 0, nanoseconds: 1_000_000_000)
        #expect(chunking.size == 1 && chunking.nanosecondsPerItem == nil)
        chunking.chunkRan(items: 1, nanoseconds: 0)
        #expect(chunking.size == 2)
        chunking.chunkCarried(items: 0, bytes: 1 << 30)
        #expect(chunking.size == 2)
    }

    // MARK: - The stream cutting chunks by it

    @Test("A stream without a chunksize cuts chunks of the adaptive size; one with a chunksize keeps it")
    func streamSizes() {
        /// Cuts, runs (100 ns an item) and consumes 12 chunks; returns their sizes.
        func drive(_ sm: inout StreamStateMachine<String>) -> [Int] {
            var cut: [Int] = []
            for index in 0..<12 {
                let size = sm.nextChunkSize
                cut.append(size)
                sm.chunkSubmitted(index: index, count: size)
                var results = StreamChunkResults<Int>(count: size)
                results.values = Array(repeating: 0, count: size)
                _ = sm.chunkArrived(index: index, StreamChunk(results), runNanoseconds: UInt64(size) * 100)
                guard case .chunk = sm.poll(registering: nil) else { return cut }
                sm.chunkConsumed(items: size)
            }
            return cut
        }
        var adaptive = StreamStateMachine<String>(ordered: true, window: 4, chunksize: nil)
        #expect(drive(&adaptive) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048])
        var fixed = StreamStateMachine<String>(ordered: true, window: 4, chunksize: 7)
        #expect(drive(&fixed) == Array(repeating: 7, count: 12))
        #expect(fixed.itemWindow == .max)
    }

    @Test("The read-ahead is bounded in items as well as chunks")
    func itemWindow() {
        var sm = StreamStateMachine<String>(ordered: true, window: 8, chunksize: nil, itemWindow: 100)
        // Grow the chunks past what the item window holds at once.
        var index = 0
        while sm.nextChunkSize < 64 {
            let size = sm.nextChunkSize
            sm.chunkSubmitted(index: index, count: size)
            var results = StreamChunkResults<Int>(count: size)
            results.values = Array(repeating: 0, count: size)
            _ = sm.chunkArrived(index: index, StreamChunk(results), runNanoseconds: 10)
            _ = sm.poll(registering: nil)
            sm.chunkConsumed(items: size)
            index += 1
        }
        #expect(sm.outstandingItems == 0)
        // Without consuming: chunks are cut to what is left of the 100 items, then feeding stops.
        var fed: [Int] = []
        while sm.nextChunkToFeed != nil {
            let size = sm.nextChunkSize
            sm.chunkSubmitted(index: index, count: size)
            fed.append(size)
            index += 1
        }
        #expect(fed == [64, 36])
        #expect(sm.outstandingItems == 100)
        // The default item window: the chunk window of the largest chunks.
        let defaults = StreamStateMachine<String>(ordered: true, window: 8, chunksize: nil)
        #expect(defaults.itemWindow == 8 * AdaptiveChunking.defaultMaximum)
    }

    // MARK: - The run time on the wire

    @Test("A result frame carries the chunk's run time")
    func runTimeOnTheWire() throws {
        var builder = ResultFrameBuilder(job: 3, chunkIndex: 1)
        builder.appendValue(42, functionName: "f")
        builder.setRunDuration(nanoseconds: 0x1_2345_6789)
        let bytes = builder.finish()
        var reader = ByteReader(bytes, offset: 5)
        let header = try ResultHeader.read(from: &reader)
        #expect(header.runNanoseconds == 0x1_2345_6789)
        #expect(header.itemCount == 1)
        let outcomes = ResultItems.decode(
            reader, header: header, expected: 1, as: Int.self, functionName: "f", workerPID: 1)
        #expect(try outcomes[0].get() == 42)
    }

    // MARK: - Real pools

    @Test("imap without a chunksize sends tiny items many to a chunk, in order", .timeLimit(.minutes(1)))
    func tinyItemsBatched() async throws {
        // A worker is replaced after 100 chunks: items one to a chunk would need 40 workers.
        let pool = try TestPools.make(processes: 2, maxTasksPerChild: 100)
        defer { pool.stop() }
        var values: [Int] = []
        var pids: Set<Int> = []
        for try await pair in try pool.imap(F.taggedPID, 0..<4000) {
            values.append(pair[0])
            pids.insert(pair[1])
        }
        #expect(values == Array(0..<4000))
        #expect(pids.count <= 4, "\(pids.count) workers ran the chunks")
    }

    @Test(
        "imapUnordered without a chunksize: every item once; an explicit chunksize of 1 keeps one a chunk",
        .timeLimit(.minutes(1)))
    func unorderedAndExplicit() async throws {
        let pool = try TestPools.make(processes: 2, maxTasksPerChild: 25)
        defer { pool.stop() }
        var unordered: [Int] = []
        var unorderedPIDs: Set<Int> = []
        for try await pair in try pool.imapUnordered(F.taggedPID, 0..<3000) {
            unordered.append(pair[0])
            unorderedPIDs.insert(pair[1])
        }
        #expect(unordered.sorted() == Array(0..<3000))
        // About 20 chunks: one worker each, and perhaps a replacement (one a chunk: 120 workers).
        #expect(unorderedPIDs.count <= 4, "\(unorderedPIDs.count) workers ran the chunks")
        // chunksize: 1 means it: 100 chunks, so at least 4 workers of 25 tasks each.
        var pids: Set<Int> = []
        for try await pair in try pool.imap(F.taggedPID, 0..<100, chunksize: 1) { pids.insert(pair[1]) }
        #expect(pids.count >= 4)
    }

    @Test("Slow items stay one to a chunk: the worker's run time reaches the stream", .timeLimit(.minutes(1)))
    func slowItemsAloneInAPool() async throws {
        // 5 ms an item, more than twice the 2 ms target: chunks of one, 60 tasks, 15 workers of 4.
        // Without the measurement chunks would double to 2, 4, 8, … and take about 13 tasks.
        let pool = try TestPools.make(processes: 2, maxTasksPerChild: 4)
        defer { pool.stop() }
        var values: [Int] = []
        var pids: Set<Int> = []
        for try await pair in try pool.imap(F.slowTaggedPID, 0..<60) {
            values.append(pair[0])
            pids.insert(pair[1])
        }
        #expect(values == Array(0..<60))
        #expect(pids.count >= 14, "\(pids.count) workers ran the chunks")
    }

    @Test(
        "Errors stay per item and progress counts every item in chunks of many items", .timeLimit(.minutes(1)))
    func errorsAndProgress() throws {
        let pool = try TestPools.make(processes: 2, maxTasksPerChild: 100)
        defer { pool.stop() }
        let stream = try pool.imap(F.taggedPIDFailingOnFive, 0..<3000)
        var values: [Int] = []
        var pids: Set<Int> = []
        var failures: [Int] = []
        var position = 0
        while true {
            do {
                guard let pair = try stream.next(timeout: .seconds(30)) else { break }
                values.append(pair[0])
                pids.insert(pair[1])
            } catch {
                failures.append(position)
                #expect((error as? TestFailure)?.value == 5)
            }
            position += 1
        }
        #expect(failures == [5])
        #expect(values == Array(0..<5) + Array(6..<3000))
        #expect(stream.progress.completed == 3000 && stream.progress.total == 3000)
        #expect(pids.count <= 4, "\(pids.count) workers ran the chunks")
    }
}
