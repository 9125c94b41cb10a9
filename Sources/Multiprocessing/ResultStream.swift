// The results of `imap` and `imapUnordered`, as a blocking iterator and an AsyncSequence.

/// The results of ``Pool/imap(_:_:chunksize:)`` or ``Pool/imapUnordered(_:_:chunksize:)``, one
/// per input item: Python's `IMapIterator`.
///
/// Read it from a thread with ``next(timeout:)`` or from async code with `for try await`. A
/// failed item throws its error at its position; the next call goes on with the following items.
/// The input is read lazily, a bounded window of chunks ahead of the consumer, so memory stays
/// flat however long the input is.
///
/// ```swift
/// for try await square in try pool.imap(square, 0..<1_000, chunksize: 100) {
///     print(square)
/// }
///
/// let stream = try pool.imap(square, 0..<10)
/// while let value = try stream.next(timeout: .seconds(5)) { print(value) }
/// ```
///
/// Releasing a stream before its end stops feeding it: chunks not started are dropped, running
/// ones finish. Cancelling a task iterating it also kills the running ones.
public final class ResultStream<Element: Decodable & Sendable>: AsyncSequence, Sendable {
    /// The errors the stream throws: an item's error, a ``PoolError``, or `CancellationError`.
    public typealias Failure = any Error

    @usableFromInline let storage: StreamStorage<Element>

    init(storage: StreamStorage<Element>) {
        self.storage = storage
    }

    deinit {
        if !storage.isComplete {
            storage.cancel(stopRunning: false, error: PoolError(.cancelled, "the stream was released"))
        }
    }

    /// The next result in the stream's order, waiting for it (blocking this thread).
    ///
    /// - Parameter timeout: How long to wait; nil waits as long as it takes.
    /// - Returns: the next result, or nil after the last one.
    /// - Throws: the item's own error (then the next call goes on with the following item);
    ///   ``PoolError/Code/timeout`` when `timeout` passes first (call again to keep waiting);
    ///   ``PoolError`` `.workerLost`, `.taskTimedOut`, `.encodingFailed` for that item;
    ///   `.terminated` for every call after the pool was terminated.
    @inlinable
    public func next(timeout: Duration? = nil) throws -> Element? {
        if let value = storage.nextBuffered() { return value }
        if let outcome = storage.nextReady() { return try outcome.get() }
        return try storage.next(timeout: timeout)
    }

    /// How many items have finished, out of how many: the total is known from the start when the
    /// input is a random-access collection (an `Array`, a range), else once the input has been
    /// read to its end.
    public var progress: PoolProgress { storage.progress.snapshot }

    /// Progress snapshots as they change, ending with the stream.
    public var progressUpdates: AsyncStream<PoolProgress> { storage.progress.updates() }

    /// Stops the stream: no more input is read, queued chunks are dropped and running ones are
    /// killed. Later calls of ``next(timeout:)`` throw ``PoolError/Code/cancelled``.
    public func cancel() {
        storage.cancel(stopRunning: true, error: PoolError(.cancelled, "the stream was cancelled"))
    }

