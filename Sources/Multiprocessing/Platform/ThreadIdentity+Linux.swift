// Which thread this is: the callback executor asks, so that a wait on its own thread runs the
// callbacks queued behind the one that waits instead of sleeping on them.

#if os(Linux)
    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// The identity of a thread (its `pthread_t`), compared with `pthread_equal`.
    struct ThreadIdentity: Equatable, @unchecked Sendable {
        // `@unchecked`: a `pthread_t` is an integer on glibc and an opaque pointer on musl; either way
        // it is only compared, never dereferenced.
        private let thread: pthread_t

        /// The calling thread.
        static var current: ThreadIdentity { ThreadIdentity(thread: pthread_self()) }

        static func == (a: ThreadIdentity, b: ThreadIdentity) -> Bool {
            pthread_equal(a.thread, b.thread) != 0
        }
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add ThreadIdentity+<System>.swift")
#endif
