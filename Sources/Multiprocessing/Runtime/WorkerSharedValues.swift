// The worker's side of shared values: the mappings of the values its tasks have read, one per
// value, mapped read-only from its fd 6 (the parent's memory file, passed at its spawn) the first
// time a task decodes a handle of the value, and kept for the tasks after it.
//
// Before it maps anything, the worker checks that fd 6 is its parent's segment (by the name
// `/proc/self/fd/6` shows: a worker of a cluster, or code that opened a file of its own on that
// number, must not map a stranger's file), that the handle's range lies inside the file (a
// mapping past the end would raise SIGBUS on the first read), and that the range's header
// names the handle's value, count and element type: a forged or stale handle fails with an
// error, never a crash. The header is read with `pread`, not through a mapping, so that the
// hole of a freed value stays a hole.
//
// A value the parent freed reads zeros in its header: each lookup drops the mappings whose
// header no longer names their value (a `pread` of 16 bytes each; a worker keeps few). A task
// still reading such a value holds its mapping, which is unmapped only when that task lets go of
// it: no reader is ever left on unmapped memory.
//
// The lock is this cache's own (the worker has no other under which these system calls could
// delay anything but another lookup).

import Synchronization

enum WorkerSharedValues {
    /// Why a handle could not be resolved in this process.
    struct LookupError: Error, CustomStringConvertible {
        var description: String
    }

    /// The descriptor number of the segment in a worker.
    static let descriptor = WorkerDescriptors.firstPassed + 1

    private enum Segment {
        case unchecked
        case available
        case unavailable(String)
    }

    private struct Entry {
        let mapping: SharedMapping
        let offset: Int
    }

    private struct State {
        var segment = Segment.unchecked
        var entries: [UInt64: Entry] = [:]
    }

    private static let state = Mutex(State())

    /// The read-only mapping of the value a handle names (header and elements), mapped now or
    /// kept from an earlier task.
    /// - Throws: ``LookupError`` when this process is not a worker of a local pool, or the
    ///   handle names no live value of its pool with this count and element type.
    static func mapping(
        id: UInt64, offset: Int, count: Int, stride: Int, typeFingerprint: UInt64
    ) throws(LookupError) -> SharedMapping {
        try state.withLock { state throws(LookupError) -> SharedMapping in
            try checkSegment(&state)
            dropFreed(&state)
            if let entry = state.entries[id] {
                guard entry.offset == offset else {
                    throw LookupError(description: "it names value \(id) at another place")
                }
                return entry.mapping
            }
            let page = systemPageSize
            guard offset >= 0, offset % page == 0,
                let length = SharedValueHeader.rangeLength(count: count, stride: stride, pageSize: page),
                !offset.addingReportingOverflow(length).overflow
            else {
                throw LookupError(description: "its range (offset \(offset), \(count) elements) is not a valid one")
            }
            let size: Int
            do {
                size = try memoryFileStatus(descriptor).size
            } catch {
                throw LookupError(description: "the pool's shared memory cannot be read: \(error)")
            }
            guard offset + length <= size else {
                throw LookupError(
                    description: "its range (\(length) bytes at offset \(offset)) lies outside the pool's shared "
                        + "memory (\(size) bytes)")
            }
            let expected = SharedValueHeader(
                id: id, count: UInt64(count), stride: UInt64(stride), typeFingerprint: typeFingerprint)
            guard let header = readHeader(at: offset) else {
                throw LookupError(description: "it names no live value: the value was freed, or never shared")
            }
            guard header == expected else {
                throw LookupError(
                    description: header.id != id
                        ? "it names no live value: the value was freed, or belongs to another pool"
                        : "its count or element type differs from the value's (\(header.count) elements of "
                            + "\(header.stride) bytes)")
            }
            do {
                let mapping = try SharedMapping(fd: descriptor, offset: offset, count: length, writable: false)
                state.entries[id] = Entry(mapping: mapping, offset: offset)
                return mapping
            } catch {
                throw LookupError(description: "its range cannot be mapped: \(error)")
            }
        }
    }

    /// How many values this worker keeps mapped (after dropping the freed ones).
    static var mappedCount: Int {
        state.withLock { state in
            if case .available = state.segment { dropFreed(&state) }
            return state.entries.count
        }
    }

    /// Checks once that fd 6 is the memory file of this process's parent.
    private static func checkSegment(_ state: inout State) throws(LookupError) {
        if case .unchecked = state.segment {
            let expected = "/memfd:\(SharedSegment.namePrefix)\(processIDs().parent)-"
            if descriptorTarget(descriptor)?.hasPrefix(expected) == true {
                state.segment = .available
            } else {
                state.segment = .unavailable(
                    "it names no live value of this process (freed, or shared by another process), and this "
                        + "process is not a worker of a local pool")
            }
        }
        if case .unavailable(let reason) = state.segment { throw LookupError(description: reason) }
    }

    /// Forgets the mappings of values the parent freed (their headers read zeros now).
    private static func dropFreed(_ state: inout State) {
        for (id, entry) in state.entries where readHeader(at: entry.offset)?.id != id {
            state.entries[id] = nil
        }
    }

    /// The header of the range at `offset`, read without mapping it; nil for a hole.
    private static func readHeader(at offset: Int) -> SharedValueHeader? {
        withUnsafeTemporaryAllocation(byteCount: 40, alignment: 8) { buffer in
            guard (try? readFile(descriptor, at: offset, into: buffer)) == 40 else { return nil }
            return SharedValueHeader(reading: UnsafeRawBufferPointer(buffer))
        }
    }
}
