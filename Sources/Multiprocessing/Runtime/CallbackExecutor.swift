// The thread that runs a pool's callbacks (`applyAsync`/`mapAsync`/`starmapAsync`), so that a
// callback never runs on a thread that results depend on.
//
// Results are read by the I/O thread, or by a thread blocked in `get()` that reads its own
// worker's pipe, both under the pool's loop lock. A callback run there that calls the pool and
// waits (`apply`, `get()`, `join()`) waits for the very thread it blocks. So a result whose
// outcome has a callback is handed here instead, and becomes ready only after its callback ran:
// one serial thread per pool, started with the first callback, that runs callbacks in the order
// their results completed and ends once the pool has stopped and no result with a callback is
// left. A result without a callback never comes here (no thread hop on the `apply` round trip).
//
// A callback that waits on the pool waits on this thread; its wait runs the callbacks queued
// behind it meanwhile (the result it waits for may be one of them) instead of sleeping on them.

import DequeModule
import Dispatch
import Synchronization

final class CallbackExecutor: Sendable {
    /// A result's callback, and what completes the result once it has run.
    struct Job: Sendable {
        let completion: Completion
        let outcome: Completion.Outcome
        let callback: @Sendable () -> Void
    }

    private enum ThreadPhase: Equatable {
        case none
        case starting
        case running(ThreadIdentity)
    }

    private struct State {
        var queue: Deque<Job> = []
        /// Results with a callback that have not completed yet (queued, running or still in work).
        var pending = 0
        /// The results whose callbacks run now, outermost first: a callback that waits runs the
        /// next one inside its wait.
        var running: [ObjectIdentifier] = []
        var thread: ThreadPhase = .none
        /// What the innermost wait on the executor's thread sleeps on (last): signalled when a
        /// callback is queued or a result settles.
        var wakers: [DispatchSemaphore] = []
        /// Completed when `pending` drops to 0: what `join` waits for on other threads.
        var drained: Completion?
    }

    private enum Step {
        case done
        case run(Job)
        case sleep
    }

    private let state = Mutex(State())
    /// Completed when the pool's I/O thread has ended: the executor's thread may end after that.
    private let poolStopped: Completion

    init(poolStopped: Completion) {
        self.poolStopped = poolStopped
    }

    // MARK: - Results

    /// A result with a callback was created: `join` waits for it until it settles.
    func resultPending() {
        state.withLock { $0.pending += 1 }
    }

    /// A result counted by ``resultPending()`` completed without a callback to run (its outcome
    /// has none, or it was never submitted).
    func resultSettled() {
        let (waker, drained) = state.withLock { state in
            state.pending -= 1
            return (state.wakers.last, takeDrainedIfIdle(&state))
        }
        waker?.signal()
        drained?.complete(.success(()))
    }

    /// Runs `job.callback` on the executor's thread, after the callbacks queued before it, then
    /// completes `job.completion` with `job.outcome`. The result must have been counted by
    /// ``resultPending()``.
    func enqueue(_ job: Job) {
        let (start, waker) = state.withLock { state -> (Bool, DispatchSemaphore?) in
            state.queue.append(job)
            guard state.thread == .none else { return (false, state.wakers.last) }
            state.thread = .starting
            return (true, nil)
        }
        waker?.signal()
        guard start else { return }
        do {
            try startDetachedThread(name: "mp-callbacks") { [self] in serve() }
        } catch {
            // No thread to be had (the process is out of them): run the callbacks here rather
            // than never; the next callback tries to start the thread again.
            state.withLock { $0.thread = .none }
            while let job = state.withLock({ $0.queue.popFirst() }) {
                job.callback()
                job.completion.complete(job.outcome)
                resultSettled()
            }
        }
    }

    // MARK: - Waiting on the executor's thread

    /// Whether the caller runs on the executor's thread (it is a callback).
    var isCurrentThread: Bool {
        let current = ThreadIdentity.current
        return state.withLock { $0.thread == .running(current) }
    }

    /// Whether the caller is the callback of the result `completion`, which cannot become ready
    /// before the caller returns.
    func isRunningCallback(of completion: Completion) -> Bool {
        let current = ThreadIdentity.current
        let id = ObjectIdentifier(completion)
        return state.withLock { $0.thread == .running(current) && $0.running.contains(id) }
    }

