// A shared value as the parent holds it: its range of the pool's memory file, mapped writable
// in the parent (where the parent reads it in place too), and freed when the last handle goes
// (`deinit`: the segment waits for the calls in flight, then gives the memory back). And the
// process-wide registry of live values by id, through which a handle decoded in the parent (a
// worker's result that returns one) finds its storage, and a stale or forged one fails.

import Synchronization

final class SharedValueStorage: Sendable {
    let id: UInt64
    /// Where the value's range starts in the memory file.
    let offset: Int
    let count: Int
    let typeFingerprint: UInt64
    /// The parent's mapping of the whole range (header and elements).
    let mapping: SharedMapping
    let segment: SharedSegment

    /// The first element.
    var elements: UnsafeRawPointer { UnsafeRawPointer(mapping.base + SharedValueHeader.size) }

    /// Registers the value (whose bytes and header are in place).
    init(
        id: UInt64, offset: Int, count: Int, typeFingerprint: UInt64, mapping: SharedMapping, segment: SharedSegment
    ) {
        self.id = id
        self.offset = offset
        self.count = count
        self.typeFingerprint = typeFingerprint
        self.mapping = mapping
        self.segment = segment
        SharedValueRegistry.register(self)
    }

    deinit {
        SharedValueRegistry.remove(id)
        segment.release(mapping)
    }
}

/// The live shared values of this process (the parent), by id.
enum SharedValueRegistry {
    private struct Entry {
        weak var storage: SharedValueStorage?
    }

    private static let values = Mutex<[UInt64: Entry]>([:])
    private static let nextID = Atomic<UInt64>(1)

    /// A new value's id, unique in this process (across pools: a handle of one pool's value
    /// given to another pool's worker fails on the id in the header).
    static func makeID() -> UInt64 {
        nextID.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    static func register(_ storage: SharedValueStorage) {
        values.withLock { $0[storage.id] = Entry(storage: storage) }
    }

    static func remove(_ id: UInt64) {
        values.withLock { _ = $0.removeValue(forKey: id) }
    }

    /// The live value of this id, if any.
    static func storage(_ id: UInt64) -> SharedValueStorage? {
        values.withLock { $0[id]?.storage }
    }
}
