// What the cluster transport needs from the system: yielding the processor while it spins,
// this process's id and its parent's, and running code when the program exits.

#if os(Linux)
    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// Lets another thread run (a polling loop that spins on a machine with fewer cores than
    /// busy threads must not hold its core).
    func yieldProcessor() {
        _ = sched_yield()
    }

    /// This process's id.
    func currentProcessID() -> Int32 { getpid() }

    /// The id of this process's parent.
    func parentProcessID() -> Int32 { getppid() }

    /// Writes `message` and a newline to stderr, then ends the program with status 1 (its exit
    /// handlers run): for a launch that cannot work, said once, without a crash report.
    func exitWithMessage(_ message: String) -> Never {
        let line = Array((message + "\n").utf8)
        var written = 0
        while written < line.count {
            let count = line[written...].withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if count > 0 {
                written += count
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        exit(1)
    }

    /// The value of the environment variable `name`, if set.
    func environmentValue(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Runs `body` when the program exits through `exit` or by returning from `main` (C's
    /// `atexit`): once, whatever the number of calls.
    func runAtExit(_ handler: @convention(c) () -> Void) {
        atexit(handler)
    }

    /// Ends this process now with `status`, running no exit handlers.
    func exitImmediately(_ status: Int32) -> Never {
        _exit(status)
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add Cluster+<System>.swift")
#endif
