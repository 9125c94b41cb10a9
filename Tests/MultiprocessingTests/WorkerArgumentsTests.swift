// What workers are started with and what a worker that dies before it is ready leaves in the
// error: workers running this program get its command-line arguments (a program that parses
// them before Pool.bootstrap parses them in every worker too), a separate worker executable gets
// none unless the configuration sets them, and a worker that exits before it is ready is
// explained by what it printed on stderr, not by a guess.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("Worker arguments", .offCooperativePool) struct WorkerArgumentsTests {
    @Test(
        "Workers running this program get its arguments; Configuration.arguments replaces them",
        .timeLimit(.minutes(1)), .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func workersGetTheParentsArguments() throws {
        let (stdout, stderr) = try runParentProgram(["worker-arguments", "the positional"])
        // Every call (both workers) saw the same command line: the parent's, after its path.
        #expect(stdout.contains("default 1 worker-arguments|the positional\n"), "\(stdout)\n\(stderr)")
        // The same when the pool names this program's own path as its executable.
        #expect(stdout.contains("named 1 worker-arguments|the positional\n"), "\(stdout)\n\(stderr)")
        #expect(stdout.contains("configured chosen|by configuration\n"), "\(stdout)\n\(stderr)")
    }

    @Test("A separate worker executable gets no arguments, or the configuration's", .timeLimit(.minutes(1)))
    func separateExecutable() throws {
        let plain = try TestPools.make(processes: 1)
        defer { plain.stop() }
        #expect(try plain.apply(F.commandLineArguments) == [])

        let configured = try Pool(
            Pool.Configuration(processes: 1, executable: TestPools.workerExecutable, arguments: ["--verbose", "x y"]))
        defer { configured.stop() }
        #expect(try configured.apply(F.commandLineArguments) == ["--verbose", "x y"])
        #expect(configured.configuration.arguments == ["--verbose", "x y"])
    }

    @Test(
        "A worker that prints an error and exits before it is ready: spawnFailed carries its words",
        .timeLimit(.minutes(1)))
    func lastWordsBeforeReady() throws {
        // What a program whose command line fails to parse before Pool.bootstrap does.
        let script = TestFolder.uniquePath("parse-fails.sh")
        let text = "#!/bin/sh\necho \"Error: Missing expected argument '<count>'\" >&2\nexit 64\n"
        guard let file = fopen(script, "w") else { throw TestFailure(reason: "fopen", value: Int(errno)) }
        fputs(text, file)
        fclose(file)
        chmod(script, 0o755)

        let pool = try Pool(processes: 1, executable: script)
        defer { pool.stop() }
        let error = #expect(throws: PoolError.self) { try pool.apply(F.square, 2) }
        #expect(error?.code == .spawnFailed)
        let description = error?.description ?? ""
        #expect(description.contains("exited with status 64 before it was ready"), "\(description)")
        #expect(description.contains("Error: Missing expected argument '<count>'"), "\(description)")
        // It said why it stopped: no guess about a missing Pool.bootstrap.
        #expect(!description.contains("first thing in main"), "\(description)")
    }

    @Test("The bootstrap hint comes only when it is the likely cause")
    func bootstrapHint() {
        typealias SM = SchedulerStateMachine<String>
        let hint = "A worker executable must call Pool.bootstrap(serving:) first thing in main"
        // Printed why and failed: its words, no hint.
        let parse = SM.notReadyCause(.exited(64), "Error: Missing expected argument '<count>'")
        #expect(parse == ". Its last words on stderr:\nError: Missing expected argument '<count>'")
        // Silent with a status, or ran to its end (0): the hint.
        #expect(SM.notReadyCause(.exited(1), "") == ". \(hint); this one printed nothing on stderr")
        #expect(SM.notReadyCause(.exited(0), "") == ". \(hint); this one printed nothing on stderr")
        #expect(SM.notReadyCause(.exited(0), "warning: x") == ". \(hint). Its last words on stderr:\nwarning: x")
        // A signal is no missing bootstrap.
        #expect(SM.notReadyCause(.signaled(SIGSEGV), "") == "")
        #expect(SM.notReadyCause(.signaled(SIGILL), "Fatal error: x") == ". Its last words on stderr:\nFatal error: x")
    }
}
