// What a process may use of the machine, as Linux tells it: the CPUs it may run on (the default
// number of workers), the one a thread runs on now (and a move to another), how many threads of
// the machine are runnable, and how glibc's malloc keeps freed memory (for workers).

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

    /// Moves the calling thread off the CPU it runs on, to another its affinity mask allows (the
    /// mask stays as it was); false when there is none.
    func moveOffCurrentCPU() -> Bool {
        cmp_move_off_cpu(cmp_current_cpu()) != 0
    }

    /// Moves the calling thread to CPU `cpu` if its affinity mask allows it (the mask stays as it
    /// was); false when it could not.
    func moveToCPU(_ cpu: Int32) -> Bool {
        cmp_move_to_cpu(cpu) != 0
    }

    /// How many threads of the whole machine are runnable now, this one included (the fourth
    /// field of `/proc/loadavg`, "runnable/all"), or nil where it cannot tell.
    func runnableThreadCount() -> Int? {
        guard let text = readSmallFile("/proc/loadavg", capacity: 128) else { return nil }
        let fields = text.split(separator: UInt8(ascii: " "))
        guard fields.count > 3, let slash = fields[3].firstIndex(of: UInt8(ascii: "/")) else { return nil }
        return Int(String(decoding: fields[3][..<slash], as: UTF8.self))
    }

    /// Makes malloc keep freed memory for reuse (see `cmp_keep_freed_memory`): a worker
    /// allocates and frees payload buffers of the same sizes chunk after chunk.
    func keepFreedMemoryForReuse() {
        cmp_keep_freed_memory()
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add ProcessResources+<System>.swift")
#endif
