// What a process may use of the machine, as Linux tells it: the CPUs it may run on (the default
// number of workers), the one a thread runs on now, and how glibc's malloc keeps freed memory
// (for workers).

#if os(Linux)
    import CMultiprocessing

    /// The number of CPUs this process may run on (its affinity mask), at least 1.
    func availableCPUCount() -> Int {
        Int(cmp_available_cpus())
    }

    /// The CPU the calling thread runs on now (it may move at any time), or -1 when unknown.
    func currentCPU() -> Int32 {
        cmp_current_cpu()
    }

    /// Makes malloc keep freed memory for reuse (see `cmp_keep_freed_memory`): a worker
    /// allocates and frees payload buffers of the same sizes chunk after chunk.
    func keepFreedMemoryForReuse() {
        cmp_keep_freed_memory()
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add ProcessResources+<System>.swift")
#endif
