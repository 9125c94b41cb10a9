// How a worker runs a chunk of calls of one function: decode each item's arguments, call the
// body, encode the result or the error. Every item gets an outcome; a bad item never stops the
// worker.
//
// A function with a synchronous body is served without any async call: the worker's loop calls
// ``ChunkRunner/runChunkSynchronously(_:header:into:)``, which calls the body directly (each
// async call costs an async frame from the task's allocator, and a hop to the generic executor:
// ~1.7k instructions a task, measured in callgrind). Only `async` bodies go through
// ``ChunkRunner/runChunk(_:header:into:)``.

/// The worker-side face of a ``PoolFunction``: runs calls from their encoded form.
protocol ChunkRunner: AnyPoolFunction {
    /// The fingerprint of the signature, which task frames carry.
    var signatureFingerprint: UInt64 { get }
    /// Whether the body is synchronous: its chunks are then run by
    /// ``runChunkSynchronously(_:header:into:)``, without an async call.
    var isSynchronous: Bool { get }
    /// Runs the chunk's items, appending one outcome per item to `results`.
    func runChunk(_ reader: inout ByteReader, header: TaskHeader, into results: inout ResultFrameBuilder) async throws
    /// The same for a synchronous body (``isSynchronous``), with no async call.
    func runChunkSynchronously(
        _ reader: inout ByteReader, header: TaskHeader, into results: inout ResultFrameBuilder) throws
    /// Runs one call whose arguments are in `reader` (the pool's initializer).
    func runOnce(_ reader: inout ByteReader) async throws
    /// The stride of the results when a chunk of packed items (`header`'s), `itemBytes` of them
    /// in one piece in memory, runs through the loop compiled for the function's types
    /// (``runPackedItems(_:header:output:into:)``); nil when it cannot (an `async` body, a
    /// function not of plain numbers, another stride, too few bytes).
    func packedResultStride(forItemsOf header: TaskHeader, itemBytes: Int) -> Int?
    /// Runs such a chunk from its items where they lie (the worker's task ring): stores the
    /// results at `output` when it is given (room for every one), else in `results`. Returns
    /// true when every result is at `output`; false when they are in `results` instead (no
    /// `output`, or some call threw: then `results` has every outcome in order, as the usual way
    /// makes them).
    func runPackedItems(
        _ items: UnsafeRawPointer, header: TaskHeader, output: UnsafeMutableRawPointer?,
        into results: inout ResultFrameBuilder
    ) -> Bool
}

extension PoolFunction {
    var isSynchronous: Bool {
        switch syncBody {
        case .some: true
        case .none: false
        }
    }
}

// The bodies of the worker's calls, where the types' `Codable` conformances are at hand; the
// ``ChunkRunner`` conformance reaches them through the closures the initializers stored
// (PoolFunction+CodedCalls.swift).
extension PoolFunction where repeat each Argument: Codable, Result: Codable {
    func runCodedChunk(
        _ reader: inout ByteReader, header: TaskHeader, into results: inout ResultFrameBuilder
    ) async throws {
        if isSynchronous {
            try runCodedChunkSynchronously(&reader, header: header, into: &results)
            return
        }
        try readAttachedItems(&reader, header: header)
        var outcomes = Outcomes<Result>(packing: packedResultStride != nil, functionName: name)
        try await runItems(&reader, header: header, into: &outcomes, &results)
        outcomes.finish(into: &results)
    }

    func runCodedChunkSynchronously(
        _ reader: inout ByteReader, header: TaskHeader, into results: inout ResultFrameBuilder
    ) throws {
        guard let syncBody else { preconditionFailure("'\(name)' has an async body: it runs through runChunk") }
        try readAttachedItems(&reader, header: header)
        // The loop compiled for the concrete types, when the chunk is what it expects (anything
        // else goes the generic way, which answers an error per item). `packedCallStride` is
        // the argument stride, stored: worked out here (a tuple's metadata) it cost 1.3k
        // instructions a chunk.
        if let stride = header.packedStride, let packedRunner, stride == packedCallStride,
            PackedLayout.fits(header.itemCount, of: stride, in: reader.remaining)
        {
            try runPacked(packedRunner, &reader, header: header, stride: stride, into: &results)
            return
        }
        var outcomes = Outcomes<Result>(packing: packedResultStride != nil, functionName: name)
        try runItems(syncBody, &reader, header: header, into: &outcomes, &results)
        outcomes.finish(into: &results)
    }

    /// Packed items that came after the frame: read them where they are.
    private func readAttachedItems(_ reader: inout ByteReader, header: TaskHeader) throws {
        guard header.packedItemsAttached else { return }
        guard header.packedStride != nil, reader.attachments.count == 1 else {
            throw FrameError(description: "a chunk's attached packed items are missing")
        }
        reader = ByteReader(reader.attachments[0])
    }

