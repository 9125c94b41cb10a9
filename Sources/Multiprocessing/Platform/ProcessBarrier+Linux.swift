// A memory barrier run on every thread of the process at once (membarrier(2)), and the calling
// thread's identity as a word: what the biased cursor lock of an `imap` stream needs
// (Runtime/CursorLock.swift) so that its owner pays no atomic read-modify-write per item and a
// thread that takes the lock from it can still wait for it safely.

#if os(Linux)
    import CMultiprocessing

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// membarrier(2)'s expedited private barrier.
    enum ProcessBarrier {
        /// Whether ``run()`` works in this process: registered once, at the first ask (a kernel
        /// before 4.14, or a seccomp filter that forbids the call, says no).
        static let isAvailable: Bool = cmp_membarrier_register() == 0

        /// Makes every thread of the process that runs now pass a full memory barrier before this
        /// returns (a few microseconds: an interrupt to each core that runs one of them). Only
        /// after ``isAvailable`` said yes.
        static func run() {
            let status = cmp_membarrier()
            // Registered, the call has no failure but a kernel bug; going on would let two
            // threads into one lock.
            precondition(status == 0, "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed: errno \(errno)")
        }
    }

    /// The calling thread's `pthread_t` as a word: nonzero, and another living thread's is
    /// another (a thread that ended may pass its number on to a new one).
    @usableFromInline
    func currentThreadWord() -> UInt {
        unsafeBitCast(pthread_self(), to: UInt.self)
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add ProcessBarrier+<System>.swift")
#endif
