// Thin wrappers over the raw system calls the pool uses: retry on EINTR, turn errno into a typed
// error once, and keep `errno` handling out of every other file.

#if os(Linux)
    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// A failed system call: which call, and the `errno` it set.
    struct SystemError: Error, CustomStringConvertible {
        /// The name of the call that failed, e.g. `"pipe2"`.
        var call: String
        /// The `errno` value.
        var errno: Int32

        var description: String {
            "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        }
    }

    /// Runs `body` until it does not fail with `EINTR`; a result of -1 becomes a ``SystemError``.
    @inline(__always)
    func retryingEINTR<T: FixedWidthInteger>(_ call: String, _ body: () -> T) throws -> T {
        while true {
            let result = body()
            if result == -1 {
                let code = errno
                if code == EINTR { continue }
                throw SystemError(call: call, errno: code)
            }
            return result
        }
    }

    /// Closes `fd`, ignoring errors: by the time we close a descriptor nothing useful can be done
    /// about a failure, and retrying `close` on EINTR is wrong on Linux.
    @inline(__always)
    func closeDescriptor(_ fd: Int32) {
        if fd >= 0 { _ = close(fd) }
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add SystemError+<System>.swift")
#endif
