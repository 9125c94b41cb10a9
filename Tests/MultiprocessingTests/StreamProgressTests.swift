// The progress of an imap stream: its total is known from the start over a random-access input,
// and once the input has been read to its end over any other sequence.

import Multiprocessing
import MultiprocessingTestSupport
import Testing

@Suite("Stream progress", .offCooperativePool)
struct StreamProgressTests {
    @Test("imap over an Array or a range knows its total before the first result", .timeLimit(.minutes(1)))
    func totalOfACollection() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let array = try pool.imap(F.square, Array(0..<80), chunksize: 8)
        #expect(array.progress.total == 80)
        let range = try pool.imapUnordered(F.square, 0..<50, chunksize: 5)
        #expect(range.progress.total == 50)
        var count = 0
        for try await _ in array { count += 1 }
        #expect(count == 80 && array.progress == PoolProgress(completed: 80, total: 80, isFinished: true))
        for try await _ in range {}
        #expect(range.progress.completed == 50 && range.progress.total == 50)
    }

    @Test("imap over a lazy sequence learns its total when the input ends", .timeLimit(.minutes(1)))
    func totalOfASequence() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        // Far more chunks than the stream reads ahead: its input is not at its end at first.
        let stream = try pool.imap(F.square, (0..<100_000).lazy.filter { $0 % 10 == 0 }, chunksize: 4)
        #expect(stream.progress.total == nil)
        var count = 0
        for try await _ in stream { count += 1 }
        #expect(count == 10_000 && stream.progress.total == 10_000)
    }
}
