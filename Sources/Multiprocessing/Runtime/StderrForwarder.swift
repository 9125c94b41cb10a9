// Passing what workers print on stderr on to the parent's stderr without ever blocking the I/O
// thread: what the parent's stderr does not take now waits in a bounded buffer; while that buffer
// is full the pool stops reading the workers' stderr pipes, so a worker that goes on printing
// waits in its own `write`, as it would writing to a terminal, and only that worker.
//
// Nothing is lost while the pool runs. At the pool's end, bytes its stderr still has not taken
// are dropped (a stderr that is never read would otherwise keep `join` waiting forever), and how
// many is logged.

/// The buffer between the workers' stderr pipes and the parent's stderr. Not thread-safe: the
/// I/O thread owns it (under the loop lock).
struct StderrForwarder {
    /// Where the bytes go (closed by ``finish()``); nil if stderr could not be opened.
    let output: NonBlockingOutput?
    /// The output failed (EPIPE: its reader is gone): bytes are then only kept in the workers'
    /// tails, to explain a death.
    private(set) var failed = false
    /// Bytes the output did not take yet, oldest first, from `pendingStart`.
    private var pending: [UInt8] = []
    private var pendingStart = 0
    /// Above this many pending bytes, the workers' stderr pipes are no longer read.
    let limit: Int
    /// Bytes dropped because the output failed or the pool ended before it took them.
    private(set) var dropped = 0
    /// Whether reading workers' stderr is paused (the buffer was full).
    private(set) var paused = false

    init(output: NonBlockingOutput?, limit: Int = 1 << 20) {
        self.output = output
        self.limit = limit
    }

    /// Bytes waiting for the output.
    var pendingCount: Int { pending.count - pendingStart }

    /// Whether the output should be watched for writability (something waits for it).
    var wantsWritable: Bool { !failed && output?.canWatch == true && pendingCount > 0 }

    /// What a caller must do after an event.
    enum Change: Equatable {
        case none
        /// The buffer is full: stop reading workers' stderr.
        case pause
        /// The buffer drained below half its limit (or the output failed): read them again.
        case resume
    }

    /// Passes `bytes` on: written now if nothing waits before them and the output takes them,
    /// else kept. `force` keeps them even past the limit (the last words of a worker that
    /// exited, which can write no more).
    mutating func forward(_ bytes: UnsafeRawBufferPointer, force: Bool = false) -> Change {
        guard let output, !failed else {
            dropped += bytes.count
            return .none
        }
        var rest = bytes
        if pendingCount == 0 {
            switch output.tryWrite(bytes) {
            case .wrote(let n): rest = UnsafeRawBufferPointer(rebasing: bytes[n...])
            case .failed: return outputFailed(adding: bytes.count)
            }
        }
        if !rest.isEmpty { pending.append(contentsOf: rest) }
        if !paused && pendingCount >= limit && !force {
            paused = true
            return .pause
        }
        return .none
    }

    /// Writes what waits, as far as the output takes it now (call when it is writable).
    mutating func flush() -> Change {
        guard let output, !failed, pendingCount > 0 else { return resumeIfBelowHalf() }
        let outcome = pending.withUnsafeBytes { raw in
            output.tryWrite(UnsafeRawBufferPointer(rebasing: raw[pendingStart...]))
        }
        switch outcome {
        case .wrote(let n):
            pendingStart += n
            if pendingStart == pending.count {
                pending.removeAll(keepingCapacity: pending.capacity <= limit)
                pendingStart = 0
            } else if pendingStart >= limit {
                pending.removeFirst(pendingStart)
                pendingStart = 0
            }
        case .failed:
            return outputFailed(adding: 0)
        }
        return resumeIfBelowHalf()
    }

    /// The pool ends: one last write of what waits, then the rest is dropped and the output
    /// closed (stop watching it first). Returns the bytes dropped over the pool's life.
    mutating func finish() -> Int {
        _ = flush()
        dropped += pendingCount
        pending = []
        pendingStart = 0
        failed = true
        output?.close()
        return dropped
    }

    private mutating func resumeIfBelowHalf() -> Change {
        guard paused, pendingCount < limit / 2 else { return .none }
        paused = false
        return .resume
    }

    private mutating func outputFailed(adding count: Int) -> Change {
        dropped += pendingCount + count
        pending = []
        pendingStart = 0
        failed = true
        if paused {
            paused = false
            return .resume
        }
        return .none
    }
}
