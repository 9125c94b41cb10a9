// What the other suites take for granted when they run on the cluster backend
// (`MULTIPROCESSING_TEST_BACKEND=mpi`, Scripts/test-cluster): that their pools really are cluster
// pools, whose workers run under the node agents (the other ranks of the MPI job), not under this
// process; that this process, rank 0, holds many of them at once, used in parallel, as the
// suites' parallel tests do; and that a pool its agents cannot start fails `Pool(...)`, naming
// the agent. Built with the `MPI` trait only, and run only on that backend; beside it, the agents'
// log level read from the environment (any backend of an MPI build).

#if MPI
    import Logging
    import MultiprocessingTestSupport
    import Testing

    @testable import Multiprocessing

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// The parent pid of process `pid` (the fourth field of `/proc/<pid>/stat`), nil if it is gone.
    func parentPID(of pid: Int32) -> Int32? {
        guard let file = fopen("/proc/\(pid)/stat", "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 512)
        guard fgets(&buffer, 512, file) != nil else { return nil }
        let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let close = line.lastIndex(of: ")") else { return nil }
        let fields = line[line.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }

    @Suite(
        "Cluster backend", .offCooperativePool,
        .enabled(if: TestBackend.isCluster, "checks the cluster backend: run by Scripts/test-cluster under mpiexec"))
    struct ClusterBackendTests {
        @Test(
            "The suites' pools are cluster pools: their workers are the node agents' children",
            .timeLimit(.minutes(1)))
        func poolsRunUnderTheAgents() throws {
            let pool = try TestPools.make(processes: 2)
            defer { pool.stop() }
            let agents = Pool.clusterAgents
            #expect(!agents.isEmpty, "no node agents: this process is not rank 0 of an MPI job")
            let pids = Set(try (0..<8).map { _ in try pool.applyAsync(F.pid) }.map { try $0.get() })
            #expect(!pids.isEmpty && pids.isSubset(of: Set(pool.workerPIDs)))
            let agentPIDs = Set(agents.map(\.pid))
            for pid in pids {
                let parent = parentPID(of: pid)
                #expect(parent != getpid(), "worker \(pid) is this process's child")
                #expect(parent.map(agentPIDs.contains) == true, "worker \(pid)'s parent \(parent ?? 0) is no agent")
            }
        }

        @Test("Rank 0 holds several cluster pools at once, used in parallel", .timeLimit(.minutes(2)))
        func severalPoolsAtOnce() async throws {
            let pools = try (0..<4).map { _ in try TestPools.make(processes: 2) }
            defer { for pool in pools { pool.stop() } }
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for (i, pool) in pools.enumerated() {
                    group.addTask {
                        let values = (0..<300).map { $0 + i }
                        return try await pool.map(F.square, values, chunksize: 7) == values.map { $0 * $0 }
                    }
                }
                for try await right in group { #expect(right) }
            }
            // Every pool has workers of its own.
            let workers = pools.map { Set($0.workerPIDs) }
            #expect(workers.allSatisfy { $0.count == 2 })
            #expect(workers.reduce(Set<Int32>()) { $0.union($1) }.count == 8)
        }

        @Test("pool.share on a cluster pool fails with invalidArgument, saying why", .timeLimit(.minutes(1)))
        func shareIsRefused() throws {
            let pool = try TestPools.make(processes: 1)
            defer { pool.stop() }
            let error = #expect(throws: PoolError.self) { _ = try pool.share([1, 2, 3]) }
            #expect(error?.code == .invalidArgument)
            #expect(error?.description.contains("cluster") == true)
        }

        @Test(
            "A program the agents cannot start fails Pool(...) with spawnFailed, naming the agent",
            .timeLimit(.minutes(1)))
        func missingExecutableOnTheAgents() throws {
            let error = #expect(throws: PoolError.self) {
                _ = try TestPools.make(
                    TestPools.configuration(processes: 2, executable: "/nonexistent/multiprocessing-worker"))
            }
            #expect(error?.code == .spawnFailed)
            #expect(error?.description.contains("/nonexistent/multiprocessing-worker") == true)
            #expect(error?.description.contains("rank") == true)
            // The agents go on serving other pools.
            let pool = try TestPools.make(processes: 2)
            defer { pool.stop() }
            #expect(try pool.map(F.square, 0..<10) == (0..<10).map { $0 * $0 })
        }
    }

    @Suite("Node agents' log level", .offCooperativePool)
    struct NodeAgentLogLevelTests {
        @Test("MULTIPROCESSING_LOG_LEVEL names the agents' level, in any case; anything else is warning")
        func levelFromTheEnvironment() {
            #expect(NodeAgent.logLevel(nil) == .warning)
            #expect(NodeAgent.logLevel("debug") == .debug)
            #expect(NodeAgent.logLevel("TRACE") == .trace)
            #expect(NodeAgent.logLevel("error") == .error)
            #expect(NodeAgent.logLevel("loud") == .warning)
        }
    }
#endif
