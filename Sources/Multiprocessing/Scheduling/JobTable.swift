// A table of values keyed by job: the scheduler's job records and the pool's sinks.
//
// Written by hand rather than a `Dictionary`: a dictionary hashes every key with SipHash through
// `Hasher` (~200 instructions a look-up), and a lone call looks a job up four times and inserts
// it twice, in the scheduler and in the sink table: about 1,700 of the parent's instructions
// per `apply` (callgrind). Job numbers are distinct integers handed out in order, so a
// multiplicative (Fibonacci) hash spreads them well with one multiplication. Open addressing
// with linear probing; a removal shifts the entries after it back (no tombstones), so a table
// that sees millions of jobs come and go never degrades. swift-collections has no hash table
// with a caller's hash function.
//
// Indices are slots: valid until the table is next changed by an insertion or removal.

struct JobTable<Value> {
    /// A slot of the table (see the note on indices above).
    struct Index: Equatable {
        fileprivate let slot: Int
    }

    private var slotKeys: [UInt64]
    private var slotValues: [Value?]
    /// How far right the hash's top bits are shifted: 64 − log2(capacity).
    private var shift: UInt64
    private(set) var count = 0

    init() {
        let capacity = 16
        slotKeys = Array(repeating: 0, count: capacity)
        slotValues = Array(repeating: nil, count: capacity)
        shift = UInt64(64 - capacity.trailingZeroBitCount)
    }

    var isEmpty: Bool { count == 0 }

    private var mask: Int { slotValues.count - 1 }

    /// The slot `key` would sit in with no collision: the top bits of its Fibonacci hash.
    private func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The slot holding `key`, or the empty slot where it would go.
    private func probe(_ key: UInt64) -> (slot: Int, found: Bool) {
        var i = home(key)
        while slotValues[i] != nil {
            if slotKeys[i] == key { return (i, true) }
            i = (i + 1) & mask
        }
        return (i, false)
    }

    func index(forKey job: JobID) -> Index? {
        let (slot, found) = probe(job.rawValue)
        return found ? Index(slot: slot) : nil
    }

    /// The value at `index` (from ``index(forKey:)``), read or changed in place.
    subscript(at index: Index) -> Value {
        get { slotValues[index.slot]! }
        _modify {
            var value = slotValues[index.slot].take()!
            defer { slotValues[index.slot] = value }
            yield &value
        }
    }

    subscript(job: JobID) -> Value? {
        get {
            let (slot, found) = probe(job.rawValue)
            return found ? slotValues[slot] : nil
        }
        set {
            guard let newValue else {
                removeValue(forKey: job)
                return
            }
            insert(newValue, forKey: job.rawValue)
        }
    }

    private mutating func insert(_ value: Value, forKey key: UInt64) {
        var (slot, found) = probe(key)
        if !found {
            // At most three quarters full: probes stay short.
            if (count + 1) * 4 > slotValues.count * 3 {
                grow()
                slot = probe(key).slot
            }
            slotKeys[slot] = key
            count += 1
        }
        slotValues[slot] = value
    }

    private mutating func grow() {
        let oldKeys = slotKeys
        var oldValues = slotValues
        let capacity = slotValues.count * 2
        slotKeys = Array(repeating: 0, count: capacity)
        slotValues = Array(repeating: nil, count: capacity)
        shift = UInt64(64 - capacity.trailingZeroBitCount)
        for i in oldValues.indices {
            guard let value = oldValues[i].take() else { continue }
            let slot = probe(oldKeys[i]).slot
            slotKeys[slot] = oldKeys[i]
            slotValues[slot] = value
        }
    }

    @discardableResult
    mutating func removeValue(forKey job: JobID) -> Value? {
        guard let index = index(forKey: job) else { return nil }
        return remove(at: index).value
    }

    /// Removes the entry at `index`, shifting back the entries its slot kept from their homes.
    @discardableResult
    mutating func remove(at index: Index) -> (key: JobID, value: Value) {
        var hole = index.slot
        let removed = (key: JobID(rawValue: slotKeys[hole]), value: slotValues[hole].take()!)
        count -= 1
        var next = (hole + 1) & mask
        while slotValues[next] != nil {
            let home = home(slotKeys[next])
            // The entry at `next` may move into the hole when its home is not in (hole, next],
            // cyclically: it was pushed past the hole.
            let staysPut = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next)
            if !staysPut {
                slotKeys[hole] = slotKeys[next]
                slotValues[hole] = slotValues[next].take()
                hole = next
            }
            next = (next + 1) & mask
        }
        return removed
    }
}

extension JobTable: Sequence {
    struct Iterator: IteratorProtocol {
        fileprivate let slotKeys: [UInt64]
        fileprivate let slotValues: [Value?]
        fileprivate var slot = 0

        mutating func next() -> (key: JobID, value: Value)? {
            while slot < slotValues.count {
                defer { slot += 1 }
                if let value = slotValues[slot] { return (JobID(rawValue: slotKeys[slot]), value) }
            }
            return nil
        }
    }

    func makeIterator() -> Iterator { Iterator(slotKeys: slotKeys, slotValues: slotValues) }

    var underestimatedCount: Int { count }

    /// The jobs in the table, in no particular order.
    var keys: LazyMapSequence<JobTable<Value>, JobID> { lazy.map(\.key) }

    /// The values in the table, in no particular order.
    var values: LazyMapSequence<JobTable<Value>, Value> { lazy.map(\.value) }
}

extension JobTable: Sendable where Value: Sendable {}
