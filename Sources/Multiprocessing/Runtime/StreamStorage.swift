// The storage behind an `imap`/`imapUnordered` stream: it holds the stream's state machine
// (StreamStateMachine.swift) under a lock and performs what its transitions return after
// releasing it, feeds the input (StreamFeeder.swift) a bounded window of chunks at a time, and
// hands results out item by item from a cursor (StreamCursor.swift).
//
// Three locks, each for one party: `state` (the state machine) is shared by the I/O thread that
// delivers results and the consumers; `cursor` is the consumer's, taken once per item; `feeder`
// serialises reading the caller's input, which may be slow, so that neither of the others waits
// for it. Lock order: `cursor` before `state`, `feeder` before `state` (the consumer gives a
// chunk back and takes the next one under both `cursor` and `state`).

import Dispatch
public import Synchronization

/// What a consumer waiting for the next result is woken through.
enum StreamWaiter {
    /// A thread blocked in `next(timeout:)`.
    case blocking(DispatchSemaphore)
    /// A task suspended in `next()`.
    case suspended(CheckedContinuation<Void, Never>)

    func wake() {
        switch self {
        case .blocking(let semaphore): semaphore.signal()
        case .suspended(let continuation): continuation.resume()
        }
    }
}

@usableFromInline
final class StreamStorage<Element: Decodable & Sendable>: JobSink, NamedSink {
    typealias StateMachine = StreamStateMachine<StreamWaiter>
    typealias ChunkResults = StreamChunkResults<Element>

    let functionName: String
    let job: JobID
    private let core: PoolCore
    /// Its total is known from the start for a random-access input, else once the input ends.
    let progress: ProgressCounter

    private let state: Mutex<StateMachine>
    /// The chunk being handed out, item by item (a lock biased to the thread that reads the
    /// stream with `next(timeout:)`, whose turns cost no atomic read-modify-write: see
    /// CursorLock.swift).
    @usableFromInline let cursor = CursorLock(StreamCursor<Element>())
    /// Set when the stream is cancelled: values an iterator took at once
    /// (``takeBufferedValues()``) and has not handed out yet are dropped then, as the cursor's are.
    @usableFromInline let dropped = Atomic<Bool>(false)

    /// Whether the stream was cancelled (values taken but not handed out are dropped then).
    @inlinable
    var isDropped: Bool { dropped.load(ordering: .acquiring) }
    /// The input; nil once it has ended or the stream was cancelled.
    private let feeder: Mutex<StreamFeeder?>
    /// Reads a chunk's packed results as `[Element]` with code compiled for `Element` in the
    /// caller's module (``Pool/packedChunkReader(for:)``); nil when `Element` is not a plain
    /// number. Without it the library's generic read looked up the metadata of `[Element]` and
    /// its helpers at run time, about 2,000 instructions a chunk.
    private let readPacked: Pool.PackedChunkReader<Element>?

    /// - Parameter chunksize: The caller's; nil sizes chunks from their run times.
    init(
        functionName: String, job: JobID, ordered: Bool, core: PoolCore, window: Int, chunksize: Int?,
        feeder: StreamFeeder, knownCount: Int? = nil, readPacked: Pool.PackedChunkReader<Element>? = nil
    ) {
        self.readPacked = readPacked
        // Registers the process for the barrier the cursor lock's bias needs (once, on the first
        // stream), here rather than on the reader's first item.
        _ = ProcessBarrier.isAvailable
        self.progress = ProgressCounter(total: knownCount)
        self.functionName = functionName
        self.job = job
        self.core = core
        self.state = Mutex(StateMachine(ordered: ordered, window: window, chunksize: chunksize))
        self.feeder = Mutex(feeder)
    }

    // MARK: - Feeding

    /// Submits the first window of chunks.
    func start() throws(PoolError) {
        let (chunks, exhausted) = produceChunks()
        try core.submit(
            job: job, chunks: chunks, failFast: false, open: !exhausted, sink: self, functionName: functionName)
    }

