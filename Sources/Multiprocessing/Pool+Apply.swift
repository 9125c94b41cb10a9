// `apply` and `applyAsync`: one call of a function in a worker.

extension Pool {
    /// Runs `function(arguments…)` in a worker and returns at once with a handle on its result.
    ///
    /// ```swift
    /// let r = try pool.applyAsync(mul, 6, 7, callback: { print("got", $0) })
    /// print(try r.get())   // 42
    /// ```
    ///
    /// - Parameters:
    ///   - function: A function the workers serve.
    ///   - arguments: Its arguments.
    ///   - timeout: Kill the worker if this call runs longer (overrides the pool's `taskTimeout`).
    ///   - callback: Runs with the value when the call succeeds, before the result is ready, on
    ///     the pool's callback thread, one callback at a time in the order results complete. It
    ///     may call the pool and wait (a wait there runs the callbacks queued behind it); one that
    ///     blocks holds up the callbacks after it, not the results.
    ///   - errorCallback: Runs with the error when the call fails, likewise.
    /// - Throws: ``PoolError`` `.notRunning` after `close`/`terminate`, `.encodingFailed` when an
    ///   argument cannot be encoded, `.invalidArgument` for a timeout not above zero.
    public func applyAsync<each A, R>(
        _ function: PoolFunction<repeat each A, R>, _ arguments: repeat each A, timeout: Duration? = nil,
        callback: (@Sendable (R) -> Void)? = nil, errorCallback: (@Sendable (any Error) -> Void)? = nil
    ) throws -> AsyncResult<R> where repeat each A: Codable, R: Codable {
        AsyncResult(
            call: try submitCall(
                functionName: function.name, signature: function.signatureFingerprint, timeout: timeout,
                callback: callback, errorCallback: errorCallback, packedStride: function.packedCallStride
            ) { builder in try Pool.append(function, repeat each arguments, to: &builder) })
    }

    /// Runs `function(arguments…)` in a worker and waits for its result (blocking this thread).
    ///
    /// ```swift
    /// let product = try pool.apply(mul, 6, 7)   // 42
    /// ```
    ///
    /// - Parameters:
    ///   - function: A function the workers serve.
    ///   - arguments: Its arguments.
    ///   - timeout: Kill the worker if this call runs longer (overrides the pool's `taskTimeout`);
    ///     the call then fails with ``PoolError/Code/taskTimedOut`` and the worker is replaced.
    /// - Throws: what ``applyAsync(_:_:timeout:callback:errorCallback:)`` and
    ///   ``AsyncResult/get(timeout:)`` throw: the function's own error, or a ``PoolError``
    ///   (`.taskTimedOut` past the timeout, `.invalidArgument` for a timeout not above zero).
    @inlinable
    public func apply<each A, R>(
        _ function: PoolFunction<repeat each A, R>, _ arguments: repeat each A, timeout: Duration? = nil
    ) throws -> R where repeat each A: Codable, R: Codable {
        // Inlinable, as are the encoding, the decoding and the cast below: compiled in the
        // caller's module for its types (in the library, where they are known only at run time,
        // they cost ~2,000 instructions a call of metadata look-ups and witness calls).
        // Without an `AsyncResult` (nobody else can see this call): its own wait, as `get()`'s.
        let call = try submitCall(
            functionName: function.name, signature: function.signatureFingerprint, timeout: timeout,
            decode: ApplySink.decoder(for: R.self), callback: nil, errorCallback: nil,
            packedStride: function.packedCallStride
        ) { builder in try Pool.append(function, repeat each arguments, to: &builder) }
        return try call.outcome(waitingUpTo: nil).get(as: R.self)
    }

    /// Runs `function(arguments…)` in a worker and awaits its result.
    ///
    /// ```swift
    /// let product = try await pool.apply(mul, 6, 7, timeout: .seconds(1))   // 42
    /// ```
    ///
    /// Cancelling the awaiting task kills the worker running the call (it is replaced) and
    /// throws `CancellationError` at once.
    ///
    /// - Parameters:
    ///   - function: A function the workers serve.
    ///   - arguments: Its arguments.
    ///   - timeout: Kill the worker if this call runs longer (overrides the pool's `taskTimeout`);
    ///     the call then fails with ``PoolError/Code/taskTimedOut`` and the worker is replaced.
    /// - Throws: the function's own error, a ``PoolError`` (`.taskTimedOut` past the timeout,
    ///   `.invalidArgument` for a timeout not above zero, `.notRunning` after `close`/`terminate`,
    ///   `.workerLost`, `.encodingFailed`), or `CancellationError`.
    public func apply<each A, R>(
        _ function: PoolFunction<repeat each A, R>, _ arguments: repeat each A, timeout: Duration? = nil
    ) async throws
        -> R where repeat each A: Codable, R: Codable
    {
        try await applyAsync(function, repeat each arguments, timeout: timeout).value
    }

    /// Appends one call's arguments to its frame: packed when the frame was made with the
    /// function's ``PoolFunction/packedCallStride`` (the worker then runs the loop compiled for its
    /// types, and neither side runs the generic coder), else encoded.
    @inlinable
    static func append<each A, R>(
        _ function: PoolFunction<repeat each A, R>, _ arguments: repeat each A, to builder: inout TaskFrameBuilder
    ) throws where repeat each A: Codable, R: Codable {
        if let stride = builder.packedStride {
            withUnsafeBytes(of: (repeat each arguments)) { builder.appendPacked(bytes: $0, stride: stride) }
        } else {
            try builder.appendItem { writer in try function.encodeArguments(repeat each arguments, into: &writer) }
        }
    }
}
