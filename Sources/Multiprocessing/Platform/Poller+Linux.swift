// The readiness poller of a pool's I/O thread: epoll plus an eventfd to wake it.

#if os(Linux)
    import CMultiprocessing
    import Synchronization

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// An epoll instance and an eventfd that other threads use to wake the poller.
    ///
    /// Ownership: owns both descriptors and closes them in ``close()`` or when it is released.
    final class Poller: Sendable {
        private let epoll: SharedDescriptor
        private let wakeup: SharedDescriptor
        private var epollFD: Int32 { epoll.rawValue }
        private var wakeFD: Int32 { wakeup.rawValue }
        private let closed = Atomic<Bool>(false)
        /// The kernel's events of one wait, read only by the thread that waits (one per poller).
        private nonisolated(unsafe) let events: UnsafeMutablePointer<epoll_event>
        private static let eventCapacity = 64
        /// The token reported for the wake-up eventfd.
        static let wakeToken: UInt64 = .max

        /// - Throws: ``SystemError`` from `epoll_create1`, `eventfd` or `epoll_ctl`.
        init() throws(SystemError) {
            let epoll = OwnedDescriptor(
                taking: try retryingEINTR("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) })
            let wakeup = OwnedDescriptor(
                taking: try retryingEINTR("eventfd") { eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK)) })
            self.epoll = SharedDescriptor(epoll)
            self.wakeup = SharedDescriptor(wakeup)
            self.events = .allocate(capacity: Poller.eventCapacity)
            try register(wakeFD, token: Poller.wakeToken, readable: true, writable: false)
        }

        /// Starts watching `fd`, reporting `token` when it is ready.
        func register(_ fd: Int32, token: UInt64, readable: Bool, writable: Bool) throws(SystemError) {
            var event = Poller.event(token: token, readable: readable, writable: writable)
            _ = try retryingEINTR("epoll_ctl(ADD)") { epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) }
        }

        /// Changes what `fd` is watched for.
        func modify(_ fd: Int32, token: UInt64, readable: Bool, writable: Bool) throws(SystemError) {
            var event = Poller.event(token: token, readable: readable, writable: writable)
            _ = try retryingEINTR("epoll_ctl(MOD)") { epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event) }
        }

        /// Stops reporting `fd` as readable while keeping it registered (cheaper than unregistering
        /// and registering it again: one `epoll_ctl(MOD)` each way). A hang-up or error is still
        /// reported, once.
        func pause(_ fd: Int32, token: UInt64) throws(SystemError) {
            var event = epoll_event()
            event.events = EPOLLONESHOT.rawValue
            event.data.u64 = token
            _ = try retryingEINTR("epoll_ctl(MOD)") { epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event) }
        }

        /// Stops watching `fd` (before closing it).
        func unregister(_ fd: Int32) {
            let failure = bestEffort("epoll_ctl(DEL)") { epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil) }
            // ENOENT: it was never registered, or twice unregistered: bookkeeping gone wrong.
            assert(failure?.errno != ENOENT, "epoll_ctl(DEL, \(fd)): not registered: a bug in swift-multiprocessing")
        }

        private static func event(token: UInt64, readable: Bool, writable: Bool) -> epoll_event {
            var mask: UInt32 = 0
            if readable { mask |= EPOLLIN.rawValue }
            if writable { mask |= EPOLLOUT.rawValue }
            var event = epoll_event()
            event.events = mask
            event.data.u64 = token
            return event
        }

        /// Waits for readiness; `timeoutMilliseconds` of -1 waits without limit. A descriptor is
        /// reported (by its token) when it is ready for what it is watched for, or has hung up or
        /// failed; what it is ready for is for its owner to find out.
        /// - Returns: how many tokens were stored in `tokens` (0 when a signal cut the wait short).
        /// - Throws: ``SystemError`` when the wait fails.
        func wait(
            into tokens: UnsafeMutableBufferPointer<UInt64>, timeoutMilliseconds: Int32
        ) throws(SystemError) -> Int {
            let capacity = min(tokens.count, Poller.eventCapacity)
            let n: Int32
            do {
                n = try checkedCall("epoll_wait") { epoll_wait(epollFD, events, Int32(capacity), timeoutMilliseconds) }
            } catch let error where error.errno == EINTR {
                return 0
            }
            for i in 0..<Int(n) { tokens[i] = events[i].data.u64 }
            return Int(n)
        }

        /// Wakes a thread blocked in ``wait(into:timeoutMilliseconds:)``. Safe from any thread.
        func wake() {
            guard !closed.load(ordering: .acquiring) else { return }
            var one: UInt64 = 1
            let failure = bestEffort("write(eventfd)") { write(wakeFD, &one, 8) }
            // EAGAIN: the counter is full, so a wake-up is pending anyway.
            assert(failure == nil || failure?.errno == EAGAIN, "\(failure!)")
        }

        /// Consumes pending wake-ups.
        func drainWakeups() {
            var value: UInt64 = 0
            let failure = bestEffort("read(eventfd)") { read(wakeFD, &value, 8) }
            // EAGAIN: none was pending (a wake-up that another thread's read took).
            assert(failure == nil || failure?.errno == EAGAIN, "\(failure!)")
        }

        /// Closes both descriptors (once); the poller must not be used afterwards.
        func close() {
            guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
            wakeup.close()
            epoll.close()
        }

        deinit {
            events.deallocate()
        }
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add Poller+<System>.swift (kqueue on Darwin)")
#endif
