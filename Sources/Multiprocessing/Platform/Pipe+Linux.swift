// Pipes between the parent and its workers.

#if os(Linux)
    import CMultiprocessing

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// The two ends of a pipe, both close-on-exec.
    ///
    /// Ownership: the caller owns both descriptors and must close them.
    struct PipePair {
        var readEnd: Int32
        var writeEnd: Int32

        /// Creates a close-on-exec pipe.
        /// - Throws: ``SystemError`` from `pipe2`.
        static func make() throws -> PipePair {
            var fds: (Int32, Int32) = (-1, -1)
            _ = try withUnsafeMutableBytes(of: &fds) { (raw) -> Int32 in
                let p = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
                return try retryingEINTR("pipe2") { cmp_pipe_cloexec(p) }
            }
            return PipePair(readEnd: fds.0, writeEnd: fds.1)
        }

        /// Closes both ends.
        func close() {
            closeDescriptor(readEnd)
            closeDescriptor(writeEnd)
        }
    }

    /// Puts `fd` (this process's end of a pipe) in non-blocking mode. The other end of a pipe is a
    /// separate open file description, so a worker's end stays blocking.
    func setNonBlocking(_ fd: Int32) throws {
        let flags = try retryingEINTR("fcntl(F_GETFL)") { fcntl(fd, F_GETFL) }
        _ = try retryingEINTR("fcntl(F_SETFL)") { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    /// Asks for a pipe buffer of `bytes` (fewer wakeups for big payloads). Best effort: an
    /// unprivileged process may be refused above `/proc/sys/fs/pipe-max-size`, which is fine.
    func growPipeBuffer(_ fd: Int32, to bytes: Int32) {
        _ = cmp_set_pipe_size(fd, bytes)
    }

    /// The outcome of one non-blocking read.
    enum ReadOutcome {
        case bytes(Int)
        case wouldBlock
        case endOfFile
    }

    /// Reads up to `count` bytes into `buffer` from a non-blocking descriptor.
    func readNonBlocking(
        _ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int
    )
        throws -> ReadOutcome
    {
        while true {
            let n = read(fd, buffer, count)
            if n > 0 { return .bytes(n) }
            if n == 0 { return .endOfFile }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
            throw SystemError(call: "read", errno: code)
        }
    }

    /// Writes as much of `bytes` as a non-blocking descriptor takes now; returns the count written
    /// (0 when the pipe is full).
    func writeNonBlocking(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws -> Int {
        guard bytes.count > 0 else { return 0 }
        while true {
            let n = write(fd, bytes.baseAddress, bytes.count)
            if n >= 0 { return n }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return 0 }
            throw SystemError(call: "write", errno: code)
        }
    }

    /// Reads exactly `count` bytes from a blocking descriptor. Returns false on end of file before
    /// the first byte; throws on end of file in the middle.
    func readFully(_ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int) throws -> Bool {
        var done = 0
        while done < count {
            let n = read(fd, buffer + done, count - done)
            if n > 0 {
                done += n
            } else if n == 0 {
                if done == 0 { return false }
                throw SystemError(call: "read", errno: EPIPE)
            } else if errno != EINTR {
                throw SystemError(call: "read", errno: errno)
            }
        }
        return true
    }

    /// Writes all of `bytes` to a blocking descriptor.
    func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n >= 0 {
                done += n
            } else if errno != EINTR {
                throw SystemError(call: "write", errno: errno)
            }
        }
    }

    /// Polls `fd` (and `other`, unless it is negative) for readability without sleeping, for up to
    /// `spin`, yielding the core between polls: when the peer being waited for shares the core (a
    /// busy machine, or one core), spinning without yielding would keep it from answering.
    /// - Returns: whether one became readable (or reports an error or hang-up) in that time.
    func pollReadable(_ fd: Int32, or other: Int32 = -1, spinningFor spin: Duration) -> Bool {
        let until = MonotonicInstant.now.advanced(by: spin)
        repeat {
            if pollReadable(fd, or: other, timeoutMilliseconds: 0).ready { return true }
            sched_yield()
        } while MonotonicInstant.now < until
        return false
    }

    /// Waits up to `timeoutMilliseconds` (-1: without limit) until `fd` or `other` (ignored when
    /// negative) is readable or reports an error or hang-up.
    /// - Returns: whether one is ready, whether `other` is, and whether a signal cut the wait short.
    func pollReadable(
        _ fd: Int32, or other: Int32, timeoutMilliseconds: Int32
    ) -> (ready: Bool, other: Bool, interrupted: Bool) {
        var descriptors = (
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: other, events: Int16(POLLIN), revents: 0)
        )
        let ready = withUnsafeMutableBytes(of: &descriptors) { raw in
            poll(raw.baseAddress!.assumingMemoryBound(to: pollfd.self), other >= 0 ? 2 : 1, timeoutMilliseconds)
        }
        return (ready > 0, ready > 0 && descriptors.1.revents != 0, ready < 0 && errno == EINTR)
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add Pipe+<System>.swift")
#endif
