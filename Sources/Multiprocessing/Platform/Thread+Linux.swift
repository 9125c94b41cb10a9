// The pool's I/O thread. A plain pthread rather than a Swift task: it blocks in epoll_wait,
// which must never happen on Swift's cooperative thread pool (2 threads on this machine), and it
// must outlive the caller's thread because workers' parent-death signal follows the thread that
// spawned them.

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
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add Thread+<System>.swift")
#endif
