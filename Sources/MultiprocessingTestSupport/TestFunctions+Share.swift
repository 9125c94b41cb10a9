// Pool functions that read shared read-only arrays (`Pool.share`) in place, for the tests of
// SharedArrayTests.swift: sums of slices, a slow sum (a value in use), a worker that traps in the
// middle of a read, and a handle sent back to the parent.

public import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension TestFunctions {
    /// The sum of `table[start..<end]`, read in place.
    public static let sharedSliceSum = PoolFunction("sharedSliceSum") {
        (table: SharedArray<Int64>, start: Int, end: Int) -> Int64 in
        table.withUnsafeBufferPointer { $0[start..<end].reduce(0, &+) }
    }

    /// `[sum of table, pid]`, after blocking the worker for `milliseconds`.
    public static let sharedSlowSum = PoolFunction("sharedSlowSum") {
        (table: SharedArray<Int64>, milliseconds: Int) -> [Int64] in
        usleep(UInt32(milliseconds) * 1000)
        return [table.reduce(0, &+), Int64(getpid())]
    }

    /// Reads the first half of `table` through the subscript, then traps.
    public static let sharedTrapMidRead = PoolFunction("sharedTrapMidRead") { (table: SharedArray<Int64>) -> Int64 in
        var sum: Int64 = 0
        for index in 0..<table.count / 2 { sum &+= table[index] }
        if sum != .min { fatalError("trapped in the middle of reading a shared array (sum so far \(sum))") }
        return sum
    }

    /// The handle it was given, back to the parent.
    public static let sharedEcho = PoolFunction("sharedEcho") { (table: SharedArray<Int64>) -> SharedArray<Int64> in
        table
    }

    /// The functions of this file, served by the test worker.
    public static let share: [any AnyPoolFunction] = [sharedSliceSum, sharedSlowSum, sharedTrapMidRead, sharedEcho]
}
