// One worker's data plane: a memory file both the parent and the worker map, holding two
// ``SharedRing``s (tasks to the worker, results to the parent). The pipes stay: they are each
// side's doorbell and tell it of the other's end; the bytes go through this memory.
//
// Layout (the memory file, created by the parent before the spawn and passed as the worker's
// fd 5): a 4 KiB header — a magic number that includes the layout's version, the capacity of
// each ring, then the tasks ring's control block at 256 and the results ring's at 512, and where
// the parent and the worker last ran at 1024 and 1088 (CPUNotes.swift) — and the two data areas.
// (A worker of an older build leaves its note unknown: the parent then spins as before.)
// Nothing is named in /dev/shm: the memory goes with the last process that maps it, whatever way
// it ends. The parent keeps the mapping while anything reads it (the I/O thread's reader, a
// thread waiting for its own result, the task channel): a dead or killed worker never leaves a
// reader on unmapped memory.

/// The two rings of one worker, and the mapping that holds their memory.
final class SharedChannel: Sendable {
    /// Each ring's data area (2 MiB: a 4 MiB payload crosses in pieces, the two sides
    /// copying at once; see the performance article).
    static let defaultCapacity = 2 << 20
    private static let headerSize = 4096
    private static let magic: UInt64 = 0x4d50_5249_4e47_0001  // "MPRING", version 1

    /// Keeps the memory mapped while this channel lives.
    private let mapping: SharedMapping
    /// Parent → worker: task frames (and the start frame).
    let tasks: SharedRing
    /// Worker → parent: result frames (and ready, initializer failure, memory reports).
    let results: SharedRing

    /// The memory file, in the parent until the worker's spawn passed it (then closed).
    let file: SharedDescriptor?

    /// Where the two sides last ran, as the parent sees them (its note first).
    let parentCPUNotes: CPUNotes
    /// The same, as the worker sees them.
    let workerCPUNotes: CPUNotes
    private static let parentNoteOffset = 1024
    private static let workerNoteOffset = 1088

    private init(mapping: SharedMapping, capacity: Int, file: SharedDescriptor?) {
        self.mapping = mapping
        self.file = file
        let base = mapping.base
        let header = SharedChannel.headerSize
        tasks = SharedRing(control: base + 256, data: base + header, capacity: capacity)
        results = SharedRing(control: base + 512, data: base + header + capacity, capacity: capacity)
        let parentNote = base + SharedChannel.parentNoteOffset, workerNote = base + SharedChannel.workerNoteOffset
        parentCPUNotes = CPUNotes(mine: parentNote, theirs: workerNote)
        workerCPUNotes = CPUNotes(mine: workerNote, theirs: parentNote)
    }

    /// Creates a channel's memory, for a worker about to be spawned. Its memory file's
    /// descriptor (``file``) is for the spawn to pass; the parent closes it then (the mapping
    /// stays).
    /// - Throws: ``SystemError`` from `memfd_create`, `ftruncate` or `mmap`.
    static func create(capacity: Int = defaultCapacity) throws(SystemError) -> SharedChannel {
        let file = try createMemoryFile(name: "multiprocessing-channel", size: headerSize + 2 * capacity)
        let mapping = try SharedMapping(fd: file.rawValue, count: headerSize + 2 * capacity, writable: true)
        let words = mapping.base.assumingMemoryBound(to: UInt64.self)
        words[0] = magic
        words[1] = UInt64(capacity)
        let channel = SharedChannel(mapping: mapping, capacity: capacity, file: SharedDescriptor(file))
        channel.tasks.initialize()
        channel.results.initialize()
        CPUNotes.initialize(mapping.base + parentNoteOffset)
        CPUNotes.initialize(mapping.base + workerNoteOffset)
        return channel
    }

    /// The worker's side: maps the channel the parent passed as `fd` (which stays open; the caller
    /// closes it).
    /// - Throws: ``SystemError`` from `fstat` or `mmap`; ``FrameError`` when `fd` does not hold a
    ///   channel of this version.
    static func attach(fd: Int32) throws -> SharedChannel {
        let size = try memoryFileSize(fd)
        guard size > headerSize else { throw FrameError(description: "fd \(fd) is not a worker channel") }
        let mapping = try SharedMapping(fd: fd, count: size, writable: true)
        let words = mapping.base.assumingMemoryBound(to: UInt64.self)
        let capacity = Int(truncatingIfNeeded: words[1])
        guard words[0] == magic, capacity > 0, capacity & (capacity - 1) == 0, headerSize + 2 * capacity == size else {
            throw FrameError(description: "fd \(fd) holds no worker channel of this version")
        }
        return SharedChannel(mapping: mapping, capacity: capacity, file: nil)
    }
}
