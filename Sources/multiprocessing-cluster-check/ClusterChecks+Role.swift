// The checks of the MPI role (see ClusterEndpoint.swift): a lone call's caller on rank 0 makes its
// own MPI calls while it waits (it borrows the role from the MPI thread, which parks), and any
// thread with a message to send starts it itself when the role is free. What could go wrong is a
// message nobody receives, or one handed to the wrong waiter: many callers at once beside a map
// must each get their own result; and a result that comes as its caller stops waiting must still
// be received at once, by the caller or by the MPI thread, parked or asleep in sleeps of up to
// 200 ms (the `wakeup` scenario): the caller hands the role back with its rank marked asleep.

#if MPI
    import Dispatch
    import Multiprocessing
    import MultiprocessingTestSupport
    import Synchronization

    extension ClusterChecks {
        /// In the `behaviour` scenario, on its pool.
        func roleChecks(_ pool: Pool) {
            check("lone calls from 4 threads at once, beside a map, each get their own result") {
                let failures = Mutex<[String]>([])
                let start = monotonicNow()
                DispatchQueue.concurrentPerform(iterations: 5) { thread in
                    do {
                        if thread == 4 {
                            // A map's chunks and results cross while the callers borrow the role.
                            for round in 0..<20 {
                                let items = Array(round * 100..<round * 100 + 100)
                                let squares = try pool.map(TestFunctions.square, items, chunksize: 7)
                                if squares != items.map({ $0 * $0 }) {
                                    failures.withLock { $0.append("map round \(round) differs") }
                                }
                            }
                            return
                        }
                        for i in 0..<300 {
                            let x = thread * 1_000 + i
                            let value = try pool.apply(TestFunctions.square, x)
                            if value != x * x { failures.withLock { $0.append("square(\(x)) gave \(value)") } }
                        }
                    } catch {
                        failures.withLock { $0.append("thread \(thread): \(error)") }
                    }
                }
                let seen = failures.withLock { $0 }
                try expect(seen.isEmpty, seen.prefix(5).joined(separator: "; "))
                print("1,200 lone calls on 4 threads beside 20 maps took \(seconds(since: start)) s")
            }
        }

        /// In the `wakeup` scenario (sleeps of up to 200 ms).
        func roleWakeupChecks() {
            check("lone calls whose results come as their caller stops waiting are answered at once (200 ms sleeps)") {
                let pool = try clusterPool()
                defer { pool.stop() }
                _ = try pool.apply(TestFunctions.square, 1)
                // Tasks of 20-320 µs: their results come back before, around and after the moment
                // the caller (waiting 100 µs) hands the MPI role back to rank 0's MPI thread,
                // which sleeps up to 200 ms: a result that neither sees waits out that sleep.
                var slowest = 0.0
                var total = 0.0
                for i in 0..<300 {
                    let us = 20 + (i % 16) * 20
                    let start = monotonicNow()
                    let value = try pool.apply(TestFunctions.spinMicroseconds, us)
                    let took = seconds(since: start)
                    try expect(value == us, "spinMicroseconds(\(us)) gave \(value)")
                    slowest = max(slowest, took)
                    total += took
                }
                print("300 calls of 20-320 µs took \(Int(total * 1e3)) ms, the slowest \(Int(slowest * 1e6)) µs")
                try expect(slowest < 0.06, "a call took \(slowest) s")
            }
        }
    }
#endif
