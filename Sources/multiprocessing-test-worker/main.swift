// The worker executable of the test suite: `swift test` runs the tests inside a test runner
// whose `main` is not ours, so pools in tests start this program instead (Pool(executable:)).
//
// Run by a test directly (not as a worker), it plays a parent program:
//   own-pool     starts a pool of itself, prints "pids <pid> <pid>", then sleeps (the orphan test
//                kills it with SIGKILL and checks its workers go too)
//   chatty [terminate]
//                runs a function that prints to stdout and stderr in the workers, then prints
//                "results …"; with `terminate`, then kills the workers (terminate) instead of
//                letting them exit (their stdio buffers are never flushed by an exit then)
//   stderr-stall one worker prints 5 MB to a stderr nobody reads while others answer calls;
//                prints "applied <sum>", then "joined <ready>" after terminate + join
//   stderr-slow  a worker prints N bytes to stderr (read late by the test); prints "printed N"
//   map-waiting <file> [handle-sigint]
//                starts a map of four tasks on two workers that wait until <file> exists, prints
//                "running <pid> <pid>" while they wait, then "results 0 1 2 3" (the signal-policy
//                tests send it terminal signals meanwhile). Handling SIGINT itself, it creates
//                <file> once a SIGINT came, and prints "sigint <count>" too
//   stalled-workers
//                starts a pool whose workers stall 30 s before Pool.bootstrap, prints
//                "pids <pid> <pid>", then sleeps (their parent is killed meanwhile)
//   worker-arguments <word>…
//                asks its workers for their command line and prints "default <distinct answers>
//                <arguments joined by |>" for a pool of itself, "named …" for one whose executable
//                is this program's path, and "configured <arguments>" for one whose configuration
//                sets them to `chosen`, `by configuration`
//   metrics      bootstraps the global metrics system (MetricsTestKit's TestMetrics), runs an
//                imap of 8 items of which two (one chunk) throw and an apply whose worker crashes, then
//                prints "outcome <outcome> <count>" and "restart <cause> <count>" for every value
//                of the pool's counters, and "label <pool>" for the pool dimension they carry
//   crash-reports <forward|suppress>
//                a pool with `crashReports` set so runs a task that prints a line on stderr and
//                traps; prints "frames <count>" and "at <file>:<line>" of the innermost frame of
//                the error, then "joined"
//   chaos <seconds> <seed> [<kill every ms>]
//                runs the chaos run (MultiprocessingTestSupport's ChaosRun) on a pool of three,
//                then prints its figures, the pool's size, descriptors before and after, and
//                zombies
//   descriptor-churn <rounds>
//                pools whose callers wait on their worker's result pipe themselves (blocking
//                apply, a get that times out and gives the pipe back, a worker that exits while
//                waited for, one whose forked child keeps the pipe open, a call killed by its
//                timeout, a 4 MiB echo): prints "fds <before> <after>", "mappings <before>
//                <after>" (of the workers' shared channels, in /proc/self/maps) and
//                "zombies <count>"
//   descriptor-limit
//                creates pools with 0, 1, 2, … descriptors free (RLIMIT_NOFILE) until one starts;
//                prints "<free> <code> <call> <errno>" for each failure (the call and errno of its
//                underlying SystemError, "-" and 0 without one), "started <free>", then "fds
//                <before> <after>"
//   fork-server <crash|kill-zygote|stop-zygote|sleep>
//                (run with MULTIPROCESSING_START_METHOD=forkserver) prints "zygote <pid>" (0: none),
//                "parent <pid> <exec mark>", and "worker <pid> <ppid> <exec mark>" for
//                each worker of a pool of two, with "fds <fd>,…" of one; then: crash: "lost
//                <error>" of a task that traps; kill-zygote: kills the zygote, then the same lines
//                for a new pool; stop-zygote: stops the zygote (SIGSTOP), then the same lines for
//                a new pool, "waited <ms>" for it, and "zygote <pid> gone" once it is reaped;
//                sleep: sleeps (the test kills it)
//                With MULTIPROCESSING_TEST_THREAD_BEFORE_BOOTSTRAP set, a thread starts before
//                Pool.bootstrap.

import CoreMetrics
import MetricsTestKit
import Multiprocessing
import MultiprocessingTestSupport
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

