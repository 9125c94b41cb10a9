// The one path every call takes into the pool: encode the items into chunk frames, register a
// sink, hand the chunks to the scheduler.

extension Pool {
    /// Encodes `items` into task frames of `chunksize` items: packed when `packedStride` is
    /// the stride of `Element` (plain numbers, see ``PackedLayout``), else each with `encode`.
    /// - Throws: `PoolError.encodingFailed` naming the item that could not be encoded.
    static func encodeChunks<Element>(
        _ items: [Element], chunksize: Int, job: JobID, functionName: String, signature: UInt64, stopOnError: Bool,
        timeout: Duration?, packedStride: Int?, encode: (Element, inout ByteWriter) throws -> Void
    ) throws(PoolError) -> (chunks: [PoolCore.Scheduler.Chunk], sizes: [Int]) {
        let packedStride = packedStride == MemoryLayout<Element>.stride ? packedStride : nil
        var chunks: [PoolCore.Scheduler.Chunk] = []
        var sizes: [Int] = []
        chunks.reserveCapacity((items.count + chunksize - 1) / chunksize)
        var start = 0
        while start < items.count {
            let end = min(start + chunksize, items.count)
            var builder = TaskFrameBuilder(
                job: job, chunkIndex: chunks.count, functionName: functionName, signature: signature,
                stopOnError: stopOnError, packedStride: packedStride, lone: items.count <= chunksize,
                capacity: 64 + functionName.utf8.count + (end - start) * (packedStride ?? 16),
                attachingLargeBytes: true)
            if let packedStride, (end - start) * packedStride >= Attachments.threshold {
                builder.attachPacked(items[start..<end])
            } else if packedStride != nil {
                builder.appendPacked(items[start..<end])
            } else {
                for index in start..<end {
                    do {
                        try builder.appendItem { writer in try encode(items[index], &writer) }
                    } catch {
                        throw PoolError(
                            .encodingFailed, "item \(index) for '\(functionName)' could not be encoded: \(error)",
                            functionName: functionName)
                    }
                }
            }
            chunks.append(
                .init(
                    job: job, index: chunks.count, payload: builder.finishWithAttachments(), timeout: timeout,
                    items: end - start))
            sizes.append(end - start)
            start = end
        }
        return (chunks, sizes)
    }

    /// Submits a job whose result is one value built from all item results (apply, map,
    /// starmap). It stops at its first failed item.
    func submitCollecting<Element, R: Decodable & Sendable, Value: Sendable>(
        functionName: String, signature: UInt64, items: [Element], chunksize: Int?, timeout: Duration?,
        packedStride: Int? = nil, encode: (Element, inout ByteWriter) throws -> Void,
        makeValue: @escaping @Sendable ([R]) -> Value,
        callback: (@Sendable (Value) -> Void)?, errorCallback: (@Sendable (any Error) -> Void)?
    ) throws(PoolError) -> AsyncResult<Value> {
        guard core.lifecycle == .running else { throw core.notRunningError(functionName: functionName) }
        if let timeout, timeout <= .zero {
            throw PoolError(.invalidArgument, "timeout must be above zero, not \(timeout)", functionName: functionName)
        }
        let size =
            chunksize
            ?? Chunking.defaultChunksize(
                itemCount: items.count, processes: processes,
                packedStride: packedStride == MemoryLayout<Element>.stride ? packedStride : nil)
        try Chunking.validate(size, functionName: functionName)
        let job = core.makeJobID()
        let (chunks, sizes) = try Pool.encodeChunks(
            items, chunksize: size, job: job, functionName: functionName, signature: signature, stopOnError: true,
            timeout: timeout, packedStride: packedStride, encode: encode)
        let sink = ListSink<R, Value>(
            functionName: functionName, chunkSizes: sizes, makeValue: makeValue, callback: callback,
            errorCallback: errorCallback, callbacks: core.callbacks)
        let sentTo: WorkerID?
        do {
            sentTo = try core.submit(job: job, chunks: chunks, failFast: true, sink: sink, functionName: functionName)
        } catch {
            sink.abandon()
            throw error
        }
        let core = self.core
        var waitDirect: (@Sendable (MonotonicInstant?) -> Void)?
        if let worker = sentTo {
            // Until the outcome is known: a callback's result completes later, on the callback
            // executor, and nothing more comes through the pipe for it.
            waitDirect = { deadline in
                core.waitDirect(worker: worker, deadline: deadline) { sink.isSettled }
            }
        }
        return AsyncResult(
            completion: sink.completion, callbacks: core.callbacks, progress: sink.progress,
            cancelWork: { core.cancel(job: job, stopRunning: true) },
            cancelResult: { sink.cancel(with: $0) }, waitDirect: waitDirect)
    }
}