    /// Creates the async iterator.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(stream: self)
    }

    /// Iterates the results asynchronously.
    ///
    /// An iterator takes the values waiting in the chunk being handed out at once, and hands
    /// them out one by one by itself: one lock a chunk, not one an item (a copy of an iterator
    /// has its own copy of them: iterate one of the copies only). Values it took are dropped
    /// when the stream is cancelled, as the stream's own are. When the iterating task is
    /// cancelled, the iterator stops within 64 items (values it had taken already, handed out in
    /// well under a microsecond each) and throws `CancellationError`, at once when it waits.
    public struct AsyncIterator: AsyncIteratorProtocol {
        @usableFromInline let stream: ResultStream<Element>
        /// Values taken from the stream, in its order; those from `takenIndex` on are not handed
        /// out yet. (An index, not a shrinking slice: a slice of a slice retains its buffer and
        /// releases the old one's, two atomic operations an item.)
        @usableFromInline var taken: ArraySlice<Element> = []
        @usableFromInline var takenIndex = 0
        /// Values below this index of `taken` are handed out without a look at the task: the
        /// task's cancellation is checked again when it is reached, at most
        /// ``cancellationInterval`` items on (one comparison an item, where a countdown beside
        /// the end of `taken` was two and a store).
        @usableFromInline var checkIndex = 0

        /// The most items an iterator hands out after its task was cancelled, from values it had
        /// taken already, before it throws `CancellationError`.
        @usableFromInline static var cancellationInterval: Int { 64 }

        @usableFromInline
        init(stream: ResultStream<Element>) {
            self.stream = stream
        }

        /// The next result, awaited; nil after the last one.
        /// - Throws: the item's error (the next call goes on with the following item), a
        ///   ``PoolError``, or `CancellationError` (which also stops the stream's work).
        @inlinable
        public mutating func next() async throws -> Element? {
            if let value = nextTaken() { return value }
            if let outcome = nextReady() { return try outcome.get() }
            return try await stream.storage.next()
        }

        /// The next result, awaited (the form `for try await` uses).
        /// - Parameter actor: The caller's isolation (unused: results arrive from any thread).
        @inlinable
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(any Error) -> Element? {
            if let value = nextTaken() { return value }
            if let outcome = nextReady() { return try outcome.get() }
            return try await stream.storage.next()
        }

        /// The item that ends the chunk at hand, or the first of the next chunk if it has arrived,
        /// without a wait (``StreamStorage/nextReady()``, compiled for the element type); nil when
        /// none is ready, or the task or the stream was cancelled: then the stream's own `next`
        /// waits or says why. (Through that async `next`, with its continuation and cancellation
        /// handler, every chunk's last item cost the consuming task about 7,700 instructions more:
        /// callgrind on `pool-workloads imap`, 3e6 items read with `for try await`, 264.2M → 241.0M
        /// instructions on the task's threads.)
        @inlinable
        func nextReady() -> Result<Element, any Error>? {
            guard !stream.storage.isDropped, !Task.isCancelled else { return nil }
            return stream.storage.nextReady()
        }

        /// The next of the values taken, unless the stream was cancelled (a load): the common
        /// case, inlined into the caller's loop; else ``nextTakenSlow()``.
        ///
        /// Inlined, and its rare turns kept out of line: as one function the compiler called it
        /// (with a frame of five saved registers) for every item, 40 instructions of it an item.
        /// Measured with callgrind on `imap` of 3e6 items read with `for try await`
        /// (`pool-workloads imap`): the loop, its own sum included, 46 → 22 instructions an item.
        @inlinable @inline(__always)
        mutating func nextTaken() -> Element? {
            let index = takenIndex
            guard index < checkIndex, !stream.storage.isDropped else { return nextTakenSlow() }
            takenIndex = index &+ 1
            return taken[index]
        }

        /// The next of the values taken (taking the waiting ones first when none is left),
        /// unless the task or the stream was cancelled: then the stream's own `next` says so.
        ///
        /// The stream's cancellation is checked at every item (a load); the task's when values are
        /// taken and then every ``cancellationInterval`` items (`Task.isCancelled` retains and
        /// releases the task: checked at every item, the consumer of `imap` over 3e6 items spent
        /// 183 instructions an item, callgrind; every 64 items, 114).
        @inlinable @inline(never)
        mutating func nextTakenSlow() -> Element? {
            guard !Task.isCancelled, !stream.storage.isDropped else { return dropTaken() }
            if takenIndex >= taken.endIndex {
                taken = stream.storage.takeBufferedValues()
                takenIndex = taken.startIndex
            }
            checkIndex = Swift.min(taken.endIndex, takenIndex &+ Self.cancellationInterval)
            guard takenIndex < checkIndex else { return dropTaken() }
            let value = taken[takenIndex]
            takenIndex &+= 1
            return value
        }

        /// Forgets the values taken; nil, for the stream's own `next` to say why.
        @inlinable
        mutating func dropTaken() -> Element? {
            taken = []
            takenIndex = 0
            checkIndex = 0
            return nil
        }
    }
}
