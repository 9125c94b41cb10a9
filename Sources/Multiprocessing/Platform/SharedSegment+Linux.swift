// The Linux calls of shared read-only values (`Pool.share`) beyond those of
// SharedMemory+Linux.swift: what a memory file holds (fstat), reading a few bytes of it without
// mapping them (pread: a hole reads as zeros and stays a hole, where a read through a mapping
// would allocate a page to fill it), writing a value's bytes into it without mapping them
// (pwrite: see `writeFile`), which file a descriptor number names (a worker checks that
// its fd 6 is its parent's segment before it maps anything of it), and giving a mapped range's
// memory back to the system (MADV_REMOVE, through the parent's own mapping: it works after the
// segment's descriptor was closed).

#if os(Linux)
    import CMultiprocessing

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// A memory file's size and the bytes of memory its pages take now (`st_blocks` × 512).
    /// - Throws: ``SystemError`` from `fstat`.
    func memoryFileStatus(_ fd: Int32) throws(SystemError) -> (size: Int, allocatedBytes: Int) {
        var status = stat()
        _ = try retryingEINTR("fstat") { fstat(fd, &status) }
        return (Int(status.st_size), Int(status.st_blocks) * 512)
    }

    /// Reads `buffer.count` bytes of a file at `offset` (pread, looping over short reads).
    /// - Returns: the bytes read: fewer than asked at the end of the file.
    /// - Throws: ``SystemError`` from `pread`.
    func readFile(_ fd: Int32, at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int {
        var done = 0
        while done < buffer.count {
            let n = try retryingEINTR("pread") {
                pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Writes `bytes` into a file at `offset` (pwrite, looping over short writes).
    ///
    /// Into a memory file, this is the one copy of a shared value: the kernel allocates each page
    /// as the write reaches it and fills it from `bytes`, where a copy through a mapping first
    /// gets each page zeroed (one page fault each, or MADV_POPULATE_WRITE), then writes it again.
    /// 256 MiB on the 2-core VM, best and median of 5 alternating runs of `pool-workloads share`:
    /// 0.11 and 0.14 s written, 0.18 and 0.21 s populated and copied (in a C program on the
    /// machine under a heavier load: 0.99 and 1.51 s against 1.88 and 2.21 s). A fresh page of
    /// this VM costs its host a fault (its balloon reports freed pages to the host), so most of
    /// either is the system supplying pages, not the copy.
    /// - Throws: ``SystemError`` from `pwrite` (ENOMEM, ENOSPC, EFBIG: the file cannot take
    ///   the bytes; a write that stopped short and then failed reports the failure).
    func writeFile(_ fd: Int32, at offset: Int, from bytes: UnsafeRawBufferPointer) throws(SystemError) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = try retryingEINTR("pwrite") { pwrite(fd, base + done, bytes.count - done, off_t(offset + done)) }
            // A write of no bytes would repeat forever: never from a memory file, but say so.
            guard n > 0 else { throw SystemError(call: "pwrite", errno: EIO) }
            done += n
        }
    }

    /// What `/proc/self/fd/<fd>` points to (`/memfd:<name> (deleted)` for a memory file), or nil
    /// when `fd` is not open. Safe on any number: it never touches the descriptor itself.
    func descriptorTarget(_ fd: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: 512)
        let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return buffer.withUnsafeBufferPointer { raw in
            String(decoding: UnsafeRawBufferPointer(start: raw.baseAddress, count: n), as: UTF8.self)
        }
    }

    /// This process's pid and its parent's.
    func processIDs() -> (own: Int32, parent: Int32) { (getpid(), getppid()) }

    extension SharedMapping {
        /// Gives the memory of the mapped range back to the system (MADV_REMOVE: a hole in the
        /// memory file, for every process that maps it; they read zeros there from now on). The
        /// mapping must be writable.
        /// - Throws: ``SystemError`` from `madvise`.
        func discardContents() throws(SystemError) {
            precondition(writable, "MADV_REMOVE needs a writable mapping")
            _ = try retryingEINTR("madvise(MADV_REMOVE)") { madvise(base, count, MADV_REMOVE) }
        }
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add SharedSegment+<System>.swift")
#endif
