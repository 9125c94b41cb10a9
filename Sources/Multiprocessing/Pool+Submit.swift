// The one path every call takes into the pool: encode the items into chunk frames, register a
// sink, hand the chunks to the scheduler.

extension Pool {
    /// Encodes `items` into task frames of `chunksize` items: packed when `packedStride` is
    /// the stride of `Element` (plain numbers, see ``PackedLayout``), else each with `encode`.
    /// - Throws: `PoolError.encodingFailed` naming the item that could not be encoded.
    /// `resultsMayWait`: the chunks' results are seen only together and no timeout applies to
    /// them: a job of several chunks then marks them so (``TaskHeader/resultMayWait``).
    static func encodeChunks<Element>(
        _ items: [Element], chunksize: Int, job: JobID, functionName: String, signature: UInt64, stopOnError: Bool,
        timeout: Duration?, packedStride: Int?, resultsMayWait: Bool = true,
        encode: (Element, inout ByteWriter) throws -> Void
    ) throws(PoolError) -> (chunks: [PoolCore.Scheduler.Chunk], sizes: [Int]) {
        let packedStride = packedStride == MemoryLayout<Element>.stride ? packedStride : nil
        var chunks: [PoolCore.Scheduler.Chunk] = []
        var sizes: [Int] = []
        chunks.reserveCapacity((items.count + chunksize - 1) / chunksize)
        var start = 0
        // A job of one chunk is a lone call (its caller waits for this result alone); the
        // chunks of a larger one are seen only together, so their results may wait, unless a
        // timeout applies: a chunk's clock starts when the parent learns that the one before it
        // ended, and a result held behind a hung chunk would start that clock only at the held
        // chunk's own deadline, twice the timeout after the hang began (measured: 0.81–0.84 s
        // for a timeout of 0.4 s, HeldResultsTests).
        let lone = items.count <= chunksize
        let mayWait = !lone && resultsMayWait && timeout == nil
        while start < items.count {
            let end = min(start + chunksize, items.count)
            var builder = TaskFrameBuilder(
                job: job, chunkIndex: chunks.count, functionName: functionName, signature: signature,
                stopOnError: stopOnError, packedStride: packedStride, lone: lone, resultMayWait: mayWait,
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
                    items: end - start, queuesDeep: mayWait))
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
            timeout: timeout, packedStride: packedStride, resultsMayWait: configuration.taskTimeout == nil,
            encode: encode)
        let sink = ListSink<R, Value>(
            functionName: functionName, chunkSizes: sizes, makeValue: makeValue, callback: callback,
            errorCallback: errorCallback, callbacks: core.callbacks, directFrom: core.serial, job: job)
        let call = try submit(job: job, chunks: chunks, sink: sink, functionName: functionName)
        // Once the first chunks are on their way (see ListSink.swift).
        sink.prepare()
        return AsyncResult(call: call)
    }

    /// Submits one call (apply): one chunk of one item, whose arguments `encodeArguments` appends
    /// straight to the task frame, and whose result is that item's value, through the
    /// non-generic ``ApplySink``.
    /// - Throws: `PoolError.encodingFailed` when the arguments cannot be encoded, `.notRunning`,
    ///   `.invalidArgument` for a timeout not above zero.
    ///
    /// `packedStride`: the arguments are plain numbers of that stride, which `encodeArguments`
    /// appends packed (the worker then runs the call through the loop compiled for its types).
    func submitCall<R: Decodable & Sendable>(
        functionName: String, signature: UInt64, timeout: Duration?, callback: (@Sendable (R) -> Void)?,
        errorCallback: (@Sendable (any Error) -> Void)?, packedStride: Int? = nil,
        encodeArguments: (inout TaskFrameBuilder) throws -> Void
    ) throws(PoolError) -> SubmittedCall {
        // `if let`, not `Optional.map`: the generic map looked up the metadata of the optional
        // closure type on every call (~450 instructions).
        var erasedCallback: (@Sendable (any Sendable) -> Void)?
        if let callback { erasedCallback = { value in callback(value as! R) } }
        return try submitCall(
            functionName: functionName, signature: signature, timeout: timeout,
            decode: ApplySink.decoder(for: R.self), callback: erasedCallback,
            errorCallback: errorCallback, packedStride: packedStride, encodeArguments: encodeArguments)
    }

    /// ``submitCall(functionName:signature:timeout:callback:errorCallback:packedStride:encodeArguments:)``
    /// with the typed parts made by the caller: how the result decodes, and the callback erased.
    /// Not generic: the blocking `apply`, inlined into the caller's module, calls it directly.
    @usableFromInline
    func submitCall(
        functionName: String, signature: UInt64, timeout: Duration?, decode: @escaping ApplySink.Decode,
        callback: (@Sendable (any Sendable) -> Void)?, errorCallback: (@Sendable (any Error) -> Void)?,
        packedStride: Int?, encodeArguments: (inout TaskFrameBuilder) throws -> Void
    ) throws(PoolError) -> SubmittedCall {
        guard core.lifecycle == .running else { throw core.notRunningError(functionName: functionName) }
        if let timeout, timeout <= .zero {
            throw PoolError(.invalidArgument, "timeout must be above zero, not \(timeout)", functionName: functionName)
        }
        let job = core.makeJobID()
        var builder = TaskFrameBuilder(
            job: job, chunkIndex: 0, functionName: functionName, signature: signature, stopOnError: true,
            packedStride: packedStride, lone: true, capacity: 96 + functionName.utf8.count, attachingLargeBytes: true)
        do {
            try encodeArguments(&builder)
        } catch {
            throw PoolError(
                .encodingFailed, "the arguments for '\(functionName)' could not be encoded: \(error)",
                functionName: functionName)
        }
        let chunk = PoolCore.Scheduler.Chunk(
            job: job, index: 0, payload: builder.finishWithAttachments(), timeout: timeout, items: 1)
        let sink = ApplySink(
            functionName: functionName, decode: decode, callback: callback, errorCallback: errorCallback,
            callbacks: core.callbacks)
        return try submit(job: job, chunks: [chunk], sink: sink, functionName: functionName)
    }

    /// Hands a job's chunks and its sink to the scheduler, and returns what the caller's handle
    /// acts on.
    private func submit(
        job: JobID, chunks: [PoolCore.Scheduler.Chunk], sink: some ResultSink, functionName: String
    ) throws(PoolError) -> SubmittedCall {
        let sentTo: WorkerID?
        do {
            sentTo = try core.submit(job: job, chunks: chunks, failFast: true, sink: sink, functionName: functionName)
        } catch {
            sink.abandon()
            throw error
        }
        return SubmittedCall(core: core, job: job, sink: sink, worker: sentTo)
    }
}

