// A process's memory as Linux tells it: the resident set of this process (for
// `maxMemoryPerChild`, measured by the worker itself) and the kernel's limit on what a worker may
// allocate (`workerMemoryLimit`, RLIMIT_DATA, which the worker sets on itself).

#if os(Linux)
    import CMultiprocessing

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// This process's resident set size in bytes (`/proc/self/statm`), or nil if it cannot be read.
    ///
    /// One `open`/`read`/`close` (a few microseconds): the worker calls it after each chunk only when
    /// the pool has a `maxMemoryPerChild`.
    func residentMemoryBytes() -> Int? {
        guard let text = readSmallFile("/proc/self/statm", capacity: 128) else { return nil }
        // "size resident shared text lib data dt", in pages.
        let fields = text.split(separator: UInt8(ascii: " "))
        guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// The bytes that count toward RLIMIT_DATA in this process now (`VmData` of
    /// `/proc/self/status`: heap, private writable mappings, thread stacks), or nil.
    func dataSegmentBytes() -> Int? {
        guard let text = readSmallFile("/proc/self/status", capacity: 4096) else { return nil }
        for line in text.split(separator: UInt8(ascii: "\n")) where line.starts(with: Array("VmData:".utf8)) {
            let digits = line.filter { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            return Int(String(decoding: digits, as: UTF8.self)).map { $0 * 1024 }
        }
        return nil
    }

    /// The first `capacity` bytes of a small file such as one of /proc's (one `read`), or nil.
    func readSmallFile(_ path: String, capacity: Int) -> ArraySlice<UInt8>? {
        guard let raw = try? retryingEINTR("open(\(path))", { open(path, O_RDONLY | O_CLOEXEC) }) else { return nil }
        let file = OwnedDescriptor(taking: raw)
        var buffer = [UInt8](repeating: 0, count: capacity)
        let n = buffer.withUnsafeMutableBytes { raw in
            (try? retryingEINTR("read(\(path))") { read(file.rawValue, raw.baseAddress, raw.count) }) ?? 0
        }
        file.close()
        return n > 0 ? buffer[0..<n] : nil
    }

    /// Limits what this process may allocate to `bytes` (RLIMIT_DATA, soft and hard: the heap,
    /// private writable mappings, thread stacks). Past it, allocations fail; the Swift runtime then
    /// stops the process with "Fatal error: failed to allocate …". Inherited by what the process
    /// starts.
    /// - Throws: ``SystemError`` from `setrlimit`.
    func limitDataSegment(to bytes: Int) throws {
        _ = try retryingEINTR("setrlimit(RLIMIT_DATA)") { cmp_limit_data_segment(0, UInt64(bytes)) }
    }

    /// Whether a dying worker's last words say an allocation failed: the Swift runtime's
    /// "failed to allocate", and the C library's and C++'s usual words for it.
    func reportsAllocationFailure(_ lastWords: String) -> Bool {
        let markers = ["failed to allocate", "Cannot allocate memory", "std::bad_alloc", "out of memory"]
        return markers.contains { lastWords.contains($0) }
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add Memory+<System>.swift")
#endif
