// Large arrays the pool fills: asking the kernel for huge pages where they fit, so that filling
// them takes one page fault per 2 MiB instead of one per 4 KiB.

#if os(Linux)
    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// Asks for transparent huge pages (MADV_HUGEPAGE) over the 2 MiB-aligned part of `bytes`,
    /// before they are first touched. Best effort.
    func adviseHugePages(_ bytes: UnsafeMutableRawBufferPointer) {
        let huge = 2 << 20
        guard let base = bytes.baseAddress, bytes.count >= huge else { return }
        let start = (Int(bitPattern: base) + huge - 1) & ~(huge - 1)
        let end = (Int(bitPattern: base) + bytes.count) & ~(huge - 1)
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_HUGEPAGE)
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only")
#endif
