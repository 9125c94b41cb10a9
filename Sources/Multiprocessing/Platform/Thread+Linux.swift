// The pool's own threads (its I/O thread, its spawner). Plain pthreads rather than Swift tasks:
// they block in epoll_wait and posix_spawn, which must never happen on Swift's cooperative thread
// pool (2 threads on this machine), and the spawner must outlive the caller's thread because
// workers' parent-death signal follows the thread that spawned them. And the time slice they ask
// for.

#if os(Linux)
    import CMultiprocessing

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    private final class ThreadBody {
        let name: String
        let body: () -> Void
        init(name: String, _ body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Starts a detached thread named `name` (the first 15 bytes: what `ps -L` and debuggers show)
    /// running `body`.
    /// - Throws: ``SystemError`` from `pthread_create`.
    func startDetachedThread(name: String, _ body: @escaping @Sendable () -> Void) throws {
        let context = Unmanaged.passRetained(ThreadBody(name: name, body)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(
            &thread, nil,
            { raw in
                let box = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
                cmp_set_thread_name(box.name)
                box.body()
                return nil
            }, context)
        if status != 0 {
            Unmanaged<ThreadBody>.fromOpaque(context).release()
            throw SystemError(call: "pthread_create", errno: status)
        }
        // Fails only for a thread that is not joinable: not one just created joinable.
        let detached = pthread_detach(thread)
        assert(detached == 0, "pthread_detach: \(detached)")
    }

    /// Asks for a time slice of `slice` for the calling thread, once per thread (zero: none).
    /// The pool's own threads that relay (the I/O thread, the spawner, an MPI thread) ask for a
    /// short one: on Linux 6.12+ such a thread, woken while workers compute on every core,
    /// preempts one at once instead of waiting up to that worker's slice (1.4 ms here). Threads
    /// and processes it creates get the default slice again; earlier kernels ignore it; a
    /// refusal is ignored (best effort).
    func requestTimeSlice(_ slice: Duration) {
        let (seconds, attoseconds) = slice.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        guard nanoseconds > 0 else { return }
        _ = cmp_request_short_slice_once(UInt64(nanoseconds))
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add Thread+<System>.swift")
#endif
