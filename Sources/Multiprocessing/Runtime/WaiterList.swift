// The few waiters of one result or one progress counter: blocked threads' semaphores, suspended
// tasks' continuations, progress streams. An array of (number, waiter) pairs rather than a
// dictionary: there are rarely more than one or two, and the first dictionary of each key and
// value type a process makes checks its key's `Hashable` conformance by scanning every
// conformance record of every loaded library (0.25–0.35M instructions each, on the way from
// `Pool(…)` to the first result: callgrind).

struct WaiterList<Waiter> {
    private var entries: [(id: UInt64, waiter: Waiter)] = []

    var isEmpty: Bool { entries.isEmpty }

    mutating func append(_ waiter: Waiter, id: UInt64) {
        entries.append((id, waiter))
    }

    /// Takes out the waiter numbered `id`, if it is still here.
    mutating func remove(_ id: UInt64) -> Waiter? {
        guard let i = entries.firstIndex(where: { $0.id == id }) else { return nil }
        return entries.remove(at: i).waiter
    }

    /// Takes out every waiter, in the order they came.
    mutating func removeAll() -> [Waiter] {
        defer { entries = [] }
        return entries.map(\.waiter)
    }

    /// Every waiter, in the order they came (they stay).
    var all: [Waiter] { entries.map(\.waiter) }
}

extension WaiterList: Sendable where Waiter: Sendable {}
