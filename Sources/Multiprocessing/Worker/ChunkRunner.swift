// How a worker runs a chunk of calls of one function: decode each item's arguments, call the
// body, encode the result or the error. Every item gets an outcome; a bad item never stops the
// worker.

/// The worker-side face of a ``PoolFunction``: runs calls from their encoded form.
protocol ChunkRunner: AnyPoolFunction {
    /// Runs the chunk's items, appending one outcome per item to `results`.
    func runChunk(_ reader: inout ByteReader, header: TaskHeader, into results: inout ResultFrameBuilder) async throws
    /// Runs one call whose arguments are in `reader` (the pool's initializer).
    func runOnce(_ reader: inout ByteReader) async throws
}

extension PoolFunction: ChunkRunner {
    func runChunk(_ reader: inout ByteReader, header: TaskHeader, into results: inout ResultFrameBuilder) async throws {
        for _ in 0..<header.itemCount {
            let length = Int(try reader.readUInt32())
            guard length <= reader.remaining else { throw FrameError(description: "task item overruns its frame") }
            var item = ByteReader(reader.bytes, offset: reader.offset, end: reader.offset + length)
            try reader.skip(length)
            let arguments: (repeat each Argument)
            do {
                arguments = try decodeArguments(from: &item)
            } catch {
                results.appendError(
                    PoolError(
                        .encodingFailed, "the arguments of '\(name)' could not be decoded in the worker: \(error)"))
                if header.stopOnError { return }
                continue
            }
            do {
                let value: Result
                if let syncBody {
                    value = try syncBody(repeat each arguments)
                } else {
                    value = try await body(repeat each arguments)
                }
                results.appendValue(value, functionName: name)
            } catch {
                results.appendError(error)
            }
            if header.stopOnError && results.anyFailed { return }
        }
    }

    func runOnce(_ reader: inout ByteReader) async throws {
        let arguments = try decodeArguments(from: &reader)
        _ = try await body(repeat each arguments)
    }
}
