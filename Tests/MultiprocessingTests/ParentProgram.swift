// The test worker executable run as a parent program (its roles: the header of
// Sources/multiprocessing-test-worker/main.swift), for tests that need a process of their own.
// `startParentProgram` / `runParentProgram` start it with Foundation's Process, stdout and
// stderr on pipes. `GroupedProgram` starts it in a process group of its own, as a shell starts a
// job, so that a test can signal the whole group like a terminal does (Ctrl-C is
// `kill(-pgid, SIGINT)`): Process cannot set the process group, so this uses posix_spawn with
// POSIX_SPAWN_SETPGROUP; its every wait suspends instead of blocking a thread.

import CMultiprocessing
import Foundation
import Multiprocessing
import MultiprocessingTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Starts the test worker executable with `arguments` (a parent role), its stdout and stderr on
/// pipes the caller reads (or, with `closedStderr`, a stderr whose reading end is closed: its
/// writes there fail). `environment` is added to this process's.
func startParentProgram(
    _ arguments: [String], environment: [String: String] = [:], closedStderr: Bool = false
) throws -> (Process, stdout: Pipe, stderr: Pipe) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: TestPools.workerExecutable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    if closedStderr { try err.fileHandleForReading.close() }
    try process.run()
    return (process, out, err)
}

/// Waits for `process` to exit; past `limit` it is killed (SIGKILL; its workers die with it), so
/// that a hung parent program fails its test instead of holding the test run open.
func waitForExit(_ process: Process, within limit: Duration = .seconds(90)) {
    let deadline = ContinuousClock.now + limit
    while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        Issue.record("the parent program \(process.arguments ?? []) ran past \(limit) and was killed")
    }
    process.waitUntilExit()
}

/// Runs the test worker executable with `arguments` (a parent role) to its end and returns what
/// it printed on stdout and stderr (nothing for a `closedStderr`; see `startParentProgram`).
func runParentProgram(
    _ arguments: [String], environment: [String: String] = [:], closedStderr: Bool = false
) throws -> (stdout: String, stderr: String) {
    let (process, out, err) = try startParentProgram(arguments, environment: environment, closedStderr: closedStderr)
    // Both pipes are drained while the program runs: a program that prints more than a pipe
    // holds (64 KiB) would otherwise block in its write until `waitForExit` killed it.
    let stdout = PipeDrain(out)
    let stderr = closedStderr ? nil : PipeDrain(err)
    waitForExit(process)
    return (stdout.text(), stderr?.text() ?? "")
}

/// Reads a pipe to its end on a thread of its own, from its creation on.
final class PipeDrain: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let data = Mutex(Data())

    init(_ pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        Thread.detach { [self] in
            let read = handle.readDataToEndOfFile()
            data.withLock { $0 = read }
            done.signal()
        }
    }

    /// What the pipe held, once every writer closed it.
    func text() -> String {
        done.wait()
        return String(decoding: data.withLock { $0 }, as: UTF8.self)
    }
}

/// A running test program, leader of its own process group; its stdout is read through a pipe.
///
/// Ownership: it owns the pipe's read end and the child; `finish()` kills the group if it still
/// runs, reaps the child and closes the pipe.
final class GroupedProgram {
    /// The program's pid, which is also its process group id.
    let pid: pid_t
    private let output: Int32
    private var text = ""
    private var status: Int32?

    /// Starts the test worker executable with `arguments` (a parent role) in a new process group,
    /// with every signal at its default action and none blocked.
    init(_ arguments: [String]) throws {
        var fds: [Int32] = [-1, -1]
        guard cmp_pipe_cloexec(&fds) == 0 else { throw TestFailure(reason: "pipe2", value: Int(errno)) }
        defer { close(fds[1]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        var all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([TestPools.workerExecutable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        let spawned = posix_spawn(&child, TestPools.workerExecutable, &actions, &attributes, argv, environ)
        guard spawned == 0 else {
            close(fds[0])
            throw TestFailure(reason: "posix_spawn", value: Int(spawned))
        }
        pid = child
        output = fds[0]
        _ = fcntl(output, F_SETFL, fcntl(output, F_GETFL) | O_NONBLOCK)
    }

    /// Sends `signal` to the program's whole process group, as a terminal does.
    func signalGroup(_ signal: Int32) {
        kill(-pid, signal)
    }

    /// Waits for a line of output that starts with `prefix` and returns its words after the
    /// prefix; nil if none comes within `timeout`.
    func line(startingWith prefix: String, timeout: Duration = .seconds(30)) async -> [String]? {
        var found: [String]?
        _ = await eventuallyAsync(timeout: timeout) {
            readAvailable()
            found = lines.first { $0.hasPrefix(prefix + " ") || $0 == prefix }.map {
                $0.split(separator: " ").dropFirst().map(String.init)
            }
            return found != nil
        }
        return found
    }

    /// The complete lines the program printed so far.
    var lines: [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    /// Waits for the program to exit and returns its wait status; nil if it still runs after
    /// `timeout`. Reads the rest of its output.
    func exitStatus(timeout: Duration = .seconds(30)) async -> Int32? {
        _ = await eventuallyAsync(timeout: timeout) {
            readAvailable()
            if status == nil {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid { status = raw }
            }
            return status != nil
        }
        readAvailable()
        return status
    }

    /// Kills the group if the program still runs, reaps it and closes the pipe.
    func finish() {
        if status == nil {
            kill(-pid, SIGKILL)
            var raw: Int32 = 0
            if waitpid(pid, &raw, 0) == pid { status = raw }
        }
        close(output)
    }

    private func readAvailable() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(output, &buffer, buffer.count)
            guard n > 0 else { return }
            text += String(decoding: buffer[0..<n], as: UTF8.self)
        }
    }
}
