// Pool functions of the fork server's tests (ForkServerTests): what tells a forked worker from a
// spawned one.

public import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension TestFunctions {
    /// A mark of the program image this process runs: the first 8 of the 16 random bytes the
    /// kernel gives each `execve` (`AT_RANDOM`, in the process's own memory). A forked worker
    /// holds a copy of its parent's memory, so the same mark; a spawned one ran an exec of its
    /// own, so another (equal by chance once in 2⁶⁴). Unlike an address, it does not depend on
    /// address space randomization being on.
    public static func execMark() -> Int {
        // getauxval(3) is not in the Glibc module (sys/auxv.h): looked up in the C library.
        typealias GetAuxiliaryValue = @convention(c) (UInt) -> UInt
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "getauxval") else { return 0 }
        let getauxval = unsafeBitCast(symbol, to: GetAuxiliaryValue.self)
        let atRandom: UInt = 25  // AT_RANDOM, <elf.h>
        guard let bytes = UnsafeRawPointer(bitPattern: getauxval(atRandom)) else { return 0 }
        return Int(bitPattern: UInt(bytes.loadUnaligned(as: UInt64.self)))
    }

    /// The worker's pid, its parent's pid, and its ``execMark()`` (the argument is unused).
    public static let forkProbe = PoolFunction("forkProbe") { (_: Int) -> [Int] in
        [Int(getpid()), Int(getppid()), execMark()]
    }

    public static let forkServer: [any AnyPoolFunction] = [forkProbe]
}
