// The lock of an `imap` stream's cursor (StreamStorage.swift): taken once per item by the
// consumer, so its cost is the per-item cost of reading a stream.
//
// A `Mutex` costs two atomic read-modify-writes a turn (a compare-exchange to lock, another to
// unlock, which must see whether a waiter sleeps). This lock's ordinary turn costs one: it is taken
// with a compare-exchange and released with a plain releasing store, because nobody ever sleeps on it.
// Measured with perf on `imap` of 3e6 items (chunksize 1000), the two read-modify-writes were
// two thirds of the consumer's loop; with this lock the stream took 67-109 ms instead of 99-146 ms
// (`pool-workloads imap`, six alternating runs under `chrt -f 10`), and callgrind counts 105
// instructions per item in the consumer's thread instead of 117. A thread that finds it taken
// spins, then yields its core: the holder keeps it for one item, or for loading the next chunk (a
// look at the stream's state), never across a wait, and only several threads reading one stream
// at once ever meet it.
//
// Biased to the thread that reads the stream with `next(timeout:)`: the first thread that takes
// an item that way becomes the lock's *owner*, whose turns cost no atomic read-modify-write: it
// says it is in a turn (a plain store), checks that it still owns the lock (a plain load) and
// leaves with a releasing store. Any other thread (a second reader, an async iterator on another
// thread, a cancel or a release of the stream from elsewhere) takes the lock the ordinary way and,
// finding it owned by another thread, revokes the bias for good: it clears the owner, makes every
// thread of the process pass a memory barrier (membarrier(2): ProcessBarrier+Linux.swift), which
// orders the owner's store before its load as a fence in the owner would, then waits for the
// owner's turn to end (taking one item never waits for anything). This is Dekker's exclusion with
// the costly half of the fence moved to the rare side, as userspace RCU does; from then on every
// thread takes the compare-exchange, so a stream read by several threads pays one barrier in all.
// Without membarrier (a kernel before 4.14, a seccomp filter that forbids it) no thread is made
// owner and every turn is the ordinary one.
//
// Why: the compare-exchange of the ordinary turn cost about 6 ns an item here (3e6 of them with a
// releasing store each: 18.7–20.8 ms in C, against 2 ms without), a third of the consumer's CPU
// time in `imap` of 3e6 items read with `next()`, the thread the whole stream waits on once the
// workers keep ahead of it. (An experiment of the first days, 85670fb, did the same with
// `pthread_self()` and was not kept: under the load of then it measured nothing, the consumer
// waiting for one chunk in three; see PerformanceAndChunksize.md for the figures now.)

public import Synchronization

/// A value guarded by a lock of at most one atomic read-modify-write per turn, and none for the
/// turns of the thread it is biased to (see the file's header).
@usableFromInline
final class CursorLock<Value>: @unchecked Sendable {
    @usableFromInline let word = Atomic<UInt32>(0)
    /// Which thread the lock is biased to, and whether that thread is in a turn.
    @usableFromInline let bias = CursorBias()
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

    /// Runs `body` on the value with the lock held, as the reader of the stream: a turn without
    /// an atomic read-modify-write when the lock is biased to this thread; else the lock is taken
    /// the ordinary way, and biased to this thread if it never was to any.
    @inlinable
    func withOwnedLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        if bias.enterOwnTurn() {
            defer { bias.leaveOwnTurn() }
            return try body(&value.pointee)
        }
        takeWord()
        defer { word.store(0, ordering: .releasing) }
        bias.lockTaken(biasing: true)
        return try body(&value.pointee)
    }

    /// Runs `body` on the value with the lock held, taken the ordinary way (the thread the lock
    /// is biased to, if another, loses the bias first).
    @inlinable
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        takeWord()
        defer { word.store(0, ordering: .releasing) }
        if bias.isBiased { bias.lockTaken(biasing: false) }
        return try body(&value.pointee)
    }

    /// Takes the lock's word: one compare-exchange, or a spin while another thread holds it.
    @inlinable @inline(__always)
    func takeWord() {
        if !word.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged { lockContended() }
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

/// The bias of a ``CursorLock``: the thread it is biased to, and whether that thread is in a turn
/// of its own (see CursorLock.swift's header). Not generic, so that the owner's turn is one
/// direct call whatever the lock guards.
@usableFromInline
final class CursorBias: Sendable {
    /// The owner's ``currentThreadWord()``; 0 when none (yet, or for good after a revocation).
    @usableFromInline let owner = Atomic<UInt>(0)
    /// True while the owner is in a turn of its own.
    @usableFromInline let inTurn = Atomic<Bool>(false)
    /// False once the bias was revoked: no thread is made owner again. Read and written with the
    /// lock's word held.
    let mayBias = Atomic<Bool>(true)

    @usableFromInline init() {}

    /// Whether the lock is biased to some thread.
    @inlinable
    var isBiased: Bool { owner.load(ordering: .relaxed) != 0 }

    /// Starts a turn of the owner if this thread is the owner and the bias was not revoked.
    /// Not inlined: the thread's word is read through the platform layer, and the barrier below
    /// keeps the store before the load in every caller.
    @usableFromInline
    func enterOwnTurn() -> Bool {
        let current = owner.load(ordering: .relaxed)
        guard current != 0, current == currentThreadWord() else { return false }
        inTurn.store(true, ordering: .relaxed)
        // The compiler keeps the store above before the load below; that the processor does not
        // reorder them either is the revoker's barrier's work (`revoke()`).
        compilerBarrier()
        if owner.load(ordering: .relaxed) == current { return true }
        inTurn.store(false, ordering: .releasing)
        return false
    }

    /// Ends the owner's turn.
    @inlinable
    func leaveOwnTurn() {
        inTurn.store(false, ordering: .releasing)
    }

    /// The lock's word was just taken: revokes another thread's bias, or (with `biasing`) biases
    /// the lock to this thread when it never was to any.
    @usableFromInline
    func lockTaken(biasing: Bool) {
        let current = owner.load(ordering: .relaxed)
        if current != 0 {
            if current != currentThreadWord() { revoke() }
        } else if biasing, mayBias.load(ordering: .relaxed), ProcessBarrier.isAvailable {
            owner.store(currentThreadWord(), ordering: .relaxed)
        }
    }

    /// Takes the bias from its owner for good, with the lock's word held: once this returns, the
    /// owner is out of its turn and starts no other (it takes the word as every thread does).
    private func revoke() {
        owner.store(0, ordering: .relaxed)
        mayBias.store(false, ordering: .relaxed)
        // Dekker's exclusion: the owner stores `inTurn`, then loads `owner`; this thread stored
        // `owner` and loads `inTurn`. The barrier orders the owner's store before its load (and
        // this thread's): either the owner sees 0 and stays out, or this thread sees its turn and
        // waits for its end.
        ProcessBarrier.run()
        var turns = 0
        while inTurn.load(ordering: .acquiring) {
            turns += 1
            if turns > 64 { yieldProcessor() }
        }
    }
}