    /// Submits chunks until the window is full again or the input ends.
    @usableFromInline
    func topUp() {
        // The pool hears of new chunks under the feed lock, so that the last `append` (which
        // closes the job) cannot overtake an earlier one from another consumer.
        feeder.withLock { feeder in
            guard let current = feeder else { return }
            let (chunks, exhausted) = produceChunks(using: current)
            if exhausted { feeder = nil }
            guard exhausted || !chunks.isEmpty else { return }
            core.append(job: job, chunks: chunks, open: !exhausted)
        }
    }

    private func produceChunks() -> ([PoolCore.Scheduler.Chunk], Bool) {
        feeder.withLock { feeder in
            guard let current = feeder else { return ([], true) }
            let result = produceChunks(using: current)
            if result.1 { feeder = nil }
            return result
        }
    }

    /// Pulls input until the window is full. Called under the feed lock.
    private func produceChunks(using feeder: StreamFeeder) -> ([PoolCore.Scheduler.Chunk], Bool) {
        var chunks: [PoolCore.Scheduler.Chunk] = []
        while true {
            let next = state.withLock { state in state.nextChunkToFeed.map { ($0, state.nextChunkSize) } }
            guard let (index, size) = next else { return (chunks, false) }
            let slots = feeder.next(chunkIndex: index, size: size)
            if slots.isEmpty {
                let total = state.withLock { state in
                    state.inputEnded()
                    return state.itemsSubmitted
                }
                progress.setTotal(total)
                return (chunks, true)
            }
            let waiters = state.withLock { state in
                var waiters: [StreamWaiter] = []
                for slot in slots {
                    switch slot {
                    case .chunk(let chunk, let count):
                        state.chunkSubmitted(index: chunk.index, count: count, bytes: chunk.payload.count)
                        chunks.append(chunk)
                    case .local(let index, let error):
                        waiters += state.itemFailedLocally(index: index, with: error)
                    }
                }
                return waiters
            }
            wake(waiters)
        }
    }

    // MARK: - JobSink

    func deliver(index: Int, header: ResultHeader, items: ByteReader, workerPID: Int32) {
        let expected = state.withLock { $0.expectedCount(ofChunk: index) ?? 0 }
        var results = ChunkResults(count: expected)
        // A run time of 0 was not measured (the worker does not serve the function).
        let bytes = items.attachments.reduce(items.remaining) { $0 + $1.count }
        let ran = header.runNanoseconds == 0 ? nil : (nanoseconds: header.runNanoseconds, bytes: bytes)
        if let values = readPacked?(items, header, expected)
            ?? ResultItems.packedValues(items, header: header, expected: expected, as: Element.self)
        {
            results.values = values
            accept(index: index, StreamChunk(results), ran: ran)
            return
        }
        results.values.reserveCapacity(expected)
        var position = 0
        ResultItems.decodeEach(
            items, header: header, expected: expected, as: Element.self, functionName: functionName,
            workerPID: workerPID
        ) { outcome in
            switch outcome {
            case .success(let value): results.values.append(value)
            case .failure(let error): results.failures[position] = error
            }
            position += 1
            return true
        }
        results.count = position
        accept(index: index, StreamChunk(results), ran: ran)
    }

    func fail(index: Int, with error: PoolError) {
        let expected = state.withLock { $0.expectedCount(ofChunk: index) ?? 1 }
        accept(index: index, StreamChunk(failing: expected, with: error))
    }

    /// - Parameter ran: How long the worker ran the chunk and the size of its results; nil for a
    ///   chunk that did not run.
    private func accept(index: Int, _ results: StreamChunk, ran: (nanoseconds: UInt64, bytes: Int)? = nil) {
        progress.add(completed: results.count)
        wake(
            state.withLock {
                $0.chunkArrived(index: index, results, runNanoseconds: ran?.nanoseconds, resultBytes: ran?.bytes ?? 0)
            })
    }

