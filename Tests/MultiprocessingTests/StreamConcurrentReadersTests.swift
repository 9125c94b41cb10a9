// Several threads reading one imap stream with `next(timeout:)` at once: the cursor's lock
// (Runtime/CursorLock.swift) must hand every item out exactly once, and each reader sees the
// items it gets in the stream's order.

import Dispatch
import Multiprocessing
import MultiprocessingTestSupport
import Synchronization
import Testing

@Suite("Stream concurrent readers", .offCooperativePool)
struct StreamConcurrentReadersTests {
    @Test(
        "Two threads calling next() at once get every item exactly once, in order per caller",
        .timeLimit(.minutes(1)))
    func twoReaders() throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let count = 200_000
        let stream = try pool.imap(F.square, (0..<count).lazy.map { $0 }, chunksize: 1000)
        let seen = Mutex<[[Int]]>([[], []])
        let group = DispatchGroup()
        for reader in 0..<2 {
            group.enter()
            ReaderThread.start {
                var mine: [Int] = []
                mine.reserveCapacity(count)
                while let value = try? stream.next(timeout: .seconds(20)) { mine.append(value) }
                seen.withLock { $0[reader] = mine }
                group.leave()
            }
        }
        group.wait()
        let lists = seen.withLock { $0 }
        for list in lists {
            // In the stream's order: strictly increasing squares of increasing inputs.
            #expect(zip(list, list.dropFirst()).allSatisfy { $0 < $1 })
        }
        #expect((lists[0] + lists[1]).sorted() == (0..<count).map { $0 * $0 })
    }
}

/// A plain thread (the test blocks in `next(timeout:)`, which must not hold a cooperative thread).
private enum ReaderThread {
    static func start(_ body: @escaping @Sendable () -> Void) {
        DispatchQueue.global().async(execute: body)
    }
}
