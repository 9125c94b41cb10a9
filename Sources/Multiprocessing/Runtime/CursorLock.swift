// The lock of an `imap` stream's cursor (StreamStorage.swift): taken once per item by the
// consumer, so its cost is the per-item cost of reading a stream.
//
// A `Mutex` costs two atomic read-modify-writes a turn (a compare-exchange to lock, another to
// unlock, which must see whether a waiter sleeps). This lock costs one: it is taken with a
// compare-exchange and released with a plain releasing store, because nobody ever sleeps on it.
// Measured with perf on `imap` of 3e6 items (chunksize 1000), the two read-modify-writes were
// two thirds of the consumer's loop; with this lock the stream took 67-109 ms instead of 99-146 ms
// (`pool-workloads imap`, six alternating runs under `chrt -f 10`), and callgrind counts 105
// instructions per item in the consumer's thread instead of 117. A thread that finds it taken
// spins, then yields its core: the holder keeps it for one item, or for loading the next chunk (a
// look at the stream's state), never across a wait, and only several threads reading one stream
// at once ever meet it.

public import Synchronization

/// A value guarded by a lock of one atomic read-modify-write per turn (see the file's header).
@usableFromInline
final class CursorLock<Value>: @unchecked Sendable {
    @usableFromInline let word = Atomic<UInt32>(0)
    /// The value, reached through a pointer so that no exclusivity check runs per access.
    @usableFromInline let value: UnsafeMutablePointer<Value>

    init(_ initial: Value) {
        value = .allocate(capacity: 1)
        value.initialize(to: initial)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` on the value with the lock held.
    @inlinable
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        if !word.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged { lockContended() }
        defer { word.store(0, ordering: .releasing) }
        return try body(&value.pointee)
    }

    /// Another thread holds the lock: spins on it, yielding the core between looks after the
    /// first few (the holder may be waiting for a core itself).
    @usableFromInline
    func lockContended() {
        var turns = 0
        while true {
            if word.load(ordering: .relaxed) == 0,
                word.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged
            {
                return
            }
            turns += 1
            if turns > 64 { yieldProcessor() }
        }
    }
}
