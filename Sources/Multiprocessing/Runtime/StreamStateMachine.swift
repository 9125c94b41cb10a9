// The pure logic of an `imap`/`imapUnordered` stream: which chunks are in the pool, which have
// arrived and may be handed out (in input order for `imap`, as they come for `imapUnordered`),
// how far ahead the input may be read and how big the next chunk is (the caller's chunksize, or
// sized from the chunks' run times: AdaptiveChunking.swift), when the stream ends, and who waits
// for a result.
//
// No lock, no I/O, no clock: StreamStorage.swift holds it under a lock and, after releasing the
// lock, performs what a transition returns (wakes the waiters it hands back, reads more input).
// `Waiter` is whatever the storage wakes (a semaphore or a continuation); the tests use names.
// It does not know the stream's element type: a chunk's results travel through it behind a
// reference (`StreamChunk`), which only the storage opens.

import DequeModule

/// The results of one chunk of a stream: the values in order, and the positions that failed.
@usableFromInline
struct StreamChunkResults<Element> {
    @usableFromInline var values: [Element] = []
    @usableFromInline var failures: [Int: any Error] = [:]
    /// The items the chunk has: `values.count + failures.count`.
    @usableFromInline var count: Int

    init(count: Int) { self.count = count }

    /// A chunk of `count` items that all failed with `error`.
    @usableFromInline
    init(failing count: Int, with error: any Error) {
        self.count = count
        for position in 0..<count { failures[position] = error }
    }
}

extension StreamChunkResults: Sendable where Element: Sendable {}

/// A chunk's results as the state machine keeps them, whatever the stream's element type: its item
/// count, and the results behind a reference that only the storage, which knows the type, opens
/// (``StreamCursor/load(_:)-(StreamChunk)``).
///
/// The state machine was generic over the element type. Compiled once for all types (the storage's
/// code is not specialized for the caller's), its transitions looked up the type metadata of their
/// generic parts (the queue of ready chunks, a poll's outcome, ...) at run time at every call:
/// about 40 look-ups and 13,000 instructions a chunk on the consumer's thread (callgrind, `imap`
/// of 3e6 items, chunksize 1000). Not generic, it is compiled for the storage's one waiter type.
@usableFromInline
struct StreamChunk: Sendable {
    /// The chunk's items, values and failures.
    @usableFromInline let count: Int
    /// A ``StreamChunkBox`` of the stream's element type; nil for a chunk whose items all failed
    /// with ``failure``.
    @usableFromInline let box: (any AnyObject & Sendable)?
    @usableFromInline let failure: (any Error)?

    /// The chunk of `results`.
    init<Element: Sendable>(_ results: StreamChunkResults<Element>) {
        count = results.count
        box = StreamChunkBox(results)
        failure = nil
    }

    /// A chunk of `count` items that all failed with `error`.
    init(failing count: Int, with error: any Error) {
        self.count = count
        box = nil
        failure = error
    }
}

/// The results of one chunk, of one element type, behind a reference (see ``StreamChunk``).
@usableFromInline
final class StreamChunkBox<Element: Sendable>: Sendable {
    @usableFromInline let results: StreamChunkResults<Element>

    init(_ results: StreamChunkResults<Element>) { self.results = results }
}

/// The state of one stream, from its first chunk to its end.
///
/// Chunk indices count from 0 in input order; an item that fails before it can be sent (its
/// arguments do not encode) takes a chunk index of its own. A chunk is *outstanding* from its
/// submission until the consumer has taken its last item; at most `window` are, holding at most
/// `itemWindow` items (unless the pool was closed: then all the input is read at once, as
/// CPython's `imap` does).
struct StreamStateMachine<Waiter> {
    /// `imap` (hand chunks out in input order) or `imapUnordered` (as they arrive).
    let ordered: Bool
    /// The most chunks outstanding at once.
    let window: Int
    /// The most items outstanding at once: the bound on memory whatever the chunk size.
    let itemWindow: Int
    /// The caller's chunksize; nil: sized by `chunking`.
    let chunksize: Int?
    /// Sizes chunks from their run times when the caller gave no chunksize.
    private(set) var chunking: AdaptiveChunking?

    /// Chunks ready to hand out, in the stream's order.
    private var ready: Deque<StreamChunk> = []
    /// Ordered streams: chunks that arrived ahead of their turn.
    private var early: [Int: StreamChunk] = [:]
    private var nextToRelease = 0
    /// Item count of every chunk submitted and not yet released.
    private var sizes: [Int: Int] = [:]
    private var submitted = 0
    private var consumed = 0
    /// Items of the outstanding chunks.
    private(set) var outstandingItems = 0
    /// Items read from the input so far (the stream's total once the input has ended).
    private(set) var itemsSubmitted = 0
    private(set) var inputExhausted = false
    /// The pool was closed: the window no longer applies, all input is read.
    private var unbounded = false
    /// The pool finished the job: every chunk submitted has arrived.
    private var finished = false
    /// Sticky failure of the whole stream (terminated, cancelled): thrown by every poll.
    private var terminal: (any Error)?
    /// The stream was cancelled: results that arrive later are dropped.
    private var cancelled = false
    private var waiters: [UInt64: Waiter] = [:]
    private var lastWaiter: UInt64 = 0

