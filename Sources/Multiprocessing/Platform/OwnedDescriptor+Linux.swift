// A file descriptor with its owner in the type: a `~Copyable` value that closes it exactly once.

#if os(Linux)
    /// A file descriptor this process owns and closes exactly once: by ``close()``, or when the
    /// value is dropped. It cannot be copied, so two owners (and a second close) cannot be
    /// written; a descriptor that several holders share is a ``SharedDescriptor``.
    ///
    /// Calls on the descriptor take ``rawValue`` while the owner is alive: the number names this
    /// descriptor only until it is closed, after which the kernel may hand it out again.
    struct OwnedDescriptor: ~Copyable, Sendable {
        /// The descriptor's number, for system calls made while this value is alive.
        let rawValue: Int32

        /// Takes ownership of `rawValue` (a descriptor this process just opened), which this
        /// value closes from now on.
        init(taking rawValue: Int32) {
            precondition(rawValue >= 0, "OwnedDescriptor(taking: \(rawValue)): not a descriptor")
            self.rawValue = rawValue
        }

        /// Closes the descriptor now.
        consuming func close() {
            let fd = rawValue
            discard self
            closeDescriptor(fd)
        }

        /// Gives up ownership without closing: whoever gets the number closes it (a process
        /// that is about to hand it over, as the worker's descriptors after the spawn).
        consuming func release() -> Int32 {
            let fd = rawValue
            discard self
            return fd
        }

        deinit {
            closeDescriptor(rawValue)
        }
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add OwnedDescriptor+<System>.swift")
#endif
