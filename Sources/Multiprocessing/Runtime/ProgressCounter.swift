// Counts the items of a job as their results arrive, for `AsyncResult.progress` and
// `ResultStream.progress`.

import Synchronization

final class ProgressCounter: Sendable {
    private struct State {
        var completed = 0
        var total: Int?
        var finished = false
        var observers = WaiterList<AsyncStream<PoolProgress>.Continuation>()
        var nextObserver: UInt64 = 0
    }
    private let state: Mutex<State>

    init(total: Int?) {
        state = Mutex(State(total: total))
    }

    /// A counter that starts where a job already is (a sink that makes its counter only when
    /// somebody asks for it).
    init(total: Int?, completed: Int, finished: Bool) {
        state = Mutex(State(completed: completed, total: total, finished: finished))
    }

    var snapshot: PoolProgress {
        state.withLock { PoolProgress(completed: $0.completed, total: $0.total, isFinished: $0.finished) }
    }

    func add(completed count: Int) {
        update { $0.completed += count }
    }

    func setTotal(_ total: Int) {
        update { $0.total = total }
    }

    func finish() {
        update { $0.finished = true }
    }

    private func update(_ change: (inout State) -> Void) {
        let (snapshot, observers, finished) = state.withLock { state in
            change(&state)
            let snapshot = PoolProgress(completed: state.completed, total: state.total, isFinished: state.finished)
            // Mostly nobody observes: no array made.
            guard !state.observers.isEmpty else {
                return (snapshot, [AsyncStream<PoolProgress>.Continuation](), state.finished)
            }
            let observers = state.finished ? state.observers.removeAll() : state.observers.all
            return (snapshot, observers, state.finished)
        }
        for observer in observers {
            observer.yield(snapshot)
            if finished { observer.finish() }
        }
    }

    /// A stream of snapshots: the current one at once, then one per change, ending when the
    /// job ends.
    func updates() -> AsyncStream<PoolProgress> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: PoolProgress.self, bufferingPolicy: .bufferingNewest(1))
        let (snapshot, finished, id) = state.withLock { state in
            let snapshot = PoolProgress(completed: state.completed, total: state.total, isFinished: state.finished)
            state.nextObserver += 1
            if !state.finished { state.observers.append(continuation, id: state.nextObserver) }
            return (snapshot, state.finished, state.nextObserver)
        }
        continuation.yield(snapshot)
        if finished {
            continuation.finish()
        } else {
            continuation.onTermination = { [weak self] _ in
                _ = self?.state.withLock { $0.observers.remove(id) }
            }
        }
        return stream
    }
}
