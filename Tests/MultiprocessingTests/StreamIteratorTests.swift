// An imap stream's async iterator takes the values waiting in a chunk at once and hands them out
// itself (ResultStream.AsyncIterator): every item still comes once, in order, an item's error at
// its place; and a cancel — of the stream or of the iterating task — drops what it took.

import Multiprocessing
import MultiprocessingTestSupport
import Testing

@Suite("Stream iterator", .offCooperativePool)
struct StreamIteratorTests {
    @Test("for try await gives every item once, in order, each error at its place", .timeLimit(.minutes(1)))
    func orderAndErrors() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        // Negative inputs fail (checkedSqrt): one in the middle of a chunk, one first and one
        // last of theirs, with clean chunks between them.
        let failing: Set<Int> = [37, 100, 199, 650]
        let input = (0..<1_000).map { failing.contains($0) ? -$0 : $0 * $0 }
        var iterator = try pool.imap(F.checkedSqrt, input, chunksize: 50).makeAsyncIterator()
        var seen: [Int] = []
        var failed: [Int] = []
        while true {
            do {
                guard let root = try await iterator.next() else { break }
                seen.append(root)
            } catch let error as TestFailure {
                failed.append(-error.value)
                seen.append(-1)
            }
        }
        #expect(failed == [37, 100, 199, 650])
        #expect(seen == (0..<1_000).map { failing.contains($0) ? -1 : $0 })
    }

    @Test("Values an iterator took are dropped when the stream is cancelled", .timeLimit(.minutes(1)))
    func streamCancelDropsTakenValues() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let stream = try pool.imap(F.square, Array(0..<1_000), chunksize: 100)
        var iterator = stream.makeAsyncIterator()
        // The first item loads the chunk; the second takes the rest of it but its last.
        #expect(try await iterator.next() == 0)
        #expect(try await iterator.next() == 1)
        stream.cancel()
        let code = await asyncErrorCode { _ = try await iterator.next() }
        #expect(code == .cancelled)
        #expect(await asyncErrorCode { _ = try await iterator.next() } == .cancelled)
    }

    @Test("A cancelled task's iterator stops within 64 items of the values it took", .timeLimit(.minutes(1)))
    func taskCancelDropsTakenValues() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let stream = try pool.imap(F.square, Array(0..<1_000), chunksize: 100)
        let outcome = await Task { () -> String in
            var iterator = stream.makeAsyncIterator()
            do {
                guard try await iterator.next() == 0, try await iterator.next() == 1 else { return "wrong values" }
            } catch {
                return "failed before the cancel: \(error)"
            }
            withUnsafeCurrentTask { $0?.cancel() }
            // The iterator checks its task every 64 items: the values it took (items 2…98 of the
            // first chunk) come in order until then, and never a value of the next chunk.
            var after: [Int] = []
            do {
                while let value = try await iterator.next() {
                    after.append(value)
                    if after.count > 64 { return "got \(after.count) values after the cancel" }
                }
                return "ended after \(after.count) values"
            } catch is CancellationError {
                guard after == (2..<(2 + after.count)).map({ $0 * $0 }) else { return "wrong values \(after)" }
                return "cancelled"
            } catch {
                return "threw \(error)"
            }
        }.value
        #expect(outcome == "cancelled")
    }
}

/// The pool error code an async body throws, if it throws one.
private func asyncErrorCode(_ body: () async throws -> Void) async -> PoolError.Code? {
    do {
        try await body()
        return nil
    } catch {
        return poolCode(error)
    }
}
