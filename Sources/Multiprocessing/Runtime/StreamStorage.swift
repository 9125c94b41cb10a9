// The storage behind an `imap`/`imapUnordered` stream: results in arrival or input order, and
// the lazy feeding of the input, a bounded window of chunks at a time.

import DequeModule
import Dispatch
public import Synchronization

/// Produces the next chunk of a stream's input, encoded. Only ever called under the feed lock,
/// so the (possibly non-Sendable) input iterator it holds is never touched by two threads at
/// once; that is what makes the `@unchecked Sendable` sound.
final class StreamFeeder: @unchecked Sendable {
    enum Slot {
        /// A chunk for the workers, of `count` items.
        case chunk(PoolCore.Scheduler.Chunk, count: Int)
        /// One item that failed before it could be sent (its arguments did not encode).
        case local(index: Int, any Error)
    }

    private let produce: (_ chunkIndex: Int) -> [Slot]

    /// `produce` returns the slots of the next input items (one chunk, possibly split around an
    /// item that failed to encode), or nothing at the end of the input.
    init(_ produce: @escaping (_ chunkIndex: Int) -> [Slot]) {
        self.produce = produce
    }

    func next(chunkIndex: Int) -> [Slot] { produce(chunkIndex) }
}

@usableFromInline
final class StreamStorage<Element: Decodable & Sendable>: JobSink, NamedSink {
    let functionName: String
    let job: JobID
    let ordered: Bool
    private let core: PoolCore
    private let window: Int
    let progress = ProgressCounter(total: nil)

    private enum Waiter {
        case blocking(DispatchSemaphore)
        case suspended(CheckedContinuation<Void, Never>)
    }

    private struct State {
        /// Chunks ready to hand out, in the stream's order.
        var ready: Deque<ChunkResults> = []
        /// Ordered streams: chunks that arrived ahead of their turn.
        var early: [Int: ChunkResults] = [:]
        var nextToRelease = 0
        /// Item count of every chunk submitted and not yet released.
        var sizes: [Int: Int] = [:]
        var submitted = 0
        var consumed = 0
        var inputExhausted = false
        /// The pool was closed: the window no longer applies, all input is read.
        var unbounded = false
        var finished = false
        /// Sticky failure of the whole stream (terminated, cancelled): thrown by every `next`.
        var terminal: (any Error)?
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiter: UInt64 = 0
    }
    private let state = Mutex(State())
    /// The chunk being handed out, item by item. The consumer takes items from it under a lock
    /// of its own, so that it does not contend with the I/O thread delivering results for every
    /// item, only once per chunk. Lock order: `cursor`, then `state`.
    @usableFromInline let cursor: Mutex<Cursor> = Mutex(Cursor())

    /// The results of one chunk: the values in order, and the positions that failed.
    struct ChunkResults {
        var values: [Element] = []
        var failures: [Int: any Error] = [:]
        var count: Int

        init(count: Int) { self.count = count }

        init(failing count: Int, with error: any Error) {
            self.count = count
            for position in 0..<count { failures[position] = error }
        }
    }

    /// Where the consumer is in the chunk it is handing out.
    @usableFromInline
    struct Cursor: Sendable {
        @usableFromInline var values: [Element] = []
        @usableFromInline var failures: [Int: any Error] = [:]
        @usableFromInline var count = 0
        @usableFromInline var position = 0
        @usableFromInline var valueIndex = 0

        @inlinable
        init() {}

        /// The next item if it is a value that does not end its chunk: the common case, which
        /// ``ResultStream`` inlines into the consumer's loop.
        @inlinable
        mutating func takeValue() -> Element? {
            guard position &+ 1 < count, failures.isEmpty else { return nil }
            let value = values[valueIndex]
            valueIndex &+= 1
            position &+= 1
            return value
        }

        /// The next item, and whether it ends its chunk.
        mutating func take() -> (Result<Element, any Error>, endsChunk: Bool)? {
            guard position < count else { return nil }
            let outcome: Result<Element, any Error>
            if !failures.isEmpty, let error = failures[position] {
                outcome = .failure(error)
            } else {
                outcome = .success(values[valueIndex])
                valueIndex += 1
            }
            position += 1
            let ends = position == count
            if ends { self = Cursor() }
            return (outcome, ends)
        }

