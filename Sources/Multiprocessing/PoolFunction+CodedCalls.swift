// How a worker reaches a `PoolFunction`'s coded calls without run-time conformance look-ups: the
// calls that need the types' `Codable` conformances are made once, in the initializers, which
// have them; the function's type requires none (PoolFunction.swift says why).

/// A pool function's calls from their encoded form, bound to the `Codable` conformances of its
/// types when the function was made.
struct CodedCalls<each Argument: Sendable, Result: Sendable>: Sendable {
    /// Runs a chunk of encoded (or packed) calls: ``ChunkRunner/runChunk(_:header:into:)``.
    let runChunk:
        @Sendable (PoolFunction<repeat each Argument, Result>, inout ByteReader, TaskHeader, inout ResultFrameBuilder)
            async throws -> Void
    /// Runs one encoded call, its result dropped: ``ChunkRunner/runOnce(_:)``.
    let runChunkSynchronously:
        @Sendable (PoolFunction<repeat each Argument, Result>, inout ByteReader, TaskHeader, inout ResultFrameBuilder)
            throws -> Void
    let runOnce: @Sendable (PoolFunction<repeat each Argument, Result>, inout ByteReader) async throws -> Void
    /// Runs a chunk of packed items where they lie: ``ChunkRunner/runPackedItems(_:header:output:into:)``.
    let runPackedItems:
        @Sendable (
            PoolFunction<repeat each Argument, Result>, UnsafeRawPointer, TaskHeader, UnsafeMutableRawPointer?,
            inout ResultFrameBuilder
        ) -> Bool

    init() where repeat each Argument: Codable, Result: Codable {
        runChunk = { function, reader, header, results in
            try await function.runCodedChunk(&reader, header: header, into: &results)
        }
        runChunkSynchronously = { function, reader, header, results in
            try Multiprocessing.runChunkSynchronously(function, &reader, header: header, into: &results)
        }
        runOnce = { function, reader in try await function.runCodedOnce(&reader) }
        runPackedItems = { function, items, header, output, results in
            guard let runner = function.packedRunner else {
                preconditionFailure("'\(function.name)' has no packed loop for these items")
            }
            return Multiprocessing.runPackedItems(
                runner, items, header: header, output: output, functionName: function.name, resultType: Result.self,
                into: &results)
        }
    }
}

extension PoolFunction: ChunkRunner {
    func runChunk(_ reader: inout ByteReader, header: TaskHeader, into results: inout ResultFrameBuilder) async throws {
        try await coded.runChunk(self, &reader, header, &results)
    }

    func runChunkSynchronously(
        _ reader: inout ByteReader, header: TaskHeader, into results: inout ResultFrameBuilder
    ) throws {
        try coded.runChunkSynchronously(self, &reader, header, &results)
    }

    func runOnce(_ reader: inout ByteReader) async throws {
        try await coded.runOnce(self, &reader)
    }

    func packedResultStride(forItemsOf header: TaskHeader, itemBytes: Int) -> Int? {
        guard isSynchronous, packedRunner != nil, let stride = header.packedStride, stride == packedCallStride,
            PackedLayout.fits(header.itemCount, of: stride, in: itemBytes)
        else { return nil }
        return MemoryLayout<Result>.stride
    }

    func runPackedItems(
        _ items: UnsafeRawPointer, header: TaskHeader, output: UnsafeMutableRawPointer?,
        into results: inout ResultFrameBuilder
    ) -> Bool {
        coded.runPackedItems(self, items, header, output, &results)
    }

    /// What a worker serves the function through (its ``ChunkRunner`` conformance, known here
    /// without a look-up).
    public var _served: _ServedPoolFunction { _ServedPoolFunction(runner: self) }
}
