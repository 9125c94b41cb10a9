// The memory of a pool's shared read-only values (`Pool.share`): one anonymous memory file per
// local pool, created with the pool and passed to every worker at its spawn as fd 6
// (`WorkerDescriptors.firstPassed + 1`), replacements included, so that every worker can map
// every live value. Each value gets a page-aligned range of the file at its end (the file
// grows; ranges are never reused, which keeps a stale handle from ever reading a newer value);
// a freed range gets its memory back as a hole (MADV_REMOVE) and costs nothing from then on.
//
// Freeing: when the last handle of a value in the parent goes, the value is not freed at once:
// a call submitted before may still be about to read it. The segment asks the pool's core to
// run the free once every call in flight then has finished (`PoolCore.afterJobsInFlight`), or
// when the pool's workers are all gone. Workers find out through the value's header, which the
// hole zeroes (see WorkerSharedValues.swift).
//
// The descriptor closes when the pool's transport stops (no spawn needs it any more); values
// still alive then stay readable in the parent through their own mappings, and are freed when
// their last handle goes.
//
// Locking: the segment's own lock covers growing the file and mapping the new range (so that
// two shares cannot shrink the file under each other, and the descriptor cannot close under a
// `mmap`); it is never taken under the pool's storage lock.

import Synchronization

final class SharedSegment: Sendable {
    /// What the segment holds now (for tests and the statistics).
    struct Statistics: Equatable {
        /// Values with a handle in the parent.
        var liveValues: Int
        /// Values whose last handle went, waiting for the calls in flight then.
        var pendingFrees: Int
        /// Values freed so far.
        var freedValues: Int
        /// The memory the file's pages take now (nil once its descriptor closed).
        var allocatedBytes: Int?
    }

    private struct State {
        /// The file; a share writing into it holds it too, so that closing the segment cannot
        /// close the descriptor under that write.
        var file: SharedDescriptor?
        var isOpen = true
        var end = 0
        var live = 0
        var pending = 0
        var freed = 0
    }

    /// Where the segment asks for frees to wait: the pool's core, weakly (the core holds the
    /// segment).
    private struct Owner {
        weak var core: PoolCore?
    }

    /// The prefix of every segment's name; the rest is `<parent pid>-<number>`. A worker checks
    /// its fd 6 against it (with its parent's pid) before it maps anything.
    static let namePrefix = "swift-multiprocessing-shared-"
    private static let nextNumber = Atomic<UInt64>(1)

    private let state: Mutex<State>
    private let owner = Mutex(Owner())
    /// The descriptor's number, which spawns pass as fd 6 of every worker; valid until the
    /// transport stopped (``closeDescriptor()``), after the last spawn.
    let descriptor: Int32
    /// The file's name as `/proc/<pid>/fd` shows it, without `/memfd:`.
    let name: String

    /// Creates the pool's memory file (empty: it takes no memory until a value is shared).
    /// - Throws: ``SystemError`` from `memfd_create` (EMFILE, ENOMEM).
    init() throws(SystemError) {
        let number = Self.nextNumber.wrappingAdd(1, ordering: .relaxed).oldValue
        name = "\(Self.namePrefix)\(processIDs().own)-\(number)"
        let file = try createMemoryFile(name: name, size: 0)
        descriptor = file.rawValue
        state = Mutex(State(file: SharedDescriptor(file)))
    }

    /// Frees are to wait for `core`'s calls in flight.
    func attach(to core: PoolCore) {
        owner.withLock { $0.core = core }
    }

    /// Adds a range of `length` bytes (a multiple of the page size) at the end of the file, writes
    /// `contents` into it at `contentsOffset` (through the file: one copy, see `writeFile`), and
    /// maps the range writable for the parent (its pages come into the parent's mapping as the
    /// parent reads them).
    ///
    /// The write runs outside the segment's lock (256 MiB take the better part of a second on
    /// the project's VM): another share, or the pool's stop, does not wait for it.
    /// - Throws: ``PoolError`` `.notRunning` once the pool stopped; `.invalidArgument` (with the
    ///   ``SystemError`` as its underlying error) when the file cannot grow, the range cannot
    ///   be mapped, or the system cannot supply the memory for the contents (ENOMEM, ENOSPC,
    ///   EFBIG); the range is given back then.
    func allocate(
        length: Int, contents: UnsafeRawBufferPointer, at contentsOffset: Int
    ) throws(PoolError) -> (offset: Int, mapping: SharedMapping) {
        precondition(contentsOffset >= 0 && contentsOffset + contents.count <= length, "contents outside the range")
        let (offset, mapping, file) = try state.withLock {
            state throws(PoolError) -> (Int, SharedMapping, SharedDescriptor) in
            guard state.isOpen, let file = state.file else {
                throw PoolError(.notRunning, "the pool was stopped: its shared memory is closed; create a new pool")
            }
            let offset = state.end
            let (end, overflow) = offset.addingReportingOverflow(length)
            guard !overflow else { throw PoolError(.invalidArgument, "a shared value of \(length) bytes is too large") }
            do {
                try resizeMemoryFile(descriptor, to: end)
                state.end = end
                let mapping = try SharedMapping(fd: descriptor, offset: offset, count: length, writable: true)
                state.live += 1
                return (offset, mapping, file)
            } catch {
                throw PoolError(
                    .invalidArgument, "the pool cannot add \(length) bytes of shared memory: \(error)",
                    underlying: error)
            }
        }
        do {
            try writeFile(file.rawValue, at: offset + contentsOffset, from: contents)
        } catch {
            // No handle names the range yet: it goes back at once.
            state.withLock {
                $0.live -= 1
                $0.pending += 1
            }
            discard(mapping)
            throw PoolError(
                .invalidArgument, "the pool cannot fill \(contents.count) bytes of shared memory: \(error)",
                underlying: error)
        }
        return (offset, mapping)
    }

    /// The last handle of the value mapped by `mapping` went: frees it once every call in flight
    /// now has finished (at once when there is none, or the pool is gone).
    func release(_ mapping: SharedMapping) {
        state.withLock {
            $0.live -= 1
            $0.pending += 1
        }
        if let core = owner.withLock({ $0.core }) {
            core.afterJobsInFlight { [self] in discard(mapping) }
        } else {
            discard(mapping)
        }
    }

    /// Gives the range's memory back (the mapping is the parent's last one of it and unmaps when
    /// the caller lets go of it).
    private func discard(_ mapping: SharedMapping) {
        // EINVAL/EACCES here would be this library's bug; the memory then goes with the file.
        _ = try? mapping.discardContents()
        state.withLock {
            $0.pending -= 1
            $0.freed += 1
        }
    }

    /// Closes the descriptor: the transport stopped, no worker will be spawned again.
    func closeDescriptor() {
        state.withLock {
            $0.isOpen = false
            $0.file = nil
        }
    }

    /// A snapshot of the counts, and of the memory the file takes (one `fstat`).
    var statistics: Statistics {
        state.withLock { state in
            let allocated = !state.isOpen ? nil : (try? memoryFileStatus(descriptor))?.allocatedBytes
            return Statistics(
                liveValues: state.live, pendingFrees: state.pending, freedValues: state.freed,
                allocatedBytes: allocated)
        }
    }
}
