// The Pool's behaviour beyond the CPython cases: Swift-specific API (async forms, streams,
// progress, registered errors, logging), failure modes, payloads and load.

import Dispatch
import Logging
import MultiprocessingTestSupport
import Synchronization
import Testing

@testable import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A log handler that keeps what it is given.
final class CapturingLogHandler: LogHandler, @unchecked Sendable {
    let records = Mutex<[(Logger.Level, String)]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        records.withLock { $0.append((event.level, "\(event.message)")) }
    }

    func messages(atLeast level: Logger.Level) -> [String] {
        records.withLock { $0.filter { $0.0 >= level }.map(\.1) }
    }
}

/// A sequence that counts how many elements were pulled from it.
final class CountingSequence: Sequence, @unchecked Sendable {
    let pulled = Atomic<Int>(0)
    let limit: Int
    init(limit: Int) { self.limit = limit }

    func makeIterator() -> AnyIterator<Int> {
        var next = 0
        return AnyIterator { [self] in
            guard next < limit else { return nil }
            defer { next += 1 }
            pulled.add(1, ordering: .relaxed)
            return next
        }
    }
}

@Suite("Pool behaviour", .offCooperativePool) struct PoolBehaviourTests {
    @Test("Default chunksize is CPython's ceil(n / (4 × processes))")
    func defaultChunksize() {
        #expect(Chunking.defaultChunksize(itemCount: 1_000_000, processes: 2) == 125_000)
        #expect(Chunking.defaultChunksize(itemCount: 10, processes: 4) == 1)
        #expect(Chunking.defaultChunksize(itemCount: 17, processes: 2) == 3)
        #expect(Chunking.defaultChunksize(itemCount: 0, processes: 2) == 1)
    }

    @Test("Every argument shape: none, one, several, structs, Void, async", .timeLimit(.minutes(1)))
    func argumentShapes() async throws {
        let pool = try TestPools.make()
        defer { pool.stop() }
        #expect(try await pool.apply(F.ping) == "pong")
        #expect(try await pool.apply(F.add3, 1, 2, 3) == 6)
        #expect(try await pool.apply(F.scale, Point(x: 1, y: 2, label: "p"), 3) == Point(x: 3, y: 6, label: "p"))
        #expect(try await pool.apply(F.noResult, 1) == PoolVoid())
        #expect(try await pool.map(F.asyncDouble, 0..<20, chunksize: 3) == (0..<20).map { 2 * $0 })
        #expect(try await pool.starmap(F.mul, zip(0..<10, (0..<10).reversed())) == (0..<10).map { $0 * (9 - $0) })
        #expect(try await pool.apply(F.echoString, "héllo 🌍") == "héllo 🌍")
    }

