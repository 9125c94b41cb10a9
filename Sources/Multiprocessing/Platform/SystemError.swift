// Thin wrappers over the raw system calls the pool uses: retry on EINTR, turn errno into a typed
// error once, and keep `errno` handling out of every other file.

#if os(Linux)
    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// A system call that failed: which call, and the `errno` it set.
    ///
    /// The pool gives one as the ``PoolError/underlying`` error of a failure the operating system
    /// reported: a worker that could not be started (``PoolError/Code/spawnFailed``: `pipe2`,
    /// `posix_spawn`, `epoll_ctl`, …), the pool's I/O thread or poller that could not be set up.
    ///
    /// ```swift
    /// do {
    ///     let pool = try Pool(executable: "/no/such/worker")
    /// } catch let error as PoolError where error.code == .spawnFailed {
    ///     if let system = error.underlying as? SystemError, system.errno == ENOENT { … }
    /// }
    /// ```
    public struct SystemError: Error, CustomStringConvertible, Sendable, Equatable {
        /// The call that failed, e.g. `"pipe2"` or `"posix_spawn(/usr/bin/worker)"`.
        public let call: String
        /// The `errno` value it set, e.g. `ENOENT`.
        public let errno: Int32

        init(call: String, errno: Int32) {
            self.call = call
            self.errno = errno
        }

        /// The call, the system's words for the error and its number.
        public var description: String {
            "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        }
    }

    /// Runs `body` until it does not fail with `EINTR`; a result of -1 becomes a ``SystemError``.
    /// `EBADF` and `EFAULT` are this library's bugs (a descriptor it does not own, a bad
    /// pointer), not conditions to handle: they stop a debug build at once. Every system call
    /// that returns -1 and sets `errno` goes through this, ``checkedCall(_:_:)`` or
    /// ``closeDescriptor(_:)``.
    @inline(__always)
    func retryingEINTR<T: FixedWidthInteger>(_ call: String, _ body: () -> T) throws(SystemError) -> T {
        while true {
            do {
                return try checkedCall(call, body)
            } catch let error where error.errno == EINTR {
                continue
            }
        }
    }

    /// Runs `body` once; a result of -1 becomes a ``SystemError``, EINTR included: for a wait
    /// with a timeout, whose caller works out what is left of it. EBADF and EFAULT stop a debug
    /// build, as in ``retryingEINTR(_:_:)``.
    @inline(__always)
    func checkedCall<T: FixedWidthInteger>(_ call: String, _ body: () -> T) throws(SystemError) -> T {
        let result = body()
        if result == -1 {
            let code = errno
            assertOwnDescriptors(call, code)
            throw SystemError(call: call, errno: code)
        }
        return result
    }

    /// ``retryingEINTR(_:_:)`` for a call whose failure leaves nothing to do (a best-effort
    /// setting, a signal to a process that may be gone): still retried on EINTR, still a stop of
    /// a debug build on EBADF or EFAULT.
    /// - Returns: the error, for a caller that logs it.
    @inline(__always)
    @discardableResult
    func bestEffort<T: FixedWidthInteger>(_ call: String, _ body: () -> T) -> SystemError? {
        do {
            _ = try retryingEINTR(call, body)
            return nil
        } catch {
            return error
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
    /// twice, a bug that stops a debug build. Only ``OwnedDescriptor`` calls it.
    @inline(__always)
    func closeDescriptor(_ fd: Int32) {
        guard fd >= 0 else { return }
        if close(fd) == -1 { assertOwnDescriptors("close(\(fd))", errno) }
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add SystemError+<System>.swift")
#endif
