// pool-workloads: the workloads of cpython_pool.py on swift-multiprocessing, printed as one JSON
// object with the same keys, so that Scripts/compare-cpython can set them side by side.
//
//     swift run -c release --package-path Benchmarks pool-workloads [workload …]
//
// With workload names (floor, cold, starmap, apply, cpu, echo, imap, share, idle) only those run:
// for profiling one. (`chunks`, `starmap-sizes`, `fresh`, `lone-rounds` and `colocated` run only
// when named.)
//
// The program links Foundation (see the import below), as users' programs do: a worker is this
// program started again, so what loading Foundation costs is part of every worker's start. `floor`
// measures that cost alone: this same program, started with `--exit-at-once`, which exits
// before anything else (key `exec_floor_s`: posix_spawn → waitpid, best of 40), the floor under
// the cold start (`cold_start_s`), which starts two of it and has one answer.
// `chunks` (run only when named; a few minutes) sets `imap` without a chunksize, whose chunks are
// sized from their run time, beside hand-picked chunksizes on two workloads: the 3e6 tiny items
// of `imap`, and a hasher-like one (a hash over a buffer of 20–200 µs per item, as hashing files
// is):
//
//     swift run -c release --package-path Benchmarks pool-workloads chunks [runs]   (default 3)
//
// (`chunks-imap` or `chunks-hash` alone runs one of its two workloads.) Chunksize 1 on the tiny
// items takes 40 µs a chunk here, two minutes for 3e6: it runs once, on 3e5 of them
// (`chunks_imap_3e5_1_s`).

import Dispatch
// Not used here: linked so that this program (and so every worker it starts) loads what users'
// programs load. A program that does not link Foundation starts in about half the time.
import Foundation
import Multiprocessing
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// The exec floor's program (see `floor` below): this one, exiting before any code of ours runs
// (the pool functions below are made as `main` reaches them). A worker never gets this argument.
if CommandLine.arguments.dropFirst().first == "--exit-at-once" { exit(0) }

let add = PoolFunction("add") { (a: Int, b: Int) in a + b }
let echo = PoolFunction("echo") { (b: [UInt8]) in b }
let square = PoolFunction("sq") { (x: Int) in x * x }
let countPrimesTask = PoolFunction("count_primes") { (lo: Int, hi: Int) in countPrimes(lo, hi) }
let hashTask = PoolFunction("hash_bytes") { (length: Int) in hashBytes(length) }
let sharedSliceSum = PoolFunction("shared_slice_sum") { (table: SharedArray<Int64>, lo: Int, hi: Int) in
    table.withUnsafeBufferPointer { $0[lo..<hi].reduce(0, &+) }
}
let sliceSum = PoolFunction("slice_sum") { (slice: [Int64]) in slice.reduce(0, &+) }

/// The bytes `hashBytes` reads: 256 KiB of a fixed pattern, made once per process, when first
/// used. (A top-level `let` of this file would be made before `Pool.bootstrap`, in every worker as
/// it starts: that once tripled the cold start.)
enum HashInput {
    static let bytes: [UInt8] = (0..<(256 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 11) }
}

/// A hash of the first `length` bytes of `HashInput.bytes` (FNV-1a with an extra mix per byte): about
/// the cost per byte of a software SHA-256, so that a length stands for a file of that size.
func hashBytes(_ length: Int) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    HashInput.bytes.withUnsafeBufferPointer { bytes in
        for i in 0..<min(length, bytes.count) {
            h = (h ^ UInt64(bytes[i])) &* 0x0000_0100_0000_01b3
            h ^= h >> 29
        }
    }
    return h
}

/// The `chunks` hasher's item lengths: log-uniform, so that items take from about 20 to 200 µs,
/// as a tree of files of many sizes does; the same on every run.
func hashLengths(count: Int, from low: Int, to high: Int) -> [Int] {
    var state: UInt64 = 0x9e37_79b9_7f4a_7c15
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let unit = Double(state >> 11) / Double(1 << 53)
        return Int(Double(low) * pow(Double(high) / Double(low), unit))
    }
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

/// Resident set size of this process in MB (VmRSS), as cpython_pool.py measures it.
func residentMB() -> Double {
    guard let file = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 256)
    while fgets(&buffer, 256, file) != nil {
        let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if line.hasPrefix("VmRSS:") {
            return (line.split(separator: " ").compactMap { Double($0) }.first ?? 0) / 1024
        }
    }
    return 0
}

