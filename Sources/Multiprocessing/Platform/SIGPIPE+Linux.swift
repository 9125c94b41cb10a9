// Writing to the pipe of a worker that just died raises SIGPIPE, whose default action kills the
// whole process. A library must not change the process's signal dispositions, so the writes to
// task pipes run with SIGPIPE blocked in the writing thread, and a SIGPIPE they raise is
// consumed before it is unblocked; the write then fails with EPIPE, which the pool handles.

#if os(Linux)
    import CMultiprocessing

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// Runs `body` (which writes to pipes) with SIGPIPE blocked in this thread. `body` returns
    /// whether a write failed with EPIPE, in which case the SIGPIPE it raised is consumed.
    func withSIGPIPEBlocked(_ body: () -> Bool) {
        var pipeOnly = sigset_t()
        sigemptyset(&pipeOnly)
        sigaddset(&pipeOnly, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeOnly, &previous)
        let brokePipe = body()
        if brokePipe && sigismember(&previous, SIGPIPE) == 0 {
            var pending = sigset_t()
            sigpending(&pending)
            if sigismember(&pending, SIGPIPE) == 1 {
                var zero = timespec(tv_sec: 0, tv_nsec: 0)
                // EAGAIN: another thread's sigwait took it first.
                bestEffort("sigtimedwait") { sigtimedwait(&pipeOnly, nil, &zero) }
            }
        }
        pthread_sigmask(SIG_SETMASK, &previous, nil)
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add SIGPIPE+<System>.swift")
#endif
