// Turning the items of a result frame into values or errors, in the parent.

extension ResultItems {
    /// Decodes every item of a delivered chunk as `R`, or as the error the worker sent.
    ///
    /// A chunk that came back with fewer items than were sent (which only a broken worker does
    /// when it is not stopping at an error) gets `.encodingFailed` errors for the missing ones.
    static func decode<R: Decodable>(
        _ reader: ByteReader, header: ResultHeader, expected: Int, as type: R.Type, functionName: String,
        workerPID: Int32
    ) -> [Result<R, any Error>] {
        var reader = reader
        let items: [Item]
        do {
            items = try split(&reader, count: header.itemCount)
        } catch {
            let failure = PoolError(
                .encodingFailed, "the results of '\(functionName)' could not be read: \(error)",
                functionName: functionName, workerPID: workerPID)
            return Array(repeating: .failure(failure), count: expected)
        }
        var outcomes: [Result<R, any Error>] = []
        outcomes.reserveCapacity(expected)
        for item in items.prefix(expected) {
            switch item {
            case .value(var bytes):
                do {
                    outcomes.append(.success(try WireCoding.decode(R.self, from: &bytes)))
                } catch {
                    outcomes.append(
                        .failure(
                            PoolError(
                                .encodingFailed,
                                "a result of '\(functionName)' could not be decoded as \(R.self): \(error)",
                                functionName: functionName, workerPID: workerPID)))
                }
            case .error(var bytes):
                do {
                    outcomes.append(
                        .failure(try ErrorRecord.read(from: &bytes, functionName: functionName, workerPID: workerPID)))
                } catch {
                    outcomes.append(
                        .failure(
                            PoolError(
                                .encodingFailed, "an error from '\(functionName)' could not be decoded: \(error)",
                                functionName: functionName, workerPID: workerPID)))
                }
            }
        }
        if outcomes.count < expected && !header.anyFailed {
            let missing = PoolError(
                .encodingFailed, "worker \(workerPID) answered \(outcomes.count) of \(expected) items",
                functionName: functionName, workerPID: workerPID)
            outcomes.append(contentsOf: repeatElement(.failure(missing), count: expected - outcomes.count))
        }
        return outcomes
    }
}
