// A process's memory as Linux tells it: the resident set of this process (for
// `maxMemoryPerChild`, measured by the worker itself) and the kernel's limit on what a worker may
// allocate (`workerMemoryLimit`, RLIMIT_DATA, set by the parent on the new process).

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
    let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { closeDescriptor(fd) }
    var buffer = [UInt8](repeating: 0, count: 128)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard n > 0 else { return nil }
    // "size resident shared text lib data dt", in pages.
    let fields = buffer[0..<n].split(separator: UInt8(ascii: " "))
    guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return nil }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Limits what process `pid` may allocate to `bytes` (RLIMIT_DATA, soft and hard: the heap,
/// private writable mappings, thread stacks). Past it, allocations fail; the Swift runtime then
/// stops the process with "Fatal error: failed to allocate …". Inherited by what the process
/// starts.
/// - Throws: ``SystemError`` from `prlimit`.
func limitDataSegment(of pid: pid_t, to bytes: Int) throws {
    _ = try retryingEINTR("prlimit(RLIMIT_DATA)") { cmp_limit_data_segment(pid, UInt64(bytes)) }
}

/// Whether a dying worker's last words say an allocation failed: the Swift runtime's
/// "failed to allocate", the dynamic loader's words when it cannot map a library (a limit too low
/// for the program to start), and the C library's and C++'s usual words for it.
func reportsAllocationFailure(_ lastWords: String) -> Bool {
    let markers = [
        "failed to allocate", "cannot map zero-fill pages", "failed to map segment", "Cannot allocate memory",
        "std::bad_alloc", "out of memory",
    ]
    return markers.contains { lastWords.contains($0) }
}
