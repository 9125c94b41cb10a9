// StreamStateMachineTests.swift
//
// Unit tests of an `imap` stream's state machine (Runtime/StreamStateMachine.swift) and of its
// cursor (Runtime/StreamCursor.swift), driven by hand the way StreamStorage drives them: feed
// (nextChunkToFeed → chunkSubmitted), results (chunkArrived, jobFinished, jobFailed), consume
// (poll → load the chunk into a cursor → take its items → chunkConsumed). No process, no lock,
// no thread: waiters are names. The last test is a seeded randomized model of arrival orders.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

private typealias SM = StreamStateMachine<String>

private struct Failed: Error, Equatable {
    var item: Int
}

/// The results of a chunk whose items all succeeded.
private func results(_ values: [Int]) -> StreamChunk {
    var chunk = StreamChunkResults<Int>(count: values.count)
    chunk.values = values
    return StreamChunk(chunk)
}

/// Drives one state machine and hands its chunks out through a cursor, as StreamStorage does.
private struct Harness {
    var sm: SM
    var cursor = StreamCursor<Int>()

    init(ordered: Bool = true, window: Int = 4) {
        sm = SM(ordered: ordered, window: window)
    }

    /// Feeds chunks of `size` items while the window allows, up to chunk index `limit`
    /// (exclusive). Returns the indices fed.
    @discardableResult
    mutating func feed(size: Int = 2, upTo limit: Int = .max) -> [Int] {
        var fed: [Int] = []
        while let index = sm.nextChunkToFeed, index < limit {
            sm.chunkSubmitted(index: index, count: size)
            fed.append(index)
        }
        return fed
    }

    /// What the consumer gets next: an item, or the poll's outcome when the cursor is empty.
    enum Next: Equatable {
        case value(Int), failure(Failed), end, streamFailure(Failed), pending, wait(UInt64)
    }

    mutating func next(registering waiter: String? = nil) -> Next {
        if cursor.count == 0 {
            switch sm.poll(registering: waiter) {
            case .chunk(let chunk): cursor.load(chunk)
            case .end: return .end
            case .failure(let error): return .streamFailure(error as! Failed)
            case .pending: return .pending
            case .wait(let id): return .wait(id)
            }
        }
        let (outcome, endsChunk) = cursor.take()!
        if endsChunk { sm.chunkConsumed() }
        switch outcome {
        case .success(let value): return .value(value)
        case .failure(let error): return .failure(error as! Failed)
        }
    }

    /// Every item available now, until the consumer would have to wait.
    mutating func drain() -> [Next] {
        var taken: [Next] = []
        while true {
            let item = next()
            guard case .value = item else {
                if case .failure = item {
                    taken.append(item)
                    continue
                }
                return taken
            }
            taken.append(item)
        }
    }
}

@Suite("Stream state machine", .cpuBound)
struct StreamStateMachineTests {
    @Test("imap hands chunks out in input order, whatever order they arrive in")
    func orderedRelease() {
        var h = Harness(ordered: true)
        #expect(h.feed(upTo: 3) == [0, 1, 2])
        #expect(h.sm.chunkArrived(index: 2, results([4, 5])).isEmpty)
        #expect(h.sm.chunkArrived(index: 1, results([2, 3])).isEmpty)
        #expect(h.next() == .pending)
        _ = h.sm.chunkArrived(index: 0, results([0, 1]))
        #expect(h.drain() == [0, 1, 2, 3, 4, 5].map { .value($0) })
    }

    @Test("imapUnordered hands chunks out as they arrive")
    func unorderedRelease() {
        var h = Harness(ordered: false)
        h.feed(upTo: 3)
        _ = h.sm.chunkArrived(index: 2, results([4, 5]))
        #expect(h.drain() == [.value(4), .value(5)])
        _ = h.sm.chunkArrived(index: 0, results([0, 1]))
        #expect(h.drain() == [.value(0), .value(1)])
    }