    /// - Parameters:
    ///   - window: The most chunks outstanding.
    ///   - chunksize: The caller's; nil sizes chunks with `chunking`.
    ///   - itemWindow: The most items outstanding; nil: `window` chunks of the largest adaptive
    ///     size without a chunksize, no bound but `window` with one (whose chunks are never
    ///     bigger than the caller asked).
    init(
        ordered: Bool, window: Int, chunksize: Int? = 1, chunking: AdaptiveChunking = AdaptiveChunking(),
        itemWindow: Int? = nil
    ) {
        self.ordered = ordered
        self.window = window
        self.chunksize = chunksize
        self.chunking = chunksize == nil ? chunking : nil
        let (product, overflow) = window.multipliedReportingOverflow(by: chunking.maximum)
        self.itemWindow = max(1, itemWindow ?? (chunksize != nil || overflow ? .max : product))
    }

    // MARK: - Feeding

    /// The index of the next chunk to read from the input, or nil while the window is full.
    var nextChunkToFeed: Int? {
        guard !unbounded else { return submitted }
        return submitted - consumed >= window || outstandingItems >= itemWindow ? nil : submitted
    }

    /// How many items the next chunk takes: the caller's chunksize, or the adaptive size, cut
    /// to what the item window has room for (at least one).
    var nextChunkSize: Int {
        let size = chunksize ?? chunking?.size ?? 1
        guard !unbounded else { return size }
        return max(1, min(size, itemWindow - outstandingItems))
    }

    /// The chunk `index` of `count` items was read from the input and goes to the pool.
    /// - Parameter bytes: Its encoded size (0 when not known).
    mutating func chunkSubmitted(index: Int, count: Int, bytes: Int = 0) {
        if bytes > 0 { chunking?.chunkCarried(items: count, bytes: bytes) }
        sizes[index] = count
        submitted += 1
        itemsSubmitted += count
        outstandingItems += count
    }

    /// The item that takes chunk index `index` failed before it could be sent: it arrives at
    /// once, failed with `error`.
    /// - Returns: the waiters to wake (none unless it can be handed out now).
    mutating func itemFailedLocally(index: Int, with error: any Error) -> [Waiter] {
        sizes[index] = 1
        submitted += 1
        itemsSubmitted += 1
        outstandingItems += 1
        early[index] = StreamChunk(failing: 1, with: error)
        return release() ? takeWaiters() : []
    }

    /// The input has no more items.
    mutating func inputEnded() {
        inputExhausted = true
    }

    /// The pool was closed: read the rest of the input without waiting for the consumer.
    mutating func poolClosed() {
        unbounded = true
    }

    // MARK: - Results

    /// The item count of chunk `index`, while it is submitted and not yet handed out.
    func expectedCount(ofChunk index: Int) -> Int? {
        sizes[index]
    }

    /// The results of chunk `index` arrived (or its failure).
    /// - Parameters:
    ///   - runNanoseconds: How long the worker ran the chunk (nil for a chunk that did not run:
    ///     its worker died, it timed out); sizes the next chunks of a stream without a chunksize.
    ///   - resultBytes: The size of its results on the wire (0 when not known).
    /// - Returns: the waiters to wake (none unless a chunk can be handed out now).
    mutating func chunkArrived(
        index: Int, _ results: StreamChunk, runNanoseconds: UInt64? = nil, resultBytes: Int = 0
    ) -> [Waiter] {
        // A chunk that was running when the stream was cancelled (its worker killed, or its
        // result already on the way) is not handed out: every poll after a cancel fails.
        guard !cancelled else {
            sizes[index] = nil
            return []
        }
        if let runNanoseconds, let count = sizes[index] {
            chunking?.chunkRan(items: count, nanoseconds: runNanoseconds, resultBytes: resultBytes)
        }
        // The consumer gives back the items it takes (`chunkConsumed(items:)`): count what came.
        if let count = sizes[index] { outstandingItems += results.count - count }
        // The chunk whose turn it is (or any chunk, unordered) goes straight to `ready`: through
        // `early` it cost a store and a removal in a dictionary (when its values were generic,
        // their type looked up at run time, measured with callgrind on `imap` of 3e6 items,
        // chunksize 1000: about 4,000 of the 6,500 instructions a chunk of this transition).
        guard !ordered || index == nextToRelease else {
            early[index] = results
            return []
        }
        append(results, chunk: index)
        if ordered {
            nextToRelease += 1
            _ = release()
        }
        return takeWaiters()
    }

