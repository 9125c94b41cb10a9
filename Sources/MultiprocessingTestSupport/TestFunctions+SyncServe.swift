// Pool functions of the synchronous serve path's tests (SyncServeTests): probes that report how
// many chunks their worker served on each path (WorkerTesting.servedChunks), one synchronous and
// one async, and a synchronous function with encoded arguments that fails on one value; and one
// that reports its worker's held doorbells (HeldResultsTests).

@_spi(Testing) public import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension TestFunctions {
    /// `[chunks served synchronously, chunks served through an async call, pid]` of the worker
    /// that runs it, this call included (a synchronous body: counted as synchronous).
    public static let servedChunks = PoolFunction("servedChunks") { () -> [Int] in
        let counts = WorkerTesting.servedChunks
        return [counts.synchronous, counts.asynchronous, Int(getpid())]
    }
    /// The same from an `async` body (this call counted as asynchronous).
    public static let asyncServedChunks = PoolFunction("asyncServedChunks") { () async -> [Int] in
        let counts = WorkerTesting.servedChunks
        return [counts.synchronous, counts.asynchronous, Int(getpid())]
    }
    /// `[chunks run in place, of them with results in place, pid]` of the worker that runs it
    /// (``WorkerTesting/servedInPlace``).
    public static let servedInPlace = PoolFunction("servedInPlace") { () -> [Int] in
        let counts = WorkerTesting.servedInPlace
        return [counts.items, counts.results, Int(getpid())]
    }
    /// `[results sent with a held doorbell, doorbells rung for them, pid]` of the worker that
    /// runs it (``WorkerTesting/heldDoorbells``).
    public static let heldDoorbells = PoolFunction("heldDoorbells") { () -> [Int] in
        let counts = WorkerTesting.heldDoorbells
        return [counts.results, counts.rung, Int(getpid())]
    }
    /// `"<s>!"`, or throws ``TestFailure`` (reason "bad", value: the string's length) for
    /// `"bad"`: a synchronous body whose arguments travel encoded.
    public static let exclaimOrFail = PoolFunction("exclaimOrFail") { (s: String) throws -> String in
        if s == "bad" { throw TestFailure(reason: "bad", value: s.count) }
        return s + "!"
    }

    /// The functions of this file, in ``all``.
    public static let syncServe: [any AnyPoolFunction] = [
        servedChunks, asyncServedChunks, servedInPlace, heldDoorbells, exclaimOrFail,
    ]
}
