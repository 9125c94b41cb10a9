// Chaos: workers SIGKILLed at random every 100 ms while four threads call the pool (lone
// `apply`s, sleeping tasks, multi-chunk `map`s and `starmap`s; MultiprocessingTestSupport's
// ChaosRun). Every call returns its exact result or fails with `.workerLost`, nothing else, and
// none hangs; the pool returns to full size. The descriptor and zombie counts come from a run in
// a parent program of its own (the test worker's `chaos` role), since the tests running beside
// this one open descriptors and start children. Each run prints its seed; set
// MULTIPROCESSING_CHAOS_SEED to replay one.

import Multiprocessing
import MultiprocessingTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The seed of a chaos run: MULTIPROCESSING_CHAOS_SEED if set, else a random one.
private func chaosSeed() -> UInt64 {
    if let raw = getenv("MULTIPROCESSING_CHAOS_SEED"), let seed = UInt64(String(cString: raw)) { return seed }
    return UInt64.random(in: 1...UInt64(Int64.max))
}

@Suite("Chaos", .offCooperativePool) struct ChaosTests {
    @Test("Workers killed at random while four threads call: exact results or .workerLost", .timeLimit(.minutes(2)))
    func randomKills() async throws {
        let seed = chaosSeed()
        print("chaos seed \(seed) (MULTIPROCESSING_CHAOS_SEED=\(seed) replays it)")
        let pool = try TestPools.make(processes: 3)
        defer { pool.stop() }
        _ = try await pool.map(F.square, 0..<3, chunksize: 1)
        let run = try ChaosRun(pool: pool, seed: seed, duration: .seconds(3))
        let finished = await eventuallyAsync(timeout: .seconds(40)) { run.isFinished }
        let report = run.report
        #expect(finished, "seed \(seed): calls still running: \(report.running)")
        if !finished {
            pool.terminate()  // fails the stuck calls, so that their threads end
            _ = await eventuallyAsync(timeout: .seconds(10)) { run.isFinished }
        }
        #expect(report.unexpected.isEmpty, "seed \(seed): \(report.unexpected.prefix(10))")
        #expect(report.kills >= 15, "seed \(seed): \(report.kills) kills")
        #expect(report.lost > 0 && report.exact > 0, "seed \(seed): \(report.exact) exact, \(report.lost) lost")
        print(
            "chaos seed \(seed): \(report.calls) calls, \(report.exact) exact, \(report.lost) lost, \(report.kills) kills"
        )
        guard finished else { return }
        // Back to full size: three live workers, which answer.
        let full = await eventuallyAsync(timeout: .seconds(10)) {
            pool.workerPIDs.count == 3 && pool.workerPIDs.allSatisfy(processIsAlive)
        }
        #expect(full, "seed \(seed): workers \(pool.workerPIDs)")
        #expect(try await pool.map(F.square, 0..<100) == (0..<100).map { $0 * $0 })
    }

    @Test(
        "After the chaos no zombies and no descriptors are left behind", .timeLimit(.minutes(2)),
        .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func noLeaksAfterChaos() async throws {
        let seed = chaosSeed()
        print("chaos (own process) seed \(seed)")
        let program = try GroupedProgram(["chaos", "3", "\(seed)"])
        defer { program.finish() }
        let status = try #require(await program.exitStatus(timeout: .seconds(90)))
        let lines = program.lines
        #expect(status == 0, "seed \(seed): wait status \(status); printed \(lines)")
        var figures: [String: [Int]] = [:]
        for line in lines {
            let fields = line.split(separator: " ")
            if let name = fields.first { figures[String(name)] = fields.dropFirst().compactMap { Int($0) } }
        }
        #expect(figures["finished"] == [1], "seed \(seed): \(lines.filter { $0.hasPrefix("running:") })")
        #expect(figures["unexpected"] == [0], "seed \(seed): \(lines.filter { $0.hasPrefix("unexpected:") })")
        let calls = try #require(figures["calls"])
        #expect(calls.count == 3 && calls[1] > 0 && calls[2] > 0, "seed \(seed): calls, exact, lost \(calls)")
        #expect((figures["kills"]?.first ?? 0) >= 15, "seed \(seed)")
        #expect(figures["size"] == [3], "seed \(seed)")
        #expect(figures["after"] == [1], "seed \(seed): \(lines.filter { $0.hasPrefix("after-error:") })")
        #expect(figures["zombies-running"] == [0], "seed \(seed)")
        let fds = try #require(figures["fds"])
        #expect(fds.count == 2 && fds[0] == fds[1], "seed \(seed): descriptors before and after \(fds)")
        #expect(figures["zombies"] == [0], "seed \(seed)")
    }
}