/// The best time, over `runs` runs, from posix_spawn of `together` copies of this program with
/// `--exit-at-once` to the reaping of the last.
func execFloor(runs: Int, together: Int = 1) -> Double {
    var buffer = [CChar](repeating: 0, count: 4096)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    precondition(length > 0, "cannot read /proc/self/exe")
    let path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), strdup("--exit-at-once"), nil]
    defer { for arg in argv { free(arg) } }
    var best = Double.infinity
    for _ in 0..<runs {
        var pids = [pid_t](repeating: 0, count: together)
        var statuses = [Int32](repeating: 0, count: together)
        let time = measure {
            for i in 0..<together {
                let spawned = argv.withUnsafeBufferPointer {
                    posix_spawn(&pids[i], path, nil, nil, $0.baseAddress!, environ)
                }
                precondition(spawned == 0, "posix_spawn of the exec floor's program failed: \(spawned)")
            }
            for i in 0..<together {
                while waitpid(pids[i], &statuses[i], 0) < 0 && errno == EINTR {}
            }
        }
        precondition(statuses.allSatisfy { $0 == 0 }, "the exec floor's program exited with \(statuses)")
        best = min(best, time)
    }
    return best
}

/// Nanoseconds that process `pid` has run on a CPU so far, all its threads, those that have
/// exited too: its CPU-time clock (`clock_getcpuclockid`), the scheduler's own account (the sum
/// of the first fields of `/proc/<pid>/task/*/schedstat`, plus the threads gone; the tick-sampled
/// utime and stime of `/proc/<pid>/stat` over-count short bursts). Summing `schedstat` over the
/// threads instead loses the time of a thread that exits between two readings: an idle worker's
/// concurrency threads do exit after a few idle seconds.
func cpuNanoseconds(of pid: pid_t) -> UInt64 {
    var clock = clockid_t()
    guard clock_getcpuclockid(pid, &clock) == 0 else { return 0 }
    var time = timespec()
    guard clock_gettime(clock, &time) == 0 else { return 0 }
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Nanoseconds that the threads of process `pid` have waited on a run queue (runnable, not
/// running): the second field of each `/proc/<pid>/task/<tid>/schedstat`, summed. A thread that
/// exits between two readings takes its share with it.
func runQueueWaitNanoseconds(of pid: pid_t) -> UInt64 {
    let directory = "/proc/\(pid)/task"
    guard let tasks = opendir(directory) else { return 0 }
    defer { closedir(tasks) }
    var total: UInt64 = 0
    while let entry = readdir(tasks) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard name.first?.isNumber == true, let file = fopen("\(directory)/\(name)/schedstat", "r") else { continue }
        var line = [CChar](repeating: 0, count: 128)
        if fgets(&line, 128, file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = text.split(separator: " ")
            if fields.count > 1 { total += UInt64(fields[1]) ?? 0 }
        }
        fclose(file)
    }
    return total
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

func measure(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    return seconds(ContinuousClock.now - start)
}

/// Where a task leaves its outcome for a waiting thread (written before, read after a semaphore).
final class OutcomeBox<T>: @unchecked Sendable {
    var outcome: Result<T, any Error>?
}

/// Runs `body` in a task of the cooperative pool and waits for it on this thread: the workloads
/// are top-level code, which does not await.
func waitFor<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = OutcomeBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        do { box.outcome = .success(try await body()) } catch { box.outcome = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.outcome!.get()
}

/// `imap`'s workload read with `for try await`, as async code reads a stream.
func imapAwaited(_ pool: Pool, _ function: PoolFunction<Int, Int>) async throws -> Int {
    var total = 0
    let items = (0..<3_000_000).lazy.map { @Sendable (x: Int) in x }
    for try await value in try pool.imap(function, items, chunksize: 1000) { total &+= value }
    return total
}

// How long `Pool.bootstrap` takes in this, the parent: with the fork server
// (`MULTIPROCESSING_START_METHOD=forkserver`), the fork of its server happens here, before any
// pool, so it is not part of `cold_start_s` and is reported as `bootstrap_s`.
let bootstrapStart = DispatchTime.now().uptimeNanoseconds
Pool.bootstrap(serving: [add, echo, square, countPrimesTask, hashTask, sharedSliceSum, sliceSum])
let bootstrapSeconds = Double(DispatchTime.now().uptimeNanoseconds - bootstrapStart) / 1e9

/// Runs `body(i)` for every `i` in `0..<count` on two threads of this process, each taking the
/// next index as it finishes one, as a pool's two workers take chunks: the same-run floors of the
/// `starmap` and `cpu` rows.
func onTwoThreads(count: Int, _ body: @Sendable (Int) -> Void) {
    let next = Atomic<Int>(0)
    DispatchQueue.concurrentPerform(iterations: 2) { _ in
        while case let index = next.wrappingAdd(1, ordering: .relaxed).oldValue, index < count { body(index) }
    }
}

/// `a + b` of every pair, made by two threads into a new list, `chunk` pairs at a time (the
/// `starmap` row's bound: see there).
func twoThreadSums(_ pairs: [(Int, Int)], chunk: Int) -> [Int] {
    [Int](unsafeUninitializedCapacity: pairs.count) { buffer, initialized in
        // Each chunk's range is written by one thread only.
        let base = UInt(bitPattern: buffer.baseAddress)
        onTwoThreads(count: (pairs.count + chunk - 1) / chunk) { index in
            let results = UnsafeMutablePointer<Int>(bitPattern: base)!
            pairs.withUnsafeBufferPointer { input in
                for i in (index * chunk)..<min((index + 1) * chunk, input.count) {
                    results[i] = input[i].0 &+ input[i].1
                }
            }
        }
        initialized = pairs.count
    }
}

let selected = Set(CommandLine.arguments.dropFirst())
/// `chunks` (and each of its parts) runs only when named: it takes minutes.
func wanted(_ name: String) -> Bool { (selected.isEmpty && !name.hasPrefix("chunks")) || selected.contains(name) }

let forkServer = ProcessInfo.processInfo.environment["MULTIPROCESSING_START_METHOD"] == "forkserver"
var out: [(String, String)] = [
    ("runtime", "\"swift-multiprocessing\""), ("start_method", forkServer ? "\"forkserver\"" : "\"spawn\""),
    ("bootstrap_s", "\(bootstrapSeconds)"),
]

// W5 cold start: pool up, one result, down.
if wanted("cold") {
    let cold = try measure {
        let pool = try Pool(processes: 2)
        _ = try pool.apply(add, 1, 2)
        pool.terminate()
        try pool.join()
    }
    out.append(("cold_start_s", "\(cold)"))
}

// The exec floor: this program started and exiting at once (`--exit-at-once`), posix_spawn to
// waitpid, best of 40. The cold start cannot beat it: it starts this program twice (in parallel)
// and waits for one of them to answer.
// `exec_floor_2_s`: two of it started at once, both reaped (what a `Pool(2)` starts): where the
// machine has one core free rather than two, about twice the floor.
if wanted("floor") {
    out.append(("exec_floor_s", "\(execFloor(runs: 40))"))
    out.append(("exec_floor_2_s", "\(execFloor(runs: 40, together: 2))"))
}

let pool = try Pool(processes: 2)
_ = try pool.apply(add, 0, 0)

// W1 tiny tasks: starmap of 1e6 (Int, Int) -> Int, default chunksize.
//
// The input lives on past the clock, as cpython_pool.py's `args` does: freeing its 16 MB (a
// munmap: 3.5 ms of a 7.3 ms call in one profile here, as Swift frees a value after its last
// use) is the caller's, after the call. And the machine's own bound in the same
// run (`starmap_2threads_s`): the same sums made by two threads of this process into a fresh
// list, a chunk of CPython's default size (125,000 pairs) at a time, each thread taking the next
// as it finishes one: no process, pipe or pool at all, only the arithmetic and the fresh memory
// a new list of 1e6 results needs. It runs after the pool's call with that call's list still
// held, so that its list is fresh memory too, as the pool's was.
if wanted("starmap") {
    let pairs = (0..<1_000_000).map { ($0, $0) }
    var sums: [Int] = []
    out.append(("starmap_1e6_s", "\(try measure { sums = try pool.starmap(add, pairs) })"))
    precondition(sums.last == 2 * 999_999)
    var threaded: [Int] = []
    out.append(("starmap_2threads_s", "\(measure { threaded = twoThreadSums(pairs, chunk: 125_000) })"))
    precondition(threaded == sums)
    withExtendedLifetime(pairs) {}
}

// W2 latency: 2000 sequential apply round trips.
if wanted("apply") {
    let roundTrips = 2000
    let latency = try measure { for i in 0..<roundTrips { _ = try pool.apply(add, i, i) } }
    out.append(("apply_roundtrip_us", "\(latency / Double(roundTrips) * 1e6)"))
}

// W3 CPU-bound efficiency: 32 equal tasks of 20–40 ms, serial vs. 2 processes. cpython_pool.py's
// range (200_000..<210_000) takes CPython 20–40 ms but Swift about 1 ms, so the workload as the
// issue states it (tasks of 20–40 ms) uses a wider range here; CPython's own range is measured too
// (`cpu_speedup_2proc_same_range`), where the pool's per-task cost weighs 20–40 times more.
//
// Where a run falls short, the keys after the speedup say why: the CPU time of the workers (sum)
// and of this process during the parallel part, and how long the workers' threads waited on a
// run queue meanwhile (`schedstat`'s second field: runnable, but a core ran something else).
// And the machine's own bound in the same run: the 32 tasks on two threads of this process, each
// taking the next task as it finishes one (as the pool's workers do with chunksize 1), against the
// same serial time: what two cores give here with no process, pipe or pool at all.
if wanted("cpu") {
    struct Speedup {
        var speedup, serial, parallel, workerCPU, parentCPU, workerWait, twoThreads: Double
    }
    func speedup(_ range: (Int, Int), withFloor: Bool = true) throws -> Speedup {
        let ranges = Array(repeating: range, count: 32)
        var serial: [Int] = []
        let serialTime = measure { serial = ranges.map { countPrimes($0.0, $0.1) } }
        var parallel: [Int] = []
        let workers = pool.workerPIDs
        let cpuBefore = workers.map(cpuNanoseconds(of:)), parentBefore = cpuNanoseconds(of: getpid())
        let waitBefore = workers.map { runQueueWaitNanoseconds(of: $0) }
        let parallelTime = try measure { parallel = try pool.starmap(countPrimesTask, ranges, chunksize: 1) }
        let cpuAfter = workers.map(cpuNanoseconds(of:)), parentAfter = cpuNanoseconds(of: getpid())
        let waitAfter = workers.map { runQueueWaitNanoseconds(of: $0) }
        precondition(serial == parallel)
        var twoThreadsTime = Double.nan
        if withFloor {
            let threaded = Mutex([Int](repeating: -1, count: ranges.count))
            twoThreadsTime = measure {
                onTwoThreads(count: ranges.count) { i in
                    let count = countPrimes(ranges[i].0, ranges[i].1)
                    threaded.withLock { $0[i] = count }
                }
            }
            precondition(threaded.withLock { $0 } == serial)
        }
        func total(_ before: [UInt64], _ after: [UInt64]) -> Double {
            Double(zip(before, after).reduce(0) { $0 + Int64(bitPattern: $1.1 &- $1.0) }) * 1e-9
        }
        return Speedup(
            speedup: serialTime / parallelTime, serial: serialTime, parallel: parallelTime,
            workerCPU: total(cpuBefore, cpuAfter), parentCPU: Double(parentAfter - parentBefore) * 1e-9,
            workerWait: total(waitBefore, waitAfter), twoThreads: serialTime / twoThreadsTime)
    }
    let wide = try speedup((200_000, 400_000))
    out.append(("cpu_speedup_2proc", "\(wide.speedup)"))
    out.append(("cpu_task_ms", "\(wide.serial / 32 * 1000)"))
    out.append(("cpu_serial_s", "\(wide.serial)"))
    out.append(("cpu_parallel_s", "\(wide.parallel)"))
    out.append(("cpu_parallel_worker_cpu_s", "\(wide.workerCPU)"))
    out.append(("cpu_parallel_parent_cpu_s", "\(wide.parentCPU)"))
    out.append(("cpu_parallel_worker_runqueue_wait_s", "\(wide.workerWait)"))
    out.append(("cpu_speedup_2threads", "\(wide.twoThreads)"))
    out.append(("cpu_speedup_2proc_same_range", "\(try speedup((200_000, 210_000), withFloor: false).speedup)"))
}

// W4 payload throughput: 64 × 4 MiB echoed.
if wanted("echo") {
    var blob = [UInt8](repeating: 0, count: 4 << 20)
    for i in blob.indices { blob[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
    var echoed: [[UInt8]] = []
    let echoTime = try measure { echoed = try pool.map(echo, Array(repeating: blob, count: 64), chunksize: 1) }
    precondition(echoed[5] == blob)
    echoed = []
    out.append(("echo_GBps", "\(2.0 * 64 * Double(blob.count) / echoTime / 1e9)"))
}

// W6 streaming: imap over a lazy sequence of 3M items, chunksize 1000.
if wanted("imap") {
    let before = residentMB()
    var peak = before
    var total = 0
    let imapTime = try measure {
        // A nonisolated closure: one written in top-level code would be checked for the main
        // actor on every item, a cost of this file and not of the pool.
        let stream = try pool.imap(square, (0..<3_000_000).lazy.map { @Sendable (x: Int) in x }, chunksize: 1000)
        var i = 0
        while let value = try stream.next() {
            total &+= value
            if i % 50_000 == 0 { peak = max(peak, residentMB()) }
            i += 1
        }
    }
    out.append(("imap_3e6_s", "\(imapTime)"))
    out.append(("imap_3e6_parent_rss_growth_MB", "\(peak - before)"))
    // The same stream read with `for try await` in a task (its iterator takes a chunk's waiting
    // values at once).
    var awaitedTotal = 0
    let awaitedTime = try measure { awaitedTotal = try waitFor { [pool] in try await imapAwaited(pool, square) } }
    precondition(awaitedTotal == total)
    out.append(("imap_3e6_awaited_s", "\(awaitedTime)"))
}

// W8 shared read-only data: a 256 MiB [Int64], 64 tasks each summing its own 1/64 slice, through
// a `Pool.share`d handle, against passing each task its slice by value (the slices are cut
// before the clock starts), and against the serial sum in this process. Each round runs the
// three in turn; each keeps its best of 3 rounds. `share_copy_s` is what `share` itself took;
// `share_shared_first_s` the first round of the handle, in which each worker maps the value.
if wanted("share") {
    let count = 32 << 20
    var numbers = [Int64](repeating: 0, count: count)
    for i in numbers.indices { numbers[i] = Int64(truncatingIfNeeded: i &* 2_654_435_761 >> 7) }
    let expected = numbers.reduce(0, &+)
    let bounds = (0..<64).map { i in (i * count / 64, (i + 1) * count / 64) }
    let slices = bounds.map { Array(numbers[$0.0..<$0.1]) }
    var table: SharedArray<Int64>?
    let copy = try measure { table = try pool.share(numbers) }
    let shared = table!
    var best = (serial: Double.infinity, shared: Double.infinity, byValue: Double.infinity)
    var first = 0.0
    for round in 0..<3 {
        var total: Int64 = 0
        best.serial = min(best.serial, measure { total = numbers.reduce(0, &+) })
        precondition(total == expected)
        let sharedTime = try measure {
            total = try pool.starmap(sharedSliceSum, bounds.map { (shared, $0.0, $0.1) }, chunksize: 1).reduce(0, &+)
        }
        precondition(total == expected)
        if round == 0 { first = sharedTime }
        best.shared = min(best.shared, sharedTime)
        best.byValue = min(
            best.byValue, try measure { total = try pool.map(sliceSum, slices, chunksize: 1).reduce(0, &+) })
        precondition(total == expected)
    }
    out.append(("share_copy_s", "\(copy)"))
    out.append(("share_serial_s", "\(best.serial)"))
    out.append(("share_shared_s", "\(best.shared)"))
    out.append(("share_shared_first_s", "\(first)"))
    out.append(("share_by_value_s", "\(best.byValue)"))
    // The machine's own bound: the same 64 slices summed by two threads of this process.
    let frozen = numbers
    let twoThreads = (0..<3).map { _ in
        measure {
            let sums = Mutex([Int64](repeating: 0, count: 64))
            DispatchQueue.concurrentPerform(iterations: 2) { half in
                for slice in stride(from: half, to: 64, by: 2) {
                    let sum = frozen[bounds[slice].0..<bounds[slice].1].reduce(0, &+)
                    sums.withLock { $0[slice] = sum }
                }
            }
            precondition(sums.withLock { $0.reduce(0, &+) } == expected)
        }
    }.min()!
    out.append(("share_two_threads_s", "\(twoThreads)"))
}

// Idle: the pool after one `apply`, then after a `map`, left alone for 1 s; then the CPU time
// over the next 1.5 s of this process (all its threads) and of each worker, in % of one core
// (their CPU-time clocks: see `cpuNanoseconds`).
// Keys: the worst of the two (the workers' the max over workers), and each of them.
if wanted("idle") {
    func idleCorePercent(after warmUp: () throws -> Void) throws -> (parent: Double, worker: Double) {
        try warmUp()
        let workers = pool.workerPIDs
        usleep(1_000_000)
        let processes = [getpid()] + workers
        let before = processes.map(cpuNanoseconds(of:))
        let start = ContinuousClock.now
        usleep(1_500_000)
        let after = processes.map(cpuNanoseconds(of:))
        let wall = seconds(ContinuousClock.now - start) * 1e9
        precondition(pool.workerPIDs == workers, "a worker was replaced while the pool was idle")
        let percent = zip(before, after).map { Double($1 - $0) / wall * 100 }
        return (percent[0], percent.dropFirst().max() ?? 0)
    }
    let afterApply = try idleCorePercent { _ = try pool.apply(add, 1, 2) }
    let afterMap = try idleCorePercent { _ = try pool.map(square, Array(0..<10_000)) }
    out.append(("idle_parent_core_pct", "\(max(afterApply.parent, afterMap.parent))"))
    out.append(("idle_worker_core_pct", "\(max(afterApply.worker, afterMap.worker))"))
    out.append(("idle_after_apply_parent_core_pct", "\(afterApply.parent)"))
    out.append(("idle_after_apply_worker_core_pct", "\(afterApply.worker)"))
    out.append(("idle_after_map_parent_core_pct", "\(afterMap.parent)"))
    out.append(("idle_after_map_worker_core_pct", "\(afterMap.worker)"))
}

// W7 chunk sizes: imap without a chunksize against hand-picked ones, side by side in one run:
// every round runs each chunksize once, in turn (so that the machine's load swings hit them
// alike), and each keeps its best of `runs` rounds. Keys: chunks_<workload>_<chunksize or auto>_s.
if wanted("chunks") || wanted("chunks-imap") || wanted("chunks-hash") {
    let runs = CommandLine.arguments.dropFirst().compactMap { Int($0) }.first ?? 3
    let chunksizes: [Int?] = [nil, 1, 64, 512, 1000, 4096, 16384]
    func label(_ chunksize: Int?) -> String { chunksize.map { "\($0)" } ?? "auto" }
    /// Runs `body` for every chunksize, `runs` rounds; returns the best time of each.
    func bestOfRounds(_ body: (Int?) throws -> Void) rethrows -> [Double] {
        var best = Array(repeating: Double.infinity, count: chunksizes.count)
        for _ in 0..<runs {
            for (i, chunksize) in chunksizes.enumerated() {
                best[i] = min(best[i], try measure { try body(chunksize) })
            }
        }
        return best
    }

    // (a) The imap workload: 3e6 tiny items from a lazy sequence.
    var autoRSSGrowth = 0.0
    func tiny(_ count: Int, chunksize: Int?) throws {
        let stream = try pool.imap(square, (0..<count).lazy.map { @Sendable (x: Int) in x }, chunksize: chunksize)
        var total = 0
        let before = residentMB()
        var peak = before
        var i = 0
        while let value = try stream.next() {
            total &+= value
            if i % 50_000 == 0 { peak = max(peak, residentMB()) }
            i += 1
        }
        precondition(total == (0..<count).reduce(0) { $0 &+ $1 &* $1 })
        if chunksize == nil { autoRSSGrowth = max(autoRSSGrowth, peak - before) }
    }
    if !wanted("chunks-hash") || wanted("chunks") || wanted("chunks-imap") {
        // Chunksize 1: once, on a tenth of the items.
        let times = try bestOfRounds { chunksize in
            if chunksize != 1 { try tiny(3_000_000, chunksize: chunksize) }
        }
        for (chunksize, time) in zip(chunksizes, times) where chunksize != 1 {
            out.append(("chunks_imap_3e6_\(label(chunksize))_s", "\(time)"))
        }
        out.append(("chunks_imap_3e6_auto_parent_rss_growth_MB", "\(autoRSSGrowth)"))
        out.append(("chunks_imap_3e5_1_s", "\(try measure { try tiny(300_000, chunksize: 1) })"))
    }

    // (b) Hasher-like: 20–200 µs an item (10–100 KiB of hashing), imapUnordered as the
    // hasher of issue 13 did.
    if !wanted("chunks-imap") || wanted("chunks") || wanted("chunks-hash") {
        let lengths = hashLengths(count: 20_000, from: 10 << 10, to: 100 << 10)
        var expected: UInt64 = 0
        let serial = measure { for length in lengths { expected ^= hashBytes(length) } }
        out.append(("chunks_hash_serial_s", "\(serial)"))
        out.append(("chunks_hash_item_us", "\(serial / Double(lengths.count) * 1e6)"))
        let times = try bestOfRounds { chunksize in
            var combined: UInt64 = 0
            let stream = try pool.imapUnordered(hashTask, lengths, chunksize: chunksize)
            while let value = try stream.next() { combined ^= value }
            precondition(combined == expected)
        }
        for (chunksize, time) in zip(chunksizes, times) { out.append(("chunks_hash_\(label(chunksize))_s", "\(time)")) }
    }
}

// starmap's first call on a fresh pool and the same call again, with the page faults of each
// (run only when named: `starmap-faults`): this process's minor faults (getrusage) and the
// workers' (`/proc/<pid>/stat`), summed. Keys `starmap_fresh_*`.
if selected.contains("starmap-faults") {
    func minorFaults(of pid: pid_t) -> Int {
        guard let file = fopen("/proc/\(pid)/stat", "r") else { return 0 }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 1024)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return 0 }
        let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // Fields after the command's closing parenthesis: state is 3, minflt is 10.
        guard let close = line.lastIndex(of: ")") else { return 0 }
        let fields = line[line.index(after: close)...].split(separator: " ")
        return fields.count > 7 ? Int(fields[7]) ?? 0 : 0
    }
    func ownFaults() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_minflt
    }
    let fresh = try Pool(processes: 2)
    _ = try fresh.apply(add, 0, 0)
    // As the pool is after its first call, before the starmap (what runs after that call is
    // over, the workers' idle work included, counts in neither).
    usleep(20_000)
    let pairs = (0..<1_000_000).map { ($0, $0) }
    let workers = fresh.workerPIDs
    for round in ["first", "again"] {
        let parentBefore = ownFaults(), workersBefore = workers.map(minorFaults(of:)).reduce(0, +)
        var sums: [Int] = []
        let time = try measure { sums = try fresh.starmap(add, pairs) }
        precondition(sums.last == 2 * 999_999)
        out.append(("starmap_fresh_\(round)_s", "\(time)"))
        out.append(("starmap_fresh_\(round)_parent_faults", "\(ownFaults() - parentBefore)"))
        out.append(
            ("starmap_fresh_\(round)_worker_faults", "\(workers.map(minorFaults(of:)).reduce(0, +) - workersBefore)"))
    }
    fresh.terminate()
    try fresh.join()
}

// starmap of 1e6 pairs on a fresh pool (as the `starmap` workload: after one `apply`) with
// chunksizes from 8,192 to 125,000 (CPython's rule) beside the default, each size in turn
// in every round, best and median of `runs` rounds (run only when named: `starmap-sizes
// [runs]`, default 6). Keys `starmap_size_<size>_{best,median}_s`.
if selected.contains("starmap-sizes") {
    let runs = CommandLine.arguments.dropFirst().compactMap { Int($0) }.first ?? 6
    let pairs = (0..<1_000_000).map { ($0, $0) }
    let sizes: [Int?] = [nil, 8192, 16384, 32768, 65536, 125_000]
    var times = Array(repeating: [Double](), count: sizes.count)
    for _ in 0..<runs {
        for (index, size) in sizes.enumerated() {
            let fresh = try Pool(processes: 2)
            _ = try fresh.apply(add, 0, 0)
            usleep(20_000)
            var sums: [Int] = []
            times[index].append(try measure { sums = try fresh.starmap(add, pairs, chunksize: size) })
            precondition(sums.last == 2 * 999_999)
            fresh.terminate()
            try fresh.join()
        }
    }
    for (size, time) in zip(sizes, times) {
        let sorted = time.sorted()
        let label = size.map(String.init) ?? "default"
        out.append(("starmap_size_\(label)_best_s", "\(sorted[0])"))
        out.append(("starmap_size_\(label)_median_s", "\(sorted[sorted.count / 2])"))
    }
}

/// Batches of 200 sequential `apply` on fresh pools, each batch's mean round trip in µs: for each
/// of `runs` pools, `prepare` runs on it first, then `batches` batches are timed. Returns the best
/// and the median of each batch over the pools as `<key>_batch_<n>_{best,median}_us`.
func timeLoneCallBatches(
    key: String, batches count: Int, prepare: (Pool) throws -> Void = { _ in }
) throws -> [(String, String)] {
    let runs = CommandLine.arguments.dropFirst().compactMap { Int($0) }.first ?? 10
    var batches = Array(repeating: [Double](), count: count)
    for _ in 0..<runs {
        let fresh = try Pool(processes: 2)
        try prepare(fresh)
        for batch in batches.indices {
            let time = try measure { for i in 0..<200 { _ = try fresh.apply(add, i, i) } }
            batches[batch].append(time / 200 * 1e6)
        }
        fresh.terminate()
        try fresh.join()
    }
    return batches.enumerated().flatMap { index, times in
        let sorted = times.sorted()
        return [
            ("\(key)_batch_\(index + 1)_best_us", "\(sorted[0])"),
            ("\(key)_batch_\(index + 1)_median_us", "\(sorted[sorted.count / 2])"),
        ]
    }
}

// A fresh pool's first lone calls: `Pool(2)`, then 5 batches of 200 sequential `apply`; best and
// median over `runs` fresh pools (run only when named: `fresh [runs]`, default 10). The first
// batch also waits for the worker's start. Keys `fresh_batch_<n>_{best,median}_us`.
if selected.contains("fresh") {
    out += try timeLoneCallBatches(key: "fresh", batches: 5)
}

// A fresh pool's lone calls one by one: `Pool(2)`, one `apply`, then 3 rounds of 2000 sequential
// `apply`, each call timed; per round the mean and the 10th, 50th, 90th and 99th percentile in µs
// (run only when named: `lone-rounds [runs]`, default 10 fresh pools, each a line of its own in
// `lone_rounds`). A round whose median is 5–7 µs rather than 1.5–2.5 ran with the caller's thread
// and its worker on one CPU (see Colocation.swift in the library).
if selected.contains("lone-rounds") {
    let runs = CommandLine.arguments.dropFirst().compactMap { Int($0) }.first ?? 10
    var pools: [String] = []
    for _ in 0..<runs {
        let fresh = try Pool(processes: 2)
        _ = try fresh.apply(add, 0, 0)
        var rounds: [String] = []
        for _ in 0..<3 {
            var times: [UInt64] = []
            times.reserveCapacity(2000)
            for i in 0..<2000 {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try fresh.apply(add, i, i)
                times.append(DispatchTime.now().uptimeNanoseconds - start)
            }
            let mean = Double(times.reduce(0, +)) / Double(times.count) / 1000
            times.sort()
            let percentiles = [200, 1000, 1800, 1980].map { Double(times[$0]) / 1000 }
            rounds.append("[\(mean), " + percentiles.map { "\($0)" }.joined(separator: ", ") + "]")
        }
        pools.append("[" + rounds.joined(separator: ", ") + "]")
        fresh.terminate()
        try fresh.join()
    }
    out.append(("lone_rounds", "[" + pools.joined(separator: ", ") + "]"))
}

// Lone calls of a pool whose caller and worker share a CPU: the caller's thread and every thread
// of the pool's workers held on CPU 0 (with `taskset`) for 50 ms, then let run anywhere again,
// and 20 batches of 200 `apply` timed (run only when named: `colocated [runs]`, default 10 fresh
// pools). Keys `colocated_batch_<n>_{best,median}_us`.
if selected.contains("colocated") {
    func taskset(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
    }
    let all = "0-\(ProcessInfo.processInfo.activeProcessorCount - 1)"
    out += try timeLoneCallBatches(key: "colocated", batches: 20) { fresh in
        for i in 0..<200 { _ = try fresh.apply(add, i, i) }
        // This thread's id: the last part of /proc/thread-self's target ("<pid>/task/<tid>").
        let caller =
            try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")
            .split(separator: "/").last.map(String.init) ?? "0"
        for pid in fresh.workerPIDs { try taskset(["-a", "-p", "-c", "0", String(pid)]) }
        try taskset(["-p", "-c", "0", caller])
        let until = ContinuousClock.now + .milliseconds(50)
        var i = 0
        while ContinuousClock.now < until {
            _ = try fresh.apply(add, i, i)
            i += 1
        }
        for pid in fresh.workerPIDs { try taskset(["-a", "-p", "-c", all, String(pid)]) }
        try taskset(["-p", "-c", all, caller])
    }
}

pool.close()
try pool.join()
print("{" + out.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
