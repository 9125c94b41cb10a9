// A value that arrives once, waited for by blocking threads and async tasks alike.
//
// Every blocking wait in the library (`AsyncResult.get`, a stream's `next(timeout:)`, `join`) and
// every async one (`await result.value`, `for try await`) goes through this one mechanism; the
// blocking forms are thin wrappers over it, not a second code path.

import Dispatch
import Synchronization

private enum WaitOutcome<Value: Sendable> {
    case suspended
    case done(Result<Value, any Error>)
    case cancelled
}

/// A one-shot result with blocking and async waiters.
final class Completion<Value: Sendable>: Sendable {
    private struct State {
        var result: Result<Value, any Error>?
        var blocked: [ObjectIdentifier: DispatchSemaphore] = [:]
        var suspended: [UInt64: CheckedContinuation<Value, any Error>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())

    init() {}

    /// The result, if it has arrived.
    var result: Result<Value, any Error>? { state.withLock { $0.result } }

    var isComplete: Bool { state.withLock { $0.result != nil } }

    /// Sets the result and wakes every waiter. Only the first call counts.
    /// - Returns: whether this call set the result.
    @discardableResult
    func complete(_ result: Result<Value, any Error>) -> Bool {
        let woken: ([DispatchSemaphore], [CheckedContinuation<Value, any Error>])? =
            state.withLock { state in
                guard state.result == nil else { return nil }
                state.result = result
                defer {
                    state.blocked = [:]
                    state.suspended = [:]
                }
                return (Array(state.blocked.values), Array(state.suspended.values))
            }
        guard let (semaphores, continuations) = woken else { return false }
        for semaphore in semaphores { semaphore.signal() }
        for continuation in continuations { continuation.resume(with: result) }
        return true
    }

    /// Blocks the calling thread until the result arrives or `timeout` passes.
    /// - Returns: the result, or nil on timeout.
    func wait(timeout: Duration?) -> Result<Value, any Error>? {
        let semaphore = DispatchSemaphore(value: 0)
        let key = ObjectIdentifier(semaphore)
        let early: Result<Value, any Error>? = state.withLock { state in
            if let result = state.result { return result }
            state.blocked[key] = semaphore
            return nil
        }
        if let early { return early }
        if let timeout {
            let deadline = DispatchTime.now() + .nanoseconds(timeout.saturatingNanoseconds)
            if semaphore.wait(timeout: deadline) == .timedOut {
                let stillWaiting = state.withLock { $0.blocked.removeValue(forKey: key) != nil }
                if stillWaiting { return nil }
                // Completed while timing out: the signal is pending; take it.
                semaphore.wait()
            }
        } else {
            semaphore.wait()
        }
        return state.withLock { $0.result }
    }

    /// Waits for the value in an async context.
    ///
    /// When the calling task is cancelled, this waiter throws `CancellationError` at once and
    /// `onCancel` runs (to stop the work); the completion itself is left alone.
    func value(onCancel: @escaping @Sendable () -> Void) async throws -> Value {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                let outcome: WaitOutcome<Value> = state.withLock { state in
                    if let result = state.result { return .done(result) }
                    if Task.isCancelled { return .cancelled }
                    state.suspended[id] = continuation
                    return .suspended
                }
                switch outcome {
                case .suspended: break
                case .done(let result): continuation.resume(with: result)
                case .cancelled:
                    continuation.resume(throwing: CancellationError())
                    onCancel()
                }
            }
        } onCancel: {
            let continuation = state.withLock { $0.suspended.removeValue(forKey: id) }
            if let continuation {
                continuation.resume(throwing: CancellationError())
                onCancel()
            }
        }
    }
}
