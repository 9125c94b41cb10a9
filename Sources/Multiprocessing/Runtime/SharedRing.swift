// One direction of a worker's data plane: a byte ring in memory both processes map, with the
// protocol that lets each side sleep without costing the other a system call while it is awake.
//
// The ring carries the same byte stream the pipes used to: frames, then their attachments (see
// Attachments.swift). A producer copies into the free space and publishes its position (release);
// the consumer copies out and publishes its own. Positions only grow (64 bits), so full and empty
// are never confused.
//
// Waking (a spin-then-sleep protocol in the manner of a futex):
// - A consumer that finds the ring empty may spin a while; before it sleeps it *arms* (stores 1,
//   then a full fence) and looks once more. A producer, after publishing, fences and takes the
//   flag (exchange with 0): only when it was armed does it ring the consumer's doorbell. A side
//   that is awake therefore costs the other no system call, and a sleeping one is woken exactly
//   when it sleeps. (The fences on both sides make sure at least one of them sees the other.)
//   Taking the flag before ringing is safe because a doorbell byte stays in its pipe until it is
//   read: rung a moment before its reader sleeps, it still wakes it. The doorbell is the worker's
//   pipe, not the futex itself: the parent's I/O thread sleeps in
//   epoll over every worker's pipe and pidfd at once, which no futex can join; a pipe also tells
//   each side of the other's end (end of file), as it always did.
// - A producer that finds the ring full marks itself waiting (then a fence, and a second look);
//   the consumer, after freeing space, takes the mark and wakes it: the worker sleeps on a futex
//   over the mark itself (a wake that comes before the sleep leaves the mark cleared, and the
//   sleep returns at once); the parent, which never blocks in a write, is told through the
//   worker's result pipe (its doorbell) and writes the rest from its I/O thread.
//
// Starting over: a producer that finds the ring drained (the consumer has read everything) writes
// its next message at the ring's start rather than after the last one, if the whole message (the
// rest of the frame and its attachments, which it may write in several parts) fits in the space
// before its position (all of it read) and, for a message under a quarter of the ring, leaves room
// there for the next one (until the consumer has followed, only that space is free: see
// `startsOver`). It skips the rest of the ring: it records where the skip
// starts and ends (beside its position, published with it), and the consumer, reading at the
// skip's start, goes on at its end. A ring whose messages are mostly taken as they come (a chunk
// at a time) then reuses the same pages, which stay mapped and in the cache, instead of cycling
// through all of its memory: the first pass over pages never touched costs a page fault each (in
// a fresh pool's first large job, hundreds per ring), and the pages of a ring cycled through
// leave the cache. A skip is recorded only while the ring is drained, so the consumer is always at
// its start when it sees it, and there is never more than one to follow. Messages under a page do
// not start over: what they would save is small, and recording the skip is not free.

import Synchronization

/// One direction of a shared-memory byte stream: the view of a ring whose memory a
/// ``SharedChannel`` keeps mapped. Copies of it are views of the same ring.
///
/// A ring has one producer and one consumer at a time (each side's callers serialize their
/// calls: the parent under its locks, the worker on its one thread).
struct SharedRing: @unchecked Sendable {
    /// The smallest message that starts over at the ring's start (see the file's header): a page.
    static let smallestRestart = 4096

    /// The room a message smaller than a quarter of the ring leaves free when it starts over:
    /// this much, or as much as the message itself if that is more (see ``startsOver(message:at:capacity:)``).
    static let roomAfterRestart = 64 * 1024

    /// Whether a message of `whole` bytes, written into a drained ring at `position` (its offset
    /// in the data area), starts over at the ring's start: it must be of a page or more and fit
    /// before `position`; one under a quarter of the ring must also leave room for the next message
    /// of its size (and at least ``roomAfterRestart``) there.
    ///
    /// Until the consumer follows the skip, only the space before `position` is free. Restarting
    /// a message that just fits left none: a ring carrying one 8 KB chunk at a time started over
    /// at every message (always from the position of the last), and a producer one message ahead
    /// of its consumer found it full. A worker that wrote a second result before the parent's I/O
    /// thread read the first then slept on the ring's futex, and the parent writing tasks waited
    /// for its doorbell: in `imap` of 3e6 items (chunksize 1000, 2 workers) a third of the chunks
    /// did so (each worker's futex waits in `pool-workloads imap`, whose two streams send it
    /// 3,000 chunks: 1,100 → 0; see PerformanceAndChunksize.md). Messages of a quarter of the ring or more (a `starmap`'s
    /// 1–2 MiB chunks) keep the plain rule: two of them never fit unread anyway, and restarting
    /// them is what keeps a fresh pool's first large job from faulting in the whole ring.
    @inline(__always)
    static func startsOver(message whole: Int, at position: Int, capacity: Int) -> Bool {
        guard whole >= smallestRestart, whole <= position else { return false }
        return whole >= capacity / 4 || position - whole >= max(whole, roomAfterRestart)
    }

