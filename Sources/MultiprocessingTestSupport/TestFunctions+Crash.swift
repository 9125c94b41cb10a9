// Pool functions that crash their worker in the user's own code, for the tests of where a crash
// happened (`PoolError.crashFrames`): the tests look for this file's name and the lines below
// in the error. The test worker serves them: they are listed in `all`.

public import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension TestFunctions {
    /// Force-unwraps nil when `x` is negative (a trap in the closure itself), else returns x.
    public static let crashForceUnwrap = PoolFunction("crashForceUnwrap") { (x: Int) -> Int in
        let value: Int? = x < 0 ? nil : x
        return value!  // crashForceUnwrap traps here
    }

    /// Indexes past the end of an array two calls deep (in `crashHelperOuter` →
    /// `crashHelperInner`) when `x` is negative, else returns x.
    public static let crashInHelper = PoolFunction("crashInHelper") { (x: Int) -> Int in
        crashHelperOuter(x)
    }

    /// Starts `threads` threads that wait forever, then crashes on its own thread (in
    /// `crashOnThisThread`), which the crash report lists before them: with a few hundred threads
    /// the report is longer than the 64 KiB the pool keeps of a worker's stderr's end.
    public static let crashWithThreads = PoolFunction("crashWithThreads") { (threads: Int) -> Int in
        for _ in 0..<threads {
            var thread: pthread_t = 0
            pthread_create(&thread, nil, { _ in waitForever() }, nil)
        }
        return crashOnThisThread()
    }

    /// This file's path: the tests find the lines marked "traps here" / "calls here" in it.
    public static let crashSourcePath = #filePath

    /// The functions of this file.
    public static let crash: [any AnyPoolFunction] = [crashForceUnwrap, crashInHelper, crashWithThreads]
}

@inline(never)
func crashHelperInner(_ x: Int) -> Int {
    let values = [1, 2, 3]
    guard x < 0 else { return x }
    return values[values.count - x]  // crashHelperInner traps here
}

@inline(never)
func crashHelperOuter(_ x: Int) -> Int {
    let result = crashHelperInner(x)  // crashHelperOuter calls here
    return result
}

@inline(never)
func waitForever() -> UnsafeMutableRawPointer? {
    while true { pause() }
}

@inline(never)
func crashOnThisThread() -> Int {
    let values: [Int] = []
    return values[0]  // crashOnThisThread traps here
}
