// Packed chunks: when every argument of a function is a plain number, a chunk travels as the raw
// bytes of its argument tuples, and plain results come back the same way (run by a loop compiled
// for the concrete types when the body is synchronous). These tests check that the packed path
// gives what a serial loop gives, for every plain type and tuple shape; that errors land on their
// items; that the paths beside it (non-plain results, async bodies, Bool) still work; and that
// packed frames a broken peer could send end in errors, not crashes.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// MARK: - Inputs and helpers

/// Inputs with every type's extremes, its special values, and a seeded random spread.
private enum PackedInputs {
    static func ints(_ count: Int, seed: UInt64 = 1) -> [Int] {
        var rng = SeededGenerator(state: seed)
        let special: [Int] = [0, 1, -1, 2, -2, Int.max, Int.min, Int.max - 1, Int.min + 1, 1 << 32, -(1 << 32)]
        return Array((special + (0..<count).map { _ in Int.random(in: .min ... .max, using: &rng) }).prefix(count))
    }

    static func doubles(_ count: Int, seed: UInt64 = 2) -> [Double] {
        var rng = SeededGenerator(state: seed)
        let special: [Double] = [
            0, -0.0, 1, -1, .pi, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
            .leastNonzeroMagnitude, .leastNormalMagnitude, .nan, Double(nan: 0x1234, signaling: false), 1e300, -1e-300,
        ]
        let spread = (0..<count).map { _ in Double(bitPattern: UInt64.random(in: 0 ... .max, using: &rng)) }
        return Array((special + spread).prefix(count))
    }

    static func pairs(_ count: Int) -> [(Int, Int)] {
        Array(zip(ints(count, seed: 3), ints(count, seed: 4).reversed()))
    }

    static func int8Doubles(_ count: Int) -> [(Int8, Double)] {
        var rng = SeededGenerator(state: 5)
        let int8s: [Int8] =
            [0, 1, -1, .max, .min] + (0..<count).map { _ in Int8.random(in: .min ... .max, using: &rng) }
        return Array(zip(int8s, doubles(count, seed: 6)))
    }

    static func mixes(_ count: Int) -> [(UInt16, Int32, Float)] {
        var rng = SeededGenerator(state: 7)
        let special: [(UInt16, Int32, Float)] = [
            (0, 0, 0), (.max, .max, .infinity), (.min, .min, -.infinity), (1, -1, -0.0), (.max, .min, .nan),
            (12_345, -54_321, .greatestFiniteMagnitude), (7, 7, .leastNonzeroMagnitude),
        ]
        let spread = (0..<count).map { _ in
            (
                UInt16.random(in: 0 ... .max, using: &rng), Int32.random(in: .min ... .max, using: &rng),
                Float(bitPattern: UInt32.random(in: 0 ... .max, using: &rng))
            )
        }
        return Array((special + spread).prefix(count))
    }

    static func widths(_ count: Int) -> [(UInt8, Int16, UInt32, Int64, UInt64, UInt)] {
        var rng = SeededGenerator(state: 8)
        let special: [(UInt8, Int16, UInt32, Int64, UInt64, UInt)] = [
            (0, 0, 0, 0, 0, 0), (.max, .max, .max, .max, .max, .max), (.min, .min, .min, .min, .min, .min),
            (1, -1, 1, -1, 1, 1),
        ]
        let spread = (0..<count).map { _ in
            (
                UInt8.random(in: 0 ... .max, using: &rng), Int16.random(in: .min ... .max, using: &rng),
                UInt32.random(in: 0 ... .max, using: &rng), Int64.random(in: .min ... .max, using: &rng),
                UInt64.random(in: 0 ... .max, using: &rng), UInt.random(in: 0 ... .max, using: &rng)
            )
        }
        return Array((special + spread).prefix(count))
    }
}

/// Reads a stream to its end with the async iterator (suspending): each position's value or error.
/// Stops after `limit` outcomes, so a stream that never ends fails the test instead of hanging it.
private func drain<R>(_ stream: ResultStream<R>, limit: Int) async -> [Result<R, any Error>] {
    var iterator = stream.makeAsyncIterator()
    var outcomes: [Result<R, any Error>] = []
    while outcomes.count <= limit {
        do {
            guard let value = try await iterator.next() else { break }
            outcomes.append(.success(value))
        } catch {
            outcomes.append(.failure(error))
        }
    }
    return outcomes
}

/// The outcome of `body(x)` as the pool should report it: the value, or the `TestFailure` value.
private enum Expected<R: Equatable>: Equatable {
    case value(R)
    case failure(Int)
}

/// What a serial loop over `items` gives: `f` run here, item by item.
private func serial<A, R: Equatable>(_ f: PoolFunction<A, R>, _ items: [A]) async -> [Expected<R>] {
    var expected: [Expected<R>] = []
    for item in items {
        do {
            expected.append(.value(try await f(item)))
        } catch {
            expected.append(.failure((error as? TestFailure)?.value ?? Int.min))
        }
    }
    return expected
}

/// `outcomes` in the form of ``serial(_:_:)``: unknown errors become `.failure(Int.min)`.
private func comparable<R: Equatable>(_ outcomes: [Result<R, any Error>]) -> [Expected<R>] {
    outcomes.map { outcome in
        switch outcome {
        case .success(let value): return .value(value)
        case .failure(let error): return .failure((error as? TestFailure)?.value ?? Int.min)
        }
    }
}

/// The `TestFailure` values among `outcomes`, in order (other errors as `Int.min`).
private func failureValues<R: Equatable>(_ outcomes: [Result<R, any Error>]) -> [Int] {
    comparable(outcomes).compactMap(\.failureValue)
}

