// How input items are cut into chunks (a chunk travels as one frame and is one task).

enum Chunking {
    /// The most bytes of arguments in a chunk of packed items (plain numbers, see PackedLayout.swift)
    /// that `map`/`starmap` cut by default: a ring's worth (SharedChannel.swift), so that a very
    /// long input does not make chunks, and the buffers a worker reads them into, of hundreds of
    /// megabytes.
    ///
    /// Below that, CPython's rule (four chunks a worker) wins for tiny items. A cap of 512 KiB
    /// was measured faster when every chunk crossed a pipe and was copied twice on each side;
    /// since chunks cross the shared rings, their packed items straight from the caller's array
    /// and their results straight into the list, each chunk's fixed cost (the wake-ups of a
    /// worker and of the pool's I/O thread, a transition of the scheduler) weighs more than the
    /// overlap that smaller chunks give. `starmap` of 1e6 pairs of `Int` on 2 workers, in fresh
    /// processes, 21 runs alternating on a shared 2-core VM (best / median): chunks of 32,768
    /// pairs (512 KiB) 12.3 / 16.8 ms, 98,304 (1.5 MiB) 9.0 / 13.0 ms, 125,000 (CPython's, 2 MB)
    /// 6.8 / 10.9 ms.
    static let packedChunkBytes = 2 << 20

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

    /// Streams keep this many chunks submitted and not yet consumed: every worker one running and
    /// one queued, twice over, and 16 more arrived or on their way, so that the consumer does not
    /// wait for a worker or for the pool's I/O thread that a busy machine is slow to run; few
    /// enough that memory stays flat however long the input is. A stream without a chunksize
    /// also keeps at most this many times ``AdaptiveChunking/defaultMaximum`` items
    /// (StreamStateMachine's `itemWindow`), so that growing chunks do not widen the window.
    ///
    /// Measured on `pool-workloads imap` (3e6 items, chunksize 1000, 2 workers, read with
    /// `next()`), 15 alternating runs on the shared 2-core VM, best / median: the former window of
    /// `max(4 × processes, 8)` (8 chunks) 86.1 / 102.3 ms, with the consumer waiting for about one
    /// chunk in three; 16 chunks 73.0 / 90.3 ms; 24 (this one) 71.3 / 80.0 ms, with 4,500–5,100
    /// context switches in all processes instead of 6,400–7,000 and 26–29 ms of the consumer's
    /// CPU time instead of 33–40; 32 chunks 66.6 / 90.5 ms.
    static func streamWindow(processes: Int) -> Int {
        4 * processes + 16
    }
}
