// The fork server start method (MULTIPROCESSING_START_METHOD=forkserver): workers forked from a
// zygote are the pool's own children, serve, crash as spawned ones do, hold only a worker's
// descriptors; a dead zygote or a multi-threaded program falls back to spawning; a SIGKILLed
// parent leaves neither zygote nor worker. Each test runs the test worker as a parent program
// (its `fork-server` role).

import Foundation
import Multiprocessing
import MultiprocessingTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("Fork server", .offCooperativePool, .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
struct ForkServerTests {
    static let forkServer = ["MULTIPROCESSING_START_METHOD": "forkserver"]

    /// The `fork-server` role's lines, by their first word.
    struct Report {
        var zygote: Int32 = 0
        var parent: (pid: Int, mark: Int) = (0, 0)
        /// pid, ppid and exec mark (`TestFunctions.execMark`) of each worker, in the order printed.
        var workers: [[Int]] = []
        var fds: [String] = []
        var lines: [String] = []

        init(_ stdout: String) {
            lines = stdout.split(separator: "\n").map(String.init)
            for line in lines {
                let words = line.split(separator: " ")
                switch words.first {
                case "zygote": zygote = Int32(words[1]) ?? 0
                case "parent": parent = (Int(words[1]) ?? 0, Int(words[2]) ?? 0)
                case "worker": workers.append(words.dropFirst().compactMap { Int($0) })
                case "fds": fds.append(String(line.dropFirst(4)))
                default: break
                }
            }
        }
    }

    @Test(
        "Forked workers serve, are the pool's children, and run its program image (no exec of their own)",
        .timeLimit(.minutes(1)))
    func forkedWorkersServe() throws {
        let (stdout, _) = try runParentProgram(["fork-server"], environment: Self.forkServer)
        let report = Report(stdout)
        #expect(report.zygote > 0)
        #expect(report.parent.mark != 0)
        #expect(report.workers.count == 2)
        for worker in report.workers {
            #expect(worker[1] == report.parent.pid)  // CLONE_PARENT: the pool's child, not the zygote's
            #expect(worker[2] == report.parent.mark)  // a copy of the parent, not a new exec
        }
        #expect(report.lines.last == "done")
    }

    @Test("Without the start method workers are spawned (the probe tells them apart)", .timeLimit(.minutes(1)))
    func spawnedByDefault() throws {
        let report = Report(try runParentProgram(["fork-server"]).stdout)
        #expect(report.zygote == 0)
        #expect(report.workers.count == 2)
        #expect(report.workers.allSatisfy { $0[2] != report.parent.mark })
    }

    @Test("A forked worker holds a spawned worker's descriptors and nothing else", .timeLimit(.minutes(1)))
    func forkedWorkerDescriptors() throws {
        let forked = Report(try runParentProgram(["fork-server"], environment: Self.forkServer).stdout)
        let spawned = Report(try runParentProgram(["fork-server"]).stdout)
        /// What each descriptor is, numbers and inodes left out.
        func kinds(_ fds: String) -> [String] {
            fds.split(separator: ",").map { entry in
                let target = entry.split(separator: " ").last.map(String.init) ?? ""
                return String(target.prefix { $0 != ":" && $0 != "-" }) + (target.hasPrefix("anon_inode") ? target : "")
            }.sorted()
        }
        #expect(forked.fds.count == 1 && spawned.fds.count == 1)
        #expect(kinds(forked.fds.first ?? "x") == kinds(spawned.fds.first ?? "y"))
        // 0 1 2 3 4 are the worker's; nothing of the parent's beyond them.
        #expect(forked.fds.first?.hasPrefix("0 -> /dev/null,1 -> pipe:") == true)
    }

    @Test("A forked worker's crash fails its task as a lost worker, naming its pid and signal", .timeLimit(.minutes(1)))
    func crashIsWorkerLost() throws {
        let report = Report(try runParentProgram(["fork-server", "crash"], environment: Self.forkServer).stdout)
        #expect(report.workers.allSatisfy { $0[2] == report.parent.mark })
        let lost = report.lines.first { $0.hasPrefix("lost ") } ?? ""
        #expect(lost.contains("workerLost"))
        #expect(lost.contains("SIGILL"))
        #expect(report.workers.contains { lost.contains("process \($0[0]) ") })
        #expect(report.lines.last == "done")
    }

    @Test("A killed zygote leaves pools working: they spawn", .timeLimit(.minutes(1)))
    func killedZygoteFallsBack() throws {
        let report = Report(try runParentProgram(["fork-server", "kill-zygote"], environment: Self.forkServer).stdout)
        #expect(report.lines.contains { $0.hasPrefix("killed ") })
        #expect(report.workers.count == 4)
        #expect(report.workers.prefix(2).allSatisfy { $0[2] == report.parent.mark })
        #expect(report.workers.dropFirst(2).allSatisfy { $0[2] != report.parent.mark })
        #expect(report.lines.last == "done")
    }

    @Test(
        "A zygote that does not answer is given up after its timeout: the pool spawns with new channels",
        .timeLimit(.minutes(1)))
    func stoppedZygoteIsGivenUp() throws {
        let report = Report(try runParentProgram(["fork-server", "stop-zygote"], environment: Self.forkServer).stdout)
        let stopped = report.lines.first { $0.hasPrefix("stopped ") }
        #expect(stopped != nil)
        // Four workers: two forked, then two spawned once the stopped zygote's 5 s were up.
        #expect(report.workers.count == 4)
        #expect(report.workers.prefix(2).allSatisfy { $0[2] == report.parent.mark })
        #expect(report.workers.dropFirst(2).allSatisfy { $0[2] != report.parent.mark })
        let waited = report.lines.first { $0.hasPrefix("waited ") }.flatMap { Int($0.dropFirst(7)) }
        #expect(waited.map { $0 >= 4_500 && $0 < 30_000 } == true, "waited \(String(describing: waited)) ms")
        #expect(report.lines.contains { $0.hasPrefix("zygote ") && $0.hasSuffix(" gone") })
        #expect(report.lines.last == "done")
    }

    @Test("A program with a thread at bootstrap spawns its workers", .timeLimit(.minutes(1)))
    func threadedProgramSpawns() throws {
        let environment = Self.forkServer.merging(["MULTIPROCESSING_TEST_THREAD_BEFORE_BOOTSTRAP": "1"]) { $1 }
        let report = Report(try runParentProgram(["fork-server"], environment: environment).stdout)
        #expect(report.zygote == 0)
        #expect(report.workers.count == 2)
        #expect(report.workers.allSatisfy { $0[2] != report.parent.mark })
        #expect(report.lines.last == "done")
    }

    @Test("A SIGKILLed parent leaves neither its zygote nor its forked workers", .timeLimit(.minutes(1)))
    func killedParentLeavesNothing() throws {
        let (process, out, _) = try startParentProgram(["fork-server", "sleep"], environment: Self.forkServer)
        var text = ""
        let handle = out.fileHandleForReading
        while !text.contains("done") && text.split(separator: "\n").count < 5 {
            let data = handle.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        let report = Report(text)
        let pids = [report.zygote] + report.workers.map { Int32($0[0]) }
        #expect(report.zygote > 0 && report.workers.count == 2)
        #expect(pids.allSatisfy(processIsAlive))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(eventually(timeout: .seconds(3)) { !pids.contains(where: processIsAlive) })
    }
}
