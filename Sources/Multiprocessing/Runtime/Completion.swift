// A value that arrives once, waited for by blocking threads and async tasks alike.
//
// Every blocking wait in the library (`AsyncResult.get`, `join`) and every async one
// (`await result.value`, `joined()`) goes through this one mechanism; the blocking forms are thin
// wrappers over it, not a second code path. A blocking wait takes a deadline, not a timeout: a
// caller that waits in several steps computes its deadline once, so no step restarts the clock.
//
// Not generic on purpose: the library's code is compiled once for every value type, so a generic
// class here runs unspecialized and looks up the metadata of its state, its `Result` and its
// continuations at run time on every access (measured with callgrind: about a third of the
// parent's instructions per `apply`). The value travels as `any Sendable`; the typed side (an
// `AsyncResult<Value>`) casts it back once.

import Dispatch
import Synchronization

/// A one-shot outcome with blocking and async waiters.
@usableFromInline
final class Completion: Sendable {
    /// How the work ended: its value, or its error.
    @usableFromInline
    enum Outcome: Sendable {
        case success(any Sendable)
        case failure(any Error)

        /// The value as `T` (which it was made from), or the error thrown. Inlinable: compiled
        /// in the caller's module, for its `T`.
        @inlinable
        func get<T>(as _: T.Type = T.self) throws -> T {
            switch self {
            case .success(let value): return value as! T
            case .failure(let error): throw error
            }
        }

        /// The error, if it failed.
        var error: (any Error)? {
            if case .failure(let error) = self { return error }
            return nil
        }
    }

    private enum WaitStep {
        case suspended
        case done(Outcome)
        case cancelled
    }

    private struct State {
        var outcome: Outcome?
        var blocked = WaiterList<DispatchSemaphore>()
        var suspended = WaiterList<CheckedContinuation<Outcome, any Error>>()
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())
    /// Set (after the outcome) when the outcome is in: `isComplete` without the lock.
    private let done = Atomic<Bool>(false)

    init() {}

    /// The outcome, if it has arrived.
    var outcome: Outcome? { state.withLock { $0.outcome } }

    var isComplete: Bool { done.load(ordering: .acquiring) }

    /// Sets the outcome and wakes every waiter. Only the first call counts.
    /// - Returns: whether this call set the outcome.
    @discardableResult
    func complete(_ outcome: Outcome) -> Bool {
        let woken: ([DispatchSemaphore], [CheckedContinuation<Outcome, any Error>])? =
            state.withLock { state in
                guard state.outcome == nil else { return nil }
                state.outcome = outcome
                done.store(true, ordering: .releasing)
                // Mostly nobody waits yet (a caller spinning on its own result checks `isComplete`).
                if state.blocked.isEmpty && state.suspended.isEmpty { return ([], []) }
                return (state.blocked.removeAll(), state.suspended.removeAll())
            }
        guard let (semaphores, continuations) = woken else { return false }
        for semaphore in semaphores { semaphore.signal() }
        for continuation in continuations { continuation.resume(returning: outcome) }
        return true
    }

    /// Blocks the calling thread until the outcome arrives or `deadline` passes (nil: as long as
    /// it takes).
    ///
    /// On the thread of `callbacks` (a callback that waits), the wait runs the callbacks queued
    /// behind the one waiting, in order, instead of sleeping: the outcome may be one of theirs.
    /// - Returns: the outcome, or nil when the deadline passed first.
    func wait(until deadline: MonotonicInstant?, helping callbacks: CallbackExecutor? = nil) -> Outcome? {
        if isComplete { return outcome }
        let semaphore = DispatchSemaphore(value: 0)
        let (early, key): (Outcome?, UInt64) = state.withLock { state in
            if let outcome = state.outcome { return (outcome, 0) }
            state.nextWaiter += 1
            state.blocked.append(semaphore, id: state.nextWaiter)
            return (nil, state.nextWaiter)
        }
        if let early { return early }
        let signalled: Bool
        if let callbacks, callbacks.isCurrentThread {
            signalled = callbacks.runQueued(untilComplete: self, deadline: deadline, wakingOn: semaphore)
        } else {
            signalled = semaphore.wait(until: deadline)
        }
        if !signalled {
            let stillWaiting = state.withLock { $0.blocked.remove(key) != nil }
            if stillWaiting { return nil }
            // Completed while timing out: its signal is pending on a semaphore nobody waits for.
        }
        return outcome
    }

    /// Waits for the outcome in an async context.
    ///
    /// When the calling task is cancelled, this waiter throws `CancellationError` at once and
    /// `onCancel` runs (to stop the work); the completion itself is left alone.
    func value(onCancel: @escaping @Sendable () -> Void) async throws -> Outcome {
        if isComplete, let outcome { return outcome }
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Outcome, any Error>) in
                let step: WaitStep = state.withLock { state in
                    if let outcome = state.outcome { return .done(outcome) }
                    if Task.isCancelled { return .cancelled }
                    state.suspended.append(continuation, id: id)
                    return .suspended
                }
                switch step {
                case .suspended: break
                case .done(let outcome): continuation.resume(returning: outcome)
                case .cancelled:
                    continuation.resume(throwing: CancellationError())
                    onCancel()
                }
            }
        } onCancel: {
            let continuation = state.withLock { $0.suspended.remove(id) }
            if let continuation {
                continuation.resume(throwing: CancellationError())
                onCancel()
            }
        }
    }
}
