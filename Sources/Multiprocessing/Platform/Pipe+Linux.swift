// Pipes between the parent and its workers.

#if os(Linux)
    import CMultiprocessing

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// The two ends of a pipe, both close-on-exec, each owned (closed when dropped, or by
    /// `close()`).
    struct PipePair: ~Copyable {
        var readEnd: OwnedDescriptor
        var writeEnd: OwnedDescriptor

        /// Creates a close-on-exec pipe.
        /// - Throws: ``SystemError`` from `pipe2`.
        static func make() throws(SystemError) -> PipePair {
            var fds: (Int32, Int32) = (-1, -1)
            try withUnsafeMutableBytes(of: &fds) { (raw) throws(SystemError) in
                let p = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
                _ = try retryingEINTR("pipe2") { cmp_pipe_cloexec(p) }
            }
            return PipePair(readEnd: OwnedDescriptor(taking: fds.0), writeEnd: OwnedDescriptor(taking: fds.1))
        }

        /// Gives up both ends without closing them, to a caller that closes each itself.
        consuming func release() -> (readEnd: Int32, writeEnd: Int32) {
            (readEnd.release(), writeEnd.release())
        }
    }

    /// Puts `fd` (this process's end of a pipe) in non-blocking mode. The other end of a pipe is a
    /// separate open file description, so a worker's end stays blocking.
    func setNonBlocking(_ fd: Int32) throws(SystemError) {
        let flags = try retryingEINTR("fcntl(F_GETFL)") { fcntl(fd, F_GETFL) }
        _ = try retryingEINTR("fcntl(F_SETFL)") { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    /// Sets close-on-exec on `fd` (a descriptor this process was given, such as a worker's
    /// channels), so that programs it starts do not inherit it.
    func setCloseOnExec(_ fd: Int32) throws(SystemError) {
        _ = try retryingEINTR("fcntl(F_SETFD)") { fcntl(fd, F_SETFD, FD_CLOEXEC) }
    }

    /// Asks for a pipe buffer of `bytes` (fewer wakeups for big payloads). Best effort: an
    /// unprivileged process may be refused above `/proc/sys/fs/pipe-max-size` (EPERM), which is
    /// fine.
    func growPipeBuffer(_ fd: Int32, to bytes: Int32) {
        bestEffort("fcntl(F_SETPIPE_SZ)") { cmp_set_pipe_size(fd, bytes) }
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
        throws(SystemError) -> ReadOutcome
    {
        do {
            let n = try retryingEINTR("read") { read(fd, buffer, count) }
            return n > 0 ? .bytes(n) : .endOfFile
        } catch let error where error.errno == EAGAIN || error.errno == EWOULDBLOCK {
            return .wouldBlock
        }
    }

    /// Writes as much of `bytes` as a non-blocking descriptor takes now; returns the count written
    /// (0 when the pipe is full).
    func writeNonBlocking(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemError) -> Int {
        guard bytes.count > 0 else { return 0 }
        do {
            return try retryingEINTR("write") { write(fd, bytes.baseAddress, bytes.count) }
        } catch let error where error.errno == EAGAIN || error.errno == EWOULDBLOCK {
            return 0
        }
    }

    /// Rings a doorbell: writes one byte to the pipe `fd`, whose reader sleeps until something
    /// is there (a full pipe has been rung already). Returns false when the reader is gone
    /// (EPIPE; the caller blocks SIGPIPE where the process must not die of it).
    @discardableResult
    func ringDoorbell(_ fd: Int32) -> Bool {
        var byte: UInt8 = 1
        do {
            _ = try retryingEINTR("write(doorbell)") { write(fd, &byte, 1) }
            return true
        } catch {
            return error.errno != EPIPE
        }
    }

    /// Empties a non-blocking doorbell pipe. Returns false at end of file (its writer is gone).
    func drainDoorbell(_ fd: Int32) -> Bool {
        var bytes = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &bytes) { raw in
            while true {
                switch (try? readNonBlocking(fd, into: raw.baseAddress!, count: raw.count)) ?? .endOfFile {
                case .wouldBlock: return true
                case .endOfFile: return false
                case .bytes(let n) where n < raw.count: return true
                case .bytes: continue
                }
            }
        }
    }

    /// Reads exactly `count` bytes from a blocking descriptor. Returns false on end of file before
    /// the first byte; throws on end of file in the middle.
    func readFully(_ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int) throws(SystemError) -> Bool {
        var done = 0
        while done < count {
            let n = try retryingEINTR("read") { read(fd, buffer + done, count - done) }
            if n == 0 {
                if done == 0 { return false }
                throw SystemError(call: "read", errno: EPIPE)
            }
            done += n
        }
        return true
    }

    /// Writes all of `bytes` to a blocking descriptor.
    func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var done = 0
        while done < bytes.count {
            done += try retryingEINTR("write") { write(fd, bytes.baseAddress! + done, bytes.count - done) }
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
    /// - Returns: whether one is ready, whether `other` is, and whether a signal cut the wait short
    ///   (not retried here: the caller's deadline decides what to wait for next).
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
        if ready < 0 {
            let code = errno
            assertOwnDescriptors("poll", code)
            return (false, false, code == EINTR)
        }
        // A descriptor that is not open (POLLNVAL) is a bug here, like EBADF.
        assert(
            descriptors.0.revents & Int16(POLLNVAL) == 0 && descriptors.1.revents & Int16(POLLNVAL) == 0,
            "poll: a descriptor that is not open: a bug in swift-multiprocessing")
        return (ready > 0, ready > 0 && descriptors.1.revents != 0, false)
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add Pipe+<System>.swift")
#endif
