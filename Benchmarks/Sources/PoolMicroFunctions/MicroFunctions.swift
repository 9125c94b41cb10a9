// The pool functions that the PoolMicro micro-benchmarks run in their workers. They live in a
// module of their own because two programs must declare them the same way: the benchmark (which
// sends tasks) and bench-worker (which serves them). Their bodies do next to nothing, so that what
// a benchmark measures is the pool's own cost per task: encoding, pipes, scheduling, decoding.

import Multiprocessing

/// The functions that the micro-benchmarks' workers serve.
public enum MicroFunctions {
    /// Adds two numbers. Its arguments and result are plain numbers, so chunks of it travel packed
    /// as raw bytes (the path `starmap` over pairs of `Int` takes).
    public static let add = PoolFunction("add") { (a: Int, b: Int) in a + b }

    /// Adds two numbers with an `async` body: a lone call of it travels encoded (the generic
    /// coder on both sides), beside `add`'s packed one.
    public static let addAsync = PoolFunction("addAsync") { (a: Int, b: Int) async in a + b }

    /// Squares a number: one plain argument, one plain result (the path `imap` of tiny items takes).
    public static let square = PoolFunction("square") { (x: Int) in x &* x }

    /// Returns its bytes unchanged: what is measured is moving them to a worker and back.
    public static let echo = PoolFunction("echo") { (bytes: [UInt8]) in bytes }

    /// The sum of a shared array (`Pool.share`), read in place: what is measured is the handle's
    /// way to the worker and its lookup there, beside the sum itself.
    public static let sharedSum = PoolFunction("sharedSum") { (table: SharedArray<Int64>) -> Int64 in
        table.withUnsafeBufferPointer { $0.reduce(0, &+) }
    }

    /// Spins for `us` microseconds (no sleep, whose wake-up would blur the time); returns `us`.
    public static let spin = PoolFunction("spin") { (us: Int) -> Int in
        let end = ContinuousClock.now + .microseconds(us)
        while ContinuousClock.now < end {}
        return us
    }

    /// Every function above: what `bench-worker` passes to `Pool.bootstrap(serving:)`.
    public static let all: [any AnyPoolFunction] = [add, addAsync, square, echo, sharedSum, spin]
}
