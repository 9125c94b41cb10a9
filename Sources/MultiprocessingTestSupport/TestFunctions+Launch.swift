// What a worker finds in its environment, for the cluster's launch checks: a node agent's workers
// must carry none of the variables by which a launcher's rank is known (Open MPI's, PMIx's,
// PMI's; Slurm's SLURM_NODELIST, by which Open MPI takes a process for a task of srun), and keep
// the job's other variables (see ClusterChecks+Environment.swift).

public import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension TestFunctions {
    /// The worker's environment variables (`NAME=value`) whose names start with one of `prefixes`.
    public static let environmentMatching = PoolFunction("environmentMatching") { (prefixes: [String]) -> [String] in
        var found: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            let bytes = UnsafeRawBufferPointer(start: pointer, count: strlen(pointer))
            let variable = String(decoding: bytes, as: UTF8.self)
            if prefixes.contains(where: { variable.hasPrefix($0) }) { found.append(variable) }
            entry += 1
        }
        return found.sorted()
    }

    /// The cluster's launch functions.
    public static let launch: [any AnyPoolFunction] = [environmentMatching]
}
