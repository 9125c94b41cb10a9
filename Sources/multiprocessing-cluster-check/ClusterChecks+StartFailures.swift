// The `start-failures` scenario: pools the agents cannot start fail `Pool(...)` with
// `.spawnFailed`, at once and naming the agent, as a local pool does, and the agents serve the
// next pool. Two real causes: an agent out of descriptors (rank 0 lowers the agent's
// RLIMIT_NOFILE with prlimit(2) to the lowest descriptor number it has free, so that it can open
// none: its pool's event loop cannot be set up), and a worker program the agents cannot start.
// Run on one machine (rank 0 reaches the agents' processes by pid: the same machine here, the
// two simulated nodes included).

#if MPI
    import Multiprocessing
    import MultiprocessingTestSupport

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// The descriptor numbers process `pid` has open (from `/proc/<pid>/fd`).
    func openDescriptors(of pid: Int32) -> Set<Int32> {
        guard let folder = opendir("/proc/\(pid)/fd") else { return [] }
        defer { closedir(folder) }
        var numbers: Set<Int32> = []
        while let entry = readdir(folder) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let number = Int32(name) { numbers.insert(number) }
        }
        return numbers
    }

    /// glibc's prlimit(2) wrapper, which the Glibc module does not import: looked up by name.
    private typealias PrlimitFunction =
        @convention(c) (pid_t, Int32, UnsafePointer<rlimit>?, UnsafeMutablePointer<rlimit>?) -> Int32

    /// Reads, and sets if `new` is given, process `pid`'s soft and hard RLIMIT_NOFILE.
    /// - Returns: the limits before, nil when the call failed.
    func descriptorLimit(of pid: Int32, setting new: rlimit? = nil) -> rlimit? {
        guard let symbol = dlsym(nil, "prlimit") else { return nil }
        let prlimit = unsafeBitCast(symbol, to: PrlimitFunction.self)
        var old = rlimit()
        let resource = Int32(RLIMIT_NOFILE.rawValue)
        let status =
            if var new {
                prlimit(pid, resource, &new, &old)
            } else {
                prlimit(pid, resource, nil, &old)
            }
        return status == 0 ? old : nil
    }

    extension ClusterChecks {
        /// What `Pool(...)` of a cluster pool threw, and how long it took to; nil if it made a pool.
        private func failedStart(
            _ configure: (inout Pool.Configuration) -> Void = { _ in }
        ) -> (error: any Error, seconds: Double)? {
            let start = monotonicNow()
            do {
                let pool = try clusterPool(configure: configure)
                pool.stop()
                return nil
            } catch {
                return (error, seconds(since: start))
            }
        }

        func startFailures() {
            let agents = Pool.clusterAgents
            check("agents reported") {
                try expect(agents.count >= 2, "run under mpiexec with 3 or more ranks: agents \(agents)")
            }
            guard let victim = agents.last else { return }

            check("an agent out of descriptors cannot open a pool: Pool(...) fails with spawnFailed, naming it") {
                // The lowest number the agent has free: with that as its limit it can open nothing.
                let open = openDescriptors(of: victim.pid)
                try expect(!open.isEmpty, "cannot read the descriptors of agent \(victim.pid)")
                let lowestFree = (0...).first { !open.contains(Int32($0)) }!
                guard var low = descriptorLimit(of: victim.pid) else {
                    throw CheckFailed(description: "prlimit of \(victim.pid): errno \(errno)")
                }
                let saved = low
                low.rlim_cur = rlim_t(lowestFree)
                try expect(
                    descriptorLimit(of: victim.pid, setting: low) != nil,
                    "prlimit (lower) of \(victim.pid): errno \(errno)")
                let outcome = failedStart()
                _ = descriptorLimit(of: victim.pid, setting: saved)
                guard let (error, elapsed) = outcome else {
                    throw CheckFailed(
                        description: "Pool(...) returned a pool though rank \(victim.rank) cannot open it")
                }
                print("agent out of descriptors: \(error) (after \(elapsed) s)")
                let poolError = error as? PoolError
                try expect(poolError?.code == .spawnFailed, "\(error)")
                let text = "\(error)"
                try expect(text.contains("rank \(victim.rank)"), "the error names no rank \(victim.rank): \(text)")
                try expect(text.contains("could not set up the pool"), "the error says not what failed: \(text)")
                try expect(elapsed < 10, "Pool(...) failed only after \(elapsed) s")
            }
            check("with its descriptors back, the same agents run the next pool") {
                let pool = try clusterPool()
                defer { pool.stop() }
                try expect(
                    try pool.map(TestFunctions.square, Array(0..<100)) == (0..<100).map { $0 * $0 }, "map")
                try expect(
                    pool.workerPIDs.contains { parentPID(of: $0) == victim.pid },
                    "no worker under rank \(victim.rank): \(pool.workerPIDs)")
            }
            check("a worker program the agents cannot start fails Pool(...) with spawnFailed, naming it") {
                let missing = "/nonexistent/multiprocessing-worker"
                guard let (error, elapsed) = failedStart({ $0.executable = missing }) else {
                    throw CheckFailed(description: "Pool(...) returned a pool of a missing program")
                }
                print("missing program: \(error) (after \(elapsed) s)")
                try expect((error as? PoolError)?.code == .spawnFailed, "\(error)")
                let text = "\(error)"
                try expect(text.contains(missing) && text.contains("rank"), "\(text)")
                try expect(elapsed < 10, "Pool(...) failed only after \(elapsed) s")
            }
        }
    }
#endif
