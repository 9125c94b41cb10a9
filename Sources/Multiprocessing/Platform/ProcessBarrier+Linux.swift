// A memory barrier run on every thread of the process at once (membarrier(2)), the calling
// thread's identity as a word, and a barrier for the compiler alone: what the biased cursor lock
// of a stream needs (Runtime/CursorLock.swift), so that the thread reading the stream pays no
// atomic read-modify-write per item and a thread that takes the lock from it can still wait for
// it safely.

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
        /// returns (an interrupt to each core that runs one of them: microseconds). Only after
        /// ``isAvailable`` said yes.
        static func run() {
            // Registered, the call fails only when the kernel cannot allocate its CPU mask
            // (ENOMEM, on kernels built with off-stack masks: tried again, for up to a second) or
            // a seccomp filter installed since forbids it. Going on without the barrier could let
            // two threads into one lock, so that ends the process, with the reason.
            var attempts = 0
            while cmp_membarrier() != 0 {
                let failure = errno
                attempts += 1
                guard failure == ENOMEM || failure == EAGAIN || failure == EINTR, attempts < 1000 else {
                    fatalError(
                        "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed after registering: errno \(failure)")
                }
                usleep(1000)
            }
        }
    }

    /// The calling thread's identity as a word (`cmp_thread_word`: one instruction on x86-64 and
    /// arm64): nonzero, and another living thread's is another (a thread that ended may pass its
    /// word on to a new one).
    @inline(__always)
    func currentThreadWord() -> UInt {
        UInt(cmp_thread_word())
    }

    /// Keeps the compiler from moving any memory access across this point; no instruction.
    @inline(__always)
    func compilerBarrier() {
        cmp_compiler_barrier()
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add ProcessBarrier+<System>.swift")
#endif
