// The worker's synchronous serve path: a function with a synchronous body is served without an
// async call (ChunkRunner.runChunkSynchronously), an async body still through one; errors,
// maxTasksPerChild and timeouts on the synchronous path; the chunk runner's two entries give
// the same frames.

import MultiprocessingTestSupport
import Testing

@testable @_spi(Testing) import Multiprocessing

/// The probes' answer: `[synchronous, asynchronous, pid]`.
private struct Served: Equatable {
    var synchronous: Int
    var asynchronous: Int
    var pid: Int

    init(_ answer: [Int]) {
        synchronous = answer[0]
        asynchronous = answer[1]
        pid = answer[2]
    }
}

@Suite("Synchronous serve path", .offCooperativePool) struct SyncServeTests {
    @Test(
        "a synchronous function's chunks are served synchronously, an async function's through an async call",
        .timeLimit(.minutes(1)))
    func pathsByBody() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.terminate() }
        let start = Served(try await pool.apply(F.servedChunks))
        #expect(start.synchronous >= 1)
        // Packed (square), encoded arguments (echoString), packed arguments with encoded
        // results (packedLabel): 4 + 3 + 2 chunks, and the probe itself.
        #expect(try await pool.map(F.square, 0..<20, chunksize: 5) == (0..<20).map { $0 * $0 })
        #expect(
            try await pool.map(F.echoString, ["a", "b", "c", "d", "e", "f"], chunksize: 2) == [
                "a", "b", "c", "d", "e", "f",
            ])
        #expect(try await pool.map(F.packedLabel, [1, 2, 3, 4], chunksize: 2) == ["#1", "#2", "#3", "#4"])
        let afterSync = Served(try await pool.apply(F.servedChunks))
        #expect(afterSync.pid == start.pid)
        #expect(afterSync.synchronous - start.synchronous == 4 + 3 + 2 + 1)
        #expect(afterSync.asynchronous == start.asynchronous)
        // Async bodies: 3 calls, a stream of 2 chunks, and the async probe.
        for x in 0..<3 { #expect(try await pool.apply(F.asyncDouble, x) == 2 * x) }
        var doubled: [Int] = []
        for try await value in try pool.imap(F.asyncDouble, 0..<4, chunksize: 2) { doubled.append(value) }
        #expect(doubled == [0, 2, 4, 6])
        let afterAsync = Served(try await pool.apply(F.asyncServedChunks))
        #expect(afterAsync.pid == start.pid)
        #expect(afterAsync.synchronous == afterSync.synchronous)
        #expect(afterAsync.asynchronous - afterSync.asynchronous == 3 + 2 + 1)
    }

    @Test(
        "an error in the middle of a synchronous chunk: the stream gets the values around it, map the error",
        .timeLimit(.minutes(1)))
    func errorMidChunk() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.terminate() }
        let before = Served(try await pool.apply(F.servedChunks))
        // One chunk of three encoded items, the middle one failing.
        let stream = try pool.imap(F.exclaimOrFail, ["a", "bad", "c"], chunksize: 3)
        var iterator = stream.makeAsyncIterator()
        #expect(try await iterator.next() == "a!")
        let failure = await #expect(throws: TestFailure.self) { _ = try await iterator.next() }
        #expect(failure == TestFailure(reason: "bad", value: 3))
        #expect(try await iterator.next() == "c!")
        #expect(try await iterator.next() == nil)
        let mapped = await #expect(throws: TestFailure.self) {
            try await pool.map(F.exclaimOrFail, ["x", "bad", "y", "z"], chunksize: 4)
        }
        #expect(mapped == TestFailure(reason: "bad", value: 3))
        // A packed chunk whose third call throws (failOnFive: packed in, packed out).
        let packed = await #expect(throws: RemoteError.self) { try await pool.map(F.failOnFive, 3..<9, chunksize: 6) }
        #expect(packed?.functionName == "failOnFive")
        let after = Served(try await pool.apply(F.servedChunks))
        // The same worker served all three chunks, and the probe, synchronously.
        #expect(after.pid == before.pid)
        #expect(after.synchronous - before.synchronous == 4)
        #expect(after.asynchronous == before.asynchronous)
    }

    @Test("maxTasksPerChild counts the chunks served synchronously", .timeLimit(.minutes(1)))
    func maxTasksPerChild() async throws {
        let pool = try TestPools.make(processes: 1, maxTasksPerChild: 3)
        defer { pool.terminate() }
        #expect(try await pool.apply(F.square, 2) == 4)
        #expect(try await pool.apply(F.square, 3) == 9)
        let third = Served(try await pool.apply(F.servedChunks))
        #expect(third.synchronous == 3)
        #expect(third.asynchronous == 0)
        // The worker retired after its third task: a fresh one answers, its count starting over.
        let fresh = Served(try await pool.apply(F.servedChunks))
        #expect(fresh.pid != third.pid)
        #expect(fresh.synchronous == 1)
    }

    @Test(
        "a synchronous task past its timeout is stopped with its worker; the next worker serves",
        .timeLimit(.minutes(1)))
    func timeout() async throws {
        let pool = try TestPools.make(processes: 1, taskTimeout: .milliseconds(300))
        defer { pool.terminate() }
        let first = Served(try await pool.apply(F.servedChunks))
        // Timed where the pool acts: a blocking call on a thread of its own (an await's
        // resumption can wait seconds for a cooperative thread when the suite is busy).
        let outcome = await onThread { () -> (Int?, PoolError.Code?, Duration) in
            let started = ContinuousClock.now
            do {
                let value = try pool.apply(F.blockMs, 20_000)
                return (value, nil, ContinuousClock.now - started)
            } catch {
                return (nil, poolCode(error), ContinuousClock.now - started)
            }
        }
        let (value, code, took) = try outcome.get()
        #expect(value == nil, "a task of 20 s came back under a timeout of 300 ms")
        #expect(code == .taskTimedOut)
        #expect(took < .seconds(10))
        let next = Served(try await pool.apply(F.servedChunks))
        #expect(next.pid != first.pid)
        #expect(next.synchronous == 1)
        #expect(try await pool.map(F.square, 0..<10, chunksize: 3) == (0..<10).map { $0 * $0 })
    }

    @Test(
        "a large packed chunk (results stored unzeroed into the frame) comes back whole, or values and errors in order",
        .timeLimit(.minutes(1)))
    func largePackedChunk() throws {
        let count = 5_000
        for failing in [[], [0, 1_234, count - 1]] {
            for stopOnError in [false, true] {
                let items = (0..<count).map { failing.contains($0) ? -$0 - 1 : $0 }
                var builder = TaskFrameBuilder(
                    job: JobID(rawValue: 4), chunkIndex: 0, functionName: F.packedFailNegative.name,
                    signature: F.packedFailNegative.signatureFingerprint, stopOnError: stopOnError,
                    packedStride: MemoryLayout<Int>.stride)
                builder.appendPacked(items[...])
                let frame = builder.finish()
                var reader = ByteReader(frame, offset: 5)
                let header = try TaskHeader.read(from: &reader)
                var results = ResultFrameBuilder(job: header.job, chunkIndex: header.chunkIndex)
                try F.packedFailNegative.runChunkSynchronously(&reader, header: header, into: &results)
                let bytes = results.finish()
                var resultReader = ByteReader(bytes, offset: 5)
                let resultHeader = try ResultHeader.read(from: &resultReader)
                let outcomes = ResultItems.decode(
                    resultReader, header: resultHeader, expected: count, as: Int.self,
                    functionName: "packedFailNegative",
                    workerPID: 0)
                // Stopping at the first error leaves the rest unanswered, which the parent reads as
                // encodingFailed: only the answered prefix is compared.
                let answered = stopOnError ? (failing.first.map { $0 + 1 } ?? count) : count
                #expect(resultHeader.packed == failing.isEmpty)
                #expect(resultHeader.itemCount == answered)
                for (index, outcome) in outcomes.prefix(answered).enumerated() {
                    if failing.contains(index) {
                        #expect((try? outcome.get()) == nil, "item \(index) should have failed")
                    } else {
                        #expect((try? outcome.get()) == index * 3, "item \(index)")
                    }
                }
            }
        }
    }

    @Test("the task header reuses a known function name only when the bytes are exactly it")
    func knownName() throws {
        for (sent, known) in [
            ("square", "square"), ("square", "squar"), ("squares", "square"), ("mul", "square"), ("é", "é"), ("", ""),
        ] {
            var builder = TaskFrameBuilder(
                job: JobID(rawValue: 1), chunkIndex: 0, functionName: sent, signature: 9, stopOnError: true)
            try builder.appendItem { writer in try F.square.encodeArguments(3, into: &writer) }
            let frame = builder.finish()
            var plain = ByteReader(frame, offset: 5)
            var reusing = ByteReader(frame, offset: 5)
            let expected = try TaskHeader.read(from: &plain)
            let header = try TaskHeader.read(from: &reusing, knownName: known)
            #expect(header == expected)
            #expect(header.functionName == sent)
            #expect(reusing.offset == plain.offset)
        }
        // Not UTF-8, with or without a known name: the same error.
        var writer = ByteWriter()
        writer.writeVarint(2)
        [UInt8(0xC3), 0x28].withUnsafeBytes { writer.writeRaw($0) }
        var bad = ByteReader(writer.bytes)
        #expect(throws: WireFormatError.self) { try bad.readString(reusing: "ab") }
    }

    @Test("runChunk of a synchronous function gives the frame runChunkSynchronously gives", .timeLimit(.minutes(1)))
    func entriesAgree() async throws {
        #expect(F.exclaimOrFail.isSynchronous)
        #expect(F.square.isSynchronous)
        #expect(!F.asyncDouble.isSynchronous)
        for stopOnError in [false, true] {
            var builder = TaskFrameBuilder(
                job: JobID(rawValue: 3), chunkIndex: 1, functionName: F.exclaimOrFail.name,
                signature: F.exclaimOrFail.signatureFingerprint, stopOnError: stopOnError)
            for s in ["a", "bad", "c"] {
                try builder.appendItem { writer in try F.exclaimOrFail.encodeArguments(s, into: &writer) }
            }
            let frame = builder.finish()
            func run(synchronously: Bool) async throws -> (ResultHeader, [UInt8]) {
                var reader = ByteReader(frame, offset: 5)
                let header = try TaskHeader.read(from: &reader)
                var results = ResultFrameBuilder(job: header.job, chunkIndex: header.chunkIndex)
                if synchronously {
                    try F.exclaimOrFail.runChunkSynchronously(&reader, header: header, into: &results)
                } else {
                    try await F.exclaimOrFail.runChunk(&reader, header: header, into: &results)
                }
                let bytes = results.finish()
                var resultReader = ByteReader(bytes, offset: 5)
                return (try ResultHeader.read(from: &resultReader), bytes)
            }
            let synchronous = try await run(synchronously: true)
            let viaAsync = try await run(synchronously: false)
            #expect(synchronous.1 == viaAsync.1)
            // Without stop-on-error every item has its outcome; with it, the chunk ends at the error.
            #expect(synchronous.0.itemCount == (stopOnError ? 2 : 3))
            #expect(synchronous.0.anyFailed)
        }
    }
}
