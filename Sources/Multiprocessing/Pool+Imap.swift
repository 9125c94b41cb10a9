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
            function, pull: Pool.batches(of: items), chunksize: chunksize, ordered: true,
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
            function, pull: Pool.batches(of: items), chunksize: chunksize, ordered: false,
            knownCount: Pool.knownCount(of: items))
    }

    /// How many items `items` holds, where that costs nothing: a random-access collection (an
    /// `Array`, a range) knows; any other sequence is counted as it is read.
    @inlinable
    static func knownCount(of items: some Sequence) -> Int? {
        (items as? any RandomAccessCollection)?.count
    }

    /// Reads `items` a batch at a time: `pull(&batch, n)` appends up to `n` more items. Made in
    /// the caller's module (inlined), so that iterating the caller's sequence is compiled for its
    /// concrete type rather than run through generic code item by item.
    @inlinable
    static func batches<S: Sequence>(of items: S) -> (inout [S.Element], Int) -> Void {
        var iterator: S.Iterator? = items.makeIterator()
        var ended = false
        return { batch, limit in
            guard !ended else { return }
            // Moved out and back: the captured variable is accessed once a batch, not once an
            // item, and an iterator with copy-on-write storage is never copied (taking it leaves
            // the closure's copy empty, so the storage stays uniquely referenced).
            var local = iterator.take()!
            defer { iterator = local }
            // An empty batch is filled in place, without `append`'s capacity and uniqueness
            // checks per item (measured: 3e6 items of a lazy map, 52 → 14 instructions an
            // item); the first 64 Ki items at most, so that a huge chunksize reserves nothing
            // the input may never fill. The rest, if any, is appended.
            let reserved = batch.isEmpty ? min(limit, 1 << 16) : 0
            if reserved > 0 {
                batch = [S.Element](unsafeUninitializedCapacity: reserved) { buffer, count in
                    while count < reserved {
                        guard let item = local.next() else {
                            ended = true
                            return
                        }
                        (buffer.baseAddress! + count).initialize(to: item)
                        count += 1
                    }
                }
            }
            while !ended && batch.count < limit {
                guard let item = local.next() else {
                    ended = true
                    return
                }
                batch.append(item)
            }
        }
    }

    @usableFromInline
    func makeStream<A, R>(
        _ function: PoolFunction<A, R>, pull: @escaping (inout [A], Int) -> Void, chunksize: Int?, ordered: Bool,
        knownCount: Int? = nil
    ) throws(PoolError) -> ResultStream<R> where A: Codable, R: Codable {
        let name = function.name
        guard core.lifecycle == .running else { throw core.notRunningError(functionName: name) }
        if let chunksize { try Chunking.validate(chunksize, functionName: name) }
        let job = core.makeJobID()
        let signature = function.signatureFingerprint
        let packedStride = function.packedArgumentStride
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
                slots.append(
                    .chunk(
                        .init(
                            job: job, index: chunkIndex, payload: current.finishWithAttachments(), timeout: nil,
                            items: count),
                        count: count))
                chunkIndex += 1
            }
            pull(&batch, chunksize)
            // The items are encoded below; they need not live until the next chunk.
            defer { batch.removeAll(keepingCapacity: true) }
            guard !batch.isEmpty else { return slots }
            builder = TaskFrameBuilder(
                job: job, chunkIndex: chunkIndex, functionName: name, signature: signature, stopOnError: false,
                packedStride: packedStride, capacity: 64 + name.utf8.count + batch.count * (packedStride ?? 16),
                attachingLargeBytes: true)
            if packedStride != nil {
                builder!.appendPacked(batch[...])
                itemIndex += batch.count
            } else {
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
            }
            seal()
            return slots
        }
        let storage = StreamStorage<R>(
            functionName: name, job: job, ordered: ordered, core: core,
            window: Chunking.streamWindow(processes: processes), chunksize: chunksize, feeder: feeder,
            knownCount: knownCount)
        try storage.start()
        return ResultStream(storage: storage)
    }
}
