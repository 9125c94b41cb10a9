// End to end: a worker that traps in the user's code fails its task with a `.workerLost` error that
// says where — the function, file and line of TestFunctions+Crash.swift — in `crashFrames` and in
// its description, read from the crash report the Swift runtime wrote to the worker's stderr.

import Foundation
import Multiprocessing
import MultiprocessingTestSupport
import Testing

@Suite("Crash location", .offCooperativePool)
struct CrashLocationTests {
    /// The line of TestFunctions+Crash.swift holding `marker` (e.g. "crashForceUnwrap traps here").
    private func line(marked marker: String) throws -> Int {
        let source = try String(contentsOfFile: F.crashSourcePath, encoding: .utf8)
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        let index = try #require(lines.firstIndex { $0.contains("// " + marker) })
        return index + 1
    }

    @Test("A force-unwrap of nil names its function, file and line", .timeLimit(.minutes(1)))
    func forceUnwrap() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let error = try #require(throws: PoolError.self) { try pool.apply(F.crashForceUnwrap, -1) }
        #expect(error.code == .workerLost)
        let frame = try #require(error.crashFrames.first)
        #expect(frame.function.contains("crashForceUnwrap"))
        #expect(frame.file == F.crashSourcePath)
        #expect(frame.line == (try line(marked: "crashForceUnwrap traps here")))
        #expect(frame.column != nil)
        #expect(error.description.contains("It crashed in \(frame)"))
        #expect(error.description.contains("TestFunctions+Crash.swift:\(frame.line!):\(frame.column!)"))
        // The runtime's own line is still there.
        #expect(error.description.contains("Fatal error: Unexpectedly found nil"))
        // And the pool goes on.
        #expect(try pool.apply(F.crashForceUnwrap, 7) == 7)
    }

    @Test("An index out of range two calls deep names the callers too, innermost first", .timeLimit(.minutes(1)))
    func helperChain() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let error = try await #require(throws: PoolError.self) { try await pool.apply(F.crashInHelper, -1) }
        #expect(error.code == .workerLost)
        let frames = error.crashFrames
        #expect(
            frames.map(\.function).prefix(3) == ["crashHelperInner(_:)", "crashHelperOuter(_:)", frames[2].function])
        #expect(frames.count >= 3 && frames[2].function.contains("crashInHelper"))
        #expect(frames.allSatisfy { $0.file == F.crashSourcePath })
        #expect(frames.first?.line == (try line(marked: "crashHelperInner traps here")))
        #expect(frames.dropFirst().first?.line == (try line(marked: "crashHelperOuter calls here")))
        #expect(error.description.contains("called from \(frames[1])"))
        // Neither the runtime's frames nor this library's.
        #expect(!frames.contains { $0.function.contains("PoolFunction") || $0.function.contains("subscript") })
    }

    @Test(
        "A crash among hundreds of threads (a report longer than the kept end of stderr) is still located",
        .timeLimit(.minutes(2)))
    func amongManyThreads() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let error = try await #require(throws: PoolError.self) { try await pool.apply(F.crashWithThreads, 250) }
        #expect(error.code == .workerLost)
        let frame = try #require(error.crashFrames.first)
        #expect(frame.function == "crashOnThisThread()")
        #expect(frame.file == F.crashSourcePath)
        #expect(frame.line == (try line(marked: "crashOnThisThread traps here")))
        #expect(error.description.contains("Fatal error: Index out of range"))
    }
}
