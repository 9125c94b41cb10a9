// JobTable (Scheduling/JobTable.swift), the open-addressing table of values keyed by job, checked
// against a Dictionary doing the same operations: random insertions, updates in place, removals
// by key and by index, across growth and across removals that shift entries back (keys chosen
// both in order, as the pool hands them out, and scattered, so that probe runs collide and wrap).

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

@Suite("Job table", .cpuBound) struct JobTableTests {
    /// Guards every operation against the model, and the table's own view of itself (count,
    /// iteration, keys, values) after each one.
    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func matchesADictionary(seed: UInt64) {
        var rng = SeededGenerator(state: seed)
        var table = JobTable<Int>()
        var model: [UInt64: Int] = [:]
        var nextKey: UInt64 = 1
        for step in 0..<6_000 {
            // In order most of the time; scattered keys (some far apart, some huge) otherwise.
            func freshKey() -> UInt64 {
                if Int.random(in: 0..<4, using: &rng) == 0 { return UInt64.random(in: 0...UInt64.max, using: &rng) }
                defer { nextKey += 1 }
                return nextKey
            }
            func existingKey() -> UInt64? { model.keys.sorted().randomElement(using: &rng) }
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<4:
                let key = freshKey()
                table[JobID(rawValue: key)] = step
                model[key] = step
            case 4:
                guard let key = existingKey() else { break }
                table[JobID(rawValue: key)] = -step
                model[key] = -step
            case 5:
                guard let key = existingKey(), let index = table.index(forKey: JobID(rawValue: key)) else { break }
                table[at: index] += 1000
                model[key]! += 1000
            case 6:
                guard let key = existingKey() else { break }
                #expect(table.removeValue(forKey: JobID(rawValue: key)) == model.removeValue(forKey: key))
            case 7:
                guard let key = existingKey(), let index = table.index(forKey: JobID(rawValue: key)) else { break }
                let removed = table.remove(at: index)
                #expect(removed.key.rawValue == key && removed.value == model.removeValue(forKey: key))
            case 8:
                let key = freshKey()
                #expect(table[JobID(rawValue: key)] == nil && table.index(forKey: JobID(rawValue: key)) == nil)
                #expect(table.removeValue(forKey: JobID(rawValue: key)) == nil)
                table[JobID(rawValue: key)] = nil
            default:
                guard let key = existingKey() else { break }
                table[JobID(rawValue: key)] = nil
                model[key] = nil
            }
            #expect(table.count == model.count && table.isEmpty == model.isEmpty)
            if step % 97 == 0 || model.count < 8 { expectSame(table, model) }
        }
        expectSame(table, model)
        // Emptied, it is empty, and takes keys again.
        for key in model.keys { table[JobID(rawValue: key)] = nil }
        #expect(table.isEmpty && Array(table).isEmpty)
        table[JobID(rawValue: 42)] = 1
        #expect(table[JobID(rawValue: 42)] == 1 && table.count == 1)
    }

    /// Guards the value semantics the scheduler relies on (it iterates its jobs while changing
    /// them): a copy, or a loop over the table, does not see later changes.
    @Test func isAValue() {
        var table = JobTable<String>()
        for key in UInt64(1)...40 { table[JobID(rawValue: key)] = "\(key)" }
        let copy = table
        var seen = 0
        for (job, _) in table {
            table[job] = nil
            seen += 1
        }
        #expect(seen == 40 && table.isEmpty && copy.count == 40)
        #expect(copy[JobID(rawValue: 7)] == "7")
    }
}

private func expectSame(_ table: JobTable<Int>, _ model: [UInt64: Int]) {
    var seen: [UInt64: Int] = [:]
    for (job, value) in table {
        #expect(seen[job.rawValue] == nil, "job \(job) twice")
        seen[job.rawValue] = value
    }
    #expect(seen == model)
    #expect(Set(table.keys.map(\.rawValue)) == Set(model.keys))
    #expect(table.values.sorted() == model.values.sorted())
    for (key, value) in model { #expect(table[JobID(rawValue: key)] == value) }
}
