// Waiting on a semaphore until an instant of the pool's clock.
//
// Every blocking wait with a timeout in the library turns the timeout into one deadline when the
// wait begins and hands that deadline down; each step waits only for what is left of it. (A step
// that took the whole timeout again once made `get(timeout:)` on a lone call wait twice as long:
// first on the worker's pipe, then for the completion.)

import Dispatch

extension DispatchSemaphore {
    /// Waits for a signal until `deadline`; nil waits as long as it takes.
    /// - Returns: whether the signal came (false: the deadline passed first).
    func wait(until deadline: MonotonicInstant?) -> Bool {
        guard let deadline else {
            wait()
            return true
        }
        let remaining = MonotonicInstant.now.duration(to: deadline)
        return wait(timeout: .now() + .nanoseconds(remaining.saturatingNanoseconds)) == .success
    }
}