/// A job's sink as its caller's handle sees it: the outcome, its progress, cancellation.
protocol ResultSink: JobSink {
    var completion: Completion { get }
    var progress: ProgressCounter { get }
    /// Whether the outcome is known (no more results will come for it).
    var isSettled: Bool { get }
    /// The job was never submitted: nothing will come.
    func abandon()
    /// Completes the result with `error` (the pool stops the work separately).
    func cancel(with error: any Error)
}

extension ListSink: ResultSink {}
extension ApplySink: ResultSink {}

/// What an ``AsyncResult`` acts on: the job, its sink, and the worker its one chunk went
/// straight to, if it did. One value (not generic) rather than a closure for each action; a
/// struct, so that a blocking `apply`, which waits on it and lets go, allocates no object for it.
@usableFromInline
struct SubmittedCall: Sendable {
    let core: PoolCore
    let job: JobID
    let sink: any ResultSink
    /// The worker a lone call went to at once: its caller may wait on that worker's results.
    let worker: WorkerID?

    init(core: PoolCore, job: JobID, sink: any ResultSink, worker: WorkerID?) {
        self.core = core
        self.job = job
        self.sink = sink
        self.worker = worker
    }

    /// Stops the job's work: what has not started is dropped, what runs is killed.
    func cancelWork() {
        core.cancel(job: job, stopRunning: true)
    }

    /// How a blocking wait ended.
    enum BlockingWait {
        case done(Completion.Outcome)
        case timedOut
        /// The wait was made by this result's own callback, before which it cannot be ready.
        case inOwnCallback
    }

    /// Waits the blocking way, until one deadline for every step: directly on the worker's
    /// channel when that is possible, then for the completion.
    func waitBlocking(timeout: Duration?) -> BlockingWait {
        let completion = sink.completion
        let deadline = timeout.map { MonotonicInstant.now.advanced(by: $0) }
        if !completion.isComplete { waitDirect(deadline: deadline) }
        if completion.isComplete, let outcome = completion.outcome { return .done(outcome) }
        if core.callbacks.isRunningCallback(of: completion) { return .inOwnCallback }
        guard let outcome = completion.wait(until: deadline, helping: core.callbacks) else { return .timedOut }
        return .done(outcome)
    }

    /// Waits for the outcome (see ``AsyncResult/get(timeout:)``).
    /// - Throws: `PoolError.timeout` when `timeout` passes first, `.notReady` in the result's
    ///   own callback.
    @usableFromInline
    func outcome(waitingUpTo timeout: Duration?) throws(PoolError) -> Completion.Outcome {
        switch waitBlocking(timeout: timeout) {
        case .done(let outcome):
            return outcome
        case .timedOut:
            throw PoolError(.timeout, "the result was not ready within \(timeout!)")
        case .inOwnCallback:
            throw PoolError(
                .notReady, "get() was called in this result's own callback, which runs before the result is ready")
        }
    }

    /// Waits a little on the worker's results on this thread, if the call went straight to one,
    /// until the outcome is known (a callback's result completes later, on the callback
    /// executor, and nothing more comes from the worker for it).
    func waitDirect(deadline: MonotonicInstant?) {
        guard let worker else { return }
        let sink = self.sink
        core.waitDirect(worker: worker, deadline: deadline) { sink.isSettled }
    }
}
