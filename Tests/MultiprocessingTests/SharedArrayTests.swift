// Shared read-only arrays (`Pool.share`): tasks read them in place, on every worker and on
// replacements; a value is freed once its last handle went and no call that could use it is in
// flight, and not before; a worker that dies, times out or is cancelled mid-read leaks nothing;
// terminate leaves no descriptor; forged and stale handles fail with an error, in the worker and
// in the parent; share on a stopped pool throws.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Distinct numbers, negative ones included.
private func numbers(_ count: Int) -> [Int64] { (0..<count).map { Int64($0) * 3 - 7 } }

/// What every open descriptor of this process points to.
private func descriptorTargets() -> [String] {
    (0..<4096).compactMap { fd -> String? in
        var buffer = [CChar](repeating: 0, count: 512)
        let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Whether this process maps the memory file named `name`.
private func mapsMemoryFile(_ name: String) -> Bool {
    guard let file = fopen("/proc/self/maps", "r") else { return false }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 4096)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.contains("/memfd:\(name) ") { return true }
    }
    return false
}

/// The memory this process has mapped in the mapping that contains `address` (its `Rss` line in
/// `/proc/self/smaps`, in bytes), or nil when no mapping contains it.
private func residentBytes(ofMappingAt address: UnsafeRawPointer) -> Int? {
    guard let file = fopen("/proc/self/smaps", "r") else { return nil }
    defer { fclose(file) }
    let target = UInt(bitPattern: address)
    var line = [CChar](repeating: 0, count: 4096)
    var inside = false
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let fields = text.split(separator: " ", omittingEmptySubsequences: true)
        if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
            let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
            inside = bounds.count == 2 && bounds[0] <= target && target < bounds[1]
        } else if inside, fields.first == "Rss:", fields.count >= 2, let kilobytes = Int(fields[1]) {
            return kilobytes * 1024
        }
    }
    return nil
}

