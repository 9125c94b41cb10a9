// `map` and `starmap`, blocking, async and `…Async`: one function over many items, results in
// input order.

extension Pool {
    /// Applies `function` to every item in worker processes; returns a handle on the list of
    /// results, in input order.
    ///
    /// The items are cut into chunks of `chunksize` (default: about four chunks per worker, as
    /// CPython does, and at most 2 MiB of arguments a chunk when they are plain numbers); a
    /// chunk travels as one message and is one task. The call fails with the
    /// first error an item raises; chunks already running finish, chunks not started are skipped.
    ///
    /// - Parameters:
    ///   - function: A one-argument function the workers serve.
    ///   - items: The inputs; read at once.
    ///   - chunksize: Items per task; nil for the default.
    ///   - timeout: Kill a worker whose chunk runs longer (overrides the pool's `taskTimeout`).
    ///   - callback: Runs with the whole list on success, before the result is ready, on the
    ///     pool's callback thread, as for ``applyAsync(_:_:timeout:callback:errorCallback:)``.
    ///   - errorCallback: Runs with the error on failure, before the result is ready, likewise.
    /// - Throws: ``PoolError`` `.notRunning`, `.invalidArgument` (chunksize below 1),
    ///   `.encodingFailed` (naming the item).
    public func mapAsync<A, R>(
        _ function: PoolFunction<A, R>, _ items: some Sequence<A>, chunksize: Int? = nil, timeout: Duration? = nil,
        callback: (@Sendable ([R]) -> Void)? = nil, errorCallback: (@Sendable (any Error) -> Void)? = nil
    ) throws -> AsyncResult<[R]> where A: Codable, R: Codable {
        try submitCollecting(
            functionName: function.name, signature: function.signatureFingerprint, items: Array(items),
            chunksize: chunksize, timeout: timeout, packedStride: function.packedArgumentStride,
            encode: { item, writer in try WireCoding.encode(item, into: &writer) },
            makeValue: { $0 }, callback: callback, errorCallback: errorCallback)
    }

    /// Applies `function` to every item in worker processes and waits for the results, in input
    /// order (blocking this thread). See ``mapAsync(_:_:chunksize:timeout:callback:errorCallback:)``.
    ///
    /// ```swift
    /// let squares = try pool.map(square, 0..<100)
    /// ```
    ///
    /// - Parameters:
    ///   - function: A one-argument function the workers serve.
    ///   - items: The inputs; read at once.
    ///   - chunksize: Items per task; nil for CPython's default, `ceil(n / (4 × processes))`, in
    ///     chunks of at most 2 MiB of arguments when they are plain numbers.
    ///   - timeout: Kill a worker whose chunk runs longer (overrides the pool's `taskTimeout`);
    ///     the call then fails with ``PoolError/Code/taskTimedOut`` and the worker is replaced.
    /// - Throws: the first error an item raised, or a ``PoolError`` (`.taskTimedOut` past the
    ///   timeout, `.invalidArgument` for a chunksize below 1 or a timeout not above zero).
    public func map<A, R>(
        _ function: PoolFunction<A, R>, _ items: some Sequence<A>, chunksize: Int? = nil, timeout: Duration? = nil
    ) throws
        -> [R] where A: Codable, R: Codable
    {
        try mapAsync(function, items, chunksize: chunksize, timeout: timeout).get()
    }

    /// Applies `function` to every item in worker processes and awaits the results, in input
    /// order. Cancelling the awaiting task stops the work and throws `CancellationError`.
    ///
    /// ```swift
    /// let squares = try await pool.map(square, 0..<100)
    /// let checked = try await pool.map(check, paths, timeout: .seconds(30))   // per chunk
    /// ```
    ///
    /// - Parameters:
    ///   - function: A one-argument function the workers serve.
    ///   - items: The inputs; read at once.
    ///   - chunksize: Items per task; nil for CPython's default, `ceil(n / (4 × processes))`, in
    ///     chunks of at most 2 MiB of arguments when they are plain numbers.
    ///   - timeout: Kill a worker whose chunk runs longer (overrides the pool's `taskTimeout`);
    ///     the call then fails with ``PoolError/Code/taskTimedOut`` and the worker is replaced.
    /// - Throws: the first error an item raised, a ``PoolError`` (`.taskTimedOut` past the
    ///   timeout, `.invalidArgument` for a chunksize below 1 or a timeout not above zero,
    ///   `.notRunning`, `.workerLost`, `.encodingFailed`), or `CancellationError`.
    public func map<A, R>(
        _ function: PoolFunction<A, R>, _ items: some Sequence<A>, chunksize: Int? = nil, timeout: Duration? = nil
    )
        async throws -> [R] where A: Codable, R: Codable
    {
        try await mapAsync(function, items, chunksize: chunksize, timeout: timeout).value
    }

