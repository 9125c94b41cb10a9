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
    /// The pool was closed: a stream reads the rest of its input now.
    func poolClosed()
}

extension JobSink {
    func poolClosed() {}
}

extension ChunkFailure {
    /// The error a caller sees for this failure of a chunk of `functionName`.
    /// - Parameter lastWords: the end of what the worker wrote to stderr before it died.
    func poolError(functionName: String, lastWords: String?) -> PoolError {
        switch self {
        case .workerLost(let pid, let termination, let detail):
            var message = "the worker process \(pid) running '\(functionName)' \(termination)"
            if let detail { message += ": \(detail)" }
            message += "; the pool replaced it"
            if let lastWords, !lastWords.isEmpty { message += ". Its last words on stderr:\n\(lastWords)" }
            return PoolError(.workerLost, message, functionName: functionName, workerPID: pid)
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
            return PoolError(
                .spawnFailed,
                "worker processes could not be started, so '\(functionName)' cannot run: \(detail). A worker "
                    + "executable must call Pool.bootstrap(serving:) first thing in main.",
                functionName: functionName)
        }
    }
}

/// The end of a worker's stderr, kept to explain its death.
struct StderrTail {
    private(set) var bytes: [UInt8] = []
    let capacity: Int

    init(capacity: Int = 64 * 1024) { self.capacity = capacity }

    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: chunk)
        if bytes.count > capacity { bytes.removeFirst(bytes.count - capacity) }
    }

    /// What explains a death: the Swift runtime's "Fatal error: …" line and the crash
    /// reporter's "Program crashed" line when present (a backtrace that follows them can be
    /// long), else the last few non-empty lines.
    func lastWords(maxLines: Int = 12) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        let telling = lines.filter { $0.contains("Fatal error") || $0.contains("Program crashed") }
        if !telling.isEmpty { return telling.suffix(maxLines).joined(separator: "\n") }
        return lines.suffix(maxLines).joined(separator: "\n")
    }
}
