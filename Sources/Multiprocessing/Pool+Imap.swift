// `imap` and `imapUnordered`: results as a stream, input read lazily.

extension Pool {
    /// Applies `function` to every item in worker processes and returns the results as a
    /// stream, in input order, as they become available.
    ///
    /// ```swift
    /// for try await value in try pool.imap(square, 0..<1_000, chunksize: 100) { … }
    /// ```
    ///
    /// The input is read lazily: a bounded window of chunks is in the pool at a time, and more is
    /// read as you consume results, so an endless or huge sequence streams in constant memory.
    /// An item whose argument cannot be encoded fails at its position with
    /// ``PoolError/Code/encodingFailed``; the stream goes on.
    ///
    /// - Parameters:
    ///   - function: A one-argument function the workers serve.
    ///   - items: The inputs; read as the stream is consumed.
    ///   - chunksize: Items per task (default 1); larger chunks cost fewer messages.
    /// - Throws: ``PoolError`` `.notRunning`, `.invalidArgument` (chunksize below 1).
    public func imap<A, R>(
        _ function: PoolFunction<A, R>, _ items: some Sequence<A>, chunksize: Int = 1
    ) throws
        -> ResultStream<R>
    {
        try makeStream(function, items, chunksize: chunksize, ordered: true)
    }

    /// Like ``imap(_:_:chunksize:)``, but results come in the order they finish.
    ///
    /// - Parameters:
    ///   - function: A one-argument function the workers serve.
    ///   - items: The inputs; read as the stream is consumed.
    ///   - chunksize: Items per task (default 1).
    /// - Throws: ``PoolError`` `.notRunning`, `.invalidArgument` (chunksize below 1).
    public func imapUnordered<A, R>(
        _ function: PoolFunction<A, R>, _ items: some Sequence<A>, chunksize: Int = 1
    ) throws -> ResultStream<R> {
        try makeStream(function, items, chunksize: chunksize, ordered: false)
    }

    private func makeStream<S: Sequence, R>(
        _ function: PoolFunction<S.Element, R>, _ items: S, chunksize: Int, ordered: Bool
    ) throws(PoolError) -> ResultStream<R> {
        let name = function.name
        guard core.lifecycle == .running else { throw core.notRunningError(functionName: name) }
        try Chunking.validate(chunksize, functionName: name)
        let job = core.makeJobID()
        let signature = function.signatureFingerprint
        let packedStride =
            function.packedArgumentStride == MemoryLayout<S.Element>.stride ? function.packedArgumentStride : nil
        var iterator = items.makeIterator()
        var itemIndex = 0
        let feeder = StreamFeeder { firstChunk in
            var slots: [StreamFeeder.Slot] = []
            var chunkIndex = firstChunk
            var builder: TaskFrameBuilder?
            func seal() {
                guard let current = builder else { return }
                builder = nil
                let count = current.itemCount
                guard count > 0 else { return }
                slots.append(
                    .chunk(.init(job: job, index: chunkIndex, payload: current.finish(), timeout: nil), count: count))
                chunkIndex += 1
            }
            var taken = 0
            while taken < chunksize, let item = iterator.next() {
                defer {
                    taken += 1
                    itemIndex += 1
                }
                if builder == nil {
                    builder = TaskFrameBuilder(
                        job: job, chunkIndex: chunkIndex, functionName: name, signature: signature, stopOnError: false,
                        packedStride: packedStride, capacity: 64 + name.utf8.count + chunksize * (packedStride ?? 16))
                }
                if packedStride != nil {
                    builder!.appendPacked(item)
                    continue
                }
                do {
                    try builder!.appendItem { writer in try WireCoding.encode(item, into: &writer) }
                } catch {
                    seal()
                    slots.append(
                        .local(
                            index: chunkIndex,
                            PoolError(
                                .encodingFailed, "item \(itemIndex) for '\(name)' could not be encoded: \(error)",
                                functionName: name)))
                    chunkIndex += 1
                }
            }
            seal()
            return slots
        }
        let storage = StreamStorage<R>(
            functionName: name, job: job, ordered: ordered, core: core,
            window: Chunking.streamWindow(processes: processes), feeder: feeder)
        try storage.start()
        return ResultStream(storage: storage)
    }
}