    @Test("The input is read a window ahead of the consumer, and all at once after the pool closes")
    func window() {
        var h = Harness(window: 2)
        #expect(h.feed() == [0, 1])
        #expect(h.sm.nextChunkToFeed == nil)
        _ = h.sm.chunkArrived(index: 0, results([0, 1]))
        // Arrived but not yet taken: still outstanding.
        #expect(h.sm.nextChunkToFeed == nil)
        #expect(h.next() == .value(0))
        #expect(h.sm.nextChunkToFeed == nil)
        #expect(h.next() == .value(1))
        #expect(h.sm.nextChunkToFeed == 2)
        #expect(h.feed() == [2])
        h.sm.poolClosed()
        #expect(h.feed(upTo: 10) == Array(3..<10))
    }

    @Test("The stream ends when the input has ended, the job has finished and every chunk was handed out")
    func end() {
        var h = Harness()
        h.feed(upTo: 2)
        _ = h.sm.chunkArrived(index: 1, results([2, 3]))
        h.sm.inputEnded()
        _ = h.sm.jobFinished()
        // Chunk 0 is still missing: no end yet, and chunk 1 waits for it.
        #expect(h.next() == .pending)
        #expect(h.sm.expectedCount(ofChunk: 0) == 2)
        _ = h.sm.chunkArrived(index: 0, results([0, 1]))
        #expect(h.drain() == [0, 1, 2, 3].map { .value($0) })
        #expect(h.next() == .end)
        #expect(h.sm.isComplete)
    }

    @Test("A finished job whose input has not ended is not the end")
    func noEndBeforeInputEnds() {
        var h = Harness()
        h.feed(upTo: 1)
        _ = h.sm.chunkArrived(index: 0, results([0, 1]))
        _ = h.sm.jobFinished()
        #expect(h.drain() == [.value(0), .value(1)])
        #expect(h.next() == .pending)
        #expect(!h.sm.isComplete)
        h.sm.inputEnded()
        #expect(h.next() == .end)
    }

    @Test("Failed items come at their positions; the stream goes on after them")
    func failedItems() {
        var h = Harness()
        h.feed(size: 3, upTo: 1)
        var chunk = StreamChunkResults<Int>(count: 3)
        chunk.values = [10, 12]
        chunk.failures[1] = Failed(item: 11)
        _ = h.sm.chunkArrived(index: 0, StreamChunk(chunk))
        #expect(h.drain() == [.value(10), .failure(Failed(item: 11)), .value(12)])
    }