    /// The items of an async body, one async call each.
    private func runItems(
        _ reader: inout ByteReader, header: TaskHeader, into outcomes: inout Outcomes<Result>,
        _ results: inout ResultFrameBuilder
    ) async throws {
        if header.packedStride != nil {
            // Packed arguments: the whole chunk's tuples in one copy.
            guard let all = readPackedArguments(header: header, from: &reader, into: &outcomes, &results) else {
                return
            }
            for index in all.indices {
                let arguments: (repeat each Argument) = all[index]
                await call(repeat each arguments, into: &outcomes, &results)
                if header.stopOnError && outcomes.anyFailed { return }
            }
            return
        }
        for _ in 0..<header.itemCount {
            guard let arguments = try nextItem(&reader, into: &outcomes, &results) else {
                if header.stopOnError { return }
                continue
            }
            await call(repeat each arguments, into: &outcomes, &results)
            if header.stopOnError && outcomes.anyFailed { return }
        }
    }

    /// The items of a synchronous body, called directly.
    private func runItems(
        _ syncBody: @Sendable (repeat each Argument) throws -> Result, _ reader: inout ByteReader,
        header: TaskHeader, into outcomes: inout Outcomes<Result>, _ results: inout ResultFrameBuilder
    ) throws {
        if header.packedStride != nil {
            guard let all = readPackedArguments(header: header, from: &reader, into: &outcomes, &results) else {
                return
            }
            for index in all.indices {
                let arguments: (repeat each Argument) = all[index]
                call(syncBody, repeat each arguments, into: &outcomes, &results)
                if header.stopOnError && outcomes.anyFailed { return }
            }
            return
        }
        for _ in 0..<header.itemCount {
            guard let arguments = try nextItem(&reader, into: &outcomes, &results) else {
                if header.stopOnError { return }
                continue
            }
            call(syncBody, repeat each arguments, into: &outcomes, &results)
            if header.stopOnError && outcomes.anyFailed { return }
        }
    }

    /// The next encoded item's arguments; nil (its error appended) when they do not decode.
    /// - Throws: ``FrameError`` when the item overruns the frame.
    private func nextItem(
        _ reader: inout ByteReader, into outcomes: inout Outcomes<Result>, _ results: inout ResultFrameBuilder
    ) throws -> (repeat each Argument)? {
        let length = Int(try reader.readUInt32())
        guard length <= reader.remaining else { throw FrameError(description: "task item overruns its frame") }
        var item = ByteReader(
            reader.bytes, offset: reader.offset, end: reader.offset + length, attachments: reader.attachments)
        try reader.skip(length)
        do {
            let arguments: (repeat each Argument) = try decodeArguments(from: &item)
            return arguments
        } catch {
            outcomes.append(error: undecodable(error), into: &results)
            return nil
        }
    }

    /// A chunk's packed argument tuples; nil (an error appended for each item, or for the first
    /// when the chunk stops on error) when they cannot be read.
    private func readPackedArguments(
        header: TaskHeader, from reader: inout ByteReader, into outcomes: inout Outcomes<Result>,
        _ results: inout ResultFrameBuilder
    ) -> [(repeat each Argument)]? {
        do {
            guard header.packedStride == packedArgumentStride else {
                throw FrameError(
                    description: "this worker does not take packed arguments of stride \(header.packedStride ?? 0)")
            }
            return try PackedLayout.read(count: header.itemCount, stride: header.packedStride!, from: &reader)
        } catch {
            let failure = undecodable(error)
            for _ in 0..<(header.stopOnError ? 1 : header.itemCount) {
                outcomes.append(error: failure, into: &results)
            }
            return nil
        }
    }

    /// The fast path: packed arguments in, packed results out, through the loop that was compiled
    /// for the function's concrete types (``PoolFunction/makePackedRunner(_:)``).
    private func runPacked(
        _ runner: PackedRunner, _ reader: inout ByteReader, header: TaskHeader, stride: Int,
        into results: inout ResultFrameBuilder
    ) throws {
        let offset = reader.offset
        reader.bytes.withUnsafeBytes { input in
            runPacked(runner, input.baseAddress.map { $0 + offset }, header: header, stride: stride, into: &results)
        }
        try reader.skip(header.itemCount * stride)
    }

    /// ``runPacked(_:_:header:stride:into:)`` over items at `input` (nil only for no items).
    private func runPacked(
        _ runner: PackedRunner, _ input: UnsafeRawPointer?, header: TaskHeader, stride: Int,
        into results: inout ResultFrameBuilder
    ) {
        let count = header.itemCount
        let resultStride = MemoryLayout<Result>.stride
        var outcome = PackedRun(failures: [], run: count)
        // The results are stored straight into the frame (no array of their own to copy them
        // from); taken back out only when some call threw.
        results.fillPacked(stride: resultStride, count: count) { output in
            guard count > 0, let input else { return }
            outcome = Self.runLoop(
                runner, input, count: count, stride: stride, output: output.baseAddress!, resultStride: resultStride,
                stopOnError: header.stopOnError)
        }
        if outcome.failures.isEmpty { return }
        let output = results.unsetPacked()
        output.withUnsafeBytes { appendOutcomes(outcome, values: $0.baseAddress!, into: &results) }
    }