@Suite("Shared arrays", .offCooperativePool, .disabled(if: TestBackend.isCluster, TestBackend.sharesMemory))
struct SharedArrayTests {
    @Test("A task reads a shared array in place, and so does the parent", .timeLimit(.minutes(1)))
    func readsInPlace() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let values = numbers(100_000)
        let table = try pool.share(values)
        #expect(table.count == values.count)
        #expect(Array(table) == values)
        #expect(try await pool.apply(F.sharedSliceSum, table, 0, values.count) == values.reduce(0, +))
        #expect(try await pool.apply(F.sharedSliceSum, table, 100, 200) == values[100..<200].reduce(0, +))
        // What crosses to the worker is the handle, not the 800 kB of elements.
        var writer = ByteWriter()
        try WireCoding.encode(table, into: &writer)
        #expect(writer.bytes.count < 64)
        // A handle a worker sends back is the parent's value again, in the same memory.
        let back = try await pool.apply(F.sharedEcho, table)
        #expect(back.count == table.count)
        #expect(back.withUnsafeBufferPointer { $0.baseAddress } == table.withUnsafeBufferPointer { $0.baseAddress })
        // An empty array shares too.
        let empty = try pool.share([Int64]())
        #expect(empty.isEmpty)
        #expect(try await pool.apply(F.sharedSliceSum, empty, 0, 0) == 0)
    }

    @Test("share writes the elements through the file: the parent maps their pages as it reads them")
    func writtenThroughTheFile() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let segment = try #require(pool.core.sharedSegment)
        let values = numbers((4 << 20) / 8 + 3)  // 4 MiB and a bit: the last page is partly used
        let table = try pool.share(values)
        let elements = try #require(table.withUnsafeBufferPointer { $0.baseAddress })
        // The pages are in the file (one copy, by the kernel), not in the parent's mapping: only
        // the header's page came in, when the header was written through it. A copy through the
        // mapping would have brought in all 4 MiB.
        #expect(try #require(segment.statistics.allocatedBytes) >= values.count * 8)
        #expect(try #require(residentBytes(ofMappingAt: elements)) <= 64 << 10)
        #expect(Array(table) == values)
        #expect(try #require(residentBytes(ofMappingAt: elements)) >= values.count * 8)
    }

    @Test("Many tasks over many workers each sum their slice", .timeLimit(.minutes(1)))
    func manyTasks() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let values = numbers(1 << 18)
        let table = try pool.share(values)
        let bounds = (0..<64).map { i in (i * values.count / 64, (i + 1) * values.count / 64) }
        let sums = try await pool.starmap(F.sharedSliceSum, bounds.map { (table, $0.0, $0.1) }, chunksize: 1)
        #expect(sums == bounds.map { values[$0.0..<$0.1].reduce(0, +) })
        // Both workers read it (each task blocks its worker for 20 ms).
        let tagged = try await pool.starmap(F.sharedSlowSum, (0..<8).map { _ in (table, 20) }, chunksize: 1)
        #expect(tagged.allSatisfy { $0[0] == values.reduce(0, +) })
        #expect(Set(tagged.map { $0[1] }).count == 2)
    }

    @Test("Replacement workers read values shared before they started", .timeLimit(.minutes(1)))
    func replacementWorkers() async throws {
        let pool = try TestPools.make(processes: 1, maxTasksPerChild: 1)
        defer { pool.stop() }
        let values = numbers(50_000)
        let table = try pool.share(values)
        var pids: Set<Int64> = []
        for _ in 0..<3 {
            let answer = try await pool.apply(F.sharedSlowSum, table, 0)
            #expect(answer[0] == values.reduce(0, +))
            pids.insert(answer[1])
        }
        #expect(pids.count == 3)
        // A value shared now (the file grew after those workers started) reads too.
        let later = try pool.share(numbers(70_000))
        #expect(try await pool.apply(F.sharedSliceSum, later, 0, 70_000) == numbers(70_000).reduce(0, +))
    }

    @Test("A value is freed after its last handle goes, not while a task uses it", .timeLimit(.minutes(1)))
    func freedAfterLastHandle() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let segment = try #require(pool.core.sharedSegment)
        let values = numbers(2 << 20)  // 16 MiB
        let size = values.count * 8
        let result: AsyncResult<[Int64]>
        do {
            let table = try pool.share(values)
            #expect(try #require(segment.statistics.allocatedBytes) >= size)
            result = try pool.applyAsync(F.sharedSlowSum, table, 500)
        }
        // The handle is gone; the task (asleep for 500 ms, then reading) still needs the value.
        #expect(segment.statistics.liveValues == 0)
        #expect(segment.statistics.pendingFrees == 1)
        #expect(try #require(segment.statistics.allocatedBytes) >= size)
        #expect(try await result.value[0] == values.reduce(0, +))
        #expect(
            await eventuallyAsync {
                segment.statistics.freedValues == 1 && (segment.statistics.allocatedBytes ?? .max) < 64 * 1024
            }, "\(segment.statistics)")
    }

    @Test(
        "A worker that dies, times out or is cancelled while reading leaks nothing, and the pool heals",
        .timeLimit(.minutes(1)))
    func faultsLeakNothing() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let segment = try #require(pool.core.sharedSegment)
        let values = numbers(1 << 20)
        do {
            let table = try pool.share(values)
            let first = pool.workerPIDs
            await #expect { try await pool.apply(F.sharedTrapMidRead, table) } throws: { poolCode($0) == .workerLost }
            await #expect {
                try await pool.apply(F.sharedSlowSum, table, 10_000, timeout: .milliseconds(300))
            } throws: {
                poolCode($0) == .taskTimedOut
            }
            let cancelled = Task { try await pool.apply(F.sharedSlowSum, table, 10_000) }
            #expect(await eventuallyAsync { pool.statistics.tasksRunning == 1 })
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            // Healed: a new worker reads the value, which is still there.
            #expect(try await pool.apply(F.sharedSliceSum, table, 0, values.count) == values.reduce(0, +))
            #expect(pool.workerPIDs != first)
            #expect(segment.statistics.liveValues == 1)
        }
        #expect(
            await eventuallyAsync {
                segment.statistics.freedValues == 1 && (segment.statistics.allocatedBytes ?? .max) < 64 * 1024
            }, "\(segment.statistics)")
    }

    @Test("terminate with live values leaves no descriptor; the parent still reads them", .timeLimit(.minutes(1)))
    func terminateLeavesNoDescriptor() async throws {
        let name = try await {
            let pool = try TestPools.make(processes: 2)
            let name = try #require(pool.core.sharedSegment).name
            let values = numbers(100_000)
            let table = try pool.share(values)
            #expect(try await pool.apply(F.sharedSliceSum, table, 0, 10) == values[0..<10].reduce(0, +))
            #expect(descriptorTargets().contains { $0.hasPrefix("/memfd:\(name) ") })
            pool.terminate()
            try await pool.joined()
            #expect(!descriptorTargets().contains { $0.hasPrefix("/memfd:\(name) ") })
            #expect(mapsMemoryFile(name))
            #expect(table[99_999] == values[99_999])
            return name
        }()
        // The last handle went: nothing of the file is left in this process.
        #expect(!mapsMemoryFile(name))
    }

    @Test("Forged and stale handles fail with an error, in the worker and in the parent", .timeLimit(.minutes(1)))
    func forgedHandles() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let table = try pool.share(numbers(1000))
        let worker = pool.workerPIDs
        let dummy = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        defer { dummy.deallocate() }
        let forgeries = [
            SharedArray<Int64>(id: 987_654, offset: 1 << 30, count: 10, elements: dummy, owner: pool),
            SharedArray<Int64>(id: 987_654, offset: table.offset, count: 1000, elements: dummy, owner: pool),
            SharedArray<Int64>(id: table.id, offset: table.offset, count: 1 << 40, elements: dummy, owner: pool),
            SharedArray<Int64>(id: table.id, offset: table.offset + 8, count: 10, elements: dummy, owner: pool),
        ]
        for (index, forged) in forgeries.enumerated() {
            await #expect("forgery \(index)") { try await pool.apply(F.sharedSliceSum, forged, 0, 1) } throws: {
                poolCode($0) == .encodingFailed && "\($0)".contains("SharedArray<Int64> handle cannot be read")
            }
        }
        // The worker went on; the real handle still reads.
        #expect(pool.workerPIDs == worker)
        #expect(try await pool.apply(F.sharedSliceSum, table, 0, 1000) == numbers(1000).reduce(0, +))

        // In the parent: a handle of a value that was freed.
        var writer = ByteWriter()
        do {
            let doomed = try pool.share(numbers(10))
            try WireCoding.encode(doomed, into: &writer)
        }
        let segment = try #require(pool.core.sharedSegment)
        #expect(await eventuallyAsync { segment.statistics.freedValues == 1 })
        var reader = ByteReader(writer.bytes)
        #expect { try WireCoding.decode(SharedArray<Int64>.self, from: &reader) } throws: { error in
            guard case DecodingError.dataCorrupted(let context) = error else { return false }
            return context.debugDescription.contains("names no live value of this process")
        }
        // …and one decoded as another element type.
        var other = ByteWriter()
        try WireCoding.encode(table, into: &other)
        var otherReader = ByteReader(other.bytes)
        #expect(throws: DecodingError.self) { try WireCoding.decode(SharedArray<Double>.self, from: &otherReader) }
    }

    @Test("share on a closed or terminated pool throws .notRunning", .timeLimit(.minutes(1)))
    func stoppedPool() async throws {
        let closed = try TestPools.make(processes: 1)
        closed.close()
        #expect { try closed.share([1, 2, 3] as [Int64]) } throws: { poolCode($0) == .notRunning }
        try await closed.joined()
        #expect { try closed.share([1, 2, 3] as [Int64]) } throws: { poolCode($0) == .notRunning }
        let terminated = try TestPools.make(processes: 1)
        terminated.terminate()
        #expect { try terminated.share([1.5]) } throws: { poolCode($0) == .notRunning }
    }
}