if getenv("MULTIPROCESSING_TEST_POOL_BEFORE_BOOTSTRAP") != nil {
    // The mistake the library must catch: a pool created before bootstrap. Workers inherit the
    // variable, run this line too, and must stop instead of starting workers of their own.
    do {
        let pool = try Pool(processes: 1)
        print("apply returned", try pool.apply(TestFunctions.square, 3))
    } catch {
        print("apply failed:", error)
    }
    exit(0)
}

if let seconds = getenv("MULTIPROCESSING_TEST_STALL_BEFORE_BOOTSTRAP"), getenv("SWIFT_MULTIPROCESSING_WORKER") != nil {
    // A worker that takes long to reach bootstrap (as one whose main does work first would):
    // it must still die with its parent.
    sleep(UInt32(atoi(seconds)))
}

if getenv("MULTIPROCESSING_TEST_THREAD_BEFORE_BOOTSTRAP") != nil {
    // A program with a thread of its own before bootstrap: no fork server (it spawns).
    var thread = pthread_t()
    pthread_create(&thread, nil, sleepForever, nil)
}

Pool.bootstrap(serving: TestFunctions.all, errorTypes: [TestFailure.self])

/// A thread's body that sleeps forever.
nonisolated func sleepForever(_: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    while true { sleep(1) }
}

/// The pid of this process's fork server (a child named mp-forkserver), or 0.
func zygotePID() -> Int32 {
    guard let directory = opendir("/proc") else { return 0 }
    defer { closedir(directory) }
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard let pid = Int32(name), let file = fopen("/proc/\(pid)/stat", "r") else { continue }
        var buffer = [CChar](repeating: 0, count: 512)
        let line = fgets(&buffer, 512, file).map { _ in
            String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        fclose(file)
        guard let line, let close = line.lastIndex(of: ")") else { continue }
        let fields = line[line.index(after: close)...].split(separator: " ")
        if line.contains("(mp-forkserver)"), fields.count > 2, Int32(fields[1]) == getpid(), fields[0] != "Z" {
            return pid
        }
    }
    return 0
}

/// Prints the fork-server role's lines for a new pool of two, and returns it.
func describeForkServerPool() throws -> Pool {
    let pool = try Pool(processes: 2)
    let probes = try pool.map(TestFunctions.forkProbe, 0..<8, chunksize: 1)
    var seen: Set<Int> = []
    for probe in probes where seen.insert(probe[0]).inserted {
        print("worker", probe[0], probe[1], probe[2])
    }
    print("fds", try pool.apply(TestFunctions.openDescriptors).joined(separator: ","))
    return pool
}

extension Pool {
    /// Terminates and joins, throwing what `join` throws (a parent program reports it).
    func stopJoining() throws {
        terminate()
        try join()
    }
}

/// Counts the SIGINTs of a parent program that handles Ctrl-C itself.
enum SIGINTCounter {
    static let count = Atomic<Int>(0)

    static func install() {
        _ = count.load(ordering: .relaxed)  // initialized before the handler can run
        signal(SIGINT) { _ in _ = SIGINTCounter.count.add(1, ordering: .relaxed) }
    }
}

/// How many mappings of workers' shared channels this process has (lines of /proc/self/maps).
func channelMappings() -> Int {
    guard let file = fopen("/proc/self/maps", "r") else { return -1 }
    defer { fclose(file) }
    var count = 0
    var line = [CChar](repeating: 0, count: 4096)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.contains("multiprocessing-channel") { count += 1 }
    }
    return count
}

