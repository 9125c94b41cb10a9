// What a stream's reader pays per item for the cursor's lock (CursorLock.swift), reachable from
// the Benchmarks package: turns of the thread the lock is biased to, against ordinary turns (a
// compare-exchange and a releasing store each). SPI, not API: `@_spi(Benchmarks) import
// Multiprocessing`.

/// A cursor lock over a counter, for benchmarks of its turns.
@_spi(Benchmarks)
public final class CursorLockBenchmarks: Sendable {
    private let lock = CursorLock(0)

    public init() {}

    /// `count` turns as a stream's reader takes them (`next(timeout:)`): owned, once the first
    /// biased the lock to this thread. Returns the counter.
    public func ownedTurns(_ count: Int) -> Int {
        for _ in 0..<count { lock.withOwnedLock { $0 &+= 1 } }
        return lock.withLock { $0 }
    }

    /// `count` ordinary turns (on a lock no thread owns, each takes the lock's word). Returns
    /// the counter.
    public func ordinaryTurns(_ count: Int) -> Int {
        for _ in 0..<count { lock.withLock { $0 &+= 1 } }
        return lock.withLock { $0 }
    }
}