        mutating func load(_ chunk: ChunkResults) {
            self = Cursor()
            values = chunk.values
            failures = chunk.failures
            count = chunk.count
        }
    }
    private let feeder: Mutex<StreamFeeder?>

    init(functionName: String, job: JobID, ordered: Bool, core: PoolCore, window: Int, feeder: StreamFeeder) {
        self.functionName = functionName
        self.job = job
        self.ordered = ordered
        self.core = core
        self.window = window
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
    private func topUp() {
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

    /// Pulls input until `window` chunks are outstanding. Called under the feed lock.
    private func produceChunks(using feeder: StreamFeeder) -> ([PoolCore.Scheduler.Chunk], Bool) {
        var chunks: [PoolCore.Scheduler.Chunk] = []
        while true {
            let (outstanding, index, unbounded) = state.withLock {
                ($0.submitted - $0.consumed, $0.submitted, $0.unbounded)
            }
            if outstanding >= window && !unbounded { return (chunks, false) }
            let slots = feeder.next(chunkIndex: index)
            if slots.isEmpty {
                state.withLock { $0.inputExhausted = true }
                progress.setTotal(itemsSubmitted)
                return (chunks, true)
            }
            var wake = false
            state.withLock { state in
                for slot in slots {
                    switch slot {
                    case .chunk(let chunk, let count):
                        state.sizes[chunk.index] = count
                        state.submitted += 1
                        chunks.append(chunk)
                    case .local(let index, let error):
                        state.sizes[index] = 1
                        state.submitted += 1
                        state.early[index] = ChunkResults(failing: 1, with: error)
                        wake = release(&state) || wake
                    }
                }
            }
            itemsSubmitted += slots.reduce(0) {
                switch $1 {
                case .chunk(_, let count): return $0 + count
                case .local: return $0 + 1
                }
            }
            if wake { wakeAll() }
        }
    }

    /// Items pulled from the input so far. Touched under the feed lock only.
    private nonisolated(unsafe) var itemsSubmitted = 0

    // MARK: - JobSink

    func deliver(index: Int, header: ResultHeader, items: ByteReader, workerPID: Int32) {
        let expected = state.withLock { $0.sizes[index] ?? 0 }
        var results = ChunkResults(count: expected)
        if let values = ResultItems.packedValues(items, header: header, expected: expected, as: Element.self) {
            results.values = values
            accept(index: index, results)
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
        accept(index: index, results)
    }

    func fail(index: Int, with error: PoolError) {
        let expected = state.withLock { $0.sizes[index] ?? 1 }
        accept(index: index, ChunkResults(failing: expected, with: error))
    }

    private func accept(index: Int, _ results: ChunkResults) {
        progress.add(completed: results.count)
        let wake = state.withLock { state -> Bool in
            state.early[index] = results
            return release(&state)
        }
        if wake { wakeAll() }
    }

    /// Moves arrived chunks to `ready`: in order for `imap`, as they come for `imapUnordered`.
    private func release(_ state: inout State) -> Bool {
        var released = false
        if ordered {
            while let outcomes = state.early.removeValue(forKey: state.nextToRelease) {
                append(outcomes, chunk: state.nextToRelease, &state)
                state.nextToRelease += 1
                released = true
            }
        } else {
            for (index, outcomes) in state.early {
                append(outcomes, chunk: index, &state)
                released = true
            }
            state.early.removeAll()
        }
        return released
    }

    private func append(_ results: ChunkResults, chunk: Int, _ state: inout State) {
        state.sizes[chunk] = nil
        guard results.count > 0 else {
            state.consumed += 1
            return
        }
        state.ready.append(results)
    }

    func failJob(with error: PoolError) {
        // Progress shows the end before a consumer can see it.
        progress.finish()
        state.withLock { state in
            if state.terminal == nil { state.terminal = error }
        }
        wakeAll()
    }

    func poolClosed() {
        state.withLock { $0.unbounded = true }
        topUp()
    }

    func finish() {
        // Progress shows the end before a consumer can see it.
        progress.finish()
        state.withLock { $0.finished = true }
        wakeAll()
    }

    // MARK: - Consuming

    private enum Poll {
        case item(Result<Element, any Error>, endsChunk: Bool)
        case end
        case failure(any Error)
        case wait(UInt64)
    }

    private func poll(registering waiter: ((UInt64) -> Waiter)?, unlessCancelled: Bool = false) -> Poll {
        cursor.withLock { cursor in
            if let (outcome, endsChunk) = cursor.take() { return .item(outcome, endsChunk: endsChunk) }
            return pollChunks(&cursor, registering: waiter, unlessCancelled: unlessCancelled)
        }
    }

    /// The cursor is empty: load the next ready chunk, or say why there is none.
    private func pollChunks(
        _ cursor: inout Cursor, registering waiter: ((UInt64) -> Waiter)?, unlessCancelled: Bool
    ) -> Poll {
        state.withLock { state in
            if let chunk = state.ready.popFirst() {
                cursor.load(chunk)
                let (outcome, endsChunk) = cursor.take()!
                return .item(outcome, endsChunk: endsChunk)
            }
            if let terminal = state.terminal { return .failure(terminal) }
            // The end: no more input, the pool finished the job, and every chunk submitted was
            // handed over.
            if state.finished && state.inputExhausted && state.early.isEmpty && state.sizes.isEmpty { return .end }
            guard let waiter, !(unlessCancelled && Task.isCancelled) else { return .wait(0) }
            state.nextWaiter += 1
            state.waiters[state.nextWaiter] = waiter(state.nextWaiter)
            return .wait(state.nextWaiter)
        }
    }

    private func deliverPolled(_ outcome: Result<Element, any Error>, endsChunk: Bool) throws -> Element {
        if endsChunk {
            state.withLock { $0.consumed += 1 }
            topUp()
        }
        return try outcome.get()
    }

    /// The next result if it is a value waiting in the chunk being handed out (and not its
    /// last): inlined into the consumer, so that most items cost one uncontended lock.
    @inlinable
    func nextBuffered() -> Element? {
        cursor.withLock { $0.takeValue() }
    }

    /// The next result, blocking; nil at the end.
    @usableFromInline
    func next(timeout: Duration?) throws -> Element? {
        // The common case: a result is ready; no waiter, no clock.
        switch poll(registering: nil) {
        case .item(let outcome, let endsChunk): return try deliverPolled(outcome, endsChunk: endsChunk)
        case .end: return nil
        case .failure(let error): throw error
        case .wait: break
        }
        let deadline = timeout.map { MonotonicInstant.now.advanced(by: $0) }
        while true {
            let semaphore = DispatchSemaphore(value: 0)
            switch poll(registering: { _ in .blocking(semaphore) }) {
            case .item(let outcome, let endsChunk): return try deliverPolled(outcome, endsChunk: endsChunk)
            case .end: return nil
            case .failure(let error): throw error
            case .wait(let id):
                // One deadline for every turn of this loop: a turn woken without an item waits
                // only for what is left.
                if !semaphore.wait(until: deadline) {
                    let removed = state.withLock { $0.waiters.removeValue(forKey: id) != nil }
                    if removed {
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
                    polled = poll(registering: { _ in .suspended(continuation) }, unlessCancelled: true)
                    if case .wait(let id) = polled, id != 0 { return }
                    continuation.resume()
                }
            } onCancel: {
                wakeAll()
            }
            switch polled {
            case .item(let outcome, let endsChunk): return try deliverPolled(outcome, endsChunk: endsChunk)
            case .end: return nil
            case .failure(let error): throw error
            case .wait: continue
            }
        }
    }

    private func wakeAll() {
        let waiters = state.withLock { state -> [Waiter] in
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters {
            switch waiter {
            case .blocking(let semaphore): semaphore.signal()
            case .suspended(let continuation): continuation.resume()
            }
        }
    }

    /// Stops the stream: no more input is read; with `stopRunning` running chunks are killed.
    func cancel(stopRunning: Bool, error: any Error) {
        state.withLock { state in
            guard state.terminal == nil else { return }
            state.terminal = error
            // Results not yet taken are dropped: every later `next` throws `error`.
            state.ready.removeAll()
            state.early.removeAll()
        }
        cursor.withLock { $0 = Cursor() }
        feeder.withLock { $0 = nil }
        core.cancel(job: job, stopRunning: stopRunning)
        progress.finish()
        wakeAll()
    }

    var isComplete: Bool {
        state.withLock { ($0.finished && $0.inputExhausted) || $0.terminal != nil }
    }
}
