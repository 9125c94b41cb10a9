// Threads of the tests' own, for blocking work: swift-testing's cooperative pool has only as many
// threads as cores, and a test that blocks one can starve the others. `runOnThread(within:)` is
// for a subject that could hang: the test waits for it, suspended, only so long, so a regression
// fails the test instead of hanging the suite (the stuck thread is left behind). `onThread`
// awaits the outcome however long it takes; `Thread` is a plain joinable thread, and
// `Thread.detach` starts one nobody joins. All are plain pthreads: not Dispatch's, whose global
// queues share their threads' budget with the cooperative pool on Linux. (Whole tests run off
// the cooperative pool with the `.offCooperativePool` trait: OffCooperativePool.swift.)

import Multiprocessing
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Runs `body` on a thread of its own (not a cooperative one: it blocks) and waits, without
/// holding a thread, up to `limit` for its outcome.
/// - Returns: the outcome, or nil if `body` has not returned within `limit`.
func runOnThread<T: Sendable>(
    within limit: Duration, _ body: @escaping @Sendable () throws -> T
) async -> Result<T, any Error>? {
    let box = Mutex<Result<T, any Error>?>(nil)
    Thread.detach {
        let outcome = Result { try body() }
        box.withLock { $0 = outcome }
    }
    _ = await eventuallyAsync(timeout: limit) { box.withLock { $0 != nil } }
    return box.withLock { $0 }
}

/// Runs `body` on a thread of its own (not a cooperative one: it blocks), and awaits its outcome.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async -> Result<T, any Error> {
    await withCheckedContinuation { continuation in
        Thread.detach { continuation.resume(returning: Result { try body() }) }
    }
}

/// A minimal joinable thread for the tests (no Foundation needed).
final class Thread: @unchecked Sendable {
    private var thread = pthread_t()
    private let body: () -> Void

    init(_ body: @escaping () -> Void) {
        self.body = body
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(
            &thread, nil,
            { raw in
                let me = Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue()
                me.body()
                return nil
            }, context)
    }

    func join() { pthread_join(thread, nil) }

    /// Starts `body` on a thread of its own that nobody joins: it ends when `body` returns.
    /// A thread the system refuses (`EAGAIN`: too many threads) is retried for a while, then
    /// stops the run with the reason rather than losing `body` (whose caller would wait forever).
    static func detach(_ body: @escaping @Sendable () -> Void) {
        final class Box {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        var status: Int32 = 0
        for _ in 0..<1_000 {
            status = pthread_create(
                &thread, nil,
                { raw in
                    Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
                    return nil
                }, context)
            if status != EAGAIN { break }
            usleep(10_000)
        }
        guard status == 0 else {
            fatalError("pthread_create failed (error \(status)): the tests cannot start a thread of their own")
        }
        pthread_detach(thread)
    }
}

extension Pool {
    /// Terminates and joins, giving up on the join after `limit` (test cleanup where the pool
    /// under test may be stuck).
    func stopWithin(_ limit: Duration = .seconds(10)) async {
        terminate()
        _ = await runOnThread(within: limit) { try self.join() }
    }
}
