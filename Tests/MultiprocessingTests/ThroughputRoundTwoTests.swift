// The second round of issue 14's throughput paths: a stream's cursor under a lock of one atomic
// operation per item (CursorLock.swift), read by one thread and by several at once; and tasks
// left in an outbox by a full task ring, which the I/O thread writes when the worker makes room,
// while other threads keep the channel lock busy (a way the I/O thread's read path must never
// lose: its look at the outbox was tried as a look put off when the lock is busy, see git log).

import Multiprocessing
import MultiprocessingTestSupport
import Synchronization
import Testing

@testable import Multiprocessing

@Suite("Throughput paths, second round", .offCooperativePool) struct ThroughputRoundTwoTests {
    @Test("The cursor lock excludes: four threads' increments of a plain counter are all kept")
    func cursorLockExcludes() {
        let lock = CursorLock(0)
        let plain = PlainCounter()
        let perThread = 200_000
        let threads = (0..<4).map { _ in
            Thread {
                for _ in 0..<perThread {
                    lock.withLock { count in
                        count += 1
                        plain.value += 1
                    }
                }
            }
        }
        for thread in threads { thread.join() }
        #expect(lock.withLock { $0 } == 4 * perThread)
        #expect(plain.value == 4 * perThread)
        #expect(lock.word.load(ordering: .relaxed) == 0)
    }

    @Test("Four threads reading one stream get every result exactly once", .timeLimit(.minutes(1)))
    func streamReadByFourThreads() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let count = 200_000
        let stream = try pool.imap(F.square, 0..<count, chunksize: 100)
        let seen = Mutex<[Int]>([])
        let outcome = await runOnThread(within: .seconds(50)) {
            let readers = (0..<4).map { _ in
                Thread {
                    var mine: [Int] = []
                    while let value = try? stream.next() { mine.append(value) }
                    seen.withLock { $0 += mine }
                }
            }
            for reader in readers { reader.join() }
        }
        #expect(outcome != nil, "the readers did not finish")
        let values = seen.withLock { $0 }.sorted()
        #expect(values.count == count)
        #expect(values == (0..<count).map { $0 * $0 }.sorted())
    }

    @Test(
        "Tasks that wait for room in a full task ring are written while other threads keep the channel lock busy",
        .timeLimit(.minutes(1)))
    func outboxFlushedUnderBusyChannelLock() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        // 200,000 pairs a chunk: 3.2 MB of arguments, more than a 2 MiB task ring, so the rest waits
        // in the outbox for the worker to make room and ring the parent, whose I/O thread writes it.
        let pairs = (0..<400_000).map { ($0, 3) }
        let expected = pairs.map { $0.0 * $0.1 }
        let stop = Atomic<Bool>(false)
        let outcome = await runOnThread(within: .seconds(50)) { () -> Bool in
            // Calls that send tasks, so take the channel lock, all the time.
            let hammers = (0..<2).map { _ in
                Thread {
                    var i = 0
                    while !stop.load(ordering: .relaxed) {
                        _ = try? pool.apply(F.square, i)
                        i += 1
                    }
                }
            }
            defer {
                stop.store(true, ordering: .relaxed)
                for hammer in hammers { hammer.join() }
            }
            for _ in 0..<6 {
                guard try pool.starmap(F.mul, pairs, chunksize: 200_000) == expected else { return false }
            }
            return true
        }
        #expect(try #require(outcome, "a starmap did not finish: tasks left in an outbox").get())
    }
}
