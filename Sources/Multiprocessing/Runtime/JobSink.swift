// Where the results of a job go: the receiving end of `apply`/`map`/`starmap` (an AsyncResult)
// or of `imap` (a ResultStream).

/// Receives the events of one job. The pool calls these outside its lock, from its I/O thread
/// (results, worker faults) or from the thread that caused the event (terminate, cancel).
protocol JobSink: AnyObject, Sendable {
    /// The results of chunk `index` arrived; `reader` is positioned at its first item.
    func deliver(index: Int, header: ResultHeader, items reader: ByteReader, workerPID: Int32)
    /// Chunk `index` will never produce results.
    func fail(index: Int, with error: PoolError)
    /// The whole job failed (terminate, a broken pool): complete now with `error`.
    func failJob(with error: PoolError)
    /// No more events will come.
    func finish()
    /// The results of chunk `index` arrived and they are the job's last event: `deliver` then
    /// `finish`, which a sink may do in one step.
    func deliverLast(index: Int, header: ResultHeader, items reader: ByteReader, workerPID: Int32)
    /// The pool was closed: a stream reads the rest of its input now.
    func poolClosed()
}

extension JobSink {
    func poolClosed() {}

    func deliverLast(index: Int, header: ResultHeader, items reader: ByteReader, workerPID: Int32) {
        deliver(index: index, header: header, items: reader, workerPID: workerPID)
        finish()
    }
}

extension ChunkFailure {
    /// The error a caller sees for this failure of a chunk of `functionName`.
    /// - Parameter lastWords: what the worker wrote to stderr before it died: its telling lines
    ///   and, from a crash report, where it crashed in the user's code.
    func poolError(functionName: String, lastWords: LastWords?) -> PoolError {
        switch self {
        case .workerLost(let pid, let termination, let detail):
            var message = "the worker process \(pid) running '\(functionName)' \(termination)"
            if let detail { message += ": \(detail)" }
            message += "; the pool replaced it"
            let frames = lastWords?.crashFrames ?? []
            if let innermost = frames.first {
                // Like a traceback, innermost first: where it crashed, then who called it.
                message += ". It crashed in \(innermost)"
                for caller in frames.dropFirst() { message += "\n    called from \(caller)" }
            }
            if let text = lastWords?.text, !text.isEmpty {
                message += (frames.isEmpty ? ". " : "\n") + "Its last words on stderr:\n\(text)"
            }
            return PoolError(.workerLost, message, functionName: functionName, workerPID: pid, crashFrames: frames)
        case .timedOut(let pid, let limit):
            return PoolError(
                .taskTimedOut,
                "'\(functionName)' ran longer than its timeout of \(limit); its worker process \(pid) was killed "
                    + "and replaced",
                functionName: functionName, workerPID: pid)
        case .terminated:
            return PoolError(
                .terminated, "the pool was terminated before '\(functionName)' finished", functionName: functionName)
        case .startupFailed(let detail, let initializer):
            if initializer {
                return PoolError(
                    .initializerFailed,
                    "the pool's initializer failed in every worker it started, so '\(functionName)' cannot run: "
                        + detail, functionName: functionName)
            }
            // The detail names the likely cause (the scheduler's notReadyCause for a worker that
            // exited before it was ready).
            return PoolError(
                .spawnFailed, "worker processes could not be started, so '\(functionName)' cannot run: \(detail)",
                functionName: functionName)
        }
    }
}
