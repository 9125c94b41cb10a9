// The handle of work submitted with `applyAsync`, `mapAsync` and `starmapAsync`.

/// The result of a call submitted with ``Pool/applyAsync(_:_:timeout:callback:errorCallback:)``,
/// ``Pool/mapAsync(_:_:chunksize:timeout:callback:errorCallback:)`` or
/// ``Pool/starmapAsync(_:_:chunksize:timeout:callback:errorCallback:)``: Python's `AsyncResult`.
///
/// Wait for it from a thread with ``get(timeout:)`` or from async code with ``value``.
///
/// ```swift
/// let result = try pool.starmapAsync(mul, [(1, 2), (3, 4)], callback: { print($0) })
/// print(try result.get(timeout: .seconds(1)))    // [2, 12]
/// print(result.ready(), try result.successful())  // true true
/// ```
public final class AsyncResult<Value: Sendable>: Sendable {
    let completion: Completion
    private let callbacks: CallbackExecutor
    /// The job behind it: cancellation, progress, the direct wait of a lone call.
    private let call: SubmittedCall

    init(call: SubmittedCall) {
        self.completion = call.sink.completion
        self.callbacks = call.core.callbacks
        self.call = call
    }

    /// Waits for the result and returns it, or throws the call's error.
    ///
    /// In a callback (which runs on the pool's callback thread), the wait runs the callbacks
    /// queued behind the waiting one, so a callback may wait for a call it submitted, callback
    /// and all.
    ///
    /// - Parameter timeout: How long to wait; nil waits as long as it takes.
    /// - Throws: ``PoolError/Code/timeout`` when `timeout` passes first (the work goes on);
    ///   the error the function threw (a ``RemoteError`` or a registered error type);
    ///   ``PoolError`` with `.workerLost`, `.taskTimedOut`, `.terminated`, `.encodingFailed`,
    ///   `.functionNotRegistered` or `.cancelled`; `.notReady` at once when called from this
    ///   result's own callback (which runs before the result is ready).
    public func get(timeout: Duration? = nil) throws -> Value {
        try call.outcome(waitingUpTo: timeout).get(as: Value.self)
    }

    /// Waits until the result is ready or `timeout` passes.
    ///
    /// Called from this result's own callback, it returns false at once.
    /// - Parameter timeout: How long to wait; nil waits as long as it takes.
    /// - Returns: whether the result is ready.
    @discardableResult
    public func wait(timeout: Duration? = nil) -> Bool {
        if case .done = call.waitBlocking(timeout: timeout) { return true }
        return false
    }

    /// Whether the call has completed (successfully or not). Callbacks have run by then.
    public func ready() -> Bool {
        completion.isComplete
    }

    /// Whether the call completed without an error.
    /// - Throws: ``PoolError/Code/notReady`` if it has not completed yet.
    public func successful() throws -> Bool {
        guard let outcome = completion.outcome else {
            throw PoolError(.notReady, "successful() was called before the result was ready")
        }
        return outcome.error == nil
    }

    /// The result, awaited. Cancelling the awaiting task stops the work: chunks not started are
    /// dropped, running ones are killed (their workers replaced), and this throws
    /// `CancellationError` at once.
    ///
    /// - Throws: the same errors as ``get(timeout:)`` (except `.timeout`), or `CancellationError`.
    public var value: Value {
        get async throws {
            try await completion.value(onCancel: { [call] in
                call.sink.cancel(with: CancellationError())
                call.cancelWork()
            }).get(as: Value.self)
        }
    }

    /// Gives up on the call: its result becomes ``PoolError/Code/cancelled``, chunks not started
    /// are dropped and running ones are killed (their workers replaced). No effect once ready.
    public func cancel() {
        guard !completion.isComplete else { return }
        call.sink.cancel(with: PoolError(.cancelled, "the result was cancelled"))
        call.cancelWork()
    }

    /// How many items have finished, out of how many.
    public var progress: PoolProgress { call.sink.progress.snapshot }

    /// Progress snapshots as they change, ending when the call ends.
    public var progressUpdates: AsyncStream<PoolProgress> { call.sink.progress.updates() }
}
