// What the scheduler counts as it decides: items queued and running, how every item ended, why
// workers ended early, and (when asked) how long chunks waited and ran. The scheduler is the one
// place that sees every item's fate, so `pool.statistics` and the metrics read their numbers
// from here, never from a second tally that could drift.

/// How one item (one call of the user's function) ended.
enum ItemOutcome: Int, CaseIterable, Sendable {
    /// The function returned.
    case succeeded
    /// The function threw.
    case failed
    /// The worker running it died (crashed, was killed by someone else, broke the protocol).
    case workerLost
    /// Its chunk ran past its timeout and the worker was killed.
    case timedOut
    /// It never ran, or was stopped, because its call ended first: the caller cancelled, or a
    /// `map` stopped at an earlier failed item.
    case cancelled
    /// The pool was terminated (or broke) before it finished.
    case terminated
}

/// Why a worker ended before the pool was done with it (the pool then starts a replacement
/// while it has work).
enum RestartCause: Int, CaseIterable, Sendable {
    /// It ran `maxTasksPerChild` chunks.
    case maxTasks
    /// Its memory was above `maxMemoryPerChild` after a task.
    case maxMemory
    /// It died on its own while ready (a trap, a signal, `exit`), or broke the protocol.
    case crashed
    /// It was killed because a chunk ran past its timeout.
    case timedOut
    /// It was killed because the caller of its chunk cancelled.
    case cancelled
    /// It could not be spawned, died before it was ready, or was not ready within the start
    /// timeout.
    case startFailed
}

/// The scheduler's running totals. Items, not chunks: a chunk of 512 items that completes adds
/// 512. Plain fields (no arrays), so that copying it for a metrics report allocates nothing.
struct SchedulerCounters: Equatable, Sendable {
    /// Items in the pool's queue, not yet sent to a worker.
    var queuedItems = 0
    /// Items sent to a worker and not yet answered (including a chunk waiting in a worker's
    /// pipe behind the one it runs).
    var runningItems = 0

    private(set) var succeeded = 0
    private(set) var failed = 0
    private(set) var workerLost = 0
    private(set) var timedOut = 0
    private(set) var cancelled = 0
    private(set) var terminated = 0

    private(set) var maxTasksRestarts = 0
    private(set) var maxMemoryRestarts = 0
    private(set) var crashedRestarts = 0
    private(set) var timedOutRestarts = 0
    private(set) var cancelledRestarts = 0
    private(set) var startFailedRestarts = 0

    /// Items that ended with `outcome`.
    subscript(outcome outcome: ItemOutcome) -> Int {
        switch outcome {
        case .succeeded: return succeeded
        case .failed: return failed
        case .workerLost: return workerLost
        case .timedOut: return timedOut
        case .cancelled: return cancelled
        case .terminated: return terminated
        }
    }

    /// Workers that ended early for `cause`.
    subscript(restarts cause: RestartCause) -> Int {
        switch cause {
        case .maxTasks: return maxTasksRestarts
        case .maxMemory: return maxMemoryRestarts
        case .crashed: return crashedRestarts
        case .timedOut: return timedOutRestarts
        case .cancelled: return cancelledRestarts
        case .startFailed: return startFailedRestarts
        }
    }

    mutating func count(_ items: Int, _ outcome: ItemOutcome) {
        switch outcome {
        case .succeeded: succeeded += items
        case .failed: failed += items
        case .workerLost: workerLost += items
        case .timedOut: timedOut += items
        case .cancelled: cancelled += items
        case .terminated: terminated += items
        }
    }

    mutating func countRestart(_ cause: RestartCause) {
        switch cause {
        case .maxTasks: maxTasksRestarts += 1
        case .maxMemory: maxMemoryRestarts += 1
        case .crashed: crashedRestarts += 1
        case .timedOut: timedOutRestarts += 1
        case .cancelled: cancelledRestarts += 1
        case .startFailed: startFailedRestarts += 1
        }
    }
}

/// How long one chunk waited in the queue or ran, for the metrics' timers.
enum ChunkTiming: Sendable {
    /// From its submission to its start on a worker.
    case waited(Duration)
    /// From its start on a worker to its result.
    case ran(Duration)
}

/// The workers by what they do now.
struct WorkerCensus: Equatable, Sendable {
    /// Ready, with a chunk to run.
    var busy = 0
    /// Ready, with nothing to run.
    var idle = 0
    /// Spawning, or not ready yet (bootstrap, initializer).
    var starting = 0
    /// Killed, or told to exit, and not yet reaped.
    var stopping = 0
}
