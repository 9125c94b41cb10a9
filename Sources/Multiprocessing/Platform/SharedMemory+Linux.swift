// Memory that several processes map: anonymous memory files (memfd), named nowhere, so that
// nothing is left behind in /dev/shm when a process dies; and their mappings, unmapped exactly
// once, when the last holder lets go; and the futex, to sleep on a word of such memory.

#if os(Linux)
    import CMultiprocessing

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// Creates an anonymous memory file of `size` bytes (zeros; pages are allocated as they are
    /// first touched). Close-on-exec: a worker gets it only as one of the descriptors its spawn
    /// passes.
    /// - Parameters:
    ///   - name: What `/proc/<pid>/fd` shows for it (for people debugging; need not be unique).
    ///   - sealable: Whether seals may be added later (``sealMemoryFile(_:)``).
    /// - Throws: ``SystemError`` from `memfd_create` (EMFILE, ENOMEM, …) or `ftruncate`.
    func createMemoryFile(name: String, size: Int, sealable: Bool = false) throws(SystemError) -> OwnedDescriptor {
        let raw = try retryingEINTR("memfd_create") { cmp_memfd_create(name, sealable ? 1 : 0) }
        let file = OwnedDescriptor(taking: raw)
        try resizeMemoryFile(file.rawValue, to: size)
        return file
    }

    /// Sets a memory file's size; growing it adds zeros, which use no memory until touched.
    /// - Throws: ``SystemError`` from `ftruncate`.
    func resizeMemoryFile(_ fd: Int32, to size: Int) throws(SystemError) {
        _ = try retryingEINTR("ftruncate") { ftruncate(fd, off_t(size)) }
    }

    /// A memory file's size in bytes.
    /// - Throws: ``SystemError`` from `fstat`.
    func memoryFileSize(_ fd: Int32) throws(SystemError) -> Int {
        var status = stat()
        _ = try retryingEINTR("fstat") { fstat(fd, &status) }
        return Int(status.st_size)
    }

    /// Seals a memory file against any change of its contents or size (F_SEAL_WRITE, _GROW,
    /// _SHRINK, then _SEAL): every process that maps it can rely on it staying as it is. Fails with
    /// EBUSY while a writable shared mapping of it exists.
    /// - Throws: ``SystemError`` from `fcntl(F_ADD_SEALS)`.
    func sealMemoryFile(_ fd: Int32) throws(SystemError) {
        _ = try retryingEINTR("fcntl(F_ADD_SEALS)") { cmp_seal_read_only(fd) }
    }

    /// Gives back the memory of `length` bytes at `offset` of a memory file; mappings of that range
    /// read zeros from then on.
    /// - Throws: ``SystemError`` from `fallocate`.
    func freeMemoryFileRange(_ fd: Int32, offset: Int, length: Int) throws(SystemError) {
        _ = try retryingEINTR("fallocate(PUNCH_HOLE)") { cmp_punch_hole(fd, Int64(offset), Int64(length)) }
    }

    /// A shared mapping of part of a memory file, unmapped when the last reference to it goes: a
    /// thread reading it holds it, so no other can unmap the memory under that thread.
    ///
    /// The file's descriptor may be closed once it is mapped; the mapping keeps its memory.
    final class SharedMapping: @unchecked Sendable {
        /// The first mapped byte.
        let base: UnsafeMutableRawPointer
        /// The mapped length in bytes.
        let count: Int
        /// Whether the mapping may be written.
        let writable: Bool

        /// Maps `count` bytes of `fd` from `offset` (a multiple of the page size).
        /// - Throws: ``SystemError`` from `mmap`.
        init(fd: Int32, offset: Int = 0, count: Int, writable: Bool) throws(SystemError) {
            precondition(count > 0, "SharedMapping of \(count) bytes")
            let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
            guard let address = mmap(nil, count, protection, MAP_SHARED, fd, off_t(offset)), address != MAP_FAILED
            else {
                let code = errno
                assertOwnDescriptors("mmap", code)
                throw SystemError(call: "mmap", errno: code)
            }
            self.base = address
            self.count = count
            self.writable = writable
        }

        deinit {
            bestEffort("munmap") { munmap(base, count) }
        }
    }

    /// Sleeps while the 32-bit word at `address` (memory other processes map too) holds
    /// `expected`, for at most `timeoutMilliseconds`: until a ``futexWake(_:)`` on it, a signal,
    /// or the timeout. Returns at once when the word holds something else already.
    /// Returns false when the timeout ran out (ETIMEDOUT); a wake-up, a word that had changed
    /// already (EAGAIN) and a signal (EINTR) all return true: the caller looks again.
    @discardableResult
    func futexWait(_ address: UnsafeRawPointer, expected: UInt32, timeoutMilliseconds: Int32) -> Bool {
        let result = cmp_futex_wait(address.assumingMemoryBound(to: UInt32.self), expected, timeoutMilliseconds)
        return result == 0 || errno != ETIMEDOUT
    }

    /// Wakes whoever sleeps in ``futexWait(_:expected:timeoutMilliseconds:)`` on `address`, in any
    /// process.
    func futexWake(_ address: UnsafeRawPointer) {
        bestEffort("futex(FUTEX_WAKE)") { cmp_futex_wake(address.assumingMemoryBound(to: UInt32.self)) }
    }

    /// The system's page size in bytes.
    let systemPageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add SharedMemory+<System>.swift")
#endif
