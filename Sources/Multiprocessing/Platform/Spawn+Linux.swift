// Starting a worker process: pipes, posix_spawn, pidfd.

#if os(Linux)
    import CMultiprocessing

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
    }

    /// A started worker process as the parent sees it.
    ///
    /// Ownership: the parent owns `taskFD`, `resultFD`, `stderrFD` and `pidFD` (all close-on-exec,
    /// the first three non-blocking) and closes them when the worker is gone.
    struct SpawnedWorker {
        var pid: pid_t
        /// Pidfd of the worker, readable once it exits; -1 where the kernel has no pidfd.
        var pidFD: Int32
        /// Write end of the task pipe.
        var taskFD: Int32
        /// Read end of the result pipe.
        var resultFD: Int32
        /// Read end of the worker's stderr pipe.
        var stderrFD: Int32

        func closeAll() {
            closeDescriptor(pidFD)
            closeDescriptor(taskFD)
            closeDescriptor(resultFD)
            closeDescriptor(stderrFD)
        }
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
    /// - Throws: ``SystemError`` when a pipe cannot be made or `posix_spawn` fails (e.g. ENOENT).
    func spawnWorker(
        executable: String, arguments: [String], droppingEnvironment dropped: [String] = []
    ) throws -> SpawnedWorker {
        let tasks = try PipePair.make()
        let results: PipePair
        let stderrPipe: PipePair
        do {
            results = try PipePair.make()
        } catch {
            tasks.close()
            throw error
        }
        do {
            stderrPipe = try PipePair.make()
        } catch {
            tasks.close()
            results.close()
            throw error
        }
        // The worker's ends are closed here in every case; ours only on failure.
        defer {
            closeDescriptor(tasks.readEnd)
            closeDescriptor(results.writeEnd)
            closeDescriptor(stderrPipe.writeEnd)
        }
        func fail(_ error: any Error) -> any Error {
            closeDescriptor(tasks.writeEnd)
            closeDescriptor(results.readEnd)
            closeDescriptor(stderrPipe.readEnd)
            return error
        }
        growPipeBuffer(tasks.writeEnd, to: 1 << 20)
        growPipeBuffer(results.writeEnd, to: 1 << 20)

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
        environment.append("\(workerEnvironmentKey)=\(getpid())")

        var pid: pid_t = 0
        let status = withCStrings([executable] + arguments) { argv in
            withCStrings(environment) { envp in
                cmp_spawn_worker(executable, argv, envp, tasks.readEnd, results.writeEnd, stderrPipe.writeEnd, &pid)
            }
        }
        if status != 0 { throw fail(SystemError(call: "posix_spawn(\(executable))", errno: status)) }

        let pidFD = cmp_pidfd_open(pid)
        do {
            try setNonBlocking(tasks.writeEnd)
            try setNonBlocking(results.readEnd)
            try setNonBlocking(stderrPipe.readEnd)
        } catch {
            kill(pid, SIGKILL)
            var ignored: Int32 = 0
            _ = waitpid(pid, &ignored, 0)
            closeDescriptor(pidFD)
            throw fail(error)
        }
        if pidFD >= 0 { _ = fcntl(pidFD, F_SETFD, FD_CLOEXEC) }
        return SpawnedWorker(
            pid: pid, pidFD: pidFD, taskFD: tasks.writeEnd, resultFD: results.readEnd, stderrFD: stderrPipe.readEnd)
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
    func reap(_ pid: pid_t) -> ProcessTermination {
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, 0)
            if r == pid { return ProcessTermination(waitStatus: status) }
            if r == -1 && errno == EINTR { continue }
            return .unknown
        }
    }

    /// Sends SIGKILL to a worker: through its pidfd (`pidfd_send_signal`), which names that process
    /// and no other even after its pid is reused; by pid where the kernel has no pidfd (the caller
    /// then makes sure the pid was not reaped yet).
    func killProcess(pid: pid_t, pidFD: Int32) {
        if pidFD >= 0 {
            _ = cmp_pidfd_send_signal(pidFD, SIGKILL)
        } else if pid > 0 {
            _ = kill(pid, SIGKILL)
        }
    }

    /// Whether `pid` (a child) has exited, leaving it to be reaped by ``reap(_:)``.
    func hasExited(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        let r = waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT)
        return r == 0 && info._sifields._sigchld.si_pid == pid
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add Spawn+<System>.swift")
#endif