extension Expected {
    fileprivate var failureValue: Int? {
        if case .failure(let value) = self { return value }
        return nil
    }
}

/// Builds a task frame of packed items.
private func packedTaskFrame<T>(
    _ items: [T], function name: String, signature: UInt64, stopOnError: Bool
)
    -> [UInt8]
{
    var builder = TaskFrameBuilder(
        job: JobID(rawValue: 11), chunkIndex: 2, functionName: name, signature: signature, stopOnError: stopOnError,
        packedStride: MemoryLayout<T>.stride)
    builder.appendPacked(items[...])
    return builder.finish()
}

/// Runs a task frame in this process as a worker would, and parses the result frame it builds.
private func runInProcess<each A, R>(
    _ function: PoolFunction<repeat each A, R>, frame: [UInt8], end: Int? = nil
) async throws -> (header: ResultHeader, items: ByteReader) {
    var reader = ByteReader(frame, offset: 5, end: end)
    let header = try TaskHeader.read(from: &reader)
    var results = ResultFrameBuilder(job: header.job, chunkIndex: header.chunkIndex)
    try await function.runChunk(&reader, header: header, into: &results)
    let bytes = results.finish()
    var resultReader = ByteReader(bytes, offset: 5)
    let resultHeader = try ResultHeader.read(from: &resultReader)
    #expect(resultHeader.job == header.job)
    #expect(resultHeader.chunkIndex == header.chunkIndex)
    return (resultHeader, resultReader)
}

/// A result frame's body, written field by field (for frames a broken worker could send).
private func resultBody(count: UInt32, flags: UInt8, _ rest: (inout ByteWriter) -> Void = { _ in }) -> [UInt8] {
    var writer = ByteWriter()
    writer.writeUInt64(5)
    writer.writeUInt64(0)
    writer.writeUInt32(count)
    writer.writeUInt8(flags)
    writer.writeUInt64(0)  // the run time
    rest(&writer)
    return writer.bytes
}

/// Whether every outcome is an `.encodingFailed` PoolError.
private func allEncodingFailed<R>(_ outcomes: [Result<R, any Error>]) -> Bool {
    outcomes.allSatisfy { outcome in
        guard case .failure(let error) = outcome else { return false }
        return poolCode(error) == .encodingFailed
    }
}

// MARK: - Through worker processes

@Suite("Packed chunks", .offCooperativePool) struct PackedChunkTests {
    @Test(
        "map and starmap over plain numbers equal a serial loop, for every plain type and tuple shape",
        .timeLimit(.minutes(2)), arguments: [1, 7, nil] as [Int?])
    func plainTypesEqualSerial(chunksize: Int?) async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let count = chunksize == 1 ? 120 : 1_000

        let pairs = PackedInputs.pairs(count)
        var expectedPairs: [Int] = []
        for (a, b) in pairs { expectedPairs.append(try await F.packedMulAdd(a, b)) }
        #expect(try await pool.starmap(F.packedMulAdd, pairs, chunksize: chunksize) == expectedPairs)

        let int8Doubles = PackedInputs.int8Doubles(count)
        var expectedScaled: [UInt64] = []
        var expectedShifted: [UInt64] = []
        for (k, x) in int8Doubles {
            expectedScaled.append(try await F.packedScale(k, x).bitPattern)
            expectedShifted.append(try await F.packedShift(x, k).bitPattern)
        }
        let scaled = try await pool.starmap(F.packedScale, int8Doubles, chunksize: chunksize)
        #expect(scaled.map(\.bitPattern) == expectedScaled)
        let shifted = try await pool.starmap(F.packedShift, int8Doubles.map { ($0.1, $0.0) }, chunksize: chunksize)
        #expect(shifted.map(\.bitPattern) == expectedShifted)

        let mixes = PackedInputs.mixes(count)
        var expectedMixes: [Int64] = []
        for (a, b, f) in mixes { expectedMixes.append(try await F.packedMix(a, b, f)) }
        #expect(try await pool.starmap(F.packedMix, mixes, chunksize: chunksize) == expectedMixes)

        let doubles = PackedInputs.doubles(count)
        var expectedNarrow: [UInt32] = []
        for x in doubles { expectedNarrow.append(try await F.packedNarrow(x).bitPattern) }
        #expect(try await pool.map(F.packedNarrow, doubles, chunksize: chunksize).map(\.bitPattern) == expectedNarrow)

        let widths = PackedInputs.widths(count)
        var expectedWidths: [UInt64] = []
        for (a, b, c, d, e, f) in widths { expectedWidths.append(try await F.packedWidths(a, b, c, d, e, f)) }
        #expect(try await pool.starmap(F.packedWidths, widths, chunksize: chunksize) == expectedWidths)