    /// The ring's control block: four cache lines (producer's position and its skip, consumer's
    /// position, the consumer's armed flag, the producer's waiting flag), one each so that
    /// neither side's stores slow down the other's loads.
    static let controlSize = 4 * 64

    /// The control block (internal for the tests, which write over it as a broken peer would).
    let control: UnsafeMutableRawPointer
    private let data: UnsafeMutableRawPointer
    /// The data area's size in bytes, a power of two.
    let capacity: Int

    /// A view of the ring whose control block is at `control` and data at `data`.
    init(control: UnsafeMutableRawPointer, data: UnsafeMutableRawPointer, capacity: Int) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "ring capacity \(capacity) is not a power of two")
        self.control = control
        self.data = data
        self.capacity = capacity
    }

    /// Sets up a fresh control block (both positions 0; the consumer armed, the producer not
    /// waiting). Only its creator calls this, before the other process starts.
    func initialize() {
        tail.initialize(to: Atomic(0))
        skipStart.initialize(to: Atomic(0))
        skipEnd.initialize(to: Atomic(0))
        head.initialize(to: Atomic(0))
        armed.initialize(to: Atomic(1))
        waiting.initialize(to: Atomic(0))
    }

    private var tail: UnsafeMutablePointer<Atomic<UInt64>> { control.assumingMemoryBound(to: Atomic<UInt64>.self) }
    /// Where the producer's last skip to the ring's start began and ended (equal: none yet), in
    /// the producer's cache line.
    private var skipStart: UnsafeMutablePointer<Atomic<UInt64>> {
        (control + 8).assumingMemoryBound(to: Atomic<UInt64>.self)
    }
    private var skipEnd: UnsafeMutablePointer<Atomic<UInt64>> {
        (control + 16).assumingMemoryBound(to: Atomic<UInt64>.self)
    }
    private var head: UnsafeMutablePointer<Atomic<UInt64>> {
        (control + 64).assumingMemoryBound(to: Atomic<UInt64>.self)
    }
    private var armed: UnsafeMutablePointer<Atomic<UInt64>> {
        (control + 128).assumingMemoryBound(to: Atomic<UInt64>.self)
    }
    private var waiting: UnsafeMutablePointer<Atomic<UInt64>> {
        (control + 192).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// The data area's first byte (for the tests, which look at which of its pages are present).
    var dataStart: UnsafeMutableRawPointer { data }

    /// Makes `count` bytes of the data area, from `offset`, present in this process's mapping
    /// now (best effort; their contents are left as they are: see RingPrefault.swift).
    func makePresent(offset: Int, count: Int) {
        precondition(offset >= 0 && count >= 0 && offset + count <= capacity, "a range outside the ring")
        populateForWriting(data + offset, count: count)
    }

    // MARK: - Producer

    /// Where in the data area the producer's next byte goes if it does not start over (the
    /// producer's view).
    var producerOffset: Int { Int(tail.pointee.load(ordering: .relaxed) & UInt64(capacity - 1)) }

    /// Copies as much of `bytes` as fits into the ring and publishes it; returns the count (0
    /// also when the consumer's position is impossible: see ``positionsAreValid``). Into a
    /// drained ring, a message that fits before the position goes at the ring's start (see the
    /// file's header).
    /// - Parameter message: The bytes of the message still to write, these included (a frame and
    ///   its attachments go in several writes); 0 when these are all of it.
    @inline(__always)
    func write(_ bytes: UnsafeRawBufferPointer, message: Int = 0) -> Int {
        var t = tail.pointee.load(ordering: .relaxed)
        let h = head.pointee.load(ordering: .acquiring)
        // Positions the other process writes are checked before they are used: a broken worker
        // must not make the parent trap or copy out of bounds.
        var used = t &- h
        guard used <= UInt64(capacity) else { return 0 }
        let position = Int(t & UInt64(capacity - 1))
        // Not for small messages (a lone call's): they touch a new page only now and then, and
        // recording a skip for each cost both sides about 30 instructions a call (`startsOver`).
        let whole = max(message, bytes.count)
        if used == 0 && bytes.count > 0 && SharedRing.startsOver(message: whole, at: position, capacity: capacity) {
            // Published with the position below (release): the consumer sees the skip with
            // the bytes after it. The skipped bytes count as used until it has.
            let end = t &+ UInt64(capacity - position)
            skipStart.pointee.store(t, ordering: .relaxed)
            skipEnd.pointee.store(end, ordering: .relaxed)
            t = end
            used = UInt64(capacity - position)
        }
        let count = min(bytes.count, capacity - Int(used))
        guard count > 0 else { return 0 }
        let start = Int(t & UInt64(capacity - 1))
        let first = min(count, capacity - start)
        (data + start).copyMemory(from: bytes.baseAddress!, byteCount: first)
        if count > first { data.copyMemory(from: bytes.baseAddress! + first, byteCount: count - first) }
        tail.pointee.store(t &+ UInt64(count), ordering: .releasing)
        return count
    }

    /// Room for a whole message of `count` bytes in one piece, for the producer to write in
    /// place (a worker's packed results, stored there by the chunk's loop) and then publish with
    /// ``publish(_:)``; nil when the free space after the position (or, in a drained ring, before
    /// it: see the file's header) holds no such piece now. Nothing is published until then, and
    /// the producer writes nothing else in between.
    func reserve(_ count: Int) -> Reservation? {
        let t = tail.pointee.load(ordering: .relaxed)
        let h = head.pointee.load(ordering: .acquiring)
        let used = t &- h
        guard count > 0, used <= UInt64(capacity), count <= capacity - Int(used) else { return nil }
        let position = Int(t & UInt64(capacity - 1))
        if used == 0 && count >= SharedRing.smallestRestart && count <= position {
            // At the ring's start: the plain rule, not `startsOver`'s room for the next message
            // that ``write(_:message:)`` keeps. With `startsOver` here, `pool-workloads imap`
            // (whose 8 KB results a worker stores in place) read with `for try await` took
            // 82–111 ms against 64–103 (7 alternating runs; `next()` within noise), although a
            // worker one result ahead then waits for the parent to follow the skip.
            let end = t &+ UInt64(capacity - position)
            return Reservation(start: end, count: count, skipFrom: t, pointer: data)
        }
        guard count <= capacity - position else { return nil }
        return Reservation(start: t, count: count, skipFrom: nil, pointer: data + position)
    }

    /// Whether a message of `count` bytes would go in whole, in one piece, now (where
    /// ``reserve(_:)`` would put it; ``write(_:message:)`` starts a message under a quarter of the
    /// ring over only where it leaves room for the next).
    func fitsWhole(_ count: Int) -> Bool {
        reserve(count) != nil
    }

    /// Space ``reserve(_:)`` set aside: `count` bytes at `pointer`, published by ``publish(_:)``.
    struct Reservation {
        /// The producer's position of the reserved bytes' first.
        let start: UInt64
        let count: Int
        /// Where a skip to the ring's start begins (the position before it), if the bytes go there.
        let skipFrom: UInt64?
        let pointer: UnsafeMutableRawPointer
    }

    /// Publishes the bytes written into `reservation` (the producer's only write since
    /// ``reserve(_:)``), with the skip to the ring's start it needs, if any.
    func publish(_ reservation: Reservation) {
        if let skipFrom = reservation.skipFrom {
            skipStart.pointee.store(skipFrom, ordering: .relaxed)
            skipEnd.pointee.store(reservation.start, ordering: .relaxed)
        }
        tail.pointee.store(reservation.start &+ UInt64(reservation.count), ordering: .releasing)
    }

    /// After publishing: whether the consumer is asleep and must be woken (its doorbell rung). It
    /// is disarmed, so it is rung once per sleep.
    func takeConsumerArmed() -> Bool {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        guard armed.pointee.load(ordering: .relaxed) != 0 else { return false }
        return armed.pointee.exchange(0, ordering: .acquiringAndReleasing) != 0
    }

    /// The ring was full: marks the producer as waiting for space. Look at the free space again
    /// after this; the consumer wakes the producer once it freed some.
    func markProducerWaiting() {
        waiting.pointee.store(1, ordering: .relaxed)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    /// Whether the consumer has read everything published (the producer's view).
    var isDrained: Bool {
        head.pointee.load(ordering: .acquiring) == tail.pointee.load(ordering: .relaxed)
    }

    /// Whether there is room for at least one byte.
    var hasFreeSpace: Bool {
        tail.pointee.load(ordering: .relaxed) &- head.pointee.load(ordering: .acquiring) < UInt64(capacity)
    }

    /// Whether the two positions make sense: at most ``capacity`` bytes between them. Only a
    /// process that wrote over the ring's control block (a broken worker) breaks this.
    var positionsAreValid: Bool {
        tail.pointee.load(ordering: .acquiring) &- head.pointee.load(ordering: .acquiring) <= UInt64(capacity)
    }

    /// Sleeps (the worker, its result ring full) until the consumer frees space, for at most
    /// `timeoutMilliseconds`; after ``markProducerWaiting()`` and a last look. Returns false
    /// when the sleep ran out without a wake-up.
    ///
    /// The futex word is the waiting mark itself (its low half, little-endian): a consumer that
    /// took the mark before this thread got to sleep has cleared it, and the wait then returns at
    /// once. (Sleeping on the consumer's position instead lost that wake-up: the consumer could
    /// take the mark, and wake nobody, between this thread's last look and its sleep.)
    @discardableResult
    func sleepUntilSpace(timeoutMilliseconds: Int32) -> Bool {
        guard !hasFreeSpace else { return true }
        return futexWait(UnsafeRawPointer(waiting), expected: 1, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Sleeps (the worker) until the consumer frees some space, however much is free now, for at
    /// most `timeoutMilliseconds`; after ``markProducerWaiting()`` and a last look (for room in
    /// one piece: see ``reserve(_:)``). Returns false when the sleep ran out without a wake-up.
    @discardableResult
    func sleepUntilFreed(timeoutMilliseconds: Int32) -> Bool {
        futexWait(UnsafeRawPointer(waiting), expected: 1, timeoutMilliseconds: timeoutMilliseconds)
    }

    // MARK: - Consumer

    /// Copies up to `count` available bytes to `buffer`, frees their space, and returns how many
    /// there were (0: the ring is empty). Wakes a producer that waits for space.
    /// Returns -1, reading nothing, when the positions are impossible (``positionsAreValid``).
    func read(into buffer: UnsafeMutableRawPointer, count requested: Int) -> Int {
        guard let (position, available) = readable() else { return -1 }
        let count = min(requested, available)
        guard count > 0 else { return 0 }
        copy(from: position, count: count, into: buffer)
        consume(to: position &+ UInt64(count))
        return count
    }

    /// What there is to read, without reading it: where the consumer's position is (past a skip
    /// to the ring's start, see the file's header) and how many bytes follow it. nil when the
    /// positions are impossible (``positionsAreValid``). Read the bytes with ``copy(from:count:into:)``
    /// and free them with ``consume(to:)``: ``read(into:count:)`` is the three in one.
    @inline(__always)
    func readable() -> (position: UInt64, count: Int)? {
        var h = head.pointee.load(ordering: .relaxed)
        let t = tail.pointee.load(ordering: .acquiring)
        if t != h && skipStart.pointee.load(ordering: .relaxed) == h {
            // The producer started over at the ring's start (see the file's header). Checked
            // like the positions: a broken worker's skip must not move the parent out of bounds.
            let end = skipEnd.pointee.load(ordering: .relaxed)
            if end != h {
                let skipped = end &- h
                guard skipped < UInt64(capacity), end & UInt64(capacity - 1) == 0, t &- end <= t &- h else {
                    return nil
                }
                h = end
            }
        }
        let available = t &- h
        guard available <= UInt64(capacity) else { return nil }
        return (h, Int(available))
    }

    /// Copies `count` bytes that ``readable()`` reported, from `position` on, to `buffer`
    /// (across the ring's end if they wrap), without freeing them.
    func copy(from position: UInt64, count: Int, into buffer: UnsafeMutableRawPointer) {
        precondition(count <= capacity, "a copy of \(count) bytes from a ring of \(capacity)")
        guard count > 0 else { return }
        let start = Int(position & UInt64(capacity - 1))
        let first = min(count, capacity - start)
        buffer.copyMemory(from: data + start, byteCount: first)
        if count > first { (buffer + first).copyMemory(from: data, byteCount: count - first) }
    }

    /// The `count` bytes from `position` on (which ``readable()`` reported) where they lie, when
    /// they lie in one piece (not across the ring's end); nil when they do not. They stay the
    /// consumer's to read until it frees them (``consume(to:)``).
    func contiguousBytes(at position: UInt64, count: Int) -> UnsafeRawBufferPointer? {
        let start = Int(position & UInt64(capacity - 1))
        guard count >= 0, count <= capacity - start else { return nil }
        return UnsafeRawBufferPointer(start: data + start, count: count)
    }

    /// Frees everything before `position` (one that ``readable()`` reported, plus bytes read
    /// with ``copy(from:count:into:)``). Wake a producer that waits for space after this
    /// (``takeProducerWaiting()``).
    func consume(to position: UInt64) {
        head.pointee.store(position, ordering: .releasing)
    }

    /// Whether at least `count` bytes may be there to read: an upper bound (bytes skipped to
    /// the ring's start count too), for a consumer to look no further when it is not met.
    @inline(__always)
    func mayHave(_ count: Int) -> Bool {
        tail.pointee.load(ordering: .acquiring) &- head.pointee.load(ordering: .relaxed) >= UInt64(count)
    }

    /// Whether bytes were written beyond `position` (a position at or before the end of what is
    /// written, such as the end of a frame the consumer holds in place).
    func hasBytes(beyond position: UInt64) -> Bool {
        tail.pointee.load(ordering: .acquiring) != position
    }

    /// Whether nothing is there to read.
    var isEmpty: Bool {
        tail.pointee.load(ordering: .acquiring) == head.pointee.load(ordering: .relaxed)
    }

    /// Before sleeping: arms the consumer, so that the next producer rings its doorbell. Look
    /// at the ring again after this (``isEmpty``) before sleeping.
    func armConsumer() {
        armed.pointee.store(1, ordering: .relaxed)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    /// While spinning: the producer need not ring.
    func disarmConsumer() {
        armed.pointee.store(0, ordering: .relaxed)
    }

    /// After freeing space: whether the producer waits for it (and must be woken). Cleared, so it
    /// is woken once per wait.
    func takeProducerWaiting() -> Bool {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        guard waiting.pointee.load(ordering: .relaxed) != 0 else { return false }
        return waiting.pointee.exchange(0, ordering: .acquiringAndReleasing) != 0
    }

    /// Wakes a producer sleeping in ``sleepUntilSpace(timeoutMilliseconds:)`` (after
    /// ``takeProducerWaiting()`` cleared its mark).
    func wakeProducer() {
        futexWake(UnsafeRawPointer(waiting))
    }
}

/// The consumer side of a ring as a ``ByteSource`` for a ``FrameAccumulator``: an empty ring
/// reads as "would block"; a producer waiting for space is woken as soon as space is freed, so
/// that its copy and the reader's overlap.
struct RingSource: ByteSource {
    /// How the producer of a ring waits for space.
    enum ProducerWake {
        /// On a futex (the worker, writing results).
        case futex
        /// For its doorbell, this pipe (the parent, writing tasks, is woken through the result
        /// pipe).
        case doorbell(Int32)
    }

    let ring: SharedRing
    let wake: ProducerWake

    /// - Throws: ``FrameError`` when the ring's positions are impossible (its producer wrote over
    ///   them): the stream is corrupt.
    mutating func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> ReadOutcome {
        let n = ring.read(into: buffer, count: count)
        if n < 0 { throw FrameError(description: "the shared ring's positions are corrupt") }
        guard n > 0 else { return .wouldBlock }
        wakeProducerIfWaiting()
        return .bytes(n)
    }

    /// After freeing space: wakes the producer if it waits for it.
    func wakeProducerIfWaiting() {
        if ring.takeProducerWaiting() {
            switch wake {
            case .futex: ring.wakeProducer()
            case .doorbell(let fd): ringDoorbell(fd)
            }
        }
    }
}
