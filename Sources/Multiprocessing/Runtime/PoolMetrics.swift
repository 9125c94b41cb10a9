// The pool's swift-metrics: counters of tasks by outcome and of worker restarts by cause, timers
// of the wait and run time of chunks, gauges of the queue, the busy workers and the workers
// alive, all with the dimension ("pool", label).
//
// They exist only when a metrics system was bootstrapped (or a factory was given) when the pool
// was created: with swift-metrics' default no-op factory the pool makes none, and every
// transition pays one nil check. The metric objects are made once per pool. What to record is
// worked out under the storage lock from the scheduler's counters (a `MetricsReport`: the
// totals that grew, the gauges that changed, the chunk timings), and recorded after the lock is
// released.

import CoreMetrics
import Synchronization

/// What one transition has for the metrics, worked out under the storage lock.
struct MetricsReport: Sendable {
    /// The change of every task outcome and restart cause since the last report.
    var outcomes: [(ItemOutcome, Int)] = []
    var restarts: [(RestartCause, Int)] = []
    /// The gauges, when one of them changed, numbered in the order of the transitions.
    var gauges: (sequence: UInt64, queued: Int, busy: Int, workers: Int)?
    var timings: [ChunkTiming] = []

    var isEmpty: Bool { outcomes.isEmpty && restarts.isEmpty && gauges == nil && timings.isEmpty }
}

/// The metrics of one pool, and what was last reported to them (kept under the storage lock).
final class PoolMetrics: Sendable {
    /// The metric names, shared with the server example that scrapes them.
    enum Name {
        static let tasksCompleted = "multiprocessing_tasks_completed_total"
        static let workerRestarts = "multiprocessing_worker_restarts_total"
        static let taskWait = "multiprocessing_task_wait_seconds"
        static let taskRun = "multiprocessing_task_run_seconds"
        static let tasksQueued = "multiprocessing_tasks_queued"
        static let workersBusy = "multiprocessing_workers_busy"
        static let workers = "multiprocessing_workers"
    }

    /// The value of the `outcome` dimension.
    static func dimension(_ outcome: ItemOutcome) -> String {
        switch outcome {
        case .succeeded: return "success"
        case .failed: return "failed"
        case .workerLost: return "worker_lost"
        case .timedOut: return "timed_out"
        case .cancelled: return "cancelled"
        case .terminated: return "terminated"
        }
    }

    /// The value of the `cause` dimension.
    static func dimension(_ cause: RestartCause) -> String {
        switch cause {
        case .maxTasks: return "max_tasks"
        case .maxMemory: return "max_memory"
        case .crashed: return "crashed"
        case .timedOut: return "timed_out"
        case .cancelled: return "cancelled"
        case .startFailed: return "start_failed"
        }
    }

    private let completed: [Counter]
    private let restarts: [Counter]
    private let waitTimer: CoreMetrics.Timer
    private let runTimer: CoreMetrics.Timer
    private let queued: Gauge
    private let busy: Gauge
    private let workers: Gauge
    /// The sequence number of the gauges last recorded: transitions record after their lock, in
    /// any order, so an older one must not overwrite a newer one's values.
    private let gaugesRecorded = Mutex<UInt64>(0)

    /// The metrics of the pool `label`, made with `factory`; nil when `factory` is
    /// swift-metrics' no-op one (no metrics system bootstrapped).
    init?(label: String, factory: any MetricsFactory) {
        guard !(factory is NOOPMetricsHandler) else { return nil }
        let pool = ("pool", label)
        completed = ItemOutcome.allCases.map {
            Counter(label: Name.tasksCompleted, dimensions: [pool, ("outcome", Self.dimension($0))], factory: factory)
        }
        restarts = RestartCause.allCases.map {
            Counter(label: Name.workerRestarts, dimensions: [pool, ("cause", Self.dimension($0))], factory: factory)
        }
        waitTimer = Timer(label: Name.taskWait, dimensions: [pool], preferredDisplayUnit: .seconds, factory: factory)
        runTimer = Timer(label: Name.taskRun, dimensions: [pool], preferredDisplayUnit: .seconds, factory: factory)
        queued = Gauge(label: Name.tasksQueued, dimensions: [pool], factory: factory)
        busy = Gauge(label: Name.workersBusy, dimensions: [pool], factory: factory)
        workers = Gauge(label: Name.workers, dimensions: [pool], factory: factory)
    }

    /// Records a report (after the storage lock is released).
    func record(_ report: MetricsReport) {
        for (outcome, delta) in report.outcomes { completed[outcome.rawValue].increment(by: delta) }
        for (cause, delta) in report.restarts { restarts[cause.rawValue].increment(by: delta) }
        for timing in report.timings {
            switch timing {
            case .waited(let duration): waitTimer.recordNanoseconds(duration.saturatingNanoseconds)
            case .ran(let duration): runTimer.recordNanoseconds(duration.saturatingNanoseconds)
            }
        }
        if let gauges = report.gauges {
            gaugesRecorded.withLock { last in
                guard gauges.sequence > last else { return }
                last = gauges.sequence
                queued.record(gauges.queued)
                busy.record(gauges.busy)
                workers.record(gauges.workers)
            }
        }
    }
}

/// What the metrics were last told, kept with the scheduler under the storage lock.
struct MetricsLedger: Sendable {
    var counters = SchedulerCounters()
    var gauges: (queued: Int, busy: Int, workers: Int) = (0, 0, 0)
    var sequence: UInt64 = 0

    /// What changed since the last report, which it becomes.
    mutating func report<Payload>(_ scheduler: inout SchedulerStateMachine<Payload>) -> MetricsReport {
        var report = MetricsReport()
        let now = scheduler.counters
        if now != counters {
            for outcome in ItemOutcome.allCases {
                let delta = now[outcome: outcome] - counters[outcome: outcome]
                if delta != 0 { report.outcomes.append((outcome, delta)) }
            }
            for cause in RestartCause.allCases {
                let delta = now[restarts: cause] - counters[restarts: cause]
                if delta != 0 { report.restarts.append((cause, delta)) }
            }
            counters = now
        }
        let census = scheduler.workerCensus
        let alive = census.busy + census.idle + census.starting + census.stopping
        let current = (queued: now.queuedItems, busy: census.busy, workers: alive)
        if current != gauges || sequence == 0 {
            sequence += 1
            gauges = current
            report.gauges = (sequence, current.queued, current.busy, current.workers)
        }
        report.timings = scheduler.takeTimings()
        return report
    }
}