    func failJob(with error: PoolError) {
        // Progress shows the end before a consumer can see it.
        progress.finish()
        wake(state.withLock { $0.jobFailed(with: error) })
    }

    func poolClosed() {
        state.withLock { $0.poolClosed() }
        topUp()
    }

    func finish() {
        // Progress shows the end before a consumer can see it.
        progress.finish()
        wake(state.withLock { $0.jobFinished() })
    }

    // MARK: - Consuming

    private enum Poll {
        /// An item; `refill` when it was the last of its chunk and the input should be read now.
        case item(Result<Element, any Error>, refill: Bool)
        case end
        case failure(any Error)
        /// Nothing yet: the waiter was registered under this id, or (0) none was.
        case wait(UInt64)
    }

    /// The next item from the cursor, loading the next ready chunk into it first when it is
    /// empty.
    ///
    /// After the last item of a chunk, one transition of the state machine gives the chunk back
    /// (it is no longer outstanding), says whether to read more input, and hands over the next
    /// chunk if it is ready, so that the next call takes its first item on the fast path
    /// (``nextBuffered()``). This slow path runs once a chunk, as unspecialized generic code that
    /// looks up type metadata at every turn of the state's lock: two turns a chunk (a preload,
    /// then giving the chunk back) became one (measured with callgrind on `imap` of 3e6 items,
    /// chunksize 1000: see PerformanceAndChunksize.md).
    private func poll(registering waiter: StreamWaiter?) -> Poll {
        cursor.withLock { cursor in
            if cursor.count == 0 {
                // The cursor is empty: load the next ready chunk, or say why there is none.
                switch state.withLock({ $0.poll(registering: waiter) }) {
                case .chunk(let chunk): cursor.load(chunk)
                case .end: return .end
                case .failure(let error): return .failure(error)
                case .wait(let id): return .wait(id)
                case .pending: return .wait(0)
                }
            }
            let items = cursor.count
            // A loaded chunk is never empty.
            let (outcome, endsChunk) = cursor.take()!
            guard endsChunk else { return .item(outcome, refill: false) }
            var refill = false
            if let next = giveBack(items: items, refill: &refill) { cursor.load(next) }
            return .item(outcome, refill: refill)
        }
    }

    /// The next item if one is ready, in the chunk being handed out or in the next one if it has
    /// arrived, without waiting; nil when none is (then ``next(timeout:)`` waits, or says the
    /// stream ended or failed). The chunk boundary the fast path (``nextBuffered()``) leaves:
    /// inlined into the consumer with it, so that it is compiled for the stream's element type.
    ///
    /// In the storage's own code, which is compiled once for all element types, each turn looked
    /// up the type metadata of the item's `Result`, the cursor and their tuples at run time: about
    /// 6,500 instructions a chunk on the consuming thread (callgrind, `imap` of 3e6 items,
    /// chunksize 1000, read with `next()`).
    @inlinable
    func nextReady() -> Result<Element, any Error>? {
        var refill = false
        let outcome = cursor.withLock { cursor -> Result<Element, any Error>? in
            if cursor.count == 0 {
                guard let chunk = readyChunk() else { return nil }
                cursor.load(chunk)
            }
            let items = cursor.count
            // A loaded chunk is never empty.
            guard let (outcome, endsChunk) = cursor.take() else { return nil }
            if endsChunk, let next = giveBack(items: items, refill: &refill) { cursor.load(next) }
            return outcome
        }
        if refill { topUp() }
        return outcome
    }

    /// The next chunk to hand out if it has arrived (one turn of the state's lock). Called with
    /// the cursor's lock held, the cursor empty.
    @usableFromInline
    func readyChunk() -> StreamChunk? {
        guard case .chunk(let chunk) = state.withLock({ $0.poll(registering: nil) }) else { return nil }
        return chunk
    }

