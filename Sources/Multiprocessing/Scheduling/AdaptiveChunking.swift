// How big the next chunk of an `imap`/`imapUnordered` stream given no chunksize is, from how long
// its chunks took in the workers: start with one item, so that the first result comes as soon as
// one item is done; double while a chunk of the current size would take well under the target
// duration; shrink to fit the target when chunks take much longer. Large items also bound it: a
// chunk carries at most about a megabyte each way, so that a stream's window of chunks stays
// small in memory. Pure: it is told each chunk's items, run time (which the worker measures and
// sends with the result) and bytes, and holds no clock.
//
// Why a duration: the pool's cost is paid per chunk (a message each way, a wake-up; tens of
// microseconds here), so a chunk of a few milliseconds makes it a percent or two, whatever an
// item costs; and a chunk that short keeps the first results early, the load balanced to the
// last chunk, and stays below the scheduler's prefetch threshold (5 ms), so that a worker always
// has the next chunk queued behind the running one. Measured: see PerformanceAndChunksize.md.

/// The chunk sizes of a stream given no chunksize.
struct AdaptiveChunking: Equatable, Sendable {
    /// How long a chunk should run in a worker.
    static let defaultTarget: Duration = .milliseconds(2)
    /// The largest chunk, in items: past it the pool's cost per chunk no longer shows, even for
    /// items that take nanoseconds.
    static let defaultMaximum = 8192
    /// The most bytes a chunk should carry, its arguments or its results.
    static let defaultMaximumBytes = 1 << 20

    /// How long a chunk should run, in nanoseconds.
    let targetNanoseconds: Double
    /// The largest chunk, in items.
    let maximum: Int
    /// The most bytes a chunk should carry one way.
    let maximumBytes: Int
    /// The size the run times ask for.
    private(set) var timedSize = 1
    /// One item's run time in the last few chunks, in nanoseconds, oldest first.
    private var recent: [Double] = []
    /// How many chunks ``nanosecondsPerItem`` looks back over.
    static let lookBack = 3
    /// The running estimate of one item's bytes, arguments or results, whichever is larger.
    private(set) var bytesPerItem: Double?

    init(
        target: Duration = Self.defaultTarget, maximum: Int = Self.defaultMaximum,
        maximumBytes: Int = Self.defaultMaximumBytes
    ) {
        precondition(maximum >= 1, "a chunk holds at least one item")
        targetNanoseconds = Double(target.saturatingNanoseconds)
        self.maximum = maximum
        self.maximumBytes = maximumBytes
    }

    /// The estimate of one item's run time, in nanoseconds: the least of the last
    /// ``lookBack`` chunks'. A worker that loses its core to another process (a busy machine)
    /// only ever adds time to a chunk, so the least is the item's own cost; a real slowdown
    /// shows once it holds for that many chunks. Nil before the first chunk came back.
    var nanosecondsPerItem: Double? { recent.min() }

    /// The size of the next chunk to cut: what the run times ask for, within the byte bound.
    var size: Int {
        guard let bytesPerItem, bytesPerItem > 0 else { return timedSize }
        let fitting = Double(maximumBytes) / bytesPerItem
        return fitting >= Double(timedSize) ? timedSize : max(1, Int(fitting))
    }

    /// A chunk of `items` items ran for `nanoseconds` in its worker: adjusts the size.
    ///
    /// - Grows (doubles, up to ``maximum``) while a chunk of the current size would take at most
    ///   half the target, so that it overshoots the target by at most the noise of one estimate.
    /// - Shrinks when one would take more than twice the target: to what fits the target (at
    ///   least halving, never below one item), at once, since a slow chunk holds up its worker
    ///   and, in an ordered stream, everything behind it.
    ///
    /// Both go by ``nanosecondsPerItem``.
    /// - Else keeps it.
    ///
    /// - Parameter resultBytes: The bytes its results took (0 when not known).
    mutating func chunkRan(items: Int, nanoseconds: UInt64, resultBytes: Int = 0) {
        guard items > 0 else { return }
        if resultBytes > 0 { chunkCarried(items: items, bytes: resultBytes) }
        recent.append(Double(nanoseconds) / Double(items))
        if recent.count > Self.lookBack { recent.removeFirst() }
        let perItem = nanosecondsPerItem!
        let projected = perItem * Double(timedSize)
        if projected * 2 <= targetNanoseconds {
            timedSize = min(timedSize * 2, maximum)
        } else if projected > targetNanoseconds * 2 {
            let fitting = Int(targetNanoseconds / perItem)
            timedSize = max(1, min(timedSize / 2, fitting))
        }
    }

    /// A chunk of `items` items carries `bytes` bytes (its encoded arguments, or its results):
    /// items this large make chunks smaller.
    mutating func chunkCarried(items: Int, bytes: Int) {
        guard items > 0 else { return }
        let measured = Double(bytes) / Double(items)
        // The larger side counts: arguments and results each travel as one message.
        bytesPerItem = max(measured, bytesPerItem.map { ($0 + measured) / 2 } ?? 0)
    }
}
