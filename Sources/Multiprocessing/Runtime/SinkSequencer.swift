// Runs the events of one job in the order the pool issued them.

import Synchronization

/// Orders the events of one job's sink.
///
/// The pool issues a job's events under its lock, numbered 0, 1, 2, …, and runs them after the
/// lock is released, possibly on several threads at once. An event whose turn has not come is
/// parked; the thread that runs an event goes on with the parked ones that follow it, so events
/// run one at a time, in order, and none waits for a thread that has moved on.
final class SinkSequencer: Sendable {
    private struct State {
        var next: UInt64 = 0
        var parked: [UInt64: PoolCore.SinkEvent] = [:]
        var running = false
    }
    private let state = Mutex(State())

    func submit(_ event: PoolCore.SinkEvent) {
        // The event is parked (copied) only when it must wait; mostly it runs at once.
        let now = state.withLock { state -> Bool in
            guard event.sequence == state.next, !state.running else {
                state.parked[event.sequence] = event
                return false
            }
            state.running = true
            state.next += 1
            return true
        }
        guard now else { return }
        event.perform()
        while let parked = state.withLock({ state -> PoolCore.SinkEvent? in
            // Most events come in order: no hashing when none waits.
            guard !state.parked.isEmpty, let parked = state.parked.removeValue(forKey: state.next) else {
                state.running = false
                return nil
            }
            state.next += 1
            return parked
        }) {
            parked.perform()
        }
    }
}