    @Test("Large payloads cross intact", .timeLimit(.minutes(1)))
    func largePayloads() throws {
        let pool = try TestPools.make()
        defer { pool.stop() }
        let blobs = (0..<4).map { seed in (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) } }
        #expect(try pool.map(F.echoBytes, blobs, chunksize: 1) == blobs)
        let big = String(repeating: "x", count: 3 << 20)
        #expect(try pool.apply(F.echoString, big) == big)
    }

    @Test("A function the workers do not serve fails with functionNotRegistered", .timeLimit(.minutes(1)))
    func notRegistered() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let error = #expect(throws: PoolError.self) { try pool.apply(F.notServed, 1) }
        #expect(error?.code == .functionNotRegistered)
        #expect(error?.description.contains("notServed") == true)
        let wrongTypes = #expect(throws: PoolError.self) { try pool.apply(F.squareWrongTypes, "x") }
        #expect(wrongTypes?.code == .functionNotRegistered)
        #expect(wrongTypes?.description.contains("Swift.Int") == true)
        let stream = try pool.imap(F.notServed, [1, 2])
        #expect(errorCode { try stream.next() } == .functionNotRegistered)
        #expect(errorCode { try stream.next() } == .functionNotRegistered)
        #expect(try stream.next() == nil)
        #expect(try pool.apply(F.square, 3) == 9)
    }

    @Test(
        "Values that cannot be encoded or decoded fail with encodingFailed; the worker survives",
        .timeLimit(.minutes(1)))
    func encodingFailures() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let pid = try pool.apply(F.pid)
        // Arguments that do not encode: refused in the caller, before anything is sent.
        let local = #expect(throws: PoolError.self) { try pool.apply(F.takeUnencodable, Unencodable()) }
        #expect(local?.code == .encodingFailed)
        let item = #expect(throws: PoolError.self) { try pool.map(F.takeUnencodable, [Unencodable()]) }
        #expect(item?.description.contains("item 0") == true)
        // Arguments that do not decode in the worker.
        let remote = #expect(throws: PoolError.self) { try pool.apply(F.takeDecodeBomb, DecodeBomb()) }
        #expect(remote?.code == .encodingFailed)
        #expect(remote?.workerPID == pid)
        // A result that does not encode in the worker.
        let result = #expect(throws: PoolError.self) { try pool.apply(F.makeUnencodable) }
        #expect(result?.code == .encodingFailed)
        #expect(try pool.apply(F.pid) == pid)
        // In a stream, the failing item fails at its position and the rest goes on.
        let stream = try pool.imap(F.takeDecodeBomb, [DecodeBomb(), DecodeBomb()], chunksize: 2)
        #expect(errorCode { try stream.next() } == .encodingFailed)
        #expect(errorCode { try stream.next() } == .encodingFailed)
        #expect(try stream.next() == nil)
    }

    @Test("Errors: registered types come back as themselves, others as RemoteError", .timeLimit(.minutes(1)))
    func errorsCrossTheBoundary() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let typed = #expect(throws: TestFailure.self) { try pool.apply(F.checkedSqrt, -4) }
        #expect(typed == TestFailure(reason: "negative", value: -4))
        let remote = #expect(throws: RemoteError.self) { try pool.apply(F.failOnFive, 5) }
        #expect(remote?.typeName == "MultiprocessingTestSupport.UnregisteredFailure")
        #expect(remote?.message == "unregistered failure")
        #expect(remote?.functionName == "failOnFive")
        #expect(remote?.workerPID != getpid())
    }

    @Test("map rethrows the first error and skips chunks not started", .timeLimit(.minutes(1)))
    func mapStopsAtFirstError() throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let result = try pool.mapAsync(F.failOnFive, 0..<2000, chunksize: 1)
        #expect(throws: RemoteError.self) { try result.get(timeout: .seconds(20)) }
        // Only chunks around the failing one ran; the rest were dropped.
        #expect(result.progress.completed < 100)
        #expect(result.progress.isFinished)
    }

    @Test("Callbacks run once, before ready() turns true", .timeLimit(.minutes(1)))
    func callbacksBeforeReady() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let calls = Atomic<Int>(0)
        let readyInCallback = Mutex<Bool?>(nil)
        let handle = Mutex<AsyncResult<[Int32]>?>(nil)
        let result = try pool.mapAsync(
            F.sleepMs, [200, 1], chunksize: 1,
            callback: { values in
                calls.add(1, ordering: .relaxed)
                readyInCallback.withLock { $0 = handle.withLock { $0 }?.ready() }
                #expect(values.count == 2)
            })
        handle.withLock { $0 = result }
        _ = try result.get()
        #expect(calls.load(ordering: .relaxed) == 1)
        #expect(readyInCallback.withLock { $0 } == false)
        #expect(try result.successful())

        let errors = Atomic<Int>(0)
        let failed = try pool.applyAsync(F.failOnFive, 5, errorCallback: { _ in errors.add(1, ordering: .relaxed) })
        failed.wait()
        #expect(errors.load(ordering: .relaxed) == 1)
        #expect(try failed.successful() == false)
    }

    @Test("imap throws a failed item's error at its position and goes on", .timeLimit(.minutes(1)))
    func imapErrorPosition() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        for chunksize in [1, 3, 100] {
            let stream = try pool.imap(F.failOnFive, 0..<10, chunksize: chunksize)
            var seen: [Int] = []
            var failures: [Int] = []
            var position = 0
            while true {
                do {
                    guard let value = try stream.next(timeout: .seconds(10)) else { break }
                    seen.append(value)
                } catch is RemoteError {
                    failures.append(position)
                }
                position += 1
            }
            #expect(seen == [0, 1, 2, 3, 4, 6, 7, 8, 9])
            #expect(failures == [5])
        }
        // The async iterator goes on after an error too.
        var iterator = try pool.imap(F.failOnFive, 4..<7).makeAsyncIterator()
        #expect(try await iterator.next() == 4)
        await #expect(throws: RemoteError.self) { _ = try await iterator.next() }
        #expect(try await iterator.next() == 6)
        #expect(try await iterator.next() == nil)
    }

    @Test("imapUnordered yields every result once", .timeLimit(.minutes(1)))
    func imapUnordered() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        var values: [Int] = []
        for try await value in try pool.imapUnordered(F.square, 0..<500, chunksize: 7) { values.append(value) }
        #expect(values.sorted() == (0..<500).map { $0 * $0 })
        // Arrival order: a slow first item does not hold back the others.
        let order = try pool.imapUnordered(F.blockMs, [400, 1, 1, 1])
        #expect(try order.next() == 1)
    }

    @Test("imap reads its input lazily, a bounded window ahead", .timeLimit(.minutes(1)))
    func imapIsLazy() throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let input = CountingSequence(limit: 10_000_000)
        let stream = try pool.imap(F.square, input, chunksize: 10)
        for i in 0..<50 { #expect(try stream.next() == i * i) }
        usleep(100_000)
        // The window's chunks of 10 in flight at most (and two more's worth of slack), plus what
        // was consumed.
        #expect(input.pulled.load(ordering: .relaxed) <= 50 + 10 * (Chunking.streamWindow(processes: 2) + 2))
        stream.cancel()
        #expect(errorCode { try stream.next() } == .cancelled)
        #expect(try pool.apply(F.square, 12) == 144)
    }

    @Test("A stream released early leaves the pool usable", .timeLimit(.minutes(1)))
    func streamReleasedEarly() throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        do {
            let stream = try pool.imap(F.blockMs, Array(repeating: 50, count: 200))
            _ = try stream.next()
        }
        #expect(try pool.map(F.square, 0..<10) == (0..<10).map { $0 * $0 })
    }

    @Test("Empty input gives empty results at once", .timeLimit(.minutes(1)))
    func emptyInput() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        #expect(try await pool.map(F.square, []) == [])
        #expect(try await pool.starmap(F.mul, [(Int, Int)]()) == [])
        #expect(try pool.imap(F.square, []).next() == nil)
        #expect(try pool.mapAsync(F.square, []).ready())
    }

    @Test("Progress counts items and ends with the job", .timeLimit(.minutes(1)))
    func progress() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let result = try pool.mapAsync(F.square, 0..<100, chunksize: 10)
        var snapshots: [PoolProgress] = []
        for await snapshot in result.progressUpdates { snapshots.append(snapshot) }
        #expect(snapshots.last == PoolProgress(completed: 100, total: 100, isFinished: true))
        #expect(snapshots.map(\.completed) == snapshots.map(\.completed).sorted())
        #expect(result.progress.fractionCompleted == 1)

        let stream = try pool.imap(F.square, 0..<30, chunksize: 4)
        #expect(stream.progress.total == nil || stream.progress.total == 30)
        while try stream.next() != nil {}
        #expect(stream.progress == PoolProgress(completed: 30, total: 30, isFinished: true))
    }

    @Test("Many threads and tasks share one pool", .timeLimit(.minutes(1)))
    func manyCallers() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for i in 0..<50 where (try? pool.apply(F.mul, thread, i)) != thread * i {
                failures.add(1, ordering: .relaxed)
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for t in 0..<16 {
                group.addTask { try await pool.map(F.square, 0..<(t * 10)) == (0..<(t * 10)).map { $0 * $0 } }
            }
            for try await ok in group { #expect(ok) }
        }
    }

    // A bound against a hang, not a speed: on the cluster backend over TCP its 200,000 one-item
    // chunks take 60–80 s on an idle machine here, and CI once saw more than 120 s with a build
    // running beside it.
    @Test("Hundreds of thousands of tasks in flight complete exactly", .timeLimit(.minutes(4)))
    func load() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let count = 200_000
        let results = try pool.mapAsync(F.square, 0..<count, chunksize: 1)
        // Awaited, not blocking: this runs long, and the cooperative threads serve other tests.
        let values = try await results.value
        #expect(values.count == count)
        #expect(values.enumerated().allSatisfy { $0.element == $0.offset * $0.offset })
    }

    @Test(
        "Submitting after close or terminate fails with notRunning; join needs one of them",
        .timeLimit(.minutes(1)))
    func lifecycle() async throws {
        let pool = try TestPools.make(processes: 1)
        #expect(throws: PoolError.self) { try pool.join() }
        let running = try pool.applyAsync(F.sleepMs, 100)
        pool.close()
        pool.close()
        for call in [{ _ = try pool.apply(F.square, 1) }, { _ = try pool.imap(F.square, [1]) }] {
            #expect(errorCode(call) == .notRunning)
        }
        try await pool.joined()
        try pool.join()
        #expect(try running.successful())
        pool.terminate()
        #expect(pool.workerPIDs.isEmpty)
    }

    @Test("close + join finish with an imap stream not yet consumed", .timeLimit(.minutes(1)))
    func closeWithOpenStream() throws {
        let pool = try TestPools.make(processes: 2)
        let stream = try pool.imap(F.square, 0..<1000, chunksize: 10)
        pool.close()
        try pool.join()
        var values: [Int] = []
        while let value = try stream.next() { values.append(value) }
        #expect(values == (0..<1000).map { $0 * $0 })
    }

    @Test("close + join finishes all work, also with maxTasksPerChild 1", .timeLimit(.minutes(1)))
    func closeFinishesWork() throws {
        let pool = try TestPools.make(processes: 2, maxTasksPerChild: 1)
        let results = try (0..<10).map { try pool.applyAsync(F.square, $0) }
        let mapped = try pool.mapAsync(F.square, 0..<30, chunksize: 3)
        pool.close()
        try pool.join()
        #expect(try results.map { try $0.get() } == (0..<10).map { $0 * $0 })
        #expect(try mapped.get() == (0..<30).map { $0 * $0 })
    }

    @Test("A pool released while running terminates its workers and says so", .timeLimit(.minutes(1)))
    func droppedPool() throws {
        let handler = CapturingLogHandler()
        var pids: [Int32] = []
        do {
            let pool = try TestPools.make(
                TestPools.configuration(processes: 2, logger: Logger(label: "test") { _ in handler }))
            _ = try pool.map(F.square, 0..<4, chunksize: 1)
            pids = pool.workerPIDs
        }
        #expect(pids.count == 2)
        #expect(eventually { !pids.contains(where: processIsAlive) })
        #expect(handler.messages(atLeast: .warning).contains { $0.contains("released without close") })
    }

    @Test("The logger hears of workers started, lost and timed out", .timeLimit(.minutes(1)))
    func logging() throws {
        let handler = CapturingLogHandler()
        let pool = try TestPools.make(
            TestPools.configuration(
                processes: 1, taskTimeout: .milliseconds(200), logger: Logger(label: "test") { _ in handler }))
        _ = try? pool.apply(F.exitWith, 2)
        _ = try? pool.apply(F.blockMs, 5_000)
        pool.close()
        try pool.join()
        let all = handler.messages(atLeast: .trace)
        #expect(all.contains("worker started"))
        #expect(all.contains("worker lost"))
        #expect(all.contains("worker killed: task timed out"))
        #expect(all.contains("pool closed"))
        #expect(all.contains("pool stopped"))
    }

    @Test("withPool terminates the pool when its body ends", .timeLimit(.minutes(1)))
    func withPoolScopes() async throws {
        var pids: [Int32] = []
        let squares = try withPool(configuration: TestPools.configuration(processes: 2)) { pool in
            pids = pool.workerPIDs
            return try pool.map(F.square, 0..<5)
        }
        #expect(squares == [0, 1, 4, 9, 16])
        #expect(!pids.contains(where: processIsAlive))
        let doubled = try await withPool(configuration: TestPools.configuration(processes: 1)) { pool in
            try await pool.map(F.asyncDouble, 0..<5)
        }
        #expect(doubled == [0, 2, 4, 6, 8])
    }

    @Test("Pool.setExecutable names the worker program for later pools", .timeLimit(.minutes(1)))
    func setExecutable() throws {
        Pool.setExecutable(TestPools.workerExecutable)
        defer { Pool.setExecutable(nil) }
        let pool = try TestPools.make(TestPools.configuration(processes: 1, executable: nil))
        defer { pool.stop() }
        #expect(try pool.apply(F.square, 11) == 121)
    }

    @Test("Invalid arguments fail with invalidArgument", .timeLimit(.minutes(1)))
    func invalidArguments() throws {
        for make in [
            { _ = try TestPools.make(processes: 0) }, { _ = try TestPools.make(processes: -1) },
            { _ = try TestPools.make(maxTasksPerChild: 0) }, { _ = try TestPools.make(taskTimeout: .zero) },
        ] {
            #expect(errorCode(make) == .invalidArgument)
        }
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        for call in [
            { _ = try pool.map(F.square, [1], chunksize: 0) }, { _ = try pool.imap(F.square, [1], chunksize: 0) },
            { _ = try pool.applyAsync(F.square, 1, timeout: .zero) },
        ] {
            #expect(errorCode(call) == .invalidArgument)
        }
    }

    @Test("get(timeout:) and next(timeout:) time out without losing the result", .timeLimit(.minutes(1)))
    func waitTimeouts() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let result = try pool.applyAsync(F.sleepMs, 300)
        #expect(errorCode { try result.get(timeout: .milliseconds(20)) } == .timeout)
        #expect(result.wait(timeout: .milliseconds(10)) == false)
        #expect(throws: PoolError.self) { try result.successful() }
        #expect(try result.get(timeout: .seconds(10)) > 0)
        let stream = try pool.imap(F.blockMs, [300])
        #expect(errorCode { try stream.next(timeout: .milliseconds(20)) } == .timeout)
        #expect(try stream.next(timeout: .seconds(10)) == 300)
    }

    @Test("AsyncResult.cancel fails the result with cancelled and frees the worker", .timeLimit(.minutes(1)))
    func cancelResult() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let result = try pool.applyAsync(F.blockMs, 30_000)
        usleep(100_000)
        result.cancel()
        #expect(errorCode { try result.get(timeout: .seconds(1)) } == .cancelled)
        let start = ContinuousClock.now
        #expect(try pool.apply(F.square, 3) == 9)
        #expect(ContinuousClock.now - start < .seconds(3))
    }
}
