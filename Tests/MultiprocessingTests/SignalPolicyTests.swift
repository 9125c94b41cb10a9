// The workers' signal policy: a terminal sends Ctrl-C (SIGINT), Ctrl-\ (SIGQUIT) and hang-up
// (SIGHUP) to the whole foreground process group, workers included, and only the parent may
// decide what they mean; workers ignore them. A parent that dies of one takes its workers with
// it at once (parent-death signal), even workers that have not reached Pool.bootstrap yet.
// Ctrl-Z (SIGTSTP) and `fg` (SIGCONT) keep their defaults: they stop and resume the workers
// with their parent. Parent programs run in a process group of their own (GroupedProgram).

import Multiprocessing
import MultiprocessingTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("Signal policy", .offCooperativePool) struct SignalPolicyTests {
    @Test(
        "Workers ignore SIGINT, SIGQUIT and SIGHUP: a running map returns its exact results",
        .timeLimit(.minutes(1)), arguments: [SIGINT, SIGQUIT, SIGHUP])
    func terminalSignalsDoNotKillWorkers(signal: Int32) async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        _ = try await pool.map(F.square, 0..<2, chunksize: 1)
        let pids = pool.workerPIDs.sorted()
        // Tasks that run until the test lets them end.
        let release = TestFolder.uniquePath("release")
        defer { unlink(release) }
        let result = try pool.starmapAsync(F.awaitFile, (0..<4).map { (release, $0) }, chunksize: 1)
        try await Task.sleep(for: .milliseconds(100))
        for pid in pids { kill(pid, signal) }
        // Long enough for a worker to die of it. (Swift's backtracer catches SIGQUIT: a worker
        // that does not ignore it prints a crash report, then dies about 0.3 s later, or goes
        // on; `workerSignalState` checks that it is ignored.)
        try await Task.sleep(for: .seconds(1))
        if let file = fopen(release, "w") { fclose(file) }
        #expect(try await result.value == [0, 1, 2, 3])
        #expect(pool.workerPIDs.sorted() == pids)
        #expect(pids.allSatisfy(processIsAlive))
    }

    @Test("A worker ignores the terminal's signals: they are discarded, not left pending", .timeLimit(.minutes(1)))
    func workerSignalState() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        _ = try await pool.apply(F.square, 1)
        let pid = try #require(pool.workerPIDs.first)
        for signal in [SIGINT, SIGQUIT, SIGHUP] { kill(pid, signal) }
        let masks = try await pool.apply(F.signalMasks)
        #expect(pool.workerPIDs == [pid])
        let terminal: UInt64 = (1 << (UInt64(SIGINT) - 1)) | (1 << (UInt64(SIGQUIT) - 1)) | (1 << (UInt64(SIGHUP) - 1))
        let ignored = try #require(masks["SigIgn"])
        let blocked = try #require(masks["SigBlk"])
        let pending = try #require(masks["ShdPnd"])
        #expect(ignored & terminal == terminal, "SigIgn \(String(ignored, radix: 16))")
        #expect(blocked & terminal == 0, "main thread's SigBlk \(String(blocked, radix: 16))")
        #expect(pending & terminal == 0, "ShdPnd \(String(pending, radix: 16))")
    }

    @Test(
        "Ctrl-C to a parent that handles SIGINT leaves its map running", .timeLimit(.minutes(1)),
        .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func parentHandlingSIGINTKeepsItsWork() async throws {
        // Its tasks run until it saw the SIGINT.
        let release = TestFolder.uniquePath("release")
        defer { unlink(release) }
        let program = try GroupedProgram(["map-waiting", release, "handle-sigint"])
        defer { program.finish() }
        let pids = try #require(await program.line(startingWith: "running")).compactMap { Int32($0) }
        #expect(pids.count == 2)
        program.signalGroup(SIGINT)
        let status = try #require(await program.exitStatus())
        #expect(status == 0, "wait status \(status); printed \(program.lines)")
        #expect(program.lines.contains("results 0 1 2 3"), "\(program.lines)")
        #expect(program.lines.contains("sigint 1"), "\(program.lines)")
    }

    @Test(
        "Ctrl-C to a parent that does not handle SIGINT takes its workers with it", .timeLimit(.minutes(1)),
        .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func parentDyingOfSIGINTTakesItsWorkers() async throws {
        // Their tasks never end: the workers would not notice the end of their task pipe; the
        // parent-death signal kills them at once.
        let program = try GroupedProgram(["map-waiting", TestFolder.uniquePath("never-released")])
        defer { program.finish() }
        let pids = try #require(await program.line(startingWith: "running")).compactMap { Int32($0) }
        defer { for pid in pids where processIsAlive(pid) { kill(pid, SIGKILL) } }
        #expect(pids.count == 2)
        #expect(pids.allSatisfy(processIsAlive))
        let parent = program.pid
        let lag = await lagOfWorkersDeath(parent: parent, workers: pids) { kill(-parent, SIGINT) }
        let status = try #require(await program.exitStatus())
        #expect(status & 0x7f == SIGINT, "wait status \(status)")
        let workersLag = try #require(lag, "the parent or its workers did not die within 10 s")
        #expect(workersLag < .seconds(2))
    }

    @Test(
        "Workers that have not reached Pool.bootstrap yet die with their parent",
        .timeLimit(.minutes(1)), .disabled(if: TestBackend.isCluster, TestBackend.parentProgram),
        arguments: [SIGKILL, SIGINT])
    func workersBeforeBootstrapDieWithTheirParent(signal: Int32) async throws {
        let program = try GroupedProgram(["stalled-workers"])
        defer { program.finish() }
        let pids = try #require(await program.line(startingWith: "pids")).compactMap { Int32($0) }
        #expect(pids.count == 2)
        defer { for pid in pids where processIsAlive(pid) { kill(pid, SIGKILL) } }
        // The workers are in their stall, before bootstrap.
        try await Task.sleep(for: .milliseconds(300))
        #expect(pids.allSatisfy(processIsAlive))
        let parent = program.pid
        let lag = await lagOfWorkersDeath(parent: parent, workers: pids) {
            if signal == SIGKILL {
                kill(parent, SIGKILL)  // the parent alone: its workers are not signalled
            } else {
                kill(-parent, signal)  // Ctrl-C: the workers receive it too
            }
        }
        let status = try #require(await program.exitStatus())
        #expect(status & 0x7f == signal, "wait status \(status)")
        let workersLag = try #require(lag, "the parent or its workers did not die within 10 s")
        #expect(workersLag < .seconds(2))
    }

    @Test(
        "Ctrl-Z stops the workers with their parent and fg resumes them", .timeLimit(.minutes(1)),
        .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func jobControlStopsAndResumesWorkers() async throws {
        // Its tasks run until the test lets them end.
        let release = TestFolder.uniquePath("release")
        defer { unlink(release) }
        let program = try GroupedProgram(["map-waiting", release])
        defer { program.finish() }
        let pids = try #require(await program.line(startingWith: "running")).compactMap { Int32($0) }
        #expect(pids.count == 2)
        let group = [program.pid] + pids
        program.signalGroup(SIGTSTP)
        #expect(
            await eventuallyAsync(timeout: .seconds(5)) { group.allSatisfy { processState($0) == "T" } },
            "states \(group.map { processState($0).map(String.init) ?? "gone" })")
        try await Task.sleep(for: .milliseconds(300))
        #expect(group.allSatisfy { processState($0) == "T" }, "still stopped")
        program.signalGroup(SIGCONT)
        #expect(
            await eventuallyAsync(timeout: .seconds(5)) {
                group.allSatisfy { processState($0).map { $0 != "T" } ?? false }
            },
            "states \(group.map { processState($0).map(String.init) ?? "gone" })")
        if let file = fopen(release, "w") { fclose(file) }
        let status = try #require(await program.exitStatus())
        #expect(status == 0, "wait status \(status); printed \(program.lines)")
        #expect(program.lines.contains("results 0 1 2 3"), "\(program.lines)")
    }
}

/// Runs `signal` and measures, on a thread of its own, how long `workers` outlive `parent`: a
/// cooperative thread timing it after an await can resume seconds late on a busy machine.
/// - Returns: nil if the parent or a worker is still alive after 10 s.
private func lagOfWorkersDeath(
    parent: pid_t, workers: [Int32], signal: @escaping @Sendable () -> Void
) async -> Duration? {
    let outcome = await onThread { () -> Duration? in
        signal()
        guard eventually(timeout: .seconds(10), { !processIsAlive(parent) }) else { return nil }
        let parentGone = ContinuousClock.now
        guard eventually(timeout: .seconds(10), { !workers.contains(where: processIsAlive) }) else { return nil }
        return ContinuousClock.now - parentGone
    }
    return (try? outcome.get()) ?? nil
}
