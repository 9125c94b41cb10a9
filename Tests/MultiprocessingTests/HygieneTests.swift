// Process hygiene: no leaked descriptors, threads or zombies; workers inherit nothing stray,
// never outlive their parent, and the pool never reaps children it did not start. The checks
// that count process-wide resources run in a separate process (the test worker executable in a
// parent role), so that the other tests running in parallel here cannot disturb the counts.

import Foundation
import Multiprocessing
import MultiprocessingTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("Hygiene", .offCooperativePool) struct HygieneTests {
    @Test(
        "50 pools leave no descriptors, threads or zombies behind", .timeLimit(.minutes(2)),
        .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func noLeaks() throws {
        let (output, _) = try runParentProgram(["hygiene", "50"])
        var figures: [String: [Int]] = [:]
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            figures[String(fields[0])] = fields.dropFirst().compactMap { Int($0) }
        }
        let fds = try #require(figures["fds"])
        let threads = try #require(figures["threads"])
        let zombies = try #require(figures["zombies"])
        #expect(fds[0] == fds[1], "descriptors before and after")
        #expect(threads[0] == threads[1], "threads before and after")
        #expect(zombies == [0])
    }

    @Test(
        "imap over a long lazy input keeps the parent's memory flat", .timeLimit(.minutes(2)),
        .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func imapMemoryStaysFlat() throws {
        let (output, _) = try runParentProgram(["imap-memory", "200000"])
        let fields = output.split(separator: "\n").first { $0.hasPrefix("rss") }?.split(separator: " ") ?? []
        let before = try #require(fields.count > 2 ? Int(fields[1]) : nil)
        let peak = try #require(fields.count > 2 ? Int(fields[2]) : nil)
        #expect(peak - before < 20, "resident set grew from \(before) MiB to \(peak) MiB")
        // Every item came back: the sum of (i % 1000)² over 200,000 items.
        #expect(output.contains("sum \((0..<200_000).reduce(0) { $0 + ($1 % 1000) * ($1 % 1000) })"))
    }

    @Test(
        "Workers inherit no descriptor but their channels", .timeLimit(.minutes(1)),
        .disabled(if: TestBackend.isCluster, TestBackend.needsLocalWorkers))
    func noStrayDescriptors() throws {
        // A descriptor without close-on-exec, as careless code might leave one.
        let path = TestFolder.uniquePath("multiprocessing-stray")
        let stray = open(path, O_RDWR | O_CREAT, 0o600)
        defer {
            close(stray)
            unlink(path)
        }
        #expect(stray > 4)
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let inWorker = try pool.apply(F.openDescriptors)
        #expect(!inWorker.contains { $0.contains("multiprocessing-stray") }, "\(inWorker)")
        // Exactly the standard streams and the two channels come from the parent; anything
        // else belongs to the worker's own runtime (eventfds, epoll).
        let pipes = inWorker.filter { $0.contains("pipe:") }.map { $0.split(separator: " ")[0] }
        #expect(pipes.contains("3") && pipes.contains("4"))
        #expect(inWorker.first { $0.hasPrefix("0 ") }?.contains("/dev/null") == true)
    }

    @Test(
        "Workers exit when their parent is killed with SIGKILL", .timeLimit(.minutes(1)),
        .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func noOrphans() throws {
        let (process, out, _) = try startParentProgram(["own-pool"])
        // Read the "pids …" line.
        var line = ""
        let handle = out.fileHandleForReading
        while !line.contains("\n") {
            let data = handle.availableData
            if data.isEmpty { break }
            line += String(decoding: data, as: UTF8.self)
        }
        let pids = line.split(separator: "\n").first?.split(separator: " ").dropFirst().compactMap { Int32($0) } ?? []
        #expect(pids.count == 2)
        #expect(pids.allSatisfy(processIsAlive))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let start = ContinuousClock.now
        #expect(eventually(timeout: .seconds(3)) { !pids.contains(where: processIsAlive) })
        #expect(ContinuousClock.now - start < .seconds(2))
    }

    @Test(
        "A pool never reaps children it did not start", .timeLimit(.minutes(1)),
        .disabled(if: TestBackend.isCluster, TestBackend.needsLocalWorkers))
    func reapsOnlyItsOwn() throws {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup("sleep 0.3; exit 7"), nil]
        defer { for p in argv { free(p) } }
        #expect(posix_spawn(&pid, "/bin/sh", nil, nil, argv, nil) == 0)
        let pool = try TestPools.make(processes: 2)
        _ = try pool.map(F.square, 0..<20, chunksize: 1)
        _ = try? pool.apply(F.exitWith, 1)  // a worker dies and is reaped meanwhile
        pool.terminate()
        try pool.join()
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid)
        #expect((status >> 8) & 0xff == 7)
    }

    @Test(
        "A parent whose stderr is closed survives its workers writing to theirs", .timeLimit(.minutes(1)),
        .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func closedStderr() throws {
        let (stdout, _) = try runParentProgram(["chatty"], closedStderr: true)
        #expect(stdout.contains("results 0 1 2"))
    }

    @Test(
        "A pool created in a worker before bootstrap stops instead of multiplying", .timeLimit(.minutes(1)),
        .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func poolBeforeBootstrap() throws {
        let (stdout, stderr) = try runParentProgram(
            [], environment: ["MULTIPROCESSING_TEST_POOL_BEFORE_BOOTSTRAP": "1"])
        #expect(stdout.contains("apply failed: PoolError.spawnFailed"), "\(stdout)")
        #expect(stderr.contains("before Pool.bootstrap(serving:) ran"))
    }

    @Test(
        "Worker stdout and stderr stay the user's and never disturb results", .timeLimit(.minutes(1)),
        .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func printsDoNotDisturb() throws {
        let (stdout, stderr) = try runParentProgram(["chatty"])
        #expect(stdout.contains("results 0 1 2"))
        for i in 0..<3 {
            #expect(stdout.contains("chatty stdout \(i)"))
            #expect(stderr.contains("chatty stderr \(i)"))
        }
    }

    // A worker flushes what a task printed before it answers (only when stdout or stderr has
    // bytes waiting: the flush of nothing cost ~200 instructions a task). Killed right after the
    // results are in, the workers never exit and so never flush on their own: a line that was
    // still in a worker's stdout buffer would be lost.
    @Test(
        "What a task printed is out before its result: workers killed right after lose none of it",
        .timeLimit(.minutes(1)), .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func printsAreFlushedBeforeTheResult() throws {
        let (stdout, _) = try runParentProgram(["chatty", "terminate"])
        #expect(stdout.contains("results 0 1 2"))
        for i in 0..<3 {
            #expect(stdout.contains("chatty stdout \(i)"), "\(stdout)")
        }
    }
}
