// The check of the `wakeup` scenario (see main.swift): a rank whose MPI thread sleeps is woken at
// once by a message from a rank of its node (NodeWakeup.swift), however long its sleeps. Run with
// MULTIPROCESSING_MPI_MAX_SLEEP_US=200000 (sleeps of up to 200 ms): an agent that only polled would
// see each call up to 200 ms late.

#if MPI
    import Multiprocessing
    import MultiprocessingTestSupport

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    extension ClusterChecks {
        func wakeup() {
            check("a sleeping agent wakes at once for a call from its node (sleeps of up to 200 ms)") {
                let pool = try clusterPool()
                defer { pool.stop() }
                _ = try pool.apply(TestFunctions.square, 1)
                var slowest: Duration = .zero
                var took: [Duration] = []
                for i in 0..<5 {
                    // Every rank's MPI thread is in its longest sleeps by then.
                    usleep(700_000)
                    let start = ContinuousClock.now
                    let value = try pool.apply(TestFunctions.square, i)
                    took.append(ContinuousClock.now - start)
                    slowest = max(slowest, took.last!)
                    try expect(value == i * i, "square(\(i)) gave \(value)")
                }
                print("wakeup calls took \(took.map { "\($0)" }.joined(separator: ", "))")
                try expect(slowest < .milliseconds(60), "a call after 0.7 s of idleness took \(slowest)")
            }
            roleWakeupChecks()
        }
    }
#endif
