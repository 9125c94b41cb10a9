// How input items are cut into chunks (a chunk travels as one frame and is one task).

enum Chunking {
    /// CPython's rule for `map`: about four chunks per worker, `ceil(n / (4 × processes))`.
    static func defaultChunksize(itemCount: Int, processes: Int) -> Int {
        guard itemCount > 0 else { return 1 }
        let divisor = 4 * processes
        return (itemCount + divisor - 1) / divisor
    }

    /// Checks a caller's chunksize.
    static func validate(_ chunksize: Int, functionName: String) throws(PoolError) {
        guard chunksize >= 1 else {
            throw PoolError(
                .invalidArgument, "chunksize must be at least 1, not \(chunksize)", functionName: functionName)
        }
    }

    /// Streams keep this many chunks submitted and not yet consumed: enough that every worker
    /// has one running and one queued while the consumer reads, few enough that memory stays
    /// flat however long the input is. A stream without a chunksize also keeps at most this many
    /// times ``AdaptiveChunking/defaultMaximum`` items (StreamStateMachine's `itemWindow`), so
    /// that growing chunks do not widen the window.
    static func streamWindow(processes: Int) -> Int {
        max(4 * processes, 8)
    }
}
