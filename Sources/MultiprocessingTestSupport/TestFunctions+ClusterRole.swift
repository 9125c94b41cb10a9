// A task of a given number of microseconds, for the cluster's MPI-role checks: a lone call whose
// result comes back around the moment its caller stops waiting for it (100 µs) and hands the MPI
// role back (see ClusterChecks+Role.swift).

public import Multiprocessing

extension TestFunctions {
    /// Spins for `us` microseconds (no sleep: a sleep's wake-up would blur the time); returns `us`.
    public static let spinMicroseconds = PoolFunction("spinMicroseconds") { (us: Int) -> Int in
        let end = ContinuousClock.now + .microseconds(us)
        while ContinuousClock.now < end {}
        return us
    }

    /// The cluster's MPI-role functions.
    public static let clusterRole: [any AnyPoolFunction] = [spinMicroseconds]
}
