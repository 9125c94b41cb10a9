// Pool functions of the fork server's tests (ForkServerTests): what tells a forked worker from a
// spawned one.

public import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension TestFunctions {
    /// Where `getpid` is mapped in this process: a forked worker has its parent's address space
    /// (the same address), a spawned one a layout of its own (address space randomization).
    public static func getpidAddress() -> Int {
        Int(bitPattern: dlsym(UnsafeMutableRawPointer(bitPattern: 0), "getpid"))
    }

    /// The worker's pid, its parent's pid, and where `getpid` is mapped in it (the argument is unused).
    public static let forkProbe = PoolFunction("forkProbe") { (_: Int) -> [Int] in
        [Int(getpid()), Int(getppid()), getpidAddress()]
    }

    public static let forkServer: [any AnyPoolFunction] = [forkProbe]
}
