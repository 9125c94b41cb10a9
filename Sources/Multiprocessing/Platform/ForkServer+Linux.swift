// The fork server's system calls (fork_server.c): starting the zygote in `Pool.bootstrap`, and
// asking it for a worker.

#if os(Linux)
    import CMultiprocessing

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// What starting the fork server made of this process.
    enum ForkServerStart {
        /// This is the pool's process: the zygote runs, reached through `socket`.
        case started(socket: Int32, pid: pid_t)
        /// This is a new worker, cloned from the zygote: its environment names its parent.
        case worker
        /// No zygote: why.
        case unavailable(String)
    }

    /// Forks the zygote, if this process runs one thread alone.
    func startForkServerProcess() -> ForkServerStart {
        let threads = cmp_thread_count()
        guard threads == 1 else {
            return .unavailable("the process runs \(threads) threads at Pool.bootstrap (a fork needs one)")
        }
        var socket: Int32 = -1
        var pid: pid_t = 0
        switch cmp_fork_server_start(&socket, &pid) {
        case 1: return .started(socket: socket, pid: pid)
        case 0: return .worker
        case let error: return .unavailable("fork server: \(SystemError(call: "fork", errno: error))")
        }
    }

    /// Asks the zygote for a worker with the given channels and environment (see
    /// `cmp_fork_server_request`). The descriptors stay the caller's.
    /// - Returns: the worker's pid, a child of this process; or the request's error, and whether
    ///   the zygote may have cloned a worker with these descriptors all the same (`mayHaveCloned`).
    func requestForkedWorker(
        socket: Int32, environment: [String], stderr: Int32, tasks: Int32, results: Int32, passing passed: [Int32]
    ) -> Result<pid_t, ForkRequestFailure> {
        var pid: pid_t = 0
        var sent: Int32 = 0
        let pointers = environment.map { strdup($0) }
        defer { for p in pointers { free(p) } }
        let status = (pointers + [nil]).withUnsafeBufferPointer { envp in
            passed.withUnsafeBufferPointer { extra in
                cmp_fork_server_request(
                    socket, envp.baseAddress!, stderr, tasks, results, extra.baseAddress, Int32(extra.count), &pid,
                    &sent)
            }
        }
        if status != 0 {
            return .failure(
                ForkRequestFailure(
                    error: SystemError(call: "fork server request", errno: status), mayHaveCloned: sent != 0))
        }
        return .success(pid)
    }

    /// A failed request to the zygote.
    struct ForkRequestFailure: Error {
        var error: SystemError
        /// The zygote got the request and did not say it failed: it may have cloned a worker
        /// that holds the request's descriptors.
        var mayHaveCloned: Bool
    }

    /// The pid of a worker the zygote cloned for a request that gave up waiting, if its reply
    /// is there now (read without waiting).
    func lateForkedWorker(socket: Int32) -> pid_t? {
        var pid: pid_t = 0
        return cmp_fork_server_late_reply(socket, &pid) == 1 ? pid : nil
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add ForkServer+<System>.swift")
#endif
