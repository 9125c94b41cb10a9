// How far a job has come, as `AsyncResult.progress` and `ResultStream.progress` report it (the
// counting is Runtime/ProgressCounter.swift).

/// How far a job has come: items whose results (or errors) arrived, out of how many.
///
/// ```swift
/// let result = try pool.mapAsync(render, frames)
/// for await progress in result.progressUpdates {
///     print("\(progress.completed)/\(progress.total ?? 0)")
/// }
/// ```
public struct PoolProgress: Sendable, Hashable, CustomStringConvertible {
    /// Items finished (successfully or not).
    public var completed: Int
    /// Items in the job, when known (an `imap` over a lazy sequence learns it at the end).
    public var total: Int?
    /// The job has ended: every result arrived, or it failed or was cancelled.
    public var isFinished: Bool

    /// Creates a progress value.
    public init(completed: Int, total: Int?, isFinished: Bool) {
        self.completed = completed
        self.total = total
        self.isFinished = isFinished
    }

    /// `completed / total`, when the total is known (1 for an empty job).
    public var fractionCompleted: Double? {
        guard let total else { return nil }
        return total == 0 ? 1 : Double(completed) / Double(total)
    }

    /// `completed/total`, e.g. `40/100`.
    public var description: String {
        if let total { return "\(completed)/\(total)\(isFinished ? " (finished)" : "")" }
        return "\(completed)/?\(isFinished ? " (finished)" : "")"
    }
}