    /// The whole job failed (the pool was terminated): every later poll throws `error`, after
    /// the chunks already ready. A failure that came first stays.
    /// - Returns: the waiters to wake.
    mutating func jobFailed(with error: any Error) -> [Waiter] {
        if terminal == nil { terminal = error }
        return takeWaiters()
    }

    /// The pool finished the job: every chunk submitted has arrived.
    /// - Returns: the waiters to wake.
    mutating func jobFinished() -> [Waiter] {
        finished = true
        return takeWaiters()
    }

    /// Moves arrived chunks to `ready`: in order for `imap`, as they come for `imapUnordered`.
    /// - Returns: whether any chunk moved.
    private mutating func release() -> Bool {
        // Most chunks arrive in their turn and leave `early` empty: a look-up in it (when its
        // values were generic, their type looked up at run time) cost some 900 instructions a
        // chunk of the I/O thread for nothing (callgrind, `imap` of 3e6 items, chunksize 1000).
        guard !early.isEmpty else { return false }
        var released = false
        if ordered {
            while let results = early.removeValue(forKey: nextToRelease) {
                append(results, chunk: nextToRelease)
                nextToRelease += 1
                released = true
            }
        } else {
            for (index, results) in early {
                append(results, chunk: index)
                released = true
            }
            early.removeAll()
        }
        return released
    }

    /// A chunk without items (its worker stopped before the first) is consumed at once.
    private mutating func append(_ results: StreamChunk, chunk: Int) {
        sizes[chunk] = nil
        guard results.count > 0 else {
            consumed += 1
            return
        }
        ready.append(results)
    }

    // MARK: - Consuming

    /// What the consumer gets when it asks for the next chunk.
    enum Poll {
        /// The next chunk to hand out (never empty).
        case chunk(StreamChunk)
        /// The stream has ended.
        case end
        /// The stream failed as a whole.
        case failure(any Error)
        /// Nothing yet; the waiter was registered under this id (nonzero).
        case wait(UInt64)
        /// Nothing yet, and no waiter was given.
        case pending
    }

    /// The next chunk, the end, the stream's failure, or nothing yet (then `waiter`, if given,
    /// is woken by the next transition that returns waiters).
    mutating func poll(registering waiter: Waiter?) -> Poll {
        if let chunk = ready.popFirst() { return .chunk(chunk) }
        if let terminal { return .failure(terminal) }
        // The end: no more input, the pool finished the job, and every chunk submitted was
        // handed over.
        if finished && inputExhausted && early.isEmpty && sizes.isEmpty { return .end }
        guard let waiter else { return .pending }
        lastWaiter += 1
        waiters[lastWaiter] = waiter
        return .wait(lastWaiter)
    }

    /// Whether the consumer, having taken the last item of a chunk, should read more input now:
    /// once a quarter of the window is free (at least one chunk), so that chunks go to the pool
    /// a few at a time: one transition of the pool and one write per worker for them, where one
    /// chunk at a time made the I/O thread spin for the pool's locks against each write.
    /// (Measured on `imap` of 3e6 items, chunksize 1000, 2 workers: 7% less CPU time in all,
    /// `perf stat` task-clock 198–233 ms against 219–240 ms.)
    var wantsRefill: Bool {
        guard !inputExhausted else { return false }
        let free = window - (submitted - consumed)
        return unbounded || outstandingItems < itemWindow && free >= max(1, window / 4)
    }

    /// The consumer took the last item of a chunk of `items` items: it is no longer outstanding.
    mutating func chunkConsumed(items: Int = 0) {
        consumed += 1
        outstandingItems -= items
    }

    /// Forgets the waiter `id` (its wait timed out).
    /// - Returns: false when it was taken to be woken meanwhile (the wake-up is on its way).
    mutating func removeWaiter(_ id: UInt64) -> Bool {
        waiters.removeValue(forKey: id) != nil
    }

    /// Every registered waiter, to be woken; none stays registered.
    mutating func takeWaiters() -> [Waiter] {
        guard !waiters.isEmpty else { return [] }
        defer { waiters = [:] }
        return Array(waiters.values)
    }

    /// Stops the stream with `error`: results not yet handed out are dropped and every later
    /// poll throws `error`.
    /// - Returns: false when the stream had failed already (the first failure stays).
    mutating func cancel(with error: any Error) -> Bool {
        guard terminal == nil else { return false }
        terminal = error
        cancelled = true
        ready.removeAll()
        early.removeAll()
        return true
    }

    /// Whether the stream needs nothing more from the pool: all input read and the job finished,
    /// or the stream failed.
    var isComplete: Bool {
        (finished && inputExhausted) || terminal != nil
    }
}

extension StreamStateMachine: Sendable where Waiter: Sendable {}
