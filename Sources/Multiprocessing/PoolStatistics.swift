// `PoolStatistics`: a snapshot of what a pool is doing and has done — its workers by state, its
// tasks queued, running and ended by outcome, its workers replaced by cause — taken in one go
// under the pool's lock, so that its numbers agree with each other (`Pool+Statistics.swift`).

/// A snapshot of a pool: its workers by what they do, its tasks queued and running, how the
/// tasks it ran ended, and why workers were replaced.
///
/// Read one with ``Pool/statistics``. Every number is taken at the same instant, under the
/// pool's lock, so they agree with each other: every task submitted is queued, running, or
/// counted once in ``tasksCompleted``.
///
/// A *task* is one item: one call of your function. A chunk of 512 items of a `map` that
/// completes counts 512 tasks; an item that throws inside it counts as
/// ``TaskOutcomes/failed`` and the others as ``TaskOutcomes/succeeded``.
///
/// ```swift
/// let statistics = pool.statistics
/// print(statistics.busyWorkers, "of", statistics.workers, "busy,", statistics.tasksQueued, "queued")
/// print(statistics.tasksCompleted.failed, "threw;", statistics.workerRestarts.crashed, "workers crashed")
/// ```
///
/// The same numbers reach swift-metrics when the application bootstraps a metrics system: see
/// <doc:StatisticsAndMetrics>.
public struct PoolStatistics: Sendable, Hashable, CustomStringConvertible {
    /// Workers that are ready and running a task (or have one waiting in their pipe).
    public let busyWorkers: Int
    /// Workers that are ready and have nothing to run.
    public let idleWorkers: Int
    /// Workers being spawned, or running their bootstrap and initializer: not ready yet.
    public let startingWorkers: Int
    /// Workers that were killed or told to exit and are not gone yet.
    public let stoppingWorkers: Int

    /// Every worker process alive: busy, idle, starting and stopping.
    public var workers: Int { busyWorkers + idleWorkers + startingWorkers + stoppingWorkers }

    /// Tasks (items) submitted and waiting in the pool's queue for a worker.
    public let tasksQueued: Int
    /// Tasks (items) sent to a worker and not answered yet: the chunk a worker runs, and one it
    /// may have waiting in its pipe behind it.
    public let tasksRunning: Int
    /// Tasks (items) that ended, by how they ended, since the pool was created.
    public let tasksCompleted: TaskOutcomes
    /// Workers that ended before the pool was done with them, by why, since the pool was
    /// created. Workers that exit because the pool closes or is terminated are not counted.
    public let workerRestarts: WorkerRestarts

    /// How tasks (items) ended. The outcomes add up to ``total``.
    public struct TaskOutcomes: Sendable, Hashable {
        /// Tasks whose function returned a value.
        public let succeeded: Int
        /// Tasks that failed in the worker, the caller getting the error: the function threw (or
        /// the worker could not call it, or could not encode its result).
        public let failed: Int
        /// Tasks that were running when their worker died: a crash, a signal, `exit`, the
        /// memory limit, a broken protocol (``PoolError/Code/workerLost``).
        public let workerLost: Int
        /// Tasks whose chunk ran past its timeout (``PoolError/Code/taskTimedOut``).
        public let timedOut: Int
        /// Tasks that were dropped or stopped because their call ended first: the caller
        /// cancelled (a cancelled Swift task, ``AsyncResult/cancel()``, a dropped stream), or a
        /// `map` stopped at an earlier failed item and skipped the rest.
        public let cancelled: Int
        /// Tasks failed because the pool was terminated (``PoolError/Code/terminated``) or
        /// broke (workers could not start).
        public let terminated: Int

        /// Every task that ended, whatever its outcome.
        public var total: Int { succeeded + failed + workerLost + timedOut + cancelled + terminated }
    }

    /// Why workers were replaced. The causes add up to ``total``.
    public struct WorkerRestarts: Sendable, Hashable {
        /// Workers that ran ``Pool/Configuration/maxTasksPerChild`` tasks (chunks).
        public let maxTasks: Int
        /// Workers whose memory was above ``Pool/Configuration/maxMemoryPerChild`` after a task.
        public let maxMemory: Int
        /// Workers that died on their own while ready (a trap, a signal the pool did not send,
        /// `exit`, the memory limit), or broke the protocol and were killed.
        public let crashed: Int
        /// Workers killed because their task ran past its timeout.
        public let timedOut: Int
        /// Workers killed because the caller of their task cancelled it.
        public let cancelled: Int
        /// Workers that could not be spawned, died before they were ready, or were not ready
        /// within ``Pool/Configuration/startTimeout``.
        public let startFailed: Int

        /// Every worker replaced, whatever the cause.
        public var total: Int { maxTasks + maxMemory + crashed + timedOut + cancelled + startFailed }
    }

    /// A one-line summary, for logs.
    public var description: String {
        let c = tasksCompleted
        let r = workerRestarts
        return
            "workers: \(busyWorkers) busy, \(idleWorkers) idle, \(startingWorkers) starting, "
            + "\(stoppingWorkers) stopping; tasks: \(tasksQueued) queued, \(tasksRunning) running, "
            + "\(c.succeeded) succeeded, \(c.failed) failed, \(c.workerLost) worker lost, \(c.timedOut) timed out, "
            + "\(c.cancelled) cancelled, \(c.terminated) terminated; restarts: \(r.maxTasks) max tasks, "
            + "\(r.maxMemory) max memory, \(r.crashed) crashed, \(r.timedOut) timed out, \(r.cancelled) cancelled, "
            + "\(r.startFailed) start failed"
    }
}

extension PoolStatistics {
    /// The snapshot of a scheduler's counters and workers (taken under the pool's lock).
    init(counters: SchedulerCounters, census: WorkerCensus) {
        busyWorkers = census.busy
        idleWorkers = census.idle
        startingWorkers = census.starting
        stoppingWorkers = census.stopping
        tasksQueued = counters.queuedItems
        tasksRunning = counters.runningItems
        tasksCompleted = TaskOutcomes(
            succeeded: counters[outcome: .succeeded], failed: counters[outcome: .failed],
            workerLost: counters[outcome: .workerLost],
            timedOut: counters[outcome: .timedOut], cancelled: counters[outcome: .cancelled],
            terminated: counters[outcome: .terminated])
        workerRestarts = WorkerRestarts(
            maxTasks: counters[restarts: .maxTasks], maxMemory: counters[restarts: .maxMemory],
            crashed: counters[restarts: .crashed],
            timedOut: counters[restarts: .timedOut], cancelled: counters[restarts: .cancelled],
            startFailed: counters[restarts: .startFailed])
    }
}
