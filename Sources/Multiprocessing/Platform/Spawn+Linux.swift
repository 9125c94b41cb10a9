// Starting a worker process: pipes, posix_spawn (or the fork server), pidfd.

#if os(Linux)
    import CMultiprocessing
    import Logging

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// The environment variable that tells a re-executed program it is a pool worker. Its value is
    /// the parent's pid, so that a worker can check its parent is still the one that started it.
    let workerEnvironmentKey = CMP_WORKER_ENVIRONMENT_KEY  // the C constructor reads it too

    /// Descriptor numbers a worker finds its channels on.
    enum WorkerDescriptors {
        /// Tasks from the parent (read end).
        static let tasks: Int32 = 3
        /// Results to the parent (write end).
        static let results: Int32 = 4
        /// The worker's data plane: its ``SharedChannel``'s memory file (the first passed).
        static let channel: Int32 = 5
        /// The first of the descriptors a spawn passes besides the pipes (`spawnWorker`'s
        /// `passing`): the `i`th of them is `firstPassed + i`.
        static let firstPassed: Int32 = 5
        /// The most descriptors a spawn passes besides the pipes.
        static let maxPassed = Int(CMP_MAX_EXTRA_FDS)
    }

    /// A started worker process as the parent sees it, with the parent's ends of its channels.
    ///
    /// Ownership: each descriptor is owned (close-on-exec; the three pipe ends non-blocking) and
    /// is closed when dropped; the transport moves them into the holders that share them.
    struct SpawnedWorker: ~Copyable {
        var pid: pid_t
        /// Pidfd of the worker, readable once it exits; nil where the kernel has no pidfd.
        var pidFD: OwnedDescriptor?
        /// Write end of the task pipe.
        var taskFD: OwnedDescriptor
        /// Read end of the result pipe.
        var resultFD: OwnedDescriptor
        /// Read end of the worker's stderr pipe.
        var stderrFD: OwnedDescriptor
    }

    /// The path of the running executable (what workers re-execute by default).
    func currentExecutablePath() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return CommandLine.arguments.first ?? "" }
        return buffer.withUnsafeBufferPointer { raw in
            String(decoding: UnsafeRawBufferPointer(start: raw.baseAddress, count: n), as: UTF8.self)
        }
    }

    /// Spawns `executable` as a worker with three pipes to this process.
    ///
    /// Ownership: the worker's ends of the pipes are closed here once the child has its copies
    /// (or the spawn failed); the parent's ends come back in the ``SpawnedWorker``, or are closed
    /// here when this throws.
    /// - Parameters:
    ///   - dropped: Prefixes of this process's environment variables the worker does not get.
    ///   - added: `NAME=value` entries the worker gets besides.
    ///   - passed: Descriptors the worker gets as fds 5, 6, … (``WorkerDescriptors/firstPassed``),
    ///     at most ``WorkerDescriptors/maxPassed``; -1 leaves its number closed. They stay the
    ///     caller's.
    ///   - forkServer: Ask the fork server for the worker first (``ForkServer``), logging there;
    ///     nil, or no fork server: posix_spawn.
    /// - Throws: ``SystemError`` when a pipe cannot be made or `posix_spawn` fails (e.g. ENOENT).
    func spawnWorker(
        executable: String, arguments: [String], droppingEnvironment dropped: [String] = [],
        adding added: [String] = [], passing passed: [Int32] = [], forkServer: Logger? = nil
    ) throws(SystemError) -> SpawnedWorker {
        let tasks = try PipePair.make()
        let results = try PipePair.make()
        let stderrPipe = try PipePair.make()
        // The task and result pipes carry only doorbell bytes (the data goes through the
        // worker's shared memory): their default size is plenty.

        var environment: [String] = []
        if let env = cmp_environ() {
            var index = 0
            while let entry = env[index] {
                let string = String(cString: entry)
                if !string.hasPrefix(workerEnvironmentKey + "="), !dropped.contains(where: string.hasPrefix) {
                    environment.append(string)
                }
                index += 1
            }
        }
        environment += added
        environment.append("\(workerEnvironmentKey)=\(getpid())")

        let forked =
            forkServer.map { logger in
                ForkServer.forkWorker(
                    environment: environment, stderr: stderrPipe.writeEnd.rawValue, tasks: tasks.readEnd.rawValue,
                    results: results.writeEnd.rawValue, passing: passed, logger: logger)
            } ?? .spawn
        let pid: pid_t
        switch forked {
        case .forked(let child):
            pid = child
        case .abandoned(let error):
            // A worker the zygote may have made holds these pipes and the passed descriptors:
            // they serve no other (closed here; the caller starts over with new ones).
            throw error
        case .spawn:
            pid = try spawn(
                executable, arguments: arguments, environment: environment, tasks: tasks.readEnd,
                results: results.writeEnd, stderr: stderrPipe.writeEnd, passing: passed)
        }
        // The child has its copies: the worker's ends close here (the pipes' ends of our side
        // then see end of file or EPIPE once the worker is gone).
        tasks.readEnd.close()
        results.writeEnd.close()
        stderrPipe.writeEnd.close()

        // pidfd_open sets close-on-exec itself. ENOSYS (an old kernel): exits are polled instead.
        var pidFD: OwnedDescriptor? = nil
        if let raw = try? retryingEINTR("pidfd_open", { cmp_pidfd_open(pid) }) { pidFD = OwnedDescriptor(taking: raw) }
        do {
            try setNonBlocking(tasks.writeEnd.rawValue)
            try setNonBlocking(results.readEnd.rawValue)
            try setNonBlocking(stderrPipe.readEnd.rawValue)
        } catch {
            killProcess(pid: pid, pidFD: pidFD?.rawValue ?? -1)
            _ = reap(pid)
            throw error
        }
        return SpawnedWorker(
            pid: pid, pidFD: pidFD, taskFD: tasks.writeEnd, resultFD: results.readEnd, stderrFD: stderrPipe.readEnd)
    }

    /// posix_spawn with the worker's three channels as its file actions (fds 3, 4 and 2), and
    /// `passed` as fds 5, …; the descriptors stay the caller's.
    /// - Returns: the child's pid.
    /// - Throws: ``SystemError`` (`posix_spawn`'s error: ENOENT, EACCES, …).
    private func spawn(
        _ executable: String, arguments: [String], environment: [String], tasks: borrowing OwnedDescriptor,
        results: borrowing OwnedDescriptor, stderr: borrowing OwnedDescriptor, passing passed: [Int32]
    ) throws(SystemError) -> pid_t {
        precondition(
            passed.count <= WorkerDescriptors.maxPassed,
            "spawn passes at most \(WorkerDescriptors.maxPassed) descriptors")
        let (taskFD, resultFD, stderrFD) = (tasks.rawValue, results.rawValue, stderr.rawValue)
        var pid: pid_t = 0
        let status = withCStrings([executable] + arguments) { argv in
            withCStrings(environment) { envp in
                passed.withUnsafeBufferPointer { extra in
                    cmp_spawn_worker(
                        executable, argv, envp, taskFD, resultFD, stderrFD, extra.baseAddress, Int32(extra.count), &pid)
                }
            }
        }
        if status != 0 {
            assertOwnDescriptors("posix_spawn", status)
            throw SystemError(call: "posix_spawn(\(executable))", errno: status)
        }
        return pid
    }

    /// Calls `body` with a NULL-terminated C array of the given strings.
    private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        let pointers = strings.map { strdup($0) }
        defer { for p in pointers { free(p) } }
        return (pointers + [nil]).withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// How a process ended, decoded from a wait status.
    enum ProcessTermination: Equatable, Sendable, CustomStringConvertible {
        /// It called `exit` with this status.
        case exited(Int32)
        /// A signal killed it.
        case signaled(Int32)
        /// Its status could not be read (someone else reaped it).
        case unknown

        init(waitStatus status: Int32) {
            let signal = status & 0x7f
            if signal == 0 {
                self = .exited((status >> 8) & 0xff)
            } else {
                self = .signaled(signal)
            }
        }

        /// Whether SIGKILL ended it (the pool's own kills, the out-of-memory killer, an operator).
        var isKill: Bool { self == .signaled(SIGKILL) }

        var description: String {
            switch self {
            case .exited(let code): return "exited with status \(code)"
            case .signaled(let signal): return "killed by signal \(signal) (\(signalName(signal)))"
            case .unknown: return "exited (status unavailable)"
            }
        }
    }

    /// The conventional name of a signal number.
    func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGHUP: return "SIGHUP"
        case SIGINT: return "SIGINT"
        case SIGQUIT: return "SIGQUIT"
        case SIGILL: return "SIGILL"
        case SIGTRAP: return "SIGTRAP"
        case SIGABRT: return "SIGABRT"
        case SIGBUS: return "SIGBUS"
        case SIGFPE: return "SIGFPE"
        case SIGKILL: return "SIGKILL"
        case SIGSEGV: return "SIGSEGV"
        case SIGPIPE: return "SIGPIPE"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(signal)"
        }
    }

    /// Waits for `pid` to exit and reaps it (this pid only; never `waitpid(-1)`).
    /// - Returns: ``ProcessTermination/unknown`` when it cannot be reaped (ECHILD: someone else
    ///   reaped it).
    func reap(_ pid: pid_t) -> ProcessTermination {
        var status: Int32 = 0
        guard (try? retryingEINTR("waitpid") { waitpid(pid, &status, 0) }) == pid else { return .unknown }
        return ProcessTermination(waitStatus: status)
    }

    /// Sends SIGKILL to a worker: through its pidfd (`pidfd_send_signal`), which names that process
    /// and no other even after its pid is reused; by pid where the kernel has no pidfd (the caller
    /// then makes sure the pid was not reaped yet).
    /// A process that has exited already (ESRCH) is not an error: it is being reaped.
    func killProcess(pid: pid_t, pidFD: Int32) {
        if pidFD >= 0 {
            bestEffort("pidfd_send_signal") { cmp_pidfd_send_signal(pidFD, SIGKILL) }
        } else if pid > 0 {
            bestEffort("kill") { kill(pid, SIGKILL) }
        }
    }

    /// Whether `pid` (a child) has exited, leaving it to be reaped by ``reap(_:)``.
    func hasExited(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        guard (try? retryingEINTR("waitid") { waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) }) == 0
        else { return false }
        return info._sifields._sigchld.si_pid == pid
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add Spawn+<System>.swift")
#endif
