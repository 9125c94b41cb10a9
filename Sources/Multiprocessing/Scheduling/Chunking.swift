// How input items are cut into chunks (a chunk travels as one frame and is one task).

enum Chunking {
    /// The most bytes of arguments in a chunk of packed items (plain numbers, see PackedLayout.swift)
    /// that `map`/`starmap` cut by default.
    ///
    /// Four chunks a worker are few and large for tiny items: `starmap` of 1e6 pairs of `Int` on 2
    /// workers cut that way sends 2 MiB chunks, and a worker starts only once all of its first
    /// chunk has come through the pipe, the parent waits for the whole of the last result, and
    /// nothing overlaps in between. Measured in one process, best of 9 rounds alternating the
    /// sizes (5 runs): 125,000 items a chunk (CPython's rule) 10.4–15.6 ms; 62,500: 8.2–11.2 ms;
    /// 31,250 (about 512 KiB): 7.6–11.0 ms; 15,625: 7.6–13.5 ms; 8,000: 8.4–14.7 ms; 4,000:
    /// 11.5–20.4 ms.
    static let packedChunkBytes = 512 << 10

    /// CPython's rule for `map`: about four chunks per worker, `ceil(n / (4 × processes))`; for
    /// packed items of `packedStride` bytes, chunks of at most ``packedChunkBytes`` of them.
    static func defaultChunksize(itemCount: Int, processes: Int, packedStride: Int? = nil) -> Int {
        guard itemCount > 0 else { return 1 }
        let divisor = 4 * processes
        let cpython = (itemCount + divisor - 1) / divisor
        guard let packedStride, packedStride > 0 else { return cpython }
        return max(1, min(cpython, packedChunkBytes / packedStride))
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
