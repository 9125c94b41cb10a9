// WaiterList (Runtime/WaiterList.swift): the waiters of a result or a progress counter, kept in
// the order they came, taken out by number or all at once.

import Testing

@testable import Multiprocessing

@Suite("Waiter list", .offCooperativePool) struct WaiterListTests {
    /// Guards order, removal by number (once), and taking all.
    @Test func keepsOrderAndRemovesByNumber() {
        var list = WaiterList<String>()
        #expect(list.isEmpty && list.removeAll().isEmpty)
        for (id, name) in [(1, "a"), (2, "b"), (3, "c"), (4, "d")] { list.append(name, id: UInt64(id)) }
        #expect(list.remove(2) == "b" && list.remove(2) == nil && list.remove(9) == nil)
        #expect(list.all == ["a", "c", "d"] && !list.isEmpty)
        #expect(list.removeAll() == ["a", "c", "d"])
        #expect(list.isEmpty && list.all.isEmpty)
    }
}