        let ints = PackedInputs.ints(count).map { $0 < 0 ? ~$0 : $0 }  // packedFailNegative: none fail
        #expect(try await pool.map(F.packedFailNegative, ints, chunksize: chunksize) == ints.map { $0 &* 3 })
    }

    @Test("100 000 plain items in many chunks come back whole and in order", .timeLimit(.minutes(2)))
    func manyChunks() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let count = 100_000
        let pairs = PackedInputs.pairs(count)
        let expected = pairs.map { $0.0 &* 31 &+ $0.1 }
        // Default chunksize (8 chunks), a chunk size that does not divide the count, and small chunks.
        #expect(try await pool.starmap(F.packedMulAdd, pairs) == expected)
        #expect(try await pool.starmap(F.packedMulAdd, pairs, chunksize: 999) == expected)
        #expect(try await pool.starmapAsync(F.packedMulAdd, pairs, chunksize: 64).value == expected)
        let mixes = PackedInputs.mixes(count)
        let mixed = try await pool.starmap(F.packedMix, mixes, chunksize: 4_097)
        #expect(mixed.count == count)
        #expect(zip(mixes, mixed).allSatisfy { Int64($0.0) &* 100_000 &+ Int64($0.1) &+ Int64($0.2.bitPattern) == $1 })
        // A stream of packed chunks: read to its end, in order.
        let ints = PackedInputs.ints(count).map { $0 < 0 ? ~$0 : $0 }
        var streamed: [Int] = []
        streamed.reserveCapacity(count)
        for try await value in try pool.imap(F.packedFailNegative, ints, chunksize: 1_000) { streamed.append(value) }
        #expect(streamed == ints.map { $0 &* 3 })
        var unordered: [Int] = []
        for try await value in try pool.imapUnordered(F.packedNarrow, (0..<count).map(Double.init), chunksize: 777) {
            unordered.append(Int(value))
        }
        #expect(unordered.sorted() == Array(0..<count))
        // A lazy input, a chunk size far beyond it (one chunk, the frame's reserve bounded), and
        // the adaptive sizes (chunks of 1, 2, 4… items): what the typed feed appends is all there.
        let lazyDoubles = (0..<count).lazy.map { Double($0) * 0.5 }
        var whole: [Float] = []
        for try await value in try pool.imap(F.packedNarrow, lazyDoubles, chunksize: 50_000_000) { whole.append(value) }
        #expect(whole == lazyDoubles.map { Float($0) })
        var adaptive: [Float] = []
        for try await value in try pool.imap(F.packedNarrow, lazyDoubles) { adaptive.append(value) }
        #expect(adaptive == whole)
    }

    @Test("map of a throwing plain function fails with the error of the first failing item", .timeLimit(.minutes(1)))
    func mapFailsWithFirstError() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        // An unregistered error, one failing item among many chunks.
        let remote = await #expect(throws: RemoteError.self) { try await pool.map(F.failOnFive, 0..<10_000) }
        #expect(remote?.functionName == "failOnFive")
        #expect(remote?.message == "unregistered failure")
        for chunksize in [1, 7, 100] {
            let result = try pool.mapAsync(F.failOnFive, 0..<100, chunksize: chunksize)
            await #expect(throws: RemoteError.self) { _ = try await result.value }
        }
        // Several failing items in one chunk: the first of them is the error.
        var items = Array(0..<50)
        items[3] = -30
        items[4] = -40
        items[49] = -490
        let first = await #expect(throws: TestFailure.self) {
            try await pool.map(F.packedFailNegative, items, chunksize: 50)
        }
        #expect(first?.value == -30)
        // The failing item first or last in its chunk.
        for (position, chunksize) in [(0, 10), (9, 10), (10, 10), (99, 10), (42, 1)] {
            var items = Array(0..<100)
            items[position] = -position - 1
            let error = await #expect(throws: TestFailure.self) {
                try await pool.map(F.packedFailNegative, items, chunksize: chunksize)
            }
            #expect(error == TestFailure(reason: "negative", value: -position - 1))
        }
        // Async, encoded and plain forms of the same failure.
        let asyncFirst = await #expect(throws: TestFailure.self) {
            try await pool.map(F.packedAsyncFailNegative, items, chunksize: 50)
        }
        #expect(asyncFirst?.value == -30)
        let labelFirst = await #expect(throws: TestFailure.self) {
            try await pool.map(F.packedLabel, items, chunksize: 50)
        }
        #expect(labelFirst?.value == -30)
        // The pool goes on.
        #expect(try await pool.map(F.packedFailNegative, 0..<10, chunksize: 3) == (0..<10).map { $0 * 3 })
    }

    @Test(
        "With stop-on-error the worker runs no item after the first failing one; streams run them all",
        .timeLimit(.minutes(1)))
    func stopOnErrorSkipsTheRest() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let worker = try await pool.apply(F.pid)
        let afterMap = 7
        let afterStream = 8

        let error = await #expect(throws: TestFailure.self) {
            try await pool.map(F.packedMarkOrFail, [0, -1, afterMap], chunksize: 3)
        }
        #expect(error?.value == -1)
        // The chunk's results came back, so the worker is past the item: it did not run it.
        #expect(try await pool.apply(F.packedMarks) == [])

        let outcomes = await drain(try pool.imap(F.packedMarkOrFail, [0, -1, afterStream], chunksize: 3), limit: 3)
        #expect(comparable(outcomes) == [.value(0), .failure(-1), .value(afterStream)])
        #expect(try await pool.apply(F.packedMarks) == [afterStream])
        // One worker saw it all: its marks are the whole story.
        #expect(try await pool.apply(F.pid) == worker)
    }

    @Test(
        "imap and imapUnordered yield every good item's value and throw at exactly the failing positions",
        .timeLimit(.minutes(2)), arguments: [1, 7, 60])
    func streamsFailAtTheirPositions(chunksize: Int) async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        // With chunks of 7: failures first (0, 7, 14) and last (6, 13, 20, 27) in their chunks, two
        // in a row, a whole chunk (35..<42), and the last item of the short last chunk (59).
        let failing: Set<Int> = [0, 1, 6, 7, 13, 14, 20, 27, 35, 36, 37, 38, 39, 40, 41, 59]
        let items = (0..<60).map { failing.contains($0) ? -$0 - 1 : $0 }
        let expectedSync = await serial(F.packedFailNegative, items)
        #expect(expectedSync.compactMap(\.failureValue) == items.filter { $0 < 0 })

        let ordered = await drain(try pool.imap(F.packedFailNegative, items, chunksize: chunksize), limit: 60)
        #expect(comparable(ordered) == expectedSync)

        let unordered = await drain(
            try pool.imapUnordered(F.packedFailNegative, items, chunksize: chunksize), limit: 60)
        #expect(unordered.count == 60)
        #expect(unordered.compactMap { try? $0.get() }.sorted() == items.filter { $0 >= 0 }.map { $0 * 3 })
        #expect(failureValues(unordered).sorted() == items.filter { $0 < 0 }.sorted())

        // The same through the generic loop: an async body, and a result that is not plain.
        let expectedAsync = await serial(F.packedAsyncFailNegative, items)
        let asyncOutcomes = await drain(
            try pool.imap(F.packedAsyncFailNegative, items, chunksize: chunksize), limit: 60)
        #expect(comparable(asyncOutcomes) == expectedAsync)
        let expectedLabels = await serial(F.packedLabel, items)
        let labels = await drain(try pool.imap(F.packedLabel, items, chunksize: chunksize), limit: 60)
        #expect(comparable(labels) == expectedLabels)

        // An unregistered error, as RemoteError, at its position.
        let five = await drain(try pool.imap(F.failOnFive, 0..<20, chunksize: chunksize), limit: 20)
        #expect(five.count == 20)
        for (position, outcome) in five.enumerated() {
            if position == 5 {
                #expect(throws: RemoteError.self) { try outcome.get() }
            } else {
                #expect((try? outcome.get()) == position)
            }
        }
    }

    @Test(
        "Packed arguments with a result that is not plain, or an async body, give correct results",
        .timeLimit(.minutes(2)), arguments: [1, 7, nil] as [Int?])
    func genericLoop(chunksize: Int?) async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let ints = PackedInputs.ints(chunksize == 1 ? 200 : 5_000).map { $0 < 0 ? ~$0 : $0 }
        #expect(try await pool.map(F.packedLabel, ints, chunksize: chunksize) == ints.map { "#\($0)" })
        #expect(try await pool.map(F.packedAsyncFailNegative, ints, chunksize: chunksize) == ints.map { $0 &* 5 })
        #expect(try await pool.map(F.packedIsEven, ints, chunksize: chunksize) == ints.map { $0 % 2 == 0 })
        #expect(try await pool.map(F.asyncDouble, 0..<50, chunksize: chunksize) == (0..<50).map { 2 * $0 })
        let streamChunksize = chunksize ?? 100
        var labels: [String] = []
        for try await label in try pool.imap(F.packedLabel, ints, chunksize: streamChunksize) { labels.append(label) }
        #expect(labels == ints.map { "#\($0)" })
        var quintuples: [Int] = []
        for try await value in try pool.imap(F.packedAsyncFailNegative, ints, chunksize: streamChunksize) {
            quintuples.append(value)
        }
        #expect(quintuples == ints.map { $0 &* 5 })
    }

    @Test("Bool arguments and results do not travel packed, and still work", .timeLimit(.minutes(1)))
    func boolsAreNotPacked() async throws {
        #expect(!PackedLayout.isPlain(Bool.self))
        #expect(F.packedNot.packedArgumentStride == nil)
        #expect(F.packedNot.packedResultStride == nil)
        #expect(F.packedNot.packedRunner == nil)
        #expect(F.packedSelect.packedArgumentStride == nil)
        #expect(F.packedSelect.packedRunner == nil)
        #expect(F.packedIsEven.packedArgumentStride == MemoryLayout<Int>.stride)
        #expect(F.packedIsEven.packedResultStride == nil)
        #expect(F.packedIsEven.packedRunner == nil)

        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let bools = (0..<1_000).map { $0 % 3 == 0 }
        #expect(try await pool.map(F.packedNot, bools) == bools.map { !$0 })
        #expect(try await pool.map(F.packedNot, bools, chunksize: 7) == bools.map { !$0 })
        let selects = bools.enumerated().map { ($0.offset - 500, $0.element) }
        #expect(try await pool.starmap(F.packedSelect, selects, chunksize: 7) == selects.map { $1 ? -$0 : $0 })
        var streamed: [Bool] = []
        for try await value in try pool.imap(F.packedNot, bools, chunksize: 7) { streamed.append(value) }
        #expect(streamed == bools.map { !$0 })
    }

    // MARK: - Which path a function takes

    @Test("Plain functions with sync bodies get a packed runner; others do not")
    func whichPath() {
        #expect(F.packedMulAdd.packedArgumentStride == MemoryLayout<(Int, Int)>.stride)
        #expect(F.packedMulAdd.packedRunner != nil)
        #expect(F.packedScale.packedArgumentStride == 16)
        #expect(F.packedShift.packedArgumentStride == 16)
        #expect(F.packedMix.packedArgumentStride == MemoryLayout<(UInt16, Int32, Float)>.stride)
        #expect(F.packedWidths.packedArgumentStride == MemoryLayout<(UInt8, Int16, UInt32, Int64, UInt64, UInt)>.stride)
        #expect(F.packedNarrow.packedResultStride == 4)
        #expect(F.failOnFive.packedRunner != nil)
        #expect(F.square.packedRunner != nil)
        // An async body, a result that is not plain, no argument, or arguments that are not plain.
        #expect(F.packedAsyncFailNegative.packedArgumentStride == 8)
        #expect(F.packedAsyncFailNegative.packedRunner == nil)
        #expect(F.packedLabel.packedRunner == nil)
        #expect(F.noResult.packedRunner == nil)
        #expect(F.pid.packedArgumentStride == nil)
        #expect(F.pid.packedRunner == nil)
        #expect(F.echoString.packedArgumentStride == nil)
        #expect(F.scale.packedArgumentStride == nil)
    }

    @Test("map's chunks are packed exactly when every argument is plain")
    func encodedChunksArePacked() throws {
        func headers<A: Codable, R>(_ function: PoolFunction<A, R>, _ items: [A]) throws -> [TaskHeader] {
            let (chunks, sizes) = try Pool.encodeChunks(
                items, chunksize: 7, job: JobID(rawValue: 1), functionName: function.name,
                signature: function.signatureFingerprint, stopOnError: true, timeout: nil,
                packedStride: function.packedArgumentStride,
                encode: { item, writer in try WireCoding.encode(item, into: &writer) })
            #expect(sizes == [7, 7, 6])
            return try chunks.map { chunk in
                var reader = ByteReader(chunk.payload.bytes, offset: 5)
                let header = try TaskHeader.read(from: &reader)
                if let stride = header.packedStride {
                    #expect(reader.remaining == header.itemCount * stride)
                }
                return header
            }
        }
        let packed = try headers(F.packedNarrow, (0..<20).map(Double.init))
        #expect(packed.map(\.packedStride) == [8, 8, 8])
        #expect(packed.map(\.itemCount) == [7, 7, 6])
        #expect(try headers(F.packedIsEven, Array(0..<20)).map(\.packedStride) == [8, 8, 8])
        #expect(try headers(F.packedNot, (0..<20).map { $0 % 2 == 0 }).map(\.packedStride) == [nil, nil, nil])
        #expect(try headers(F.echoString, (0..<20).map(String.init)).map(\.packedStride) == [nil, nil, nil])

        // starmap: the tuple of arguments as it is, padding included.
        let items = PackedInputs.int8Doubles(20).map { ($0.1, $0.0) }
        let (chunks, _) = try Pool.encodeChunks(
            items, chunksize: 7, job: JobID(rawValue: 1), functionName: F.packedShift.name,
            signature: F.packedShift.signatureFingerprint, stopOnError: true, timeout: nil,
            packedStride: F.packedShift.packedArgumentStride,
            encode: { item, writer in try F.packedShift.encodeArguments(item.0, item.1, into: &writer) })
        var reader = ByteReader(chunks[1].payload.bytes, offset: 5)
        let header = try TaskHeader.read(from: &reader)
        #expect(header.packedStride == 16)
        let back = try PackedLayout.read((Double, Int8).self, count: header.itemCount, stride: 16, from: &reader)
        #expect(back.map(\.0.bitPattern) == items[7..<14].map(\.0.bitPattern))
        #expect(back.map(\.1) == items[7..<14].map(\.1))
    }

    // MARK: - Frames, without processes

    @Test("A packed task frame reads back: header, stride and items")
    func taskFrameRoundTrip() throws {
        typealias Item = (Int8, Double)
        let items: [Item] = [(1, 1.5), (.min, -0.0), (.max, .infinity), (0, .greatestFiniteMagnitude), (-1, .pi)]
        let stride = MemoryLayout<Item>.stride
        for stopOnError in [true, false] {
            var builder = TaskFrameBuilder(
                job: JobID(rawValue: 9), chunkIndex: 4, functionName: "packedScale", signature: 42,
                stopOnError: stopOnError, packedStride: stride)
            builder.appendPacked(items[0..<3])
            builder.appendPacked(items[3])
            builder.appendPacked(items[4...])
            #expect(builder.itemCount == 5)
            let bytes = builder.finish()
            var reader = ByteReader(bytes, offset: 5)
            let header = try TaskHeader.read(from: &reader)
            #expect(
                header
                    == TaskHeader(
                        job: 9, chunkIndex: 4, signature: 42, stopOnError: stopOnError, functionName: "packedScale",
                        itemCount: 5, packedStride: stride))
            #expect(reader.remaining == 5 * stride)
            let back = try PackedLayout.read(Item.self, count: 5, stride: stride, from: &reader)
            #expect(reader.isAtEnd)
            #expect(back.map(\.0) == items.map(\.0))
            #expect(back.map(\.1.bitPattern) == items.map(\.1.bitPattern))
            // Read with another stride, or more items than there are: refused.
            var wrongStride = ByteReader(bytes, offset: 5)
            _ = try TaskHeader.read(from: &wrongStride)
            #expect(throws: FrameError.self) {
                try PackedLayout.read(Int.self, count: 5, stride: stride, from: &wrongStride)
            }
            var tooMany = ByteReader(bytes, offset: 5)
            _ = try TaskHeader.read(from: &tooMany)
            #expect(throws: FrameError.self) {
                try PackedLayout.read(Item.self, count: 6, stride: stride, from: &tooMany)
            }
        }
        // Encoded items: no stride.
        var encoded = TaskFrameBuilder(
            job: JobID(rawValue: 1), chunkIndex: 0, functionName: "f", signature: 1, stopOnError: false)
        try encoded.appendItem { try WireCoding.encode(3, into: &$0) }
        var reader = ByteReader(encoded.finish(), offset: 5)
        #expect(try TaskHeader.read(from: &reader).packedStride == nil)
    }

    @Test("Packed results read back with packedValues and decodeEach")
    func resultFrameRoundTrip() throws {
        let values: [Int32] = [0, -1, .max, .min, 42]
        var builder = ResultFrameBuilder(job: 3, chunkIndex: 1)
        builder.setPacked(values)
        #expect(builder.itemCount == 5)
        #expect(!builder.anyFailed)
        let bytes = builder.finish()
        var reader = ByteReader(bytes, offset: 5)
        let header = try ResultHeader.read(from: &reader)
        #expect(header == ResultHeader(job: 3, chunkIndex: 1, itemCount: 5, anyFailed: false, packed: true))
        #expect(ResultItems.packedValues(reader, header: header, expected: 5, as: Int32.self) == values)
        #expect(typedPackedValues(reader, header: header, expected: 5, as: Int32.self) == values)
        let decoded = ResultItems.decode(
            reader, header: header, expected: 5, as: Int32.self, functionName: "f", workerPID: 1)
        #expect(decoded.compactMap { try? $0.get() } == values)
        // decodeEach stops when asked to.
        var seen: [Int32] = []
        ResultItems.decodeEach(reader, header: header, expected: 5, as: Int32.self, functionName: "f", workerPID: 1) {
            seen.append(try! $0.get())
            return seen.count < 2
        }
        #expect(seen == [0, -1])
        // Fewer expected than sent: the first ones; more expected: the rest are errors.
        #expect(ResultItems.packedValues(reader, header: header, expected: 3, as: Int32.self) == nil)
        #expect(typedPackedValues(reader, header: header, expected: 3, as: Int32.self) == nil)
        let fewer = ResultItems.decode(
            reader, header: header, expected: 3, as: Int32.self, functionName: "f", workerPID: 1)
        #expect(fewer.compactMap { try? $0.get() } == Array(values.prefix(3)))
        #expect(ResultItems.packedValues(reader, header: header, expected: 7, as: Int32.self) == nil)
        #expect(typedPackedValues(reader, header: header, expected: 7, as: Int32.self) == nil)
        let more = ResultItems.decode(
            reader, header: header, expected: 7, as: Int32.self, functionName: "f", workerPID: 1)
        #expect(more.count == 7)
        #expect(more.prefix(5).compactMap { try? $0.get() } == values)
        #expect(allEncodingFailed(Array(more.suffix(2))))

        // Other plain types, and doubles by bit pattern.
        let doubles = PackedInputs.doubles(40)
        var doubleBuilder = ResultFrameBuilder(job: 3, chunkIndex: 2)
        doubleBuilder.setPacked(doubles)
        let doubleBytes = doubleBuilder.finish()
        var doubleReader = ByteReader(doubleBytes, offset: 5)
        let doubleHeader = try ResultHeader.read(from: &doubleReader)
        let back = ResultItems.packedValues(doubleReader, header: doubleHeader, expected: 40, as: Double.self)
        #expect(back?.map(\.bitPattern) == doubles.map(\.bitPattern))
        let typedBack = typedPackedValues(doubleReader, header: doubleHeader, expected: 40, as: Double.self)
        #expect(typedBack?.map(\.bitPattern) == doubles.map(\.bitPattern))

        // An empty chunk.
        var empty = ResultFrameBuilder(job: 3, chunkIndex: 3)
        empty.setPacked([Int]())
        let emptyBytes = empty.finish()
        var emptyReader = ByteReader(emptyBytes, offset: 5)
        let emptyHeader = try ResultHeader.read(from: &emptyReader)
        #expect(emptyHeader.packed && emptyHeader.itemCount == 0)
        #expect(ResultItems.packedValues(emptyReader, header: emptyHeader, expected: 0, as: Int.self) == [])
        #expect(typedPackedValues(emptyReader, header: emptyHeader, expected: 0, as: Int.self) == [])
    }

    @Test("A stream's typed feed makes the same frame as the generic packed append, and reads nothing past its input")
    func typedStreamFeed() throws {
        let doubles = PackedInputs.doubles(40)
        let input = Pool.StreamInput(doubles.lazy.map { $0 }, packed: true)
        let feed = try #require(input.feedPacked)
        func frame() -> TaskFrameBuilder {
            TaskFrameBuilder(
                job: JobID(rawValue: 9), chunkIndex: 0, functionName: "f", signature: 7, stopOnError: false,
                packedStride: 8)
        }
        // Chunks of 16, 16 and the 8 left; then nothing, and `body` is not called.
        var offset = 0
        for expected in [16, 16, 8, 0] {
            var typed = frame()
            var calls = 0
            let count = feed(16) { bytes, count in
                calls += 1
                typed.appendPacked(items: bytes, count: count)
            }
            #expect(count == expected)
            #expect(calls == (expected > 0 ? 1 : 0))
            var generic = frame()
            generic.appendPacked(doubles[offset..<(offset + expected)])
            #expect(typed.itemCount == generic.itemCount)
            #expect(typed.finish() == generic.finish())
            offset += expected
        }
        // Not packed: no typed feed; and readers exist exactly for the plain result types.
        #expect(Pool.StreamInput([1, 2, 3], packed: false).feedPacked == nil)
        #expect(Pool.packedChunkReader(for: Int.self) != nil)
        #expect(Pool.packedChunkReader(for: Float.self) != nil)
        #expect(Pool.packedChunkReader(for: Bool.self) == nil)
        #expect(Pool.packedChunkReader(for: String.self) == nil)
        #expect(Pool.packedChunkReader(for: [Int].self) == nil)
    }

    @Test("Packed results that cannot be read as the result type are encodingFailed errors, not a crash")
    func resultFrameMismatches() throws {
        let values: [Int32] = [0, -1, .max, .min, 42]
        var builder = ResultFrameBuilder(job: 3, chunkIndex: 1)
        builder.setPacked(values)
        let bytes = builder.finish()
        var reader = ByteReader(bytes, offset: 5)
        let header = try ResultHeader.read(from: &reader)
        // Int32s read as Int: the stride does not match.
        #expect(ResultItems.packedValues(reader, header: header, expected: 5, as: Int.self) == nil)
        #expect(typedPackedValues(reader, header: header, expected: 5, as: Int.self) == nil)
        let asInt = ResultItems.decode(
            reader, header: header, expected: 5, as: Int.self, functionName: "f", workerPID: 7)
        #expect(asInt.count == 5)
        #expect(allEncodingFailed(asInt))
        if case .failure(let error) = asInt.first {
            #expect((error as? PoolError)?.functionName == "f")
            #expect((error as? PoolError)?.workerPID == 7)
        }
        // Read as UInt8 (a smaller stride), as types that are not plain.
        #expect(
            allEncodingFailed(
                ResultItems.decode(reader, header: header, expected: 5, as: UInt8.self, functionName: "f", workerPID: 7)
            ))
        #expect(ResultItems.packedValues(reader, header: header, expected: 5, as: Bool.self) == nil)
        #expect(
            allEncodingFailed(
                ResultItems.decode(reader, header: header, expected: 5, as: Bool.self, functionName: "f", workerPID: 7))
        )
        #expect(
            allEncodingFailed(
                ResultItems.decode(
                    reader, header: header, expected: 5, as: String.self, functionName: "f", workerPID: 7)))
        #expect(
            allEncodingFailed(
                ResultItems.decode(
                    reader, header: header, expected: 5, as: [Int32].self, functionName: "f", workerPID: 7)))

        // Fewer bytes than the count needs: the frame cut short, or the stride itself missing.
        for cut in [1, 4, 19, 20, 24] {
            let short = ByteReader(bytes, offset: reader.offset, end: bytes.count - cut)
            #expect(ResultItems.packedValues(short, header: header, expected: 5, as: Int32.self) == nil)
            #expect(typedPackedValues(short, header: header, expected: 5, as: Int32.self) == nil)
            let outcomes = ResultItems.decode(
                short, header: header, expected: 5, as: Int32.self, functionName: "f", workerPID: 7)
            #expect(outcomes.count == 5)
            #expect(allEncodingFailed(outcomes))
        }
        // A count far beyond the bytes, strides that are nonsense.
        for (count, stride) in [(UInt32.max, 4), (1_000, 4), (5, 0), (5, 3), (5, 8), (5, .max)] as [(UInt32, UInt32)] {
            let body = resultBody(count: count, flags: 2) { writer in
                writer.writeUInt32(stride)
                values.withUnsafeBytes { writer.writeRaw($0) }
            }
            var bodyReader = ByteReader(body)
            let bodyHeader = try ResultHeader.read(from: &bodyReader)
            let expected = min(Int(count), 1_000)
            #expect(ResultItems.packedValues(bodyReader, header: bodyHeader, expected: expected, as: Int32.self) == nil)
            #expect(typedPackedValues(bodyReader, header: bodyHeader, expected: expected, as: Int32.self) == nil)
            let outcomes = ResultItems.decode(
                bodyReader, header: bodyHeader, expected: expected, as: Int32.self, functionName: "f", workerPID: 7)
            #expect(outcomes.count == expected)
            #expect(allEncodingFailed(outcomes))
        }
    }

    @Test("ResultHeader reads flags 0, 1 and 2, and rejects 3 and above")
    func resultFlags() throws {
        for flags in 0...UInt8.max {
            var reader = ByteReader(resultBody(count: 1, flags: flags))
            if flags <= 2 {
                let header = try ResultHeader.read(from: &reader)
                #expect(header.anyFailed == (flags == 1))
                #expect(header.packed == (flags == 2))
                #expect(header.itemCount == 1)
            } else {
                #expect(throws: FrameError.self, "flags \(flags)") { try ResultHeader.read(from: &reader) }
            }
        }
    }

    // MARK: - The worker's side, in this process

    @Test("A worker runs packed chunks: packed values, or values and errors in order when a call throws")
    func workerRunsPackedChunks() async throws {
        Pool.registerErrorType(TestFailure.self)
        // The compiled loop, no failure: results packed.
        let pairs = PackedInputs.pairs(100)
        let mulAdd = try await runInProcess(
            F.packedMulAdd,
            frame: packedTaskFrame(
                pairs, function: F.packedMulAdd.name, signature: F.packedMulAdd.signatureFingerprint,
                stopOnError: true))
        #expect(mulAdd.header.packed && !mulAdd.header.anyFailed && mulAdd.header.itemCount == 100)
        #expect(
            ResultItems.packedValues(mulAdd.items, header: mulAdd.header, expected: 100, as: Int.self)
                == pairs.map { $0 &* 31 &+ $1 })

        // Failures first, inside and last: a stream gets every item's outcome, map stops at the first.
        let items = [-1, 2, -3, -4, 5, -6]
        for function in [F.packedFailNegative, F.packedAsyncFailNegative] {
            let expected = await serial(function, items)
            let frame = { (stop: Bool) in
                packedTaskFrame(
                    items, function: function.name, signature: function.signatureFingerprint, stopOnError: stop)
            }
            let stream = try await runInProcess(function, frame: frame(false))
            #expect(!stream.header.packed && stream.header.anyFailed && stream.header.itemCount == 6)
            let streamOutcomes = ResultItems.decode(
                stream.items, header: stream.header, expected: 6, as: Int.self, functionName: function.name,
                workerPID: 1)
            #expect(comparable(streamOutcomes) == expected)
            let map = try await runInProcess(function, frame: frame(true))
            #expect(map.header.itemCount == 1 && map.header.anyFailed)
            let mapOutcomes = ResultItems.decode(
                map.items, header: map.header, expected: 6, as: Int.self, functionName: function.name, workerPID: 1)
            #expect(comparable(mapOutcomes).first == .failure(-1))
            // A failure after some values: the values before it come back too, then nothing.
            let laterItems = [1, 2, -3, 4]
            let later = try await runInProcess(
                function,
                frame: packedTaskFrame(
                    laterItems, function: function.name, signature: function.signatureFingerprint,
                    stopOnError: true))
            #expect(later.header.itemCount == 3 && later.header.anyFailed && !later.header.packed)
            let laterOutcomes = ResultItems.decode(
                later.items, header: later.header, expected: 4, as: Int.self, functionName: function.name,
                workerPID: 1)
            #expect(comparable(laterOutcomes) == Array(await serial(function, laterItems).prefix(3)))
        }

        // The generic loop with a result that is not plain: encoded results.
        let labels = try await runInProcess(
            F.packedLabel,
            frame: packedTaskFrame(
                [1, -2, 3], function: F.packedLabel.name, signature: F.packedLabel.signatureFingerprint,
                stopOnError: false))
        #expect(!labels.header.packed && labels.header.itemCount == 3)
        let labelOutcomes = ResultItems.decode(
            labels.items, header: labels.header, expected: 3, as: String.self, functionName: "packedLabel",
            workerPID: 1)
        #expect(comparable(labelOutcomes) == [.value("#1"), .failure(-2), .value("#3")])
        // The generic loop with a plain result and no failure: packed results.
        let asyncResult = try await runInProcess(
            F.packedAsyncFailNegative,
            frame: packedTaskFrame(
                [1, 2, 3], function: F.packedAsyncFailNegative.name,
                signature: F.packedAsyncFailNegative.signatureFingerprint, stopOnError: true))
        #expect(asyncResult.header.packed)
        #expect(
            ResultItems.packedValues(asyncResult.items, header: asyncResult.header, expected: 3, as: Int.self)
                == [5, 10, 15])
    }

    @Test("A worker given packed items of another stride answers encodingFailed for them, without crashing")
    func workerRefusesWrongStride() async throws {
        // Int32 items (stride 4) to functions taking an Int (stride 8): the compiled loop, the
        // generic loop, and a function whose argument is not plain at all.
        let int32s: [Int32] = [1, 2, 3, 4, 5, 6]
        for stopOnError in [true, false] {
            let expectedCount = stopOnError ? 1 : int32s.count
            let square = try await runInProcess(
                F.square,
                frame: packedTaskFrame(
                    int32s, function: "square", signature: F.square.signatureFingerprint, stopOnError: stopOnError))
            let asyncNegative = try await runInProcess(
                F.packedAsyncFailNegative,
                frame: packedTaskFrame(
                    int32s, function: F.packedAsyncFailNegative.name,
                    signature: F.packedAsyncFailNegative.signatureFingerprint, stopOnError: stopOnError))
            let label = try await runInProcess(
                F.packedLabel,
                frame: packedTaskFrame(
                    int32s, function: F.packedLabel.name, signature: F.packedLabel.signatureFingerprint,
                    stopOnError: stopOnError))
            let echo = try await runInProcess(
                F.echoString,
                frame: packedTaskFrame(
                    [Int](repeating: 0, count: 6), function: "echoString",
                    signature: F.echoString.signatureFingerprint, stopOnError: stopOnError))
            for result in [square, asyncNegative, label, echo] {
                #expect(!result.header.packed)
                #expect(result.header.anyFailed)
                #expect(result.header.itemCount == expectedCount)
                let outcomes = ResultItems.decode(
                    result.items, header: result.header, expected: expectedCount, as: Int.self, functionName: "f",
                    workerPID: 1)
                #expect(allEncodingFailed(outcomes))
            }
        }
    }

    @Test("A worker given a packed chunk cut short fails it, without crashing")
    func workerGivenShortChunk() async throws {
        let items = Array(0..<10)
        for function in [F.packedFailNegative, F.packedAsyncFailNegative] {
            let frame = packedTaskFrame(
                items, function: function.name, signature: function.signatureFingerprint, stopOnError: false)
            for cut in [1, 8, 80] {
                // Either the chunk is refused as unreadable, or every item is an error.
                do {
                    let result = try await runInProcess(function, frame: frame, end: frame.count - cut)
                    let outcomes = ResultItems.decode(
                        result.items, header: result.header, expected: 10, as: Int.self, functionName: "f",
                        workerPID: 1)
                    #expect(allEncodingFailed(outcomes), "\(function.name), \(cut) bytes short")
                } catch {
                    #expect(error is FrameError, "\(function.name), \(cut) bytes short: \(error)")
                }
            }
        }
    }
}

/// What a stream reads a chunk's packed results with (``Pool/packedChunkReader(for:)``, compiled
/// for `R`): the same values as ``ResultItems/packedValues(_:header:expected:as:)`` and nil in the
/// same cases; nil too for a type that is not plain, which has no such reader.
private func typedPackedValues<R>(_ reader: ByteReader, header: ResultHeader, expected: Int, as _: R.Type) -> [R]? {
    Pool.packedChunkReader(for: R.self).flatMap { $0(reader, header, expected) }
}
