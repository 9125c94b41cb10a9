// Pool functions that say which worker ran them, for the tests of chunk sizes (a chunk is one
// task, so with `maxTasksPerChild` the number of distinct workers tells how many chunks ran); and
// one that blocks or fails by its argument (HeldResultsTests).

public import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension TestFunctions {
    /// `[x, pid of the worker]`, at once.
    public static let taggedPID = PoolFunction("taggedPID") { (x: Int) -> [Int] in [x, Int(getpid())] }

    /// `[x, pid of the worker]`, after blocking the worker for 5 ms.
    public static let slowTaggedPID = PoolFunction("slowTaggedPID") { (x: Int) -> [Int] in
        usleep(5_000)
        return [x, Int(getpid())]
    }

    /// `[x, pid of the worker]`; throws for 5.
    public static let taggedPIDFailingOnFive = PoolFunction("taggedPIDFailingOnFive") { (x: Int) throws -> [Int] in
        if x == 5 { throw TestFailure(reason: "five", value: x) }
        return [x, Int(getpid())]
    }

    /// Blocks the worker for `ms` milliseconds and returns `ms`; throws ``TestFailure`` (reason
    /// "negative") for a negative `ms`: a map's failing chunk next to a long one.
    public static let blockMsOrFail = PoolFunction("blockMsOrFail") { (ms: Int) throws -> Int in
        if ms < 0 { throw TestFailure(reason: "negative", value: ms) }
        usleep(UInt32(ms) * 1000)
        return ms
    }

    /// The functions of this file, served by the test worker.
    public static let chunks: [any AnyPoolFunction] = [
        taggedPID, slowTaggedPID, taggedPIDFailingOnFive, blockMsOrFail,
    ]
}
