// A small map from worker to value, for the per-worker state the runtime looks up on every event.

/// A map keyed by ``WorkerID`` that is searched linearly.
///
/// A pool has few workers (its `processes`, plus the few being replaced), and the runtime looks
/// one up several times per result; a linear scan of a few integers costs less than hashing the
/// key (measured with callgrind: dictionary hashing was about a tenth of the parent's
/// instructions per `apply`). Values are mutated in place through the subscript: a value taken
/// out for the mutation is moved, not copied, so buffers inside it are not copied on write.
struct WorkerTable<Value> {
    /// The keys, searched; `values[i]` belongs to `ids[i]` (nil only while it is being mutated).
    private var ids: [WorkerID] = []
    private var slots: [Value?] = []

    init() {}

    private func index(of id: WorkerID) -> Int? {
        ids.firstIndex(of: id)
    }

    subscript(id: WorkerID) -> Value? {
        get {
            guard let i = index(of: id) else { return nil }
            return slots[i]
        }
        set { store(newValue, at: index(of: id), for: id) }
        _modify {
            let i = index(of: id)
            var value = i.map { slots[$0].take() } ?? nil
            defer { store(value, at: i, for: id) }
            yield &value
        }
    }

    /// Puts `value` in slot `i` (the slot of `id`, or nil when it has none): a nil value removes
    /// the slot, a new id gets one.
    private mutating func store(_ value: Value?, at i: Int?, for id: WorkerID) {
        if let i {
            if let value {
                slots[i] = value
            } else {
                ids.remove(at: i)
                slots.remove(at: i)
            }
        } else if let value {
            ids.append(id)
            slots.append(value)
        }
    }

    /// Runs `body` on the value of `id` in place (taken out of its slot meanwhile, so that a
    /// value holding arrays is not copied on write); nil when `id` has none.
    mutating func update<R>(_ id: WorkerID, _ body: (inout Value) throws -> R) rethrows -> R? {
        guard let i = index(of: id), var value = slots[i].take() else { return nil }
        // Put back by moving (`consume`): a `defer` put back a copy and destroyed the original,
        // ~500 instructions for a reader, on every result.
        do {
            let result = try body(&value)
            slots[i] = consume value
            return result
        } catch {
            slots[i] = consume value
            throw error
        }
    }

    /// Runs `body` on every value in place, in the table's order (see ``update(_:_:)``).
    mutating func updateEach(_ body: (WorkerID, inout Value) throws -> Void) rethrows {
        for i in ids.indices {
            guard var value = slots[i].take() else { continue }
            do {
                try body(ids[i], &value)
                slots[i] = consume value
            } catch {
                slots[i] = consume value
                throw error
            }
        }
    }

    @discardableResult
    mutating func removeValue(forKey id: WorkerID) -> Value? {
        guard let i = index(of: id) else { return nil }
        ids.remove(at: i)
        return slots.remove(at: i)
    }

    mutating func removeAll() {
        ids.removeAll()
        slots.removeAll()
    }

    var isEmpty: Bool { ids.isEmpty }
    var keys: [WorkerID] { ids }
    var values: [Value] { slots.compactMap { $0 } }
}

extension WorkerTable: Sequence {
    func makeIterator() -> some IteratorProtocol<(key: WorkerID, value: Value)> {
        zip(ids, slots).lazy.compactMap { id, value in value.map { (key: id, value: $0) } }.makeIterator()
    }
}
