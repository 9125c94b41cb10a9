// The lock of an `imap` stream's cursor (StreamStorage.swift): taken once per item by the
// consumer, so its cost is the per-item cost of reading a stream.
//
// Biased to the thread that reads the stream. The common reader is one thread calling
// `next(timeout:)` in a loop; the lock makes that thread its *owner*, whose turns cost no atomic
// read-modify-write: it says it is in a turn (a plain store), checks that it still owns the lock
// (a plain load) and leaves with a releasing store. Any other thread (a second reader, a cancel, a
// release of the stream from another thread) takes the lock with a compare-exchange and, when it
// finds the lock owned by another thread, revokes the bias for good: it clears the owner, runs a
// barrier on every thread of the process (membarrier(2): ProcessBarrier+Linux.swift), which orders
// the owner's store before its load as a fence in the owner would, then waits for the owner's turn
// to end (a few instructions: taking one item never waits for anything). This is Dekker's
// exclusion with the expensive half of the fence moved to the rare side, as userspace RCU does.
// From then on every thread takes the compare-exchange; so a stream read by several threads pays
// one barrier in all.
//
// Measured on `imap` of 3e6 items (chunksize 1000), 2 workers, `pool-workloads imap` under
// `chrt -f 10`: a compare-exchange and a releasing store cost 10 ns a turn on this machine, a
// biased turn under 1 ns; see README for the stream's times before and after.
//
// Without membarrier (kernel before 4.14, a seccomp filter that forbids it) no thread is ever made
// owner: every turn is a compare-exchange (taken) and a releasing store (released), as before.
// A thread that finds the lock taken spins, then yields its core: the holder keeps it for one item,
// or for loading the next chunk (a look at the stream's state), never across a wait.

public import Synchronization

/// A value guarded by a lock biased to one thread (see the file's header).
@usableFromInline
final class CursorLock<Value>: @unchecked Sendable {
    /// 1 while a thread holds the lock the ordinary way (compare-exchange).
    @usableFromInline let word = Atomic<UInt32>(0)
    /// The owner's `pthread_t` (``currentThreadWord()``); 0 when none (yet, or for good after a
    /// revocation).
    @usableFromInline let owner = Atomic<UInt>(0)
    /// True while the owner is in a turn of its own (``withOwnedLock(_:)``).
    @usableFromInline let ownerInTurn = Atomic<Bool>(false)
    /// False once the bias was revoked: no thread is made owner again. Read and written with the
    /// lock held.
    let mayBias = Atomic<Bool>(true)
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

    /// Runs `body` on the value with the lock held, as the reader of the stream: a turn without an
    /// atomic read-modify-write when this thread owns the lock; else the lock is taken the
    /// ordinary way, and this thread is made its owner if none is and none was.
    @inlinable
    func withOwnedLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        if owner.load(ordering: .relaxed) != 0, enterOwnTurn() {
            defer { ownerInTurn.store(false, ordering: .releasing) }
            return try body(&value.pointee)
        }
        lock(biasing: true)
        defer { word.store(0, ordering: .releasing) }
        return try body(&value.pointee)
    }

    /// Runs `body` on the value with the lock held (taken the ordinary way; the lock's owner, if
    /// another thread, loses the bias first).
    @inlinable
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock(biasing: false)
        defer { word.store(0, ordering: .releasing) }
        return try body(&value.pointee)
    }

    /// Starts a turn of the owner, if this thread is the owner and the bias was not revoked.
    /// Not inlined: the fence below must stay between the store and the load in every caller.
    @usableFromInline
    func enterOwnTurn() -> Bool {
        let me = currentThreadWord()
        guard owner.load(ordering: .relaxed) == me else { return false }
        ownerInTurn.store(true, ordering: .relaxed)
        // Keeps the compiler from moving the store above after the load below (on x86 this
        // fence is no instruction). That the hardware does not reorder them either is the
        // revoker's barrier's work (`revoke()`).
        atomicMemoryFence(ordering: .acquiringAndReleasing)
        if owner.load(ordering: .relaxed) == me { return true }
        ownerInTurn.store(false, ordering: .releasing)
        return false
    }

    /// Takes the lock the ordinary way; then revokes another thread's bias, or (with `biasing`)
    /// makes this thread the owner when the lock never had one.
    @usableFromInline
    func lock(biasing: Bool) {
        if !word.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged { lockContended() }
        let current = owner.load(ordering: .relaxed)
        if current != 0 {
            if current != currentThreadWord() { revoke() }
        } else if biasing, mayBias.load(ordering: .relaxed), ProcessBarrier.isAvailable {
            owner.store(currentThreadWord(), ordering: .relaxed)
        }
    }

    /// Takes the bias from its owner for good, with the lock held: once this returns, the owner
    /// is out of its turn and will not start another (it takes the lock the ordinary way).
    private func revoke() {
        owner.store(0, ordering: .relaxed)
        mayBias.store(false, ordering: .relaxed)
        // Dekker's exclusion: the owner stores `ownerInTurn` then loads `owner`; this thread
        // stored `owner` and loads `ownerInTurn`. The barrier orders the owner's store before its
        // load (and this thread's): either the owner sees 0 and stays out, or this thread sees
        // its turn and waits for the end of it.
        ProcessBarrier.run()
        var turns = 0
        while ownerInTurn.load(ordering: .acquiring) {
            turns += 1
            if turns > 64 { yieldProcessor() }
        }
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
