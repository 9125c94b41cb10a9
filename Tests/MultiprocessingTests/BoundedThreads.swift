// Helpers for tests whose subject blocks a thread and could hang: the blocking part runs on a
// thread of its own, and the test waits for it, suspended, only so long. A regression then
// fails the test instead of hanging the suite (the stuck thread is left behind).

import Dispatch
import Multiprocessing
import Synchronization

/// Runs `body` on a thread of its own (not a cooperative one: it blocks) and waits, without
/// holding a thread, up to `limit` for its outcome.
/// - Returns: the outcome, or nil if `body` has not returned within `limit`.
func runOnThread<T: Sendable>(
    within limit: Duration, _ body: @escaping @Sendable () throws -> T
) async -> Result<T, any Error>? {
    let box = Mutex<Result<T, any Error>?>(nil)
    DispatchQueue.global().async {
        let outcome = Result { try body() }
        box.withLock { $0 = outcome }
    }
    _ = await eventuallyAsync(timeout: limit) { box.withLock { $0 != nil } }
    return box.withLock { $0 }
}

extension Pool {
    /// Terminates and joins, giving up on the join after `limit` (test cleanup where the pool
    /// under test may be stuck).
    func stopWithin(_ limit: Duration = .seconds(10)) async {
        terminate()
        _ = await runOnThread(within: limit) { try self.join() }
    }
}
