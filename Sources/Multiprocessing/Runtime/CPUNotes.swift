// Where each side of a worker's channel last ran, so that a side spinning for the other can tell
// when the other shares its CPU and must be let run at once.
//
// A spin (a caller waiting for its lone call's result, a worker waiting for its next lone task)
// holds its core for up to 15 µs before it yields it now and then (`spinWithoutYield`): that pays
// when the two sides run on two CPUs. When they share one, the side waited for cannot run until
// the spinner yields, and every round trip pays the whole spin: a fresh pool's worker starts on
// its parent's CPU and stays there until the kernel's load balancer moves one of them (tens of
// milliseconds), so a fresh pool's first lone calls took 29–47 µs instead of 2–3; a busy machine
// puts the two together too. So each side notes the CPU it runs on where it hands work to the
// other (the parent as it writes a task and as it starts waiting for a result; the worker as it
// takes a task), and a spinner that finds the other side noted on its own CPU yields from the
// start. A note may be stale (the thread moved since): that costs a yield too many or a spin too
// long, never more.
//
// Measured (`pool-workloads colocated`: the caller's thread and the workers held on CPU 0 for
// 50 ms, then let run anywhere, on a machine whose other CPU was busy): batches of 200 lone calls
// right after took 36–49 µs a call (medians of 8 pools, 20 batches each), 5.6–6.7 µs with the
// notes. The price: a spin that yields keeps the two on one CPU, where the kernel used to move
// one of them after 10–40 ms when the other CPU was free (then 2.5–3 µs a call); with it free,
// the notes gave 6–9 µs throughout. Sleeping instead of yielding (so that a wake-up might place
// one of the two on another CPU) gave 16–24 µs: the wake-ups put the two back together; a worker
// moving itself off the CPU (its affinity mask without it, then as it was) 18–31 µs.
//
// What the notes could not do, move the two apart when the other CPU is free, the caller's side now
// does itself (Colocation.swift).
//
// Each side's note is a word of its own cache line in the channel's header (SharedChannel.swift),
// written only when it changes: the other side reads it once every 64 turns of a spin.

import Synchronization

/// One side's view of the two CPU notes of a ``SharedChannel``: its own, which it writes, and the
/// other side's, which it reads.
struct CPUNotes: @unchecked Sendable {
    /// The note of the side holding this view.
    private let mine: UnsafeMutablePointer<Atomic<Int64>>
    /// The other side's note.
    private let theirs: UnsafeMutablePointer<Atomic<Int64>>

    /// What a note holds before its side first wrote it (no CPU shares it).
    static let unknown: Int64 = -1

    /// The view of the side whose note is at `mine`, the other side's at `theirs` (words of the
    /// channel's shared memory, which must outlive the view).
    init(mine: UnsafeMutableRawPointer, theirs: UnsafeMutableRawPointer) {
        self.mine = mine.assumingMemoryBound(to: Atomic<Int64>.self)
        self.theirs = theirs.assumingMemoryBound(to: Atomic<Int64>.self)
    }

    /// Sets a fresh note at `word` to ``unknown`` (the channel's creator, before the worker starts).
    static func initialize(_ word: UnsafeMutableRawPointer) {
        word.assumingMemoryBound(to: Atomic<Int64>.self).initialize(to: Atomic(unknown))
    }

    /// Notes the CPU the calling thread runs on as this side's.
    func note() {
        let cpu = Int64(currentCPU())
        if mine.pointee.load(ordering: .relaxed) != cpu { mine.pointee.store(cpu, ordering: .relaxed) }
    }

    /// Whether the other side was last noted on the CPU the calling thread runs on now.
    var otherSideSharesThisCPU: Bool {
        let theirs = theirs.pointee.load(ordering: .relaxed)
        return theirs != CPUNotes.unknown && theirs == Int64(currentCPU())
    }

    /// The other side's note (for the tests).
    var otherSide: Int64 { theirs.pointee.load(ordering: .relaxed) }
}
