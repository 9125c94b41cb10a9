// Pool functions for the memory protections (`maxMemoryPerChild`, `workerMemoryLimit`) and the
// start deadline (`startTimeout`): a leak, a runaway allocation, a slow initializer.

public import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What `leakMiB` keeps: a leak that lives as long as the worker.
nonisolated(unsafe) private var leaked: [[UInt8]] = []

extension TestFunctions {
    /// Keeps `mib` MiB of touched memory for the worker's life (a leak); returns the worker's pid.
    public static let leakMiB = PoolFunction("leakMiB") { (mib: Int) -> Int32 in
        leaked.append([UInt8](repeating: 1, count: mib << 20))
        return getpid()
    }
    /// Allocates and touches `mib` MiB, then frees it; returns how many bytes it touched.
    public static let allocateMiB = PoolFunction("allocateMiB") { (mib: Int) -> Int in
        let block = [UInt8](repeating: 1, count: mib << 20)
        return block.reduce(0) { $0 &+ Int($1) }
    }
    /// An initializer that takes `ms` milliseconds (blocking its thread).
    public static let slowSetUp = PoolFunction("slowSetUp") { (ms: Int) -> Void in
        usleep(UInt32(ms) * 1000)
    }

    /// The functions of this file, served by the test worker.
    public static let memory: [any AnyPoolFunction] = [leakMiB, allocateMiB, slowSetUp]
}
