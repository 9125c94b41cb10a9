// The worker makes the first pages of its two rings present while it has nothing to do, a slice
// at a time, so that the first large job does not pay for them.
//
// A ring's page costs a page fault the first time it is touched, and the first fault on a page
// of the channel's memory file also allocates and zeroes it: on the machine the package is
// developed on (a VM), about 1 µs a KiB, against 0.5 µs a KiB for a process that maps a page
// another process already allocated. A fresh pool's first `starmap` of 1e6 pairs wrote its
// first chunks (about 1 MiB) into pages never touched, inside the caller's submission, and each
// worker took its first results' pages in its result ring. A worker that has just reported ready
// is usually idle, so it does this work then, in its own process and off the parent's path:
// the first ``extent`` bytes of each ring (a ring read a chunk at a time keeps reusing its first
// pages, see SharedRing.swift), in slices of ``slice`` bytes, looking at its task ring between
// two slices, so that a task that comes waits for one slice at most.
//
// Done when the pool's rings were made present at their creation instead, every pool's start
// took 3.5 ms more: here the work falls in idle time. The pages are the channel's memory file's
// whatever process touched them first, so the parent's writes into the task ring then only map
// pages that exist.

/// The worker's plan for making its rings' first pages present (see the file's header).
struct RingPrefault {
    /// How many bytes of each ring's start are made present.
    static let extent = 1 << 20
    /// How many bytes one step makes present: 16 pages, about 60 µs on the development VM.
    static let slice = 64 << 10

    private let rings: [SharedRing]
    /// The ring being made present, and how far.
    private var ring = 0
    private var offset = 0

    init(_ rings: [SharedRing]) {
        self.rings = rings
    }

    /// Whether every slice is done.
    var isFinished: Bool { ring == rings.count }

    /// Makes the next slice present; false when there was none left.
    mutating func step() -> Bool {
        guard ring < rings.count else { return false }
        let limit = min(RingPrefault.extent, rings[ring].capacity)
        let count = min(RingPrefault.slice, limit - offset)
        rings[ring].makePresent(offset: offset, count: count)
        offset += count
        if offset >= limit {
            ring += 1
            offset = 0
        }
        return true
    }
}
