// The first touch of a large list of plain results: its pages are made present at once, in one
// system call, when the list is made (populateForWriting, used by ListSink), and such lists come
// back whole.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("First touch of large results", .offCooperativePool) struct FirstTouchTests {
    /// How many of the `pages` pages at `base` are resident (mincore).
    private func residentPages(_ base: UnsafeMutableRawPointer, pages: Int) -> Int {
        var vector = [UInt8](repeating: 0, count: pages)
        guard mincore(base, pages * pageSize, &vector) == 0 else { return -1 }
        return vector.filter { $0 & 1 != 0 }.count
    }

    @Test("populateForWriting makes every whole page of the range present, and only those")
    func populates() throws {
        let pages = 64
        guard let base = mmap(nil, pages * pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            base != MAP_FAILED
        else {
            Issue.record("mmap failed: \(errno)")
            return
        }
        defer { munmap(base, pages * pageSize) }
        #expect(residentPages(base, pages: pages) == 0)
        // From the middle of page 1 to the middle of page 33: pages 2...32 are the whole ones.
        #expect(populateForWriting(base + pageSize + pageSize / 2, count: 32 * pageSize))
        var vector = [UInt8](repeating: 0, count: pages)
        #expect(mincore(base, pages * pageSize, &vector) == 0)
        let present = vector.indices.filter { vector[$0] & 1 != 0 }
        #expect(present == Array(2...32))
        // The contents are left as they were (zeros here).
        #expect((0..<pages * pageSize).allSatisfy { base.load(fromByteOffset: $0, as: UInt8.self) == 0 })
    }

    @Test(
        "a map of plain results larger than the populated size comes back whole and in order", .timeLimit(.minutes(1)))
    func largePlainList() async throws {
        let count = 3 * ListSink<Int, [Int]>.populatedSize / MemoryLayout<Int>.stride
        let pool = try TestPools.make(processes: 2)
        defer { pool.terminate() }
        let items = Array(0..<count)
        #expect(try await pool.map(F.square, items) == items.map { $0 * $0 })
        let pairs = Array(zip(items, items.reversed()))
        #expect(try await pool.starmap(F.mul, pairs) == pairs.map { $0 * $1 })
    }
}
