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
    /// `EBADF` and `EFAULT` are this library's bugs (a descriptor it does not own, a bad
    /// pointer), not conditions to handle: they stop a debug build at once.
    @inline(__always)
    func retryingEINTR<T: FixedWidthInteger>(_ call: String, _ body: () -> T) throws -> T {
        while true {
            let result = body()
            if result == -1 {
                let code = errno
                if code == EINTR { continue }
                assertOwnDescriptors(call, code)
                throw SystemError(call: call, errno: code)
            }
            return result
        }
    }

    /// Stops a debug build when a call failed in a way only a bug in this library explains.
    @inline(__always)
    func assertOwnDescriptors(_ call: String, _ code: Int32) {
        assert(
            code != EBADF && code != EFAULT,
            "\(call): \(String(cString: strerror(code))): a bug in swift-multiprocessing")
    }

    /// Closes `fd`. A failure other than EBADF leaves nothing useful to do (and retrying `close`
    /// on EINTR is wrong on Linux: the descriptor is gone either way); EBADF means it was closed
    /// twice, a bug that stops a debug build.
    @inline(__always)
    func closeDescriptor(_ fd: Int32) {
        guard fd >= 0 else { return }
        if close(fd) == -1 { assertOwnDescriptors("close(\(fd))", errno) }
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add SystemError+<System>.swift")
#endif
