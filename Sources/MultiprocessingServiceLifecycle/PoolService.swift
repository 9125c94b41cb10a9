// The pool as a swift-service-lifecycle `Service`: it runs until the service group shuts down
// gracefully, then closes the pool and joins it within a deadline, then terminates what is left;
// cancellation terminates at once. A product of its own, so that users of the pool who do not run
// a ServiceGroup never build ServiceLifecycle.

import Logging
public import Multiprocessing
public import ServiceLifecycle

/// A `Pool` (from `Multiprocessing`) as a swift-service-lifecycle `Service`, so that a server's
/// `ServiceGroup` shuts its worker processes down with the rest of the program.
///
/// ``run()`` does nothing while the program runs: the pool serves whoever holds it. When the group
/// shuts down gracefully (SIGTERM, say), it closes the pool — no new work, the work already
/// submitted runs to its end — and waits for the workers to exit, at most
/// ``gracefulShutdownTimeout``; past that it terminates the pool, and every result still pending
/// fails with `PoolError.Code.terminated`. When its task is cancelled (the group is cancelled, or
/// its own graceful shutdown timed out), it terminates the pool at once. Either way ``run()``
/// returns once the workers are gone.
///
/// A `ServiceGroup` shuts its services down one after the other, in the reverse order of its
/// list: put the pool *before* the services that use it, so that they finish their requests,
/// which need the pool, before it closes.
///
/// ```swift
/// import Hummingbird
/// import Multiprocessing
/// import MultiprocessingServiceLifecycle
/// import ServiceLifecycle
///
/// let pool = try Pool()
/// let app = Application(router: router)   // its handlers call `try await pool.apply(…)`
/// let group = ServiceGroup(
///     services: [PoolService(pool), app],  // the pool first: it shuts down last
///     gracefulShutdownSignals: [.sigterm],
///     logger: logger)
/// try await group.run()
/// ```
public struct PoolService: Service {
    /// The pool this service runs.
    public let pool: Pool

    /// How long a graceful shutdown waits for the work already submitted, after closing the
    /// pool, before it terminates the pool; nil waits as long as the work takes.
    public let gracefulShutdownTimeout: Duration?

    /// The default ``gracefulShutdownTimeout``: 30 seconds.
    public static let defaultGracefulShutdownTimeout: Duration = .seconds(30)

    /// Where the service says that it closes, joins or terminates the pool: the pool's
    /// configured logger, nowhere if it has none.
    let logger: Logger?

    /// A service that runs `pool` and stops it when the service group stops.
    ///
    /// - Parameters:
    ///   - pool: The pool, running. Its users keep their own reference to it; the service only
    ///     stops it.
    ///   - gracefulShutdownTimeout: How long a graceful shutdown waits for the submitted work to
    ///     finish before it terminates the pool; nil: as long as it takes. Keep it below the
    ///     `ServiceGroup`'s own `maximumGracefulShutdownDuration`, if you set one: when that
    ///     passes the group cancels the service, which terminates the pool at once.
    public init(_ pool: Pool, gracefulShutdownTimeout: Duration? = PoolService.defaultGracefulShutdownTimeout) {
        self.pool = pool
        self.gracefulShutdownTimeout = gracefulShutdownTimeout
        self.logger = pool.configuration.logger
    }

    /// Suspends until the service group shuts down gracefully or the task is cancelled, then
    /// stops the pool (see ``PoolService``) and returns once its workers have exited and its
    /// callbacks have run.
    ///
    /// Outside a `ServiceGroup` there is no graceful shutdown: it waits for cancellation.
    ///
    /// - Throws: nothing; it is `throws` because `Service.run()` is. A cancelled task returns
    ///   normally, after terminating the pool.
    public func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            logger?.debug("pool service cancelled: terminating the pool")
            await terminateAndReap()
            return
        }
        let deadline = gracefulShutdownTimeout.map { "\($0)" } ?? "none"
        logger?.debug("graceful shutdown: closing the pool", metadata: ["deadline": "\(deadline)"])
        pool.close()
        switch await joinedWithin(gracefulShutdownTimeout) {
        case .joined:
            logger?.debug("graceful shutdown: the pool's work is done and its workers have exited")
        case .deadlinePassed:
            logger?.warning(
                "graceful shutdown: the pool's work did not end in time; terminating it",
                metadata: ["deadline": "\(deadline)"])
            await terminateAndReap()
        case .cancelled:
            logger?.debug("pool service cancelled during graceful shutdown: terminating the pool")
            await terminateAndReap()
        }
    }

    /// How waiting for the closed pool ended.
    private enum JoinOutcome: Sendable {
        case joined, deadlinePassed, cancelled
    }

    /// Waits for the closed pool to finish its work, at most `timeout`, or until the task is
    /// cancelled.
    private func joinedWithin(_ timeout: Duration?) async -> JoinOutcome {
        let pool = self.pool
        return await withTaskGroup(of: JoinOutcome.self) { group in
            group.addTask {
                do {
                    try await pool.joined()
                    return .joined
                } catch {
                    return .cancelled
                }
            }
            if let timeout {
                group.addTask {
                    do {
                        try await Task.sleep(for: timeout)
                        return .deadlinePassed
                    } catch {
                        return .cancelled
                    }
                }
            }
            let first = await group.next() ?? .cancelled
            group.cancelAll()
            return first
        }
    }

    /// Terminates the pool and waits until its killed workers are reaped, even in a cancelled
    /// task: the wait runs in a task of its own, which the caller's cancellation does not reach
    /// (and which suspends, holding no thread).
    private func terminateAndReap() async {
        pool.terminate()
        let pool = self.pool
        await Task { try? await pool.joined() }.value
    }
}

extension PoolService: CustomStringConvertible {
    /// The pool's worker count and the deadline, as a service group's log names the service.
    public var description: String {
        "PoolService(processes: \(pool.processes), gracefulShutdownTimeout: \(gracefulShutdownTimeout.map { "\($0)" } ?? "none"))"
    }
}
