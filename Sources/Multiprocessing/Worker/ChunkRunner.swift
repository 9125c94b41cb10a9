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
            try Multiprocessing.runChunkSynchronously(self, &reader, header: header, into: &results)
            return
        }
        try readAttachedItems(&reader, header: header)
        var outcomes = Outcomes<Result>(packing: packedResultStride != nil, functionName: name)
        try await runItems(&reader, header: header, into: &outcomes, &results)
        outcomes.finish(into: &results)
    }

    /// The items of a chunk of a synchronous body one by one, each decoded and called (the
    /// packed loop's chunks go through ``runChunkSynchronously(_:_:header:into:)``, which calls
    /// this for every other chunk).
    func runCodedItemsSynchronously(
        _ reader: inout ByteReader, header: TaskHeader, into results: inout ResultFrameBuilder
    ) throws {
        guard let syncBody else { preconditionFailure("'\(name)' has an async body: it runs through runChunk") }
        var outcomes = Outcomes<Result>(packing: packedResultStride != nil, functionName: name)
        try runItems(syncBody, &reader, header: header, into: &outcomes, &results)
        outcomes.finish(into: &results)
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