    /// On the executor's thread: runs queued callbacks, in order, until `completion` is complete
    /// or `deadline` passes, sleeping on `semaphore` (which the completion signals) when none is
    /// queued.
    /// - Returns: whether `completion` is complete.
    func runQueued(
        untilComplete completion: Completion, deadline: MonotonicInstant?, wakingOn semaphore: DispatchSemaphore
    ) -> Bool {
        runQueued(until: { _ in completion.isComplete }, deadline: deadline, wakingOn: semaphore)
    }

    /// Blocks until every result with a callback has completed, its callback run. On the
    /// executor's thread (`join` from a callback), every one but those whose callbacks are
    /// running there now, and the wait runs the others meanwhile.
    func waitUntilDrained() {
        if isCurrentThread {
            _ = runQueued(
                until: { $0.queue.isEmpty && $0.pending == $0.running.count }, deadline: nil,
                wakingOn: DispatchSemaphore(value: 0))
            return
        }
        _ = drainedSignal()?.wait(until: nil)
    }

    /// Waits, without blocking a thread, until every result with a callback has completed.
    /// - Throws: `CancellationError` if the waiting task is cancelled.
    func drained() async throws {
        _ = try await drainedSignal()?.value(onCancel: {})
    }

    // MARK: - The thread

    private func serve() {
        let current = ThreadIdentity.current
        state.withLock { $0.thread = .running(current) }
        while true {
            // While the pool runs: the callbacks as they come.
            _ = poolStopped.wait(until: nil, helping: self)
            // It has stopped: the results still in flight (a terminate on another thread may be
            // failing them right now), then the end.
            _ = runQueued(
                until: { $0.queue.isEmpty && $0.pending == 0 }, deadline: nil, wakingOn: DispatchSemaphore(value: 0))
            let ended = state.withLock { state -> Bool in
                guard state.queue.isEmpty && state.pending == 0 else { return false }
                state.thread = .none
                return true
            }
            if ended { return }
        }
    }

    /// The loop of every wait on the executor's thread. `isDone` is checked under the lock.
    private func runQueued(
        until isDone: (inout State) -> Bool, deadline: MonotonicInstant?, wakingOn semaphore: DispatchSemaphore
    ) -> Bool {
        state.withLock { $0.wakers.append(semaphore) }
        defer { state.withLock { _ = $0.wakers.removeLast() } }
        while true {
            let step = state.withLock { state -> Step in
                if isDone(&state) { return .done }
                guard let job = state.queue.popFirst() else { return .sleep }
                state.running.append(ObjectIdentifier(job.completion))
                return .run(job)
            }
            switch step {
            case .done:
                return true
            case .run(let job):
                job.callback()
                job.completion.complete(job.outcome)
                let drained = state.withLock { state in
                    state.running.removeLast()
                    state.pending -= 1
                    return takeDrainedIfIdle(&state)
                }
                drained?.complete(.success(()))
            case .sleep:
                if !semaphore.wait(until: deadline) {
                    return state.withLock { isDone(&$0) }
                }
            }
        }
    }

    /// What to wait on until nothing is pending; nil if nothing is.
    private func drainedSignal() -> Completion? {
        state.withLock { state in
            guard state.pending > 0 else { return nil }
            if state.drained == nil { state.drained = Completion() }
            return state.drained
        }
    }

    private func takeDrainedIfIdle(_ state: inout State) -> Completion? {
        guard state.pending == 0, let drained = state.drained else { return nil }
        state.drained = nil
        return drained
    }
}

extension CallbackExecutor {
    /// Completes a result with `outcome`: on this executor, after `onSuccess` or `onFailure` has
    /// run with it, when the outcome has such a callback; else at once, here (and, when the
    /// result was counted by ``resultPending()``, counts it settled).
    func settle(
        _ completion: Completion, with outcome: Completion.Outcome,
        onSuccess: (@Sendable (any Sendable) -> Void)?, onFailure: (@Sendable (any Error) -> Void)?,
        counted: Bool
    ) {
        switch outcome {
        case .success(let value):
            if let onSuccess {
                enqueue(.init(completion: completion, outcome: outcome) { onSuccess(value) })
                return
            }
        case .failure(let error):
            if let onFailure {
                enqueue(.init(completion: completion, outcome: outcome) { onFailure(error) })
                return
            }
        }
        completion.complete(outcome)
        if counted { resultSettled() }
    }
}
