// The checks of multiprocessing-cluster-check (see main.swift): each runs on rank 0 against a
// cluster pool and records "ok" or "FAIL" with what it saw.

#if MPI
    import Multiprocessing
    import MultiprocessingTestSupport
    import Synchronization

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    struct CheckFailed: Error, CustomStringConvertible {
        var description: String
    }

    func expect(_ condition: Bool, _ what: @autoclosure () -> String) throws {
        if !condition { throw CheckFailed(description: what()) }
    }

    func seconds(since start: timespec) -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec - start.tv_sec) + Double(now.tv_nsec - start.tv_nsec) / 1e9
    }

    func monotonicNow() -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now
    }

    /// CPU time of process `pid` in seconds: the time its threads spent on a CPU, as the scheduler
    /// accounts it (`/proc/<pid>/task/*/schedstat`, in nanoseconds). Not `utime + stime` from
    /// `/proc/<pid>/stat`: those are sampled at the clock tick, and a thread that wakes for a few
    /// microseconds a thousand times a second is caught by the tick far more often than it runs.
    func cpuSeconds(of pid: Int32) -> Double? {
        guard let folder = opendir("/proc/\(pid)/task") else { return nil }
        defer { closedir(folder) }
        var nanoseconds = 0.0
        while let entry = readdir(folder) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard !name.hasPrefix("."), let file = fopen("/proc/\(pid)/task/\(name)/schedstat", "r") else { continue }
            defer { fclose(file) }
            var buffer = [CChar](repeating: 0, count: 128)
            guard fgets(&buffer, Int32(buffer.count), file) != nil else { continue }
            let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            nanoseconds += Double(line.split(separator: " ").first ?? "0") ?? 0
        }
        return nanoseconds / 1e9
    }

    /// A pool left running when the program exits (see `exitWithPool`).
    nonisolated(unsafe) var leftRunning: Pool?

    final class ClusterChecks: @unchecked Sendable {
        private var passed = 0
        private var failed = 0

        func check(_ name: String, _ body: () throws -> Void) {
            do {
                try body()
                passed += 1
                print("ok \(name)")
                fflush(nil)
            } catch {
                failed += 1
                print("FAIL \(name): \(error)")
                fflush(nil)
            }
        }

        func checkAsync(_ name: String, _ body: () async throws -> Void) async {
            do {
                try await body()
                passed += 1
                print("ok \(name)")
                fflush(nil)
            } catch {
                failed += 1
                print("FAIL \(name): \(error)")
                fflush(nil)
            }
        }

        func finish() -> Int32 {
            print(failed == 0 ? "passed \(passed)" : "failed \(failed) of \(passed + failed)")
            return failed == 0 ? 0 : 1
        }

        func clusterPool(
            workersPerRank: Int? = nil, configure: (inout Pool.Configuration) throws -> Void = { _ in }
        ) throws
            -> Pool
        {
            var configuration = Pool.Configuration()
            configuration.cluster = .mpi(workersPerRank: workersPerRank)
            try configure(&configuration)
            return try Pool(configuration)
        }

        /// The pool a scenario's checks share, or nil when it cannot be made (a failed check).
        func scenarioPool(configure: (inout Pool.Configuration) throws -> Void = { _ in }) -> Pool? {
            do {
                return try clusterPool(configure: configure)
            } catch {
                check("cluster pool created") { throw error }
                return nil
            }
        }

        // MARK: - Behaviour

        func behaviour() async {
            let agents = Pool.clusterAgents
            check("agents reported") {
                try expect(!agents.isEmpty, "no node agents: run under mpiexec with 2 or more ranks")
                try expect(agents.map(\.rank) == Array(1...agents.count), "agents \(agents)")
                print("agents \(agents.map { "\($0.rank)@\($0.host)" }.joined(separator: " "))")
            }
            guard let pool = scenarioPool() else { return }
            defer { pool.stop() }
            check("default workers: one per agent sharing its node, the node's CPUs for one alone") {
                for agent in agents {
                    let expected = agent.ranksOnNode > 1 ? 1 : agent.cpus
                    try expect(agent.defaultWorkers == expected, "agent \(agent) should run \(expected)")
                }
                let total = agents.map(\.defaultWorkers).reduce(0, +)
                try expect(pool.processes == total, "processes \(pool.processes), not \(total)")
                print(
                    "workers per agent \(agents.map { "\($0.rank):\($0.defaultWorkers)/\($0.ranksOnNode)" }.joined(separator: " "))"
                )
            }
            check("processes sets the total, spread over the agents") {
                let spread = try clusterPool { $0.processes = agents.count + 1 }
                defer { spread.stop() }
                try expect(spread.processes == agents.count + 1, "processes \(spread.processes)")
                // Tasks long enough that every worker, ready or not yet, gets some.
                let pids = Set(
                    try spread.map(
                        TestFunctions.sleepMs, Array(repeating: 100, count: 8 * spread.processes), chunksize: 1))
                try expect(pids.count == agents.count + 1, "\(pids.count) workers answered")
            }
            check("apply") {
                try expect(try pool.apply(TestFunctions.square, 7) == 49, "square(7)")
                try expect(try pool.apply(TestFunctions.ping) == "pong", "ping")
            }
            check("workers are not rank 0's children, and run on the agents' nodes") {
                let pids = Set(
                    try pool.map(TestFunctions.sleepMs, Array(repeating: 100, count: 8 * pool.processes), chunksize: 1))
                let known = Set(pool.workerPIDs)
                try expect(pids.isSubset(of: known), "pids \(pids) not among workerPIDs \(known)")
                for pid in pids {
                    // On this machine (a simulated cluster), a worker's parent is an agent.
                    if let parent = parentPID(of: pid) {
                        try expect(agents.contains { $0.pid == parent }, "worker \(pid)'s parent \(parent) is no agent")
                    }
                }
                try expect(pids.count == pool.processes, "\(pids.count) workers answered, not \(pool.processes)")
            }
            check("map, in order, chunked and not") {
                let items = Array(0..<10_000)
                try expect(try pool.map(TestFunctions.square, items) == items.map { $0 * $0 }, "map")
                try expect(
                    Array(try pool.map(TestFunctions.square, items, chunksize: 1).prefix(100))
                        == items.prefix(100).map { $0 * $0 }, "chunksize 1")
            }
            check("starmap of 1e5 pairs") {
                let pairs = (0..<100_000).map { ($0, 3) }
                try expect(try pool.starmap(TestFunctions.mul, pairs) == pairs.map { $0.0 * 3 }, "starmap")
            }
            check("imap and imapUnordered") {
                var ordered: [Int] = []
                let stream = try pool.imap(TestFunctions.square, 0..<500, chunksize: 7)
                while let x = try stream.next(timeout: .seconds(30)) { ordered.append(x) }
                try expect(ordered == (0..<500).map { $0 * $0 }, "imap")
                var unordered: [Int] = []
                let any = try pool.imapUnordered(TestFunctions.square, 0..<500)
                while let x = try any.next(timeout: .seconds(30)) { unordered.append(x) }
                try expect(unordered.sorted() == (0..<500).map { $0 * $0 }, "imapUnordered")
            }
            await checkAsync("async forms") {
                let value = try await pool.apply(TestFunctions.asyncDouble, 21)
                try expect(value == 42, "await apply")
                let mapped = try await pool.map(TestFunctions.square, Array(0..<100))
                try expect(mapped == (0..<100).map { $0 * $0 }, "await map")
                var streamed = 0
                for try await x in try pool.imap(TestFunctions.square, 0..<100, chunksize: 10) { streamed += x }
                try expect(streamed == (0..<100).map { $0 * $0 }.reduce(0, +), "async imap")
            }
            check("callbacks") {
                let seen = Mutex<[Int]>([])
                let results = try (0..<20).map { i in
                    try pool.applyAsync(
                        TestFunctions.square, i, callback: { value in seen.withLock { $0.append(value) } })
                }
                for result in results { _ = try result.get(timeout: .seconds(30)) }
                try expect(
                    seen.withLock { $0.sorted() } == (0..<20).map { $0 * $0 }, "callbacks \(seen.withLock { $0 })")
            }
            check("errors cross as themselves") {
                do {
                    _ = try pool.apply(TestFunctions.checkedSqrt, -4)
                    throw CheckFailed(description: "no error")
                } catch let error as TestFailure {
                    try expect(error.value == -4, "\(error)")
                }
                let mixed = try pool.mapAsync(TestFunctions.failOnFive, Array(0..<10))
                do {
                    _ = try mixed.get()
                    throw CheckFailed(description: "map with a failing item succeeded")
                } catch is RemoteError {}
            }
            roleChecks(pool)
            check("large payloads (16 × 4 MiB echo)") {
                let payloads = (0..<16).map { i in [UInt8](repeating: UInt8(i), count: 4 << 20) }
                let echoed = try pool.map(TestFunctions.echoBytes, payloads, chunksize: 1)
                try expect(echoed == payloads, "echo differs")
            }
            check("an initializer runs in every worker, replacements included") {
                let initialized = try clusterPool(workersPerRank: 2) { configuration in
                    configuration.initializer = try .init(TestFunctions.setUp, "cluster")
                    configuration.maxTasksPerChild = 3
                }
                defer { initialized.stop() }
                var answers: [String] = []
                for _ in 0..<40 { answers.append(try initialized.apply(TestFunctions.readInit)) }
                try expect(answers.allSatisfy { $0.hasPrefix("cluster:") }, "answers \(answers)")
                let pids = Set(answers.map { $0.split(separator: ":")[1] })
                try expect(pids.count > initialized.processes, "maxTasksPerChild replaced no worker: \(pids)")
                try expect(initialized.processes == 2 * agents.count, "processes \(initialized.processes)")
            }
            check("progress counts a map's items to its total") {
                let result = try pool.mapAsync(TestFunctions.square, Array(0..<300), chunksize: 7)
                _ = try result.get(timeout: .seconds(60))
                let progress = result.progress
                try expect(progress.completed == 300 && progress.total == 300 && progress.isFinished, "\(progress)")
            }
            await checkAsync("withPool over the cluster") {
                var configuration = Pool.Configuration()
                configuration.cluster = .mpi
                let sum = try await withPool(configuration: configuration) { pool in
                    try await pool.map(TestFunctions.square, Array(1...10)).reduce(0, +)
                }
                try expect(sum == 385, "sum \(sum)")
            }
            check("close and join finish the work") {
                let closing = try clusterPool()
                let pending = try closing.mapAsync(TestFunctions.square, Array(0..<1000), chunksize: 10)
                closing.close()
                try closing.join()
                try expect(try pending.get() == (0..<1000).map { $0 * $0 }, "results after join")
                do {
                    _ = try closing.apply(TestFunctions.square, 1)
                    throw CheckFailed(description: "apply after close succeeded")
                } catch let error as PoolError {
                    try expect(error.code == .notRunning, "\(error)")
                }
            }
        }

        // MARK: - Faults

        func faults() async {
            guard let pool = scenarioPool(configure: { $0.taskTimeout = .seconds(2) }) else { return }
            defer { pool.stop() }
            check("a trap fails its task with the worker's node, pid and crash, and the pool heals") {
                do {
                    // Not the pool's 2 s: the dying worker writes its crash report first, which
                    // under load can take longer (a timeout would then kill it first).
                    _ = try pool.apply(TestFunctions.trapAt, 3, 3, timeout: .seconds(60))
                    throw CheckFailed(description: "no error")
                } catch let error as PoolError {
                    try expect(error.code == .workerLost, "\(error)")
                    let text = "\(error)"
                    try expect(text.contains("on node"), "no node named: \(text)")
                    try expect(text.contains("rank"), "no rank named: \(text)")
                    try expect(error.workerPID != nil, "no pid: \(text)")
                }
                try expect(try pool.map(TestFunctions.square, Array(0..<100)) == (0..<100).map { $0 * $0 }, "after")
                // The replacement reports once it runs, which the map need not wait for (the
                // other workers answer it): under load that can come after the map (a helper saw
                // it fail under srun at load 3–6).
                var healed = pool.workerPIDs.count == pool.processes
                for _ in 0..<1000 where !healed {
                    usleep(10_000)
                    healed = pool.workerPIDs.count == pool.processes
                }
                try expect(healed, "pool did not heal within 10 s: \(pool.workerPIDs)")
            }
            check("a worker of the last agent SIGKILLed mid-map fails only its task, and is replaced there") {
                // Every worker busy with a task of its own (1.2 s; not under the pool's 2 s timeout,
                // which a loaded machine could reach).
                let results = try (0..<pool.processes).map { _ in
                    try pool.applyAsync(TestFunctions.blockMs, 1200, timeout: .seconds(60))
                }
                usleep(400_000)
                let last = Pool.clusterAgents.last!
                let theirs = pool.workerPIDs.filter { parentPID(of: $0) == last.pid }
                try expect(!theirs.isEmpty, "no worker under the last agent (rank \(last.rank)): \(pool.workerPIDs)")
                let victim = theirs[0]
                kill(victim, SIGKILL)
                var lost: [PoolError] = []
                var succeeded = 0
                for result in results {
                    do {
                        _ = try result.get(timeout: .seconds(30))
                        succeeded += 1
                    } catch let error as PoolError {
                        lost.append(error)
                    }
                }
                try expect(lost.count == 1 && succeeded == pool.processes - 1, "\(succeeded) succeeded, lost: \(lost)")
                try expect(lost[0].code == .workerLost, "\(lost[0])")
                try expect(lost[0].workerPID == victim, "pid \(String(describing: lost[0].workerPID)) not \(victim)")
                try expect(
                    "\(lost[0])".contains("(rank \(last.rank))"), "the error names no rank \(last.rank): \(lost[0])")
                try expect(try pool.apply(TestFunctions.square, 5) == 25, "after the kill")
                var replaced = false
                for _ in 0..<300 where !replaced {
                    let now = pool.workerPIDs
                    replaced =
                        now.count == pool.processes && !now.contains(victim)
                        && now.filter { parentPID(of: $0) == last.pid }.count == theirs.count
                    if !replaced { usleep(10_000) }
                }
                try expect(replaced, "not replaced under rank \(last.rank): \(pool.workerPIDs)")
            }
            check("a task timeout kills the worker on its node and fails the task in time") {
                let start = monotonicNow()
                do {
                    _ = try pool.apply(TestFunctions.blockMs, 20_000)
                    throw CheckFailed(description: "no timeout")
                } catch let error as PoolError {
                    try expect(error.code == .taskTimedOut, "\(error)")
                }
                let elapsed = seconds(since: start)
                try expect(elapsed >= 2 && elapsed < 4, "timed out after \(elapsed) s, not 2 s")
                try expect(try pool.apply(TestFunctions.square, 6) == 36, "after the timeout")
            }
            await checkAsync("cancellation kills the task's worker, which is replaced") {
                let before = Set(pool.workerPIDs)
                let task = Task { try await pool.apply(TestFunctions.blockMs, 20_000) }
                try await Task.sleep(for: .milliseconds(500))
                task.cancel()
                do {
                    _ = try await task.value
                    throw CheckFailed(description: "the cancelled apply returned")
                } catch is CancellationError {
                } catch let error as PoolError where error.code == .cancelled {}
                for _ in 0..<300 {
                    if pool.workerPIDs.count == pool.processes && Set(pool.workerPIDs) != before { break }
                    try await Task.sleep(for: .milliseconds(10))
                }
                try expect(Set(pool.workerPIDs) != before, "no worker replaced: \(before)")
                let after = try await pool.apply(TestFunctions.square, 4)
                try expect(after == 16, "after the cancel")
            }
        }

        // MARK: - Idle

        func idle() {
            check("an idle cluster pool costs every process under 0.15 s of CPU in 3 s") {
                let pool = try clusterPool()
                defer { pool.stop() }
                _ = try pool.map(TestFunctions.square, Array(0..<100))
                usleep(500_000)
                let pids = [getpid()] + Pool.clusterAgents.map(\.pid) + pool.workerPIDs
                let before = pids.map { cpuSeconds(of: $0) ?? -1 }
                sleep(3)
                let after = pids.map { cpuSeconds(of: $0) ?? -1 }
                for (i, pid) in pids.enumerated() {
                    let grew = after[i] - before[i]
                    print("idle cpu \(pid) \(grew)")
                    try expect(before[i] >= 0 && grew < 0.15, "process \(pid) used \(grew) s")
                }
            }
        }

        // MARK: - Losing an agent

        func killAgent() {
            do {
                let pool = try clusterPool()
                let result = try pool.mapAsync(TestFunctions.blockMs, Array(repeating: 200, count: 200), chunksize: 1)
                usleep(500_000)
                let victim = Pool.clusterAgents.last!.pid
                print("killing \(victim)")
                fflush(nil)
                kill(victim, SIGKILL)
                _ = try? result.get(timeout: .seconds(60))
                print("rank 0 still runs 60 s after losing an agent")
            } catch {
                print("FAIL kill-agent: \(error)")
            }
        }

        // MARK: - Ending with a pool still running

        func exitWithPool() {
            check("rank 0 ends with a pool it never terminated") {
                let pool = try clusterPool()
                try expect(try pool.apply(TestFunctions.square, 3) == 9, "apply")
                print("workers \(pool.workerPIDs.map(String.init).joined(separator: " "))")
                // Kept alive to the end: the program exits with its workers running.
                leftRunning = pool
            }
        }

        /// Rank 0 ends while its agents are still starting a pool's workers: the job must still end
        /// at once, with every worker gone (a worker queued before the end starts after its kill).
        func exitWhileStarting() {
            check("rank 0 ends while its agents start workers") {
                leftRunning = try clusterPool(workersPerRank: 6)
                print("created")
            }
        }

        // MARK: - Without a launcher

        func local() {
            check("a cluster pool without mpiexec runs on this machine") {
                try expect(Pool.clusterAgents.isEmpty, "agents without mpiexec")
                let pool = try clusterPool()
                defer { pool.stop() }
                try expect(try pool.apply(TestFunctions.square, 9) == 81, "apply")
                for pid in pool.workerPIDs {
                    try expect(parentPID(of: pid) == getpid(), "worker \(pid) is not this process's child")
                }
            }
        }
    }

    /// The pid a marker file holds, once it exists.
    func readPID(_ path: String) -> Int32? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 32)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        return Int32(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    /// The parent of process `pid`, from /proc.
    func parentPID(of pid: Int32) -> Int32? {
        guard let file = fopen("/proc/\(pid)/stat", "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let close = line.lastIndex(of: ")") else { return nil }
        let fields = line[line.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }
#endif
