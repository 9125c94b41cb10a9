// The chunk boundary of a stream: the item that ends a chunk and the first of the next, when that
// chunk has arrived, come from StreamStorage.nextReady, inlined into the reader with the cursor's
// fast path, without a wait (with `next(timeout:)`) or a suspension (with `for try await`); only a
// chunk not there yet (or the end) goes to the storage's waiting path.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

@Suite("Stream chunk boundary", .offCooperativePool)
struct StreamChunkBoundaryTests {
    @Test(
        "Arrived chunks are handed out across their boundaries without a wait, failures at their places",
        .timeLimit(.minutes(1)))
    func arrivedChunksWithoutWaiting() throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        // Negative inputs fail: one first in its chunk, one last, one inside.
        let failing: Set<Int> = [20, 39, 55]
        let input = (0..<100).map { failing.contains($0) ? -$0 : $0 * $0 }
        // 10 chunks, all within the window: every one is submitted at once.
        let stream = try pool.imap(F.checkedSqrt, input, chunksize: 10)
        // Finished: the pool has handed the stream every chunk (each before it finished the job).
        #expect(eventually(timeout: .seconds(20)) { stream.progress.isFinished })
        var seen: [Int] = []
        var failed: [Int] = []
        for _ in 0..<100 {
            // Every item is ready: none goes the waiting way.
            let outcome: Result<Int, any Error>
            if let value = stream.storage.nextBuffered() {
                outcome = .success(value)
            } else {
                outcome = try #require(stream.storage.nextReady(), "item \(seen.count) was ready")
            }
            switch outcome {
            case .success(let root): seen.append(root)
            case .failure(let error):
                failed.append(-((error as? TestFailure)?.value ?? 1))
                seen.append(-1)
            }
        }
        #expect(failed == [20, 39, 55])
        #expect(seen == (0..<100).map { failing.contains($0) ? -1 : $0 })
        // Nothing is left: no item is ready, and the stream's own `next` says it ended.
        #expect(stream.storage.nextReady().map { _ in true } == nil)
        #expect(try stream.next(timeout: .seconds(5)) == nil)
    }

    @Test(
        "The async iterator takes arrived chunks across their boundaries without suspending, unless its task is cancelled",
        .timeLimit(.minutes(1)))
    func iteratorWithoutSuspending() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let stream = try pool.imap(F.square, Array(0..<100), chunksize: 10)
        #expect(await eventuallyAsync(timeout: .seconds(20)) { stream.progress.isFinished })
        var iterator = stream.makeAsyncIterator()
        var seen: [Int] = []
        for _ in 0..<100 {
            // The synchronous parts of `next()`: the values taken, then the chunk boundary.
            if let value = iterator.nextTaken() {
                seen.append(value)
            } else {
                seen.append(try #require(iterator.nextReady(), "item \(seen.count) was ready").get())
            }
        }
        #expect(seen == (0..<100).map { $0 * $0 })
        #expect(try await iterator.next() == nil)

        // A cancelled task takes nothing at the boundary: the stream's own `next` throws.
        let other = try pool.imap(F.square, Array(0..<20), chunksize: 10)
        #expect(await eventuallyAsync(timeout: .seconds(20)) { other.progress.isFinished })
        let task = Task {
            var iterator = other.makeAsyncIterator()
            withUnsafeCurrentTask { $0?.cancel() }
            let ready = iterator.nextReady().map { _ in true }
            let thrown = await #expect(throws: CancellationError.self) { _ = try await iterator.next() }
            return ready == nil && thrown != nil
        }
        #expect(await task.value)
    }
}
