// The signal policy of a worker process: it dies with its parent, ignores the terminal's
// SIGINT, SIGQUIT and SIGHUP (which a terminal sends to the whole foreground process group,
// workers included: the parent alone decides what Ctrl-C means), and keeps the default action of
// every other signal, so job control (Ctrl-Z, `fg`) stops and resumes it with its parent.
//
// No window: the worker is spawned with those three signals blocked (posix_spawn cannot set
// SIG_IGN), and the library's C constructor ignores and unblocks them before `main` runs, so
// one sent meanwhile is discarded. `Pool.bootstrap` applies the policy again (see
// `cmp_prepare_worker_process`).

#if os(Linux)
    import CMultiprocessing

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    enum WorkerSignals {
        /// Applies the worker's signal policy to this process, a worker of `parentPID`, and exits
        /// if that parent is already gone. The constructor did the same before `main`; calling it
        /// here costs three syscalls and also covers a program whose constructors did not run.
        static func adopt(parentPID: pid_t) {
            if cmp_prepare_worker_process(parentPID) != 0 { exit(0) }
        }
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add Signals+<System>.swift")
#endif
