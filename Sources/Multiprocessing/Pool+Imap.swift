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
    /// Without a `chunksize`, chunks are sized from how long they take in the workers: the first
    /// holds one item, so the first result comes early; sizes double while a chunk takes well
    /// under 2 ms and shrink when one takes much longer, up to 8192 items and about 1 MiB of
    /// arguments or results a chunk. Tiny items then travel thousands to a message and slow ones
    /// one or a few, with no tuning (see <doc:PerformanceAndChunksize>).
    ///
    /// - Parameters:
    ///   - function: A one-argument function the workers serve.
    ///   - items: The inputs; read as the stream is consumed.
    ///   - chunksize: Items per task, exactly; larger chunks cost fewer messages. Default: nil,
    ///     sized from the measured run time of the chunks.
    /// - Throws: ``PoolError`` `.notRunning`, `.invalidArgument` (chunksize below 1).
    @inlinable
    public func imap<A, R>(
        _ function: PoolFunction<A, R>, _ items: some Sequence<A>, chunksize: Int? = nil
    ) throws
        -> ResultStream<R> where A: Codable, R: Codable
    {
        try makeStream(
            function, feeding: Pool.StreamInput(items, packed: PackedLayout.isPlain(A.self)),
            readPacked: Pool.packedChunkReader(for: R.self), chunksize: chunksize, ordered: true,
            knownCount: Pool.knownCount(of: items))
    }

    /// Like ``imap(_:_:chunksize:)``, but results come in the order they finish.
    ///
    /// - Parameters:
    ///   - function: A one-argument function the workers serve.
    ///   - items: The inputs; read as the stream is consumed.
    ///   - chunksize: Items per task, exactly. Default: nil, sized from the measured run time of
    ///     the chunks, as for ``imap(_:_:chunksize:)``.
    /// - Throws: ``PoolError`` `.notRunning`, `.invalidArgument` (chunksize below 1).
    @inlinable
    public func imapUnordered<A, R>(
        _ function: PoolFunction<A, R>, _ items: some Sequence<A>, chunksize: Int? = nil
    ) throws -> ResultStream<R> where A: Codable, R: Codable {
        try makeStream(
            function, feeding: Pool.StreamInput(items, packed: PackedLayout.isPlain(A.self)),
            readPacked: Pool.packedChunkReader(for: R.self), chunksize: chunksize, ordered: false,
            knownCount: Pool.knownCount(of: items))
    }

    /// How many items `items` holds, where that costs nothing: a random-access collection (an
    /// `Array`, a range) knows; any other sequence is counted as it is read.
    @inlinable
    static func knownCount(of items: some Sequence) -> Int? {
        (items as? any RandomAccessCollection)?.count
    }

    @usableFromInline
    func makeStream<A, R>(
        _ function: PoolFunction<A, R>, feeding input: StreamInput<A>, readPacked: PackedChunkReader<R>?,
        chunksize: Int?, ordered: Bool, knownCount: Int? = nil
    ) throws(PoolError) -> ResultStream<R> where A: Codable, R: Codable {
        let pull = input.pull
        let name = function.name
        guard core.lifecycle == .running else { throw core.notRunningError(functionName: name) }
        if let chunksize { try Chunking.validate(chunksize, functionName: name) }
        let job = core.makeJobID()
        let signature = function.signatureFingerprint
        // Packed only through the typed feed (made where `A` is known): the generic steps looked
        // up the metadata of `[A]` at run time, ~5,000 instructions a chunk.
        let feedPacked = input.feedPacked
        let packedStride = feedPacked == nil ? nil : function.packedArgumentStride
        var batch: [A] = []
        var itemIndex = 0
        let feeder = StreamFeeder { firstChunk, chunksize in
            var slots: [StreamFeeder.Slot] = []
            var chunkIndex = firstChunk
            var builder: TaskFrameBuilder?
            func seal() {
                guard var current = builder else { return }
                builder = nil
                let count = current.itemCount
                guard count > 0 else { return }
                // Queued deeper on a worker than a lone call (SchedulerStateMachine's
                // `deepQueue`): with one running and one queued, a worker on short chunks ran out
                // whenever the I/O thread was slow to hand it the next, and the consumer waited.
                slots.append(
                    .chunk(
                        .init(
                            job: job, index: chunkIndex, payload: current.finishWithAttachments(), timeout: nil,
                            items: count, queuesDeep: true),
                        count: count))
                chunkIndex += 1
            }
            if let packedStride, let feedPacked {
                let count = feedPacked(chunksize) { bytes, count in
                    // Made once the items are known: sized for them.
                    builder = TaskFrameBuilder(
                        job: job, chunkIndex: chunkIndex, functionName: name, signature: signature,
                        stopOnError: false, packedStride: packedStride, capacity: 64 + name.utf8.count + bytes.count,
                        attachingLargeBytes: true)
                    builder!.appendPacked(items: bytes, count: count)
                }
                itemIndex += count
                seal()
                return slots
            }
            pull(&batch, chunksize)
            // The items are encoded below; they need not live until the next chunk.
            defer { batch.removeAll(keepingCapacity: true) }
            guard !batch.isEmpty else { return slots }
            for item in batch {
                defer { itemIndex += 1 }
                if builder == nil {
                    builder = TaskFrameBuilder(
                        job: job, chunkIndex: chunkIndex, functionName: name, signature: signature,
                        stopOnError: false, capacity: 64 + name.utf8.count + batch.count * 16,
                        attachingLargeBytes: true)
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
            window: Chunking.streamWindow(processes: processes), chunksize: chunksize, feeder: feeder,
            knownCount: knownCount, readPacked: readPacked)
        try storage.start()
        return ResultStream(storage: storage)
    }
}