    /// Like ``mapAsync(_:_:chunksize:timeout:callback:errorCallback:)`` for a function of several
    /// arguments: each item is a tuple of them.
    ///
    /// ```swift
    /// let r = try pool.starmapAsync(mul, [(1, 2), (3, 4)])
    /// print(try r.get())   // [2, 12]
    /// ```
    ///
    /// - Parameters:
    ///   - function: A function the workers serve.
    ///   - items: Tuples of arguments; read at once.
    ///   - chunksize: Items per task; nil for CPython's default, `ceil(n / (4 × processes))`, in
    ///     chunks of at most 2 MiB of arguments when they are plain numbers.
    ///   - timeout: Kill a worker whose chunk runs longer (overrides the pool's `taskTimeout`).
    ///   - callback: Runs with the whole list on success, before the result is ready, on the
    ///     pool's callback thread, as for ``applyAsync(_:_:timeout:callback:errorCallback:)``.
    ///   - errorCallback: Runs with the error on failure, before the result is ready, likewise.
    /// - Throws: ``PoolError`` `.notRunning`, `.invalidArgument`, `.encodingFailed`.
    public func starmapAsync<each A, R, S: Sequence>(
        _ function: PoolFunction<repeat each A, R>, _ items: S, chunksize: Int? = nil, timeout: Duration? = nil,
        callback: (@Sendable ([R]) -> Void)? = nil, errorCallback: (@Sendable (any Error) -> Void)? = nil
    ) throws -> AsyncResult<[R]> where S.Element == (repeat each A), repeat each A: Codable, R: Codable {
        try submitCollecting(
            functionName: function.name, signature: function.signatureFingerprint, items: Array(items),
            chunksize: chunksize, timeout: timeout, packedStride: function.packedArgumentStride,
            encode: { item, writer in try function.encodeArguments(repeat each item, into: &writer) },
            makeValue: { $0 }, callback: callback, errorCallback: errorCallback)
    }

    /// Applies a function of several arguments to every tuple of arguments and waits for the
    /// results, in input order (blocking this thread).
    ///
    /// ```swift
    /// let products = try pool.starmap(mul, zip(0..<10, (0..<10).reversed()))
    /// ```
    ///
    /// - Parameters:
    ///   - function: A function the workers serve.
    ///   - items: Tuples of arguments; read at once.
    ///   - chunksize: Items per task; nil for CPython's default, `ceil(n / (4 × processes))`, in
    ///     chunks of at most 2 MiB of arguments when they are plain numbers.
    ///   - timeout: Kill a worker whose chunk runs longer (overrides the pool's `taskTimeout`);
    ///     the call then fails with ``PoolError/Code/taskTimedOut`` and the worker is replaced.
    /// - Throws: the first error an item raised, or a ``PoolError`` (`.taskTimedOut` past the
    ///   timeout, `.invalidArgument` for a chunksize below 1 or a timeout not above zero).
    public func starmap<each A, R, S: Sequence>(
        _ function: PoolFunction<repeat each A, R>, _ items: S, chunksize: Int? = nil, timeout: Duration? = nil
    ) throws -> [R] where S.Element == (repeat each A), repeat each A: Codable, R: Codable {
        try starmapAsync(function, items, chunksize: chunksize, timeout: timeout).get()
    }

    /// Applies a function of several arguments to every tuple of arguments and awaits the
    /// results, in input order. Cancelling the awaiting task stops the work.
    ///
    /// ```swift
    /// let products = try await pool.starmap(mul, [(1, 2), (3, 4)], timeout: .seconds(5))   // [2, 12]
    /// ```
    ///
    /// - Parameters:
    ///   - function: A function the workers serve.
    ///   - items: Tuples of arguments; read at once.
    ///   - chunksize: Items per task; nil for CPython's default, `ceil(n / (4 × processes))`, in
    ///     chunks of at most 2 MiB of arguments when they are plain numbers.
    ///   - timeout: Kill a worker whose chunk runs longer (overrides the pool's `taskTimeout`);
    ///     the call then fails with ``PoolError/Code/taskTimedOut`` and the worker is replaced.
    /// - Throws: the first error an item raised, a ``PoolError`` (`.taskTimedOut` past the
    ///   timeout, `.invalidArgument` for a chunksize below 1 or a timeout not above zero,
    ///   `.notRunning`, `.workerLost`, `.encodingFailed`), or `CancellationError`.
    public func starmap<each A, R, S: Sequence>(
        _ function: PoolFunction<repeat each A, R>, _ items: S, chunksize: Int? = nil, timeout: Duration? = nil
    ) async throws -> [R] where S.Element == (repeat each A), repeat each A: Codable, R: Codable {
        try await starmapAsync(function, items, chunksize: chunksize, timeout: timeout).value
    }
}
