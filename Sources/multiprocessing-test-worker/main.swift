// The worker executable of the test suite: `swift test` runs the tests inside a test runner
// whose `main` is not ours, so pools in tests start this program instead (Pool(executable:)).
//
// Run by a test directly (not as a worker), it plays a parent program:
//   own-pool     starts a pool of itself, prints "pids <pid> <pid>", then sleeps (the orphan test
//                kills it with SIGKILL and checks its workers go too)
//   chatty       runs a function that prints to stdout and stderr in the workers, then prints
//                "results …"
//   stderr-stall one worker prints 5 MB to a stderr nobody reads while others answer calls;
//                prints "applied <sum>", then "joined <ready>" after terminate + join
//   stderr-slow  a worker prints N bytes to stderr (read late by the test); prints "printed N"

import Multiprocessing
import MultiprocessingTestSupport

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

Pool.bootstrap(serving: TestFunctions.all, errorTypes: [TestFailure.self])

extension Pool {
    func stop() throws {
        terminate()
        try join()
    }
}

switch CommandLine.arguments.dropFirst().first {
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
    pool.close()
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
    _ = try Pool(processes: 1).stop()
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
default:
    print("multiprocessing-test-worker: run by the test suite's pools; it serves tasks only as a pool worker.")
}
