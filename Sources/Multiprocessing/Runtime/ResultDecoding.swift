// Turning the items of a result frame into values or errors, in the parent.

extension ResultItems {
    /// Decodes every item of a delivered chunk as `R`, or as the error the worker sent.
    static func decode<R: Decodable>(
        _ reader: ByteReader, header: ResultHeader, expected: Int, as type: R.Type, functionName: String,
        workerPID: Int32
    ) -> [Result<R, any Error>] {
        var outcomes: [Result<R, any Error>] = []
        outcomes.reserveCapacity(expected)
        decodeEach(
            reader, header: header, expected: expected, as: R.self, functionName: functionName, workerPID: workerPID
        ) { outcome in
            outcomes.append(outcome)
            return true
        }
        return outcomes
    }

    /// The values of a chunk whose results came back packed, all of them, in one copy; nil when
    /// they were not packed (then use ``decodeEach(_:header:expected:as:functionName:workerPID:_:)``,
    /// which also reports packed results that cannot be read as `R`).
    static func packedValues<R>(_ reader: ByteReader, header: ResultHeader, expected: Int, as type: R.Type) -> [R]? {
        guard header.packed, header.itemCount == expected else { return nil }
        var reader = reader
        return try? readPacked(&reader, header: header, as: R.self)
    }

    /// Copies the values of a chunk whose results came back packed straight into
    /// `destination` (room for `expected` values of `R`), in one copy; false, with nothing
    /// written, when they were not packed or are not `expected` values of `R` (then use
    /// ``decodeEach(_:header:expected:as:functionName:workerPID:_:)``, which reports why).
    static func copyPacked<R>(
        _ reader: ByteReader, header: ResultHeader, expected: Int, as type: R.Type,
        into destination: UnsafeMutableRawBufferPointer
    ) -> Bool {
        guard header.packed, header.itemCount == expected, PackedLayout.isPlain(R.self) else { return false }
        var reader = reader
        guard let stride = try? reader.readUInt32() else { return false }
        do {
            try PackedLayout.copy(R.self, count: expected, stride: Int(stride), from: &reader, into: destination)
            return true
        } catch {
            return false
        }
    }

    /// All the packed values of a chunk whose header says they are packed.
    /// - Throws: ``FrameError`` when `R` is not a plain number or the bytes are not its values.
    private static func readPacked<R>(_ reader: inout ByteReader, header: ResultHeader, as type: R.Type) throws -> [R] {
        guard PackedLayout.isPlain(R.self) else {
            throw FrameError(description: "packed results, but \(R.self) is not a plain number")
        }
        let stride = Int(try reader.readUInt32())
        return try PackedLayout.read(R.self, count: header.itemCount, stride: stride, from: &reader)
    }

    /// Decodes the items of a delivered chunk one by one, in order, passing each outcome to
    /// `body` until it returns false. Always yields `expected` outcomes unless stopped: a chunk
    /// that came back unreadable, or with fewer items than were sent (which only a broken worker
    /// does when it is not stopping at an error), yields `.encodingFailed` errors for the rest.
    static func decodeEach<R: Decodable>(
        _ reader: ByteReader, header: ResultHeader, expected: Int, as type: R.Type, functionName: String,
        workerPID: Int32, _ body: (Result<R, any Error>) -> Bool
    ) {
        var reader = reader
        var produced = 0
        var lastWasError = false
        func failure(_ message: String) -> PoolError {
            PoolError(.encodingFailed, message, functionName: functionName, workerPID: workerPID)
        }
        do {
            if header.packed {
                for value in try readPacked(&reader, header: header, as: R.self).prefix(expected) {
                    produced += 1
                    if !body(.success(value)) { return }
                }
            }
            while !header.packed && produced < min(header.itemCount, expected) {
                let outcome = try reader.readUInt8()
                let length = Int(try reader.readUInt32())
                guard length <= reader.remaining, outcome <= 1 else {
                    throw FrameError(description: "result item \(produced) is malformed")
                }
                var item = ByteReader(
                    reader.bytes, offset: reader.offset, end: reader.offset + length, attachments: reader.attachments)
                try reader.skip(length)
                produced += 1
                lastWasError = outcome == 1
                let result: Result<R, any Error>
                if outcome == 0 {
                    do {
                        result = .success(try WireCoding.decode(R.self, from: &item))
                    } catch {
                        result = .failure(
                            failure("a result of '\(functionName)' could not be decoded as \(R.self): \(error)"))
                    }
                } else {
                    do {
                        result = .failure(
                            try ErrorRecord.read(from: &item, functionName: functionName, workerPID: workerPID))
                    } catch {
                        result = .failure(failure("an error from '\(functionName)' could not be decoded: \(error)"))
                    }
                }
                if !body(result) { return }
            }
        } catch {
            let unreadable = failure("the results of '\(functionName)' could not be read: \(error)")
            while produced < expected {
                produced += 1
                if !body(.failure(unreadable)) { return }
            }
            return
        }
        // Fewer items than sent is only right when the worker stopped at an error.
        if produced < expected && !lastWasError {
            let missing = failure("worker \(workerPID) answered \(produced) of \(expected) items")
            while produced < expected {
                produced += 1
                if !body(.failure(missing)) { return }
            }
        }
    }
}
