// `Pool.StartMethod`: how workers of this program start (Python's start methods).

extension Pool {
    /// How a pool starts the workers that run this program (Python's `set_start_method`).
    ///
    /// Chosen once per process, in ``Pool/bootstrap(serving:errorTypes:startMethod:)``; the
    /// environment variable `MULTIPROCESSING_START_METHOD` (`spawn` or `forkserver`) overrides it.
    public enum StartMethod: Sendable, Hashable {
        /// Every worker executes the program again (`posix_spawn`), which then reaches
        /// `Pool.bootstrap` and serves. The default.
        case spawn
        /// `Pool.bootstrap` forks the program once, while it is still single-threaded, into a
        /// fork server; each worker is then a copy of that server, in the state a spawned worker
        /// is in when it reaches `Pool.bootstrap`, started in a fraction of a millisecond instead
        /// of the program's whole start. Pools with their own `executable` or `arguments` spawn;
        /// where the process already runs other threads at bootstrap, or the server is gone,
        /// pools spawn too.
        case forkServer
    }
}
