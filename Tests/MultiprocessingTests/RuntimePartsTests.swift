// The small parts the per-call path rests on: the lone-chunk flag that tells a worker to poll for
// the next call, the worker table, the monotonic instant and the type-erased completion.

import Foundation
import Testing

@testable import Multiprocessing

@Suite("Runtime parts", .offCooperativePool)
struct RuntimePartsTests {
    private func header(ofFirstChunkOf items: [Int], chunksize: Int) throws -> (TaskHeader, chunks: Int) {
        let (chunks, _) = try Pool.encodeChunks(
            items, chunksize: chunksize, job: JobID(rawValue: 1), functionName: "f", signature: 9,
            stopOnError: true, timeout: nil, packedStride: nil
        ) { item, writer in writer.writeUInt64(UInt64(item)) }
        var reader = ByteReader(chunks[0].payload.bytes, offset: 5)
        return (try TaskHeader.read(from: &reader), chunks.count)
    }

    @Test("Only the chunk of a one-chunk job is marked lone (the worker polls after it)")
    func loneFlag() throws {
        let single = try header(ofFirstChunkOf: [1], chunksize: 1)
        #expect(single.chunks == 1 && single.0.lone)
        let short = try header(ofFirstChunkOf: [1, 2, 3], chunksize: 4)
        #expect(short.chunks == 1 && short.0.lone)
        let split = try header(ofFirstChunkOf: [1, 2, 3], chunksize: 2)
        #expect(split.chunks == 2 && !split.0.lone)
        // The flag sits beside the others without disturbing them.
        var builder = TaskFrameBuilder(
            job: JobID(rawValue: 2), chunkIndex: 0, functionName: "g", signature: 1, stopOnError: false,
            packedStride: 16, lone: true)
        builder.appendPacked([(1, 2), (3, 4)][...])
        let bytes = builder.finish()
        var reader = ByteReader(bytes, offset: 5)
        let parsed = try TaskHeader.read(from: &reader)
        #expect(parsed.lone && !parsed.stopOnError && parsed.packedStride == 16 && parsed.itemCount == 2)
    }

    @Test("A worker table finds, mutates in place, removes and lists its values")
    func workerTable() {
        var table = WorkerTable<[Int]>()
        #expect(table.isEmpty && table[WorkerID(rawValue: 1)] == nil)
        table[WorkerID(rawValue: 1)] = [1]
        table[WorkerID(rawValue: 2)] = [2]
        table[WorkerID(rawValue: 1)]!.append(10)
        table[WorkerID(rawValue: 3)]?.append(99)  // absent: nothing happens
        #expect(table[WorkerID(rawValue: 1)] == [1, 10])
        #expect(table[WorkerID(rawValue: 3)] == nil)
        #expect(table.keys == [WorkerID(rawValue: 1), WorkerID(rawValue: 2)])
        #expect(Dictionary(uniqueKeysWithValues: table.map { ($0.key.rawValue, $0.value) }) == [1: [1, 10], 2: [2]])
        #expect(table.removeValue(forKey: WorkerID(rawValue: 1)) == [1, 10])
        table[WorkerID(rawValue: 2)] = nil
        #expect(table.isEmpty && table.values.isEmpty)
    }

    @Test("A monotonic instant advances, saturates and measures durations")
    func monotonicInstant() {
        let a = MonotonicInstant(nanoseconds: 1_000)
        #expect(a.advanced(by: .microseconds(2)).nanoseconds == 3_000)
        #expect(a.duration(to: a.advanced(by: .milliseconds(5))) == .milliseconds(5))
        #expect(a.advanced(by: .milliseconds(5)).duration(to: a) == .milliseconds(-5))
        #expect(a.advanced(by: .seconds(Int64.max)).nanoseconds == .max)
        #expect(a.advanced(by: .seconds(Int64.min)).nanoseconds == .min)
        let before = MonotonicInstant.now
        #expect(before <= MonotonicInstant.now)
    }

    @Test("A completion hands its value back typed, once, to blocking and async waiters")
    func completion() async throws {
        let completion = Completion()
        #expect(!completion.isComplete && completion.wait(until: .now + .milliseconds(1)) == nil)
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(20)) {
            completion.complete(.success([1, 2, 3]))
        }
        let awaited = try await completion.value(onCancel: {})
        #expect(try awaited.get(as: [Int].self) == [1, 2, 3])
        #expect(completion.isComplete && completion.outcome?.error == nil)
        #expect(!completion.complete(.failure(PoolError(.cancelled, "late"))))
        #expect(try completion.wait(until: nil)?.get(as: [Int].self) == [1, 2, 3])

        let failed = Completion()
        failed.complete(.failure(PoolError(.cancelled, "stop")))
        #expect(throws: PoolError.self) { try failed.outcome!.get(as: Int.self) }
    }

    @Test("Spins yield at once in a process that may run on one CPU only; the variable overrides")
    func spinWithoutYieldByCPUs() {
        #expect(LocalTransport.spinWithoutYield(setting: nil, cpus: 1) == 0)
        #expect(LocalTransport.spinWithoutYield(setting: nil, cpus: 2) == 15_000)
        #expect(LocalTransport.spinWithoutYield(setting: nil, cpus: 64) == 15_000)
        #expect(LocalTransport.spinWithoutYield(setting: "40", cpus: 1) == 40_000)
        #expect(LocalTransport.spinWithoutYield(setting: "0", cpus: 8) == 0)
        #expect(LocalTransport.spinWithoutYield(setting: "5000", cpus: 2) == 1_000_000)
        #expect(LocalTransport.spinWithoutYield(setting: "-3", cpus: 2) == 0)
        // Not a number: the default for the CPUs.
        #expect(LocalTransport.spinWithoutYield(setting: "fast", cpus: 1) == 0)
    }
}
