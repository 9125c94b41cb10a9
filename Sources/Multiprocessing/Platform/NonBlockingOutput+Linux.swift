// Writing to the parent's stderr without ever blocking: the I/O thread forwards what workers
// print there, and a stderr nobody reads (a supervisor that reads at exit, a full FIFO, a
// terminal stopped with Ctrl-S) must not stop it from reading results.
//
// The parent's own descriptor 2 is not switched to non-blocking mode: its open file description
// is shared with every other writer (this process's own `print`s to stderr, the shell, other
// programs), which would then see EAGAIN. A pipe, FIFO or terminal is opened again through
// /proc/self/fd/2 instead, which gives this pool a description of its own with O_NONBLOCK; a
// socket takes MSG_DONTWAIT per call; a regular file never waits for a reader.

#if os(Linux)
    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// A handle on the parent's stderr whose writes never wait.
    ///
    /// Ownership: owns its descriptor (its own open of, or a duplicate of, descriptor 2) and
    /// closes it in ``close()`` or when the last copy of the handle is gone.
    struct NonBlockingOutput {
        enum Kind {
            /// Its own open file description in O_NONBLOCK mode (pipe, FIFO, terminal).
            case nonBlocking
            /// A socket: each write is `send(MSG_DONTWAIT)`.
            case socket
            /// A regular file or a block device: writes never wait for a reader.
            case file
            /// Nothing better was possible (no /proc): a write is tried only when `poll` says the
            /// descriptor is writable, in pieces of at most PIPE_BUF bytes, which a pipe with room
            /// takes at once. Another writer may take that room first: then this write waits.
            case polled
        }

        /// The outcome of one write.
        enum WriteOutcome: Equatable {
            /// This many bytes were written (0: none could be now).
            case wrote(Int)
            /// The destination is gone (EPIPE, a closed reader) or failed: stop forwarding.
            case failed(Int32)
        }

        private let descriptor: SharedDescriptor
        let kind: Kind
        /// The descriptor's number, for the poller.
        var fd: Int32 { descriptor.rawValue }

        private init(_ fd: Int32, kind: Kind) {
            descriptor = SharedDescriptor(OwnedDescriptor(taking: fd))
            self.kind = kind
        }

        /// Whether epoll can report the destination writable (a regular file never needs it).
        var canWatch: Bool { kind != .file }

        /// Opens the process's stderr (`STDERR_FILENO`) for writes that never block.
        /// - Returns: nil when stderr is closed, or is a pipe or FIFO without a reader (writes would
        ///   fail with EPIPE): then nothing can be forwarded.
        static func openStandardError() -> NonBlockingOutput? {
            opening(STDERR_FILENO)
        }

        /// Opens `source` (a descriptor of this process) as ``openStandardError()`` does.
        static func opening(_ source: Int32) -> NonBlockingOutput? {
            var info = stat()
            // EBADF is expected here: the process's stderr may be closed.
            guard fstat(source, &info) == 0 else { return nil }
            let type = info.st_mode & S_IFMT
            func duplicate(_ kind: Kind) -> NonBlockingOutput? {
                guard let copy = try? retryingEINTR("fcntl(F_DUPFD_CLOEXEC)", { fcntl(source, F_DUPFD_CLOEXEC, 3) })
                else { return nil }
                return NonBlockingOutput(copy, kind: kind)
            }
            switch type {
            case S_IFIFO, S_IFCHR:
                do {
                    let fd = try retryingEINTR("open(/proc/self/fd)") {
                        open("/proc/self/fd/\(source)", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | O_APPEND)
                    }
                    return NonBlockingOutput(fd, kind: .nonBlocking)
                } catch let error where error.errno == ENXIO {
                    // A pipe or FIFO whose reader is gone: open says so with ENXIO.
                    return nil
                } catch {
                    return duplicate(.polled)
                }
            case S_IFSOCK:
                return duplicate(.socket)
            default:
                return duplicate(.file)
            }
        }

        /// Writes as much of `bytes` as the destination takes now, never waiting for it.
        func tryWrite(_ bytes: UnsafeRawBufferPointer) -> WriteOutcome {
            guard let base = bytes.baseAddress, bytes.count > 0 else { return .wrote(0) }
            var count = bytes.count
            let fd = self.fd
            if kind == .polled {
                var polled = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                guard (try? retryingEINTR("poll") { poll(&polled, 1, 0) }) ?? 0 > 0 else { return .wrote(0) }
                if polled.revents & Int16(POLLERR | POLLHUP) != 0 { return .failed(EPIPE) }
                count = min(count, Int(PIPE_BUF))
            }
            do {
                switch kind {
                case .socket:
                    return .wrote(
                        try retryingEINTR("send") { send(fd, base, count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) })
                default:
                    return .wrote(try retryingEINTR("write") { write(fd, base, count) })
                }
            } catch let error where error.errno == EAGAIN || error.errno == EWOULDBLOCK {
                return .wrote(0)
            } catch {
                return .failed(error.errno)
            }
        }

        /// Waits up to `timeoutMilliseconds` for the destination to take bytes (or fail).
        func waitWritable(timeoutMilliseconds: Int32) {
            var polled = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            // Whatever it says (EINTR included), the caller tries a write and asks again.
            bestEffort("poll") { poll(&polled, 1, timeoutMilliseconds) }
        }

        /// Closes the handle (not the process's stderr).
        func close() {
            descriptor.close()
        }
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add NonBlockingOutput+<System>.swift")
#endif
