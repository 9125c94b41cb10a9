// The workloads of ../shared/reference/mpi4py_pool.py on a cluster pool (the package's `MPI`
// trait), with the same JSON keys, for Scripts/compare-mpi4py:
//
//   mpiexec -n 3 multiprocessing-cluster-bench
//
// Rank 0 is the parent, every other rank a node agent with one worker (as mpi4py.futures has one
// worker per rank). Prints one JSON object: apply_roundtrip_us (2000 sequential round trips),
// starmap_1e5_s (1e5 (Int, Int) -> Int, CPython's default chunking), cpu_speedup (16 equal
// prime-counting tasks per 2 workers, serial vs pool; the range is wider than mpi4py_pool.py's
// because Swift counts it about 20–40 times faster, see cpu_task_ms), echo_GBps (16 × 4 MiB
// echoed). Arguments name workloads to run alone (`starmap`, `roundtrip`, `cpu`, `echo`; for
// profiling one); `roundtrip=N` sets its number of round trips; `echo=N` runs the echo N times in
// a row (echo_GBps stays the first, as mpi4py_pool.py measures one; echo_repeats_GBps lists all).
// With `cpu`: `cpustat` adds cpu_breakdown (each node process's and busiest threads' run time,
// run-queue wait and timeslices across the parallel part) and cpu_others_ms (what other programs
// ran on the machine meanwhile); `cputimeline` runs the tasks timed and adds cpu_timeline (per
// worker: its tasks, the time to its first, the gaps between them, each one's compute, its tail).

import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

let add = PoolFunction("add") { (a: Int, b: Int) in a + b }
let echo = PoolFunction("echo") { (b: [UInt8]) in b }
let countPrimesTask = PoolFunction("count_primes") { (lo: Int, hi: Int) in countPrimes(lo, hi) }
/// The same, with when it started and ended (CLOCK_MONOTONIC, ns) and its worker's pid, for
/// `cputimeline`: where the parallel part's time goes.
let countPrimesTimed = PoolFunction("count_primes_timed") { (lo: Int, hi: Int) -> [Int] in
    let start = monotonicNanoseconds()
    let count = countPrimes(lo, hi)
    return [count, start, monotonicNanoseconds(), Int(getpid())]
}

func monotonicNanoseconds() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec * 1_000_000_000 + now.tv_nsec
}

func countPrimes(_ lo: Int, _ hi: Int) -> Int {
    var n = 0
    for k in max(lo, 2)..<hi {
        var d = 2
        var prime = true
        while d * d <= k {
            if k % d == 0 {
                prime = false
                break
            }
            d += 1
        }
        if prime { n += 1 }
    }
    return n
}

func measure(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

Pool.bootstrap(serving: [add, echo, countPrimesTask, countPrimesTimed])

#if MPI
    var configuration = Pool.Configuration()
    configuration.cluster = .mpi(workersPerRank: 1)
    let pool = try Pool(configuration)
    let workers = pool.processes
    _ = try pool.apply(add, 0, 0)
    var out: [(String, String)] = [("runtime", "\"swift-multiprocessing cluster\""), ("workers", "\(workers)")]
    let chosen = CommandLine.arguments.dropFirst().map { $0.split(separator: "=").map(String.init) }
    func runs(_ workload: String) -> Bool { chosen.isEmpty || chosen.contains { $0[0] == workload } }
    let roundTrips = chosen.first { $0[0] == "roundtrip" && $0.count == 2 }.flatMap { Int($0[1]) } ?? 2000
    let echoRepeats = max(1, chosen.first { $0[0] == "echo" && $0.count == 2 }.flatMap { Int($0[1]) } ?? 1)

    if runs("starmap") {
        let n = 100_000
        let pairs = (0..<n).map { ($0, $0) }
        var sums: [Int] = []
        let chunk = max(1, (n + 4 * workers - 1) / (4 * workers))
        out.append(("starmap_1e5_s", "\(try measure { sums = try pool.starmap(add, pairs, chunksize: chunk) })"))
        precondition(sums.last == 2 * (n - 1))
    }

    if runs("roundtrip") {
        let latency = try measure { for i in 0..<roundTrips { _ = try pool.apply(add, i, i) } }
        out.append(("apply_roundtrip_us", "\(latency / Double(roundTrips) * 1e6)"))
    }

    if runs("cpu") {
        let ranges = Array(repeating: (200_000, 400_000), count: 8 * workers)
        var serial: [Int] = []
        let serialTime = measure { serial = ranges.map { countPrimes($0.0, $0.1) } }
        var parallel: [Int] = []
        // `cpustat`: each process's CPU across the parallel part (see ProcessCPU.swift).
        let workerPIDs = pool.workerPIDs
        let agentPIDs = Array(Set(workerPIDs.compactMap { parentPID($0) })).sorted()
        let roles =
            [(getpid(), "rank0")] + agentPIDs.map { ($0, "agent") } + workerPIDs.map { ($0, "worker") }
        let stat = chosen.contains { $0[0] == "cpustat" }
        let machineBefore = stat ? machineRunNanoseconds() : 0
        let before = CPUSnapshot.take(roles.map(\.0))
        let timeline = chosen.contains { $0[0] == "cputimeline" }
        var timed: [[Int]] = []
        let parallelStart = monotonicNanoseconds()
        let parallelTime = try measure {
            if timeline {
                timed = try pool.starmap(countPrimesTimed, ranges, chunksize: 1)
                parallel = timed.map { $0[0] }
            } else {
                parallel = try pool.starmap(countPrimesTask, ranges, chunksize: 1)
            }
        }
        let parallelEnd = monotonicNanoseconds()
        if timeline {
            out.append(("cpu_timeline", timelineJSON(timed, start: parallelStart, end: parallelEnd)))
        }
        if stat {
            let after = CPUSnapshot.take(roles.map(\.0))
            let machine = machineRunNanoseconds() - machineBefore
            let ours = after.totalRunNanoseconds - before.totalRunNanoseconds
            out.append(("cpu_breakdown", after.json(since: before, roles: roles, wall: parallelTime)))
            // What other programs ran on this machine meanwhile (ms of CPU; the two reads of
            // every thread included).
            out.append(("cpu_others_ms", "\(Double((machine - ours) / 1000) / 1000)"))
            out.append(("cpu_parallel_ms", "\(parallelTime * 1000)"))
        }
        precondition(serial == parallel)
        out.append(("cpu_speedup", "\(serialTime / parallelTime)"))
        out.append(("cpu_task_ms", "\(serialTime / Double(ranges.count) * 1000)"))
    }

    if runs("echo") {
        var blob = [UInt8](repeating: 0, count: 4 << 20)
        for i in blob.indices { blob[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
        var echoed: [[UInt8]] = []
        var echoTimes: [Double] = []
        for _ in 0..<echoRepeats {
            let time = try measure { echoed = try pool.map(echo, Array(repeating: blob, count: 16), chunksize: 1) }
            echoTimes.append(time)
        }
        let echoTime = echoTimes[0]
        precondition(echoed[5] == blob)
        out.append(("echo_GBps", "\(2.0 * 16 * Double(blob.count) / echoTime / 1e9)"))
        if echoRepeats > 1 {
            let rates = echoTimes.map { "\(2.0 * 16 * Double(blob.count) / $0 / 1e9)" }
            out.append(("echo_repeats_GBps", "[" + rates.joined(separator: ", ") + "]"))
        }
    }

    pool.terminate()
    try pool.join()
    print("{" + out.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
#else
    print("multiprocessing-cluster-bench: built without the MPI trait (swift build --traits MPI)")
    exit(2)
#endif
