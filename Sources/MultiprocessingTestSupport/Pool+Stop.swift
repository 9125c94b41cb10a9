// Cleanup for the programs that test the pool (the test suite, the cluster checks): end a pool
// and wait for its workers, whatever state it is in.

public import Multiprocessing

extension Pool {
    /// Terminates the pool and waits for its workers to be gone (a join error is ignored: this is
    /// cleanup).
    public func stop() {
        terminate()
        try? join()
    }
}