    /// A packed chunk's run: the calls that threw, in order, and how many calls ran.
    struct PackedRun {
        var failures: [PackedFailure]
        var run: Int
    }

    /// Runs `count` packed calls from `input` with results to `output`, going on past a call that
    /// threw unless `stopOnError`.
    private static func runLoop(
        _ runner: PackedRunner, _ input: UnsafeRawPointer, count: Int, stride: Int, output: UnsafeMutableRawPointer,
        resultStride: Int, stopOnError: Bool
    ) -> PackedRun {
        var outcome = PackedRun(failures: [], run: count)
        var start = 0
        while start < count {
            guard let failure = runner(input + start * stride, count - start, output + start * resultStride) else {
                break
            }
            outcome.failures.append(PackedFailure(index: start + failure.index, error: failure.error))
            start += failure.index + 1
            if stopOnError {
                outcome.run = start
                break
            }
        }
        return outcome
    }

    /// Some call threw: the chunk goes back item by item, values (stored at `values`) and errors
    /// in order.
    private func appendOutcomes(_ outcome: PackedRun, values: UnsafeRawPointer, into results: inout ResultFrameBuilder)
    {
        let resultStride = MemoryLayout<Result>.stride
        var nextFailure = 0
        for index in 0..<outcome.run {
            if nextFailure < outcome.failures.count && outcome.failures[nextFailure].index == index {
                results.appendError(outcome.failures[nextFailure].error)
                nextFailure += 1
            } else {
                let value = values.loadUnaligned(fromByteOffset: index * resultStride, as: Result.self)
                results.appendValue(value, functionName: name)
            }
        }
    }

    /// ``ChunkRunner/runPackedItems(_:header:output:into:)``: the packed loop over items where
    /// they lie, its results stored at `output` when it is given. Call only when
    /// ``packedResultStride(forItemsOf:itemBytes:)`` gave a stride.
    func runCodedPackedItems(
        _ items: UnsafeRawPointer, header: TaskHeader, output: UnsafeMutableRawPointer?,
        into results: inout ResultFrameBuilder
    ) -> Bool {
        guard let packedRunner, let stride = header.packedStride else {
            preconditionFailure("'\(name)' has no packed loop for these items")
        }
        let count = header.itemCount
        let resultStride = MemoryLayout<Result>.stride
        guard let output else {
            runPacked(packedRunner, items, header: header, stride: stride, into: &results)
            return false
        }
        guard count > 0 else { return true }
        let outcome = Self.runLoop(
            packedRunner, items, count: count, stride: stride, output: output, resultStride: resultStride,
            stopOnError: header.stopOnError)
        if outcome.failures.isEmpty { return true }
        appendOutcomes(outcome, values: UnsafeRawPointer(output), into: &results)
        return false
    }

    /// One call of the async body, its outcome appended.
    private func call(
        _ arguments: repeat each Argument, into outcomes: inout Outcomes<Result>, _ results: inout ResultFrameBuilder
    ) async {
        do {
            outcomes.append(try await body(repeat each arguments), into: &results)
        } catch {
            outcomes.append(error: error, into: &results)
        }
    }

    /// One call of the synchronous body, its outcome appended.
    private func call(
        _ syncBody: @Sendable (repeat each Argument) throws -> Result, _ arguments: repeat each Argument,
        into outcomes: inout Outcomes<Result>, _ results: inout ResultFrameBuilder
    ) {
        do {
            outcomes.append(try syncBody(repeat each arguments), into: &results)
        } catch {
            outcomes.append(error: error, into: &results)
        }
    }

    private func undecodable(_ error: any Error) -> PoolError {
        PoolError(.encodingFailed, "the arguments of '\(name)' could not be decoded in the worker: \(error)")
    }

    func runCodedOnce(_ reader: inout ByteReader) async throws {
        let arguments = try decodeArguments(from: &reader)
        _ = try await body(repeat each arguments)
    }
}

/// A chunk's outcomes as they come: plain values are kept to be sent packed; the first error
/// turns them into encoded items, and everything after goes straight into the frame.
struct Outcomes<Value: Encodable> {
    private var packed: [Value]?
    private let functionName: String
    private(set) var anyFailed = false

    init(packing: Bool, functionName: String) {
        packed = packing ? [] : nil
        self.functionName = functionName
    }

    mutating func append(_ value: Value, into results: inout ResultFrameBuilder) {
        if packed != nil {
            packed!.append(value)
        } else {
            results.appendValue(value, functionName: functionName)
        }
    }

    mutating func append(error: any Error, into results: inout ResultFrameBuilder) {
        if let values = packed {
            packed = nil
            for value in values { results.appendValue(value, functionName: functionName) }
        }
        results.appendError(error)
        anyFailed = true
    }

    func finish(into results: inout ResultFrameBuilder) {
        if let packed { results.setPacked(packed) }
    }
}
