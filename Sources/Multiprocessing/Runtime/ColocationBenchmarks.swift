// What a lone call's wait pays to keep the record of its worker sharing the caller's CPU
// (Colocation.swift), reachable from the Benchmarks package: the state machine's step for a call,
// under its lock, as the transport takes it. SPI, not API: `@_spi(Benchmarks) import Multiprocessing`.

import Synchronization

/// A fresh record of shared calls, for benchmarks of its bookkeeping (no thread is moved).
@_spi(Benchmarks)
public final class ColocationBenchmarks: Sendable {
    private let colocation = Mutex(Colocation())

    public init() {}

    /// `count` calls that shared the caller's CPU, each ended under the lock, a move declined
    /// whenever one is asked for. Returns how many asked for one.
    public func sharedCalls(_ count: Int) -> Int {
        let thread = ThreadIdentity.current
        var asked = 0
        for i in 0..<count {
            let now = Int64(i) * 7_000
            colocation.withLock { colocation in
                if colocation.callEnded(shared: true, waited: 7_000, now: now, thread: thread) == .moveOff {
                    asked += 1
                    colocation.declined(at: now)
                }
            }
        }
        return asked
    }
}