    /// The consumer took the last of a chunk's `items`: gives the chunk back (it is no longer
    /// outstanding), says whether to read more input now, and hands over the next chunk if it has
    /// arrived, in one turn of the state's lock. Called with the cursor's lock held.
    @usableFromInline
    func giveBack(items: Int, refill: inout Bool) -> StreamChunk? {
        let next = state.withLock { state in
            state.chunkConsumed(items: items)
            refill = state.wantsRefill
            return state.poll(registering: nil)
        }
        guard case .chunk(let chunk) = next else { return nil }
        return chunk
    }

    private func deliverPolled(_ outcome: Result<Element, any Error>, refill: Bool) throws -> Element {
        if refill { topUp() }
        return try outcome.get()
    }

    /// The next result if it is a value waiting in the chunk being handed out (and not its
    /// last): inlined into the consumer, so that most items cost a turn of the cursor lock's
    /// owner, no atomic read-modify-write (CursorLock.swift).
    @inlinable
    func nextBuffered() -> Element? {
        cursor.withOwnedLock { $0.takeValue() }
    }

    /// The values waiting in the chunk being handed out but its last, taken at once: an iterator
    /// of the stream hands them out without a lock (one lock a chunk instead of one an item).
    @inlinable
    func takeBufferedValues() -> ArraySlice<Element> {
        cursor.withLock { $0.takeValues() }
    }

    /// The next result, blocking; nil at the end.
    @usableFromInline
    func next(timeout: Duration?) throws -> Element? {
        // The common case: a result is ready; no waiter, no clock.
        switch poll(registering: nil) {
        case .item(let outcome, let refill):
            return try deliverPolled(outcome, refill: refill)
        case .end: return nil
        case .failure(let error): throw error
        case .wait: break
        }
        let deadline = timeout.map { MonotonicInstant.now.advanced(by: $0) }
        while true {
            let semaphore = DispatchSemaphore(value: 0)
            switch poll(registering: .blocking(semaphore)) {
            case .item(let outcome, let refill):
                return try deliverPolled(outcome, refill: refill)
            case .end: return nil
            case .failure(let error): throw error
            case .wait(let id):
                // One deadline for every turn of this loop: a turn woken without an item waits
                // only for what is left.
                if !semaphore.wait(until: deadline) {
                    if state.withLock({ $0.removeWaiter(id) }) {
                        throw PoolError(
                            .timeout, "no result of '\(functionName)' arrived within \(timeout!)",
                            functionName: functionName)
                    }
                    semaphore.wait()
                }
            }
        }
    }

    /// The next result, awaited; nil at the end. Cancelling the task stops the stream's work.
    @usableFromInline
    func next() async throws -> Element? {
        while true {
            if Task.isCancelled {
                cancel(stopRunning: true, error: CancellationError())
                throw CancellationError()
            }
            var polled: Poll = .wait(0)
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    // A cancelled task registers no waiter: it polls once more, then stops.
                    polled = poll(registering: Task.isCancelled ? nil : .suspended(continuation))
                    if case .wait(let id) = polled, id != 0 { return }
                    continuation.resume()
                }
            } onCancel: {
                wakeAll()
            }
            switch polled {
            case .item(let outcome, let refill):
                return try deliverPolled(outcome, refill: refill)
            case .end: return nil
            case .failure(let error): throw error
            case .wait: continue
            }
        }
    }

    private func wake(_ waiters: [StreamWaiter]) {
        for waiter in waiters { waiter.wake() }
    }

    private func wakeAll() {
        wake(state.withLock { $0.takeWaiters() })
    }

    /// Stops the stream: no more input is read; with `stopRunning` running chunks are killed.
    func cancel(stopRunning: Bool, error: any Error) {
        // Results not yet taken are dropped: every later `next` throws `error`.
        _ = state.withLock { $0.cancel(with: error) }
        dropped.store(true, ordering: .releasing)
        cursor.withLock { $0 = StreamCursor() }
        feeder.withLock { $0 = nil }
        core.cancel(job: job, stopRunning: stopRunning)
        progress.finish()
        wakeAll()
    }

    var isComplete: Bool {
        state.withLock { $0.isComplete }
    }
}