switch CommandLine.arguments.dropFirst().first {
case "fork-server":
    print("zygote", zygotePID())
    print("parent", getpid(), TestFunctions.execMark())
    let pool = try describeForkServerPool()
    switch CommandLine.arguments.dropFirst(2).first {
    case "crash":
        do {
            _ = try pool.apply(TestFunctions.trapAt, 1, 1)
            print("lost none")
        } catch {
            print("lost", error)
        }
    case "kill-zygote":
        let zygote = zygotePID()
        kill(zygote, SIGKILL)
        while zygotePID() == zygote { usleep(1000) }
        print("killed", zygote)
        let again = try describeForkServerPool()
        try again.stopJoining()
    case "stop-zygote":
        let zygote = zygotePID()
        kill(zygote, SIGSTOP)
        print("stopped", zygote)
        let start = ContinuousClock.now
        let again = try describeForkServerPool()
        let waited = (ContinuousClock.now - start).components
        print("waited", waited.seconds * 1000 + waited.attoseconds / 1_000_000_000_000_000)
        try again.stopJoining()
        // Given up: killed and reaped (a zombie would still be listed, a reaped one is not).
        if kill(zygote, 0) != 0 { print("zygote", zygote, "gone") }
    case "sleep":
        fflush(nil)
        while true { sleep(1) }
    default:
        break
    }
    try pool.stopJoining()
    print("done")
case "own-pool":
    let pool = try Pool(processes: 2)
    _ = try pool.map(TestFunctions.square, 0..<4, chunksize: 1)
    print("pids", pool.workerPIDs.map(String.init).joined(separator: " "))
    fflush(nil)
    while true { sleep(1) }
case "chatty":
    let pool = try Pool(processes: 2)
    let results = try pool.map(TestFunctions.chatty, 0..<3, chunksize: 1)
    print("results", results.map(String.init).joined(separator: " "))
    if CommandLine.arguments.dropFirst(2).first == "terminate" {
        pool.terminate()
    } else {
        pool.close()
    }
    try pool.join()
case "stderr-stall":
    // Its stderr is a pipe the test never reads: one worker prints 5 MB there while the others
    // answer 200 calls; then terminate and join must return.
    let pool = try Pool(processes: 3)
    let loud = try pool.applyAsync(TestFunctions.printStderr, 5_000_000)
    var sum = 0
    for i in 0..<200 { sum += try pool.apply(TestFunctions.mul, i, 2) }
    print("applied", sum)
    fflush(nil)
    pool.terminate()
    try pool.join()
    print("joined", loud.ready())
case "stderr-slow":
    // Its stderr is read late and slowly: all a worker prints must arrive, none dropped.
    let count = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 2_000_000
    let pool = try Pool(processes: 2)
    print("printed", try pool.apply(TestFunctions.printStderr, count))
    pool.close()
    try pool.join()
case "hygiene":
    // Creates and terminates (or closes) many pools, then reports what is left behind.
    let rounds = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 50
    _ = try Pool(processes: 1).stopJoining()
    usleep(200_000)
    let fdsBefore = openDescriptorNumbers()
    let threadsBefore = threadCount()
    for round in 0..<rounds {
        let pool = try Pool(processes: 2)
        _ = try pool.map(TestFunctions.square, 0..<8, chunksize: 1)
        // A callback starts the pool's callback thread, which must end with the pool.
        _ = try pool.applyAsync(TestFunctions.square, round, callback: { _ in }).get()
        if round % 2 == 0 {
            pool.terminate()
        } else {
            pool.close()
        }
        try pool.join()
    }
    usleep(200_000)
    print("fds", fdsBefore.count, openDescriptorNumbers().count)
    print("threads", threadsBefore, threadCount())
    print("zombies", zombieChildren().count)
case "imap-memory":
    // Streams a long lazy input through imap and reports how much the resident set grew.
    let count = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 1_000_000
    let pool = try Pool(processes: 2)
    _ = try pool.apply(TestFunctions.square, 1)
    let before = residentMegabytes()
    var peak = before
    var sum = 0
    let stream = try pool.imap(TestFunctions.square, (0..<count).lazy.map { $0 % 1000 }, chunksize: 1000)
    var i = 0
    while let value = try stream.next() {
        sum &+= value
        if i % 50_000 == 0 { peak = max(peak, residentMegabytes()) }
        i += 1
    }
    print("rss", Int(before), Int(peak), "sum", sum)
    pool.close()
    try pool.join()
case "map-waiting":
    let release = CommandLine.arguments.dropFirst(2).first ?? "/nonexistent"
    let handlesSIGINT = CommandLine.arguments.dropFirst(3).first == "handle-sigint"
    if handlesSIGINT { SIGINTCounter.install() }
    let pool = try Pool(processes: 2)
    let result = try pool.starmapAsync(TestFunctions.awaitFile, (0..<4).map { (release, $0) }, chunksize: 1)
    usleep(100_000)  // the first two tasks are running
    print("running", pool.workerPIDs.map(String.init).joined(separator: " "))
    fflush(nil)
    if handlesSIGINT {
        for _ in 0..<6000 where SIGINTCounter.count.load(ordering: .relaxed) == 0 { usleep(10_000) }
        if let file = fopen(release, "w") { fclose(file) }
    }
    let values = try result.get()
    print("results", values.map(String.init).joined(separator: " "))
    if handlesSIGINT { print("sigint", SIGINTCounter.count.load(ordering: .relaxed)) }
    pool.close()
    try pool.join()
case "stalled-workers":
    setenv("MULTIPROCESSING_TEST_STALL_BEFORE_BOOTSTRAP", "30", 1)
    let pool = try Pool(processes: 2)
    while pool.workerPIDs.count < 2 { usleep(1000) }
    print("pids", pool.workerPIDs.map(String.init).joined(separator: " "))
    fflush(nil)
    while true { sleep(1) }
case "worker-arguments":
    // Workers running this program get its arguments, as CPython's spawn gives them sys.argv.
    for (label, executable) in [("default", nil), ("named", CommandLine.arguments[0])] {
        let pool = try Pool(processes: 2, executable: executable)
        let seen = try (0..<4).map { _ in try pool.apply(TestFunctions.commandLineArguments) }
        print(label, Set(seen).count, seen[0].joined(separator: "|"))
        try pool.stopJoining()
    }
    var configuration = Pool.Configuration(processes: 1)
    configuration.arguments = ["chosen", "by configuration"]
    let configured = try Pool(configuration)
    print("configured", try configured.apply(TestFunctions.commandLineArguments).joined(separator: "|"))
    try configured.stopJoining()
case "metrics":
    let metrics = TestMetrics()
    MetricsSystem.bootstrap(metrics)
    let pool = try Pool(processes: 2)
    let stream = try pool.imap(TestFunctions.checkedSqrt, [1, 2, -3, -4, 5, 6, 7, 8], chunksize: 2)
    while true {
        do {
            guard try stream.next() != nil else { break }
        } catch {
            continue  // the failed item; the stream goes on
        }
    }
    _ = try? pool.apply(TestFunctions.trapAt, 1, 1)
    let outcomes = ["success", "failed", "worker_lost", "timed_out", "cancelled", "terminated"]
    let causes = ["max_tasks", "max_memory", "crashed", "timed_out", "cancelled", "start_failed"]
    for (kind, label, dimension, values) in [
        ("outcome", "multiprocessing_tasks_completed_total", "outcome", outcomes),
        ("restart", "multiprocessing_worker_restarts_total", "cause", causes),
    ] {
        for value in values {
            let total = (try? metrics.expectCounter(label, [("pool", "default"), (dimension, value)]).totalValue) ?? -1
            print(kind, value, total)
        }
    }
    for counter in metrics.counters(label: "multiprocessing_tasks_completed_total").prefix(1) {
        print("label", counter.dimensions.first { $0.0 == "pool" }?.1 ?? "none")
    }
    try pool.stopJoining()
case "crash-reports":
    var configuration = Pool.Configuration(processes: 1)
    configuration.crashReports = CommandLine.arguments.dropFirst(2).first == "suppress" ? .suppress : .forward
    let pool = try Pool(configuration)
    do {
        print("returned", try pool.apply(TestFunctions.printThenTrap, 1))
    } catch let error as PoolError {
        print("frames", error.crashFrames.count)
        if let innermost = error.crashFrames.first {
            print("at \(innermost.file ?? "?"):\(innermost.line.map(String.init) ?? "?")")
        }
    }
    pool.close()
    try pool.join()
    print("joined")
case "chaos":
    let seconds = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 3
    let seed = UInt64(CommandLine.arguments.dropFirst(3).first ?? "") ?? 1
    let killEvery = Int(CommandLine.arguments.dropFirst(4).first ?? "") ?? 100
    _ = try Pool(processes: 1).stopJoining()
    usleep(200_000)
    let fdsBefore = openDescriptorNumbers()
    let pool = try Pool(processes: 3)
    let run = try ChaosRun(pool: pool, seed: seed, duration: .seconds(seconds), killEvery: .milliseconds(killEvery))
    let finished = run.wait(timeout: .seconds(seconds + 30))
    if !finished { pool.terminate() }
    _ = run.wait(timeout: .seconds(10))
    let report = run.report
    print("seed", report.seed)
    print("finished", finished ? 1 : 0)
    print("calls", report.calls, report.exact, report.lost)
    print("kills", report.kills)
    print("unexpected", report.unexpected.count)
    for line in report.unexpected.prefix(20) { print("unexpected:", line) }
    for line in report.running { print("running:", line) }
    // Back to full size: three live workers that answer. A worker the last kill hit stays a
    // zombie (answering kill(pid, 0)) until the pool reaps it: not live.
    let deadline = ContinuousClock.now + .seconds(10)
    func live(_ pids: [Int32]) -> Bool {
        let zombies = Set(zombieChildren())
        return pids.allSatisfy { kill($0, 0) == 0 && !zombies.contains($0) }
    }
    while ContinuousClock.now < deadline && (pool.workerPIDs.count != 3 || !live(pool.workerPIDs)) {
        usleep(10_000)
    }
    print("size", pool.workerPIDs.count)
    do {
        let squares = try pool.map(TestFunctions.square, 0..<100)
        print("after", squares == (0..<100).map { $0 * $0 } ? 1 : 0)
    } catch {
        print("after 0")
        print("after-error:", error)
    }
    print("zombies-running", zombieChildren().count)
    pool.close()
    try pool.join()
    usleep(200_000)
    print("fds", fdsBefore.count, openDescriptorNumbers().count)
    print("zombies", zombieChildren().count)
case "descriptor-churn":
    let rounds = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 10
    _ = try Pool(processes: 1).stopJoining()
    usleep(200_000)
    let fdsBefore = openDescriptorNumbers()
    let mappingsBefore = channelMappings()
    for round in 0..<rounds {
        let pool = try Pool(processes: 1)
        for i in 0..<20 { _ = try pool.apply(TestFunctions.square, i) }
        _ = try? pool.apply(TestFunctions.blockMs, 5_000, timeout: .milliseconds(50))
        _ = try pool.apply(TestFunctions.echoBytes, [UInt8](repeating: 7, count: 4 << 20))
        let slow = try pool.applyAsync(TestFunctions.blockMs, 200)
        _ = try? slow.get(timeout: .milliseconds(20))
        _ = try slow.get()
        _ = try? pool.apply(TestFunctions.exitWith, 3)
        let marker = "/tmp/multiprocessing-churn-\(getpid())-\(round)"
        _ = try? pool.apply(TestFunctions.exitLeavingPipeOpen, marker, 100)
        unlink(marker)
        _ = try pool.apply(TestFunctions.square, round)
        if round % 2 == 0 {
            pool.terminate()
        } else {
            pool.close()
        }
        try pool.join()
    }
    usleep(300_000)  // the forked pipe holders are gone by now
    print("fds", fdsBefore.count, openDescriptorNumbers().count)
    print("mappings", mappingsBefore, channelMappings())
    print("zombies", zombieChildren().count)
case "descriptor-limit":
    _ = try Pool(processes: 1).stopJoining()
    usleep(200_000)
    // Fills the free numbers below the highest open descriptor, so that the limit leaves
    // exactly `free` descriptors to open.
    let open = openDescriptorNumbers()
    let highest = open.last ?? 2
    let fillers = (0...highest).filter { !open.contains($0) }.map { dup2(0, $0) }
    defer { for filler in fillers { close(filler) } }
    let fdsBefore = openDescriptorNumbers()
    var limit = rlimit()
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    let restored = limit
    for free in 0..<24 {
        limit.rlim_cur = rlim_t(highest + 1 + Int32(free))
        setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        do {
            let pool = try Pool(processes: 1)
            var back = restored
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &back)
            try pool.stopJoining()
            print("started", free)
            break
        } catch let error as PoolError {
            var back = restored
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &back)
            let system = error.underlying as? SystemError
            print(free, error.code, system?.call ?? "-", system?.errno ?? 0)
            // A pool that failed to start lets go of what it opened from its own thread.
            let deadline = ContinuousClock.now + .seconds(2)
            while openDescriptorNumbers().count > fdsBefore.count && ContinuousClock.now < deadline { usleep(5_000) }
        }
    }
    usleep(200_000)
    print("fds", fdsBefore.count, openDescriptorNumbers().count)
default:
    print("multiprocessing-test-worker: run by the test suite's pools; it serves tasks only as a pool worker.")
}