    @Test("A chunk that failed whole (its worker was lost) fails at each of its items, in its place")
    func chunkFailedWhole() {
        var h = Harness()
        h.feed(size: 3, upTo: 2)
        _ = h.sm.chunkArrived(index: 1, results([3, 4, 5]))
        // The chunk carries no values: the cursor makes its failures from the one error.
        _ = h.sm.chunkArrived(index: 0, StreamChunk(failing: 3, with: Failed(item: -1)))
        #expect(
            h.drain() == [
                .failure(Failed(item: -1)), .failure(Failed(item: -1)), .failure(Failed(item: -1)),
                .value(3), .value(4), .value(5),
            ])
    }

    @Test("An item that fails before it is sent takes its place in input order")
    func localFailure() {
        var h = Harness()
        h.sm.chunkSubmitted(index: 0, count: 2)
        #expect(h.sm.itemFailedLocally(index: 1, with: Failed(item: 2)).isEmpty)
        h.sm.chunkSubmitted(index: 2, count: 1)
        #expect(h.sm.itemsSubmitted == 4)
        _ = h.sm.chunkArrived(index: 2, results([3]))
        #expect(h.next() == .pending)
        _ = h.sm.chunkArrived(index: 0, results([0, 1]))
        #expect(h.drain() == [.value(0), .value(1), .failure(Failed(item: 2)), .value(3)])
    }

    @Test("A chunk that arrives without items is consumed without being handed out")
    func emptyChunk() {
        var h = Harness(window: 1)
        h.feed(upTo: 1)
        #expect(h.sm.nextChunkToFeed == nil)
        _ = h.sm.chunkArrived(index: 0, StreamChunk(StreamChunkResults<Int>(count: 0)))
        #expect(h.sm.nextChunkToFeed == 1)
        h.sm.inputEnded()
        _ = h.sm.jobFinished()
        #expect(h.next() == .end)
    }

    @Test("Waiters are woken once, by the transition that makes a chunk ready or ends the job")
    func waiters() {
        var h = Harness()
        h.feed(upTo: 2)
        #expect(h.next(registering: "a") == .wait(1))
        #expect(h.next(registering: "b") == .wait(2))
        // Chunk 1 cannot be handed out before chunk 0: nobody is woken.
        #expect(h.sm.chunkArrived(index: 1, results([2, 3])).isEmpty)
        #expect(Set(h.sm.chunkArrived(index: 0, results([0, 1]))) == ["a", "b"])
        #expect(h.sm.takeWaiters().isEmpty)
        let removedAfterWake = h.sm.removeWaiter(1)
        #expect(!removedAfterWake)
        // With chunks ready, a poll hands one out instead of registering the waiter.
        #expect(h.next(registering: "c") == .value(0))
        #expect(h.drain() == [1, 2, 3].map { .value($0) })
        #expect(h.next(registering: "d") == .wait(3))
        h.sm.inputEnded()
        #expect(h.sm.jobFinished() == ["d"])
        #expect(h.next() == .end)
    }

    @Test("A waiter whose wait timed out is forgotten")
    func removeWaiter() {
        var h = Harness()
        h.feed(upTo: 1)
        guard case .wait(let id) = h.next(registering: "a") else {
            Issue.record("expected a wait")
            return
        }
        let removed = h.sm.removeWaiter(id)
        let removedAgain = h.sm.removeWaiter(id)
        #expect(removed && !removedAgain)
        h.sm.inputEnded()
        #expect(h.sm.jobFinished().isEmpty)
    }

    @Test("A failed job throws after the chunks already ready, and the first failure stays")
    func jobFailed() {
        var h = Harness()
        h.feed(upTo: 2)
        #expect(h.next(registering: "a") == .wait(1))
        #expect(h.sm.chunkArrived(index: 0, results([0, 1])) == ["a"])
        #expect(h.next() == .value(0))
        #expect(h.sm.jobFailed(with: Failed(item: -1)).isEmpty)
        #expect(h.sm.jobFailed(with: Failed(item: -2)).isEmpty)
        #expect(h.next() == .value(1))
        #expect(h.next() == .streamFailure(Failed(item: -1)))
        #expect(h.next() == .streamFailure(Failed(item: -1)))
        #expect(h.sm.isComplete)

        var other = Harness()
        other.feed(upTo: 1)
        #expect(other.next(registering: "b") == .wait(1))
        #expect(other.sm.jobFailed(with: Failed(item: -3)) == ["b"])
        #expect(other.next(registering: "c") == .streamFailure(Failed(item: -3)))
    }

    @Test("Cancelling drops the results not handed out; only the first cancel counts")
    func cancel() {
        var h = Harness()
        h.feed(upTo: 3)
        _ = h.sm.chunkArrived(index: 0, results([0, 1]))
        _ = h.sm.chunkArrived(index: 2, results([4, 5]))
        let cancelled = h.sm.cancel(with: Failed(item: -1))
        let cancelledAgain = h.sm.cancel(with: Failed(item: -2))
        #expect(cancelled && !cancelledAgain)
        #expect(h.next() == .streamFailure(Failed(item: -1)))
        #expect(h.sm.isComplete)
        // A chunk still running at the cancel arrives later (killed, or finished just before):
        // it is not handed out either.
        _ = h.sm.chunkArrived(index: 1, results([2, 3]))
        #expect(h.next() == .streamFailure(Failed(item: -1)))
    }

    @Test("The item total counts chunks and items that failed locally")
    func itemsSubmitted() {
        var sm = SM(ordered: true, window: 8)
        sm.chunkSubmitted(index: 0, count: 1000)
        _ = sm.itemFailedLocally(index: 1, with: Failed(item: 1000))
        sm.chunkSubmitted(index: 2, count: 7)
        #expect(sm.itemsSubmitted == 1008)
        #expect(sm.expectedCount(ofChunk: 0) == 1000)
        #expect(sm.expectedCount(ofChunk: 2) == 7)
        #expect(sm.expectedCount(ofChunk: 3) == nil)
    }

    @Test("The cursor's fast path takes every value but a chunk's last, and none of a chunk with failures")
    func cursor() {
        var cursor = StreamCursor<Int>()
        #expect(cursor.takeValue() == nil)
        #expect(cursor.take() == nil)
        cursor.load(results([1, 2, 3]))
        #expect(cursor.takeValue() == 1)
        #expect(cursor.takeValue() == 2)
        #expect(cursor.takeValue() == nil)
        let last = cursor.take()
        #expect((try? last?.0.get()) == 3 && last?.endsChunk == true)
        #expect(cursor.count == 0 && cursor.take() == nil)

        var failing = StreamChunkResults<Int>(count: 2)
        failing.values = [5]
        failing.failures[0] = Failed(item: 4)
        cursor.load(failing)
        #expect(cursor.takeValue() == nil)
        let first = cursor.take()
        #expect(first?.endsChunk == false)
        #expect(throws: Failed(item: 4)) { try first?.0.get() }
        let second = cursor.take()
        #expect((try? second?.0.get()) == 5 && second?.endsChunk == true)
    }

    @Test(
        "The cursor hands out a chunk's values but its last at once; the last, or any item of a chunk with a failure, goes the slow way"
    )
    func cursorTakesValuesAtOnce() {
        var cursor = StreamCursor<Int>()
        cursor.load(results([1, 2, 3, 4]))
        #expect(cursor.takeValue() == 1)
        #expect(Array(cursor.takeValues()) == [2, 3])
        #expect(cursor.takeValue() == nil && cursor.takeValues().isEmpty)
        let last = cursor.take()
        #expect((try? last?.0.get()) == 4 && last?.endsChunk == true)

        cursor.load(results([7]))
        #expect(cursor.takeValue() == nil && cursor.takeValues().isEmpty)
        let only = cursor.take()
        #expect((try? only?.0.get()) == 7 && only?.endsChunk == true)

        var failingLast = StreamChunkResults<Int>(count: 3)
        failingLast.values = [1, 2]
        failingLast.failures[2] = Failed(item: 3)
        cursor.load(failingLast)
        #expect(cursor.takeValue() == nil && cursor.takeValues().isEmpty)
        #expect((try? cursor.take()?.0.get()) == 1)
        #expect((try? cursor.take()?.0.get()) == 2)
        let failed = cursor.take()
        #expect(failed?.endsChunk == true)
        #expect(throws: Failed(item: 3)) { try failed?.0.get() }
        #expect(cursor.take() == nil)
    }

    @Test(
        "Random arrival orders: imap yields the input order, imapUnordered every item once",
        arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func randomArrivals(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        for ordered in [true, false] {
            let window = Int.random(in: 1...5, using: &random)
            let chunks = Int.random(in: 1...40, using: &random)
            let size = Int.random(in: 1...4, using: &random)
            var h = Harness(ordered: ordered, window: window)
            var inFlight: [Int] = []
            var taken: [Int] = []
            var fed = 0
            while taken.count < chunks * size {
                for index in h.feed(size: size, upTo: chunks) { inFlight.append(index) }
                fed = max(fed, (inFlight.max() ?? -1) + 1)
                if fed == chunks { h.sm.inputEnded() }
                #expect(inFlight.count <= window)
                if !inFlight.isEmpty, Bool.random(using: &random) {
                    let index = inFlight.remove(at: Int.random(in: 0..<inFlight.count, using: &random))
                    _ = h.sm.chunkArrived(index: index, results(Array(index * size..<(index + 1) * size)))
                    if inFlight.isEmpty && fed == chunks { _ = h.sm.jobFinished() }
                }
                // Take a random number of items that are there.
                for _ in 0..<Int.random(in: 0...(2 * size), using: &random) {
                    guard case .value(let value) = h.next() else { break }
                    taken.append(value)
                }
                // Outstanding chunks never exceed the window, even when the consumer lags.
                #expect(h.sm.nextChunkToFeed == nil || inFlight.count < window)
            }
            #expect(h.next() == .end)
            if ordered {
                #expect(taken == Array(0..<chunks * size))
            } else {
                #expect(taken.sorted() == Array(0..<chunks * size))
            }
        }
    }
}
