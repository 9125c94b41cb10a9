// What a pool tells about its work: `pool.statistics`, a consistent snapshot read under the
// storage lock (the numbers come from the scheduler's counters, see SchedulerCounters.swift),
// and the pool's logger, tagged with its label. Its swift-metrics are in Runtime/PoolMetrics.swift.

import Logging

extension Pool {
    /// A snapshot of the pool now: its workers by what they do, its tasks queued and running,
    /// how the tasks it ran ended, and why workers were replaced.
    ///
    /// Every number is read at the same instant under the pool's lock, so they agree with each
    /// other. A task is one item (one call of the function): a `map` chunk of 512 items counts
    /// 512. Reading it is cheap (a lock and a pass over the workers): poll it for a dashboard or
    /// a health check.
    ///
    /// ```swift
    /// let statistics = pool.statistics
    /// if statistics.tasksQueued > 1_000 { logger.warning("pool backlog", metadata: ["statistics": "\(statistics)"]) }
    /// ```
    ///
    /// When the application bootstraps a swift-metrics backend (`MetricsSystem.bootstrap`) before
    /// it creates the pool, the pool also reports these numbers as metrics, with the dimension
    /// `pool` set to ``Configuration/label``: see <doc:StatisticsAndMetrics>.
    public var statistics: PoolStatistics { core.statistics }

    /// The logger the pool logs to: the configuration's (or none), with the pool's label as
    /// `pool` metadata.
    static func logger(_ configuration: Configuration) -> Logger {
        guard var logger = configuration.logger else {
            return Logger(label: "swift-multiprocessing", factory: { _ in SwiftLogNoOpLogHandler() })
        }
        logger[metadataKey: "pool"] = "\(configuration.label)"
        return logger
    }
}
