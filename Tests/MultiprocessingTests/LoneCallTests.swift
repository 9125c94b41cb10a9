// A lone call (`apply`, `applyAsync`) of a function whose arguments and result are plain numbers
// and whose body is synchronous travels as a chunk of one packed item: the worker runs it through
// the loop compiled for its types and the parent loads the packed result in place. These tests
// check which functions take that path, that every shape of plain tuple (padding included) gives
// what calling the function here gives, by every form of apply, and that an error thrown on that
// path reaches the caller as the function's own error.

import MultiprocessingTestSupport
import Synchronization
import Testing

@testable import Multiprocessing

/// Runs `body` in a synchronous context: there, `pool.apply` is the blocking form (in an async
/// function the awaited overload wins).
private func blocking<T>(_ body: () throws -> T) rethrows -> T { try body() }

@Suite("Lone calls", .offCooperativePool) struct LoneCallTests {
    @Test("Lone calls of plain synchronous functions travel packed; other functions' do not")
    func whichFunctionsArePacked() {
        #expect(F.packedMulAdd.packedCallStride == MemoryLayout<(Int, Int)>.stride)
        #expect(F.packedScale.packedCallStride == 16)
        #expect(F.packedShift.packedCallStride == 16)
        #expect(F.packedMix.packedCallStride == MemoryLayout<(UInt16, Int32, Float)>.stride)
        #expect(F.square.packedCallStride == MemoryLayout<Int>.stride)
        // An async body, a result or an argument that is not plain, no argument, no result.
        #expect(F.packedAsyncFailNegative.packedCallStride == nil)
        #expect(F.packedLabel.packedCallStride == nil)
        #expect(F.packedIsEven.packedCallStride == nil)
        #expect(F.packedSelect.packedCallStride == nil)
        #expect(F.pid.packedCallStride == nil)
        #expect(F.noResult.packedCallStride == nil)
    }

    @Test("A lone call's task frame holds one packed item when the function has a packed stride, else one encoded")
    func loneCallFrames() throws {
        func header<each A, R>(
            _ function: PoolFunction<repeat each A, R>, _ arguments: repeat each A
        ) throws
            -> (TaskHeader, remaining: Int) where repeat each A: Codable, R: Codable
        {
            var builder = TaskFrameBuilder(
                job: JobID(rawValue: 1), chunkIndex: 0, functionName: function.name,
                signature: function.signatureFingerprint, stopOnError: true, packedStride: function.packedCallStride,
                lone: true)
            try Pool.append(function, repeat each arguments, to: &builder)
            let frame = builder.finishWithAttachments()
            var reader = ByteReader(frame.bytes, offset: 5)
            let header = try TaskHeader.read(from: &reader)
            return (header, reader.remaining)
        }
        let (packed, packedBytes) = try header(F.packedScale, -3, 2.5)
        #expect(packed.packedStride == 16)
        #expect(packed.itemCount == 1)
        #expect(packed.lone)
        #expect(packedBytes == 16)
        let (encoded, _) = try header(F.packedAsyncFailNegative, 4)
        #expect(encoded.packedStride == nil)
        #expect(encoded.itemCount == 1)
    }

    @Test(
        "apply of every plain shape equals calling the function here, by every form of apply", .timeLimit(.minutes(1)))
    func plainShapesEqualLocalCalls() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        let pairs: [(Int, Int)] = [(0, 0), (Int.max, Int.min), (-7, 12_345), (1 << 40, -(1 << 33))]
        for (a, b) in pairs {
            let expected = try await F.packedMulAdd(a, b)
            #expect(try blocking { try pool.apply(F.packedMulAdd, a, b) } == expected)
            #expect(try await pool.apply(F.packedMulAdd, a, b) == expected)
            #expect(try blocking { try pool.applyAsync(F.packedMulAdd, a, b).get() } == expected)
        }
        // Padding inside the tuple and after it: (Int8, Double) and (Double, Int8), stride 16.
        for (k, x) in [(Int8.min, -0.0), (Int8.max, Double.greatestFiniteMagnitude), (3, .pi)] as [(Int8, Double)] {
            #expect(try await pool.apply(F.packedScale, k, x).bitPattern == (try await F.packedScale(k, x)).bitPattern)
            #expect(try await pool.apply(F.packedShift, x, k).bitPattern == (try await F.packedShift(x, k)).bitPattern)
        }
        let mix: (UInt16, Int32, Float) = (.max, .min, .nan)
        #expect(try await pool.apply(F.packedMix, mix.0, mix.1, mix.2) == (try await F.packedMix(mix.0, mix.1, mix.2)))
        let widths: (UInt8, Int16, UInt32, Int64, UInt64, UInt) = (.max, .min, .max, .min, .max, 42)
        #expect(
            try await pool.apply(F.packedWidths, widths.0, widths.1, widths.2, widths.3, widths.4, widths.5)
                == (try await F.packedWidths(widths.0, widths.1, widths.2, widths.3, widths.4, widths.5)))
        #expect(try await pool.apply(F.packedNarrow, 1e300).bitPattern == Float(1e300).bitPattern)
        // The paths beside it: an async body, a result that is not plain.
        #expect(try await pool.apply(F.packedAsyncFailNegative, 4) == 20)
        #expect(try await pool.apply(F.packedLabel, 4) == "#4")
    }

    @Test("An error thrown by a packed lone call reaches the caller as the function's error", .timeLimit(.minutes(1)))
    func packedCallErrors() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        #expect(throws: TestFailure(reason: "negative", value: -4)) { try pool.apply(F.packedFailNegative, -4) }
        await #expect(throws: TestFailure(reason: "negative", value: -5)) {
            try await pool.apply(F.packedFailNegative, -5)
        }
        let failure = Mutex<(any Error)?>(nil)
        let result = try pool.applyAsync(
            F.packedFailNegative, -6, callback: { _ in }, errorCallback: { error in failure.withLock { $0 = error } })
        #expect(throws: TestFailure(reason: "negative", value: -6)) { try result.get() }
        #expect(failure.withLock { $0 as? TestFailure } == TestFailure(reason: "negative", value: -6))
        // The worker goes on: the next call of it succeeds.
        #expect(try await pool.apply(F.packedFailNegative, 7) == 21)
    }
}
