// A worker makes the pages of its two rings present while it is idle, a step at a time, from its
// first task on: the first large job of a pool then finds them there (on the worker's side, and
// allocated for the parent's side too, which then only maps them) instead of taking a page fault
// per 4 KiB of each ring on both sides. Not at the worker's start, which would lengthen every
// pool's start (measured when the rings were populated at creation: 3.5 ms more); the pages count
// in the worker's resident memory once present (4 MiB), as they do once a job has cycled through
// the rings.

/// Makes a worker's ring memory present, step by step (see the file's header). Used on the
/// worker's one thread.
final class RingPrefault {
    private let area: UnsafeMutableRawBufferPointer
    private var done = 0

    /// What one step makes present: a frame that comes meanwhile waits for one step at most.
    static let stepBytes = 256 << 10

    init(_ area: UnsafeMutableRawBufferPointer) {
        self.area = area
    }

    /// Makes the next ``stepBytes`` present; returns false once everything is (or the kernel
    /// cannot: then the pages are faulted in as they are used, as without this).
    func step() -> Bool {
        guard done < area.count, let base = area.baseAddress else { return false }
        let count = min(RingPrefault.stepBytes, area.count - done)
        guard populateForWriting(base + done, count: count) else {
            done = area.count
            return false
        }
        done += count
        return done < area.count
    }
}
