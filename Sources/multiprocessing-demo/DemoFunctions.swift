// The work the demo runs: counting primes by trial division, deliberately CPU-bound.

import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A range of numbers `lo..<hi`.
struct Span: Codable, Sendable {
    var lo: Int
    var hi: Int
}

/// Counts the primes in `lo..<hi`.
func primeCount(_ lo: Int, _ hi: Int) -> Int {
    var count = 0
    for k in max(lo, 2)..<max(hi, 2) {
        var d = 2
        var prime = true
        while d * d <= k {
            if k % d == 0 {
                prime = false
                break
            }
            d += 1
        }
        if prime { count += 1 }
    }
    return count
}

enum DemoFunctions {
    /// A result and the worker that computed it.
    struct Count: Codable, Sendable {
        var primes: Int
        var workerPID: Int32
    }

    /// Counts the primes in a span, in a worker.
    static let countPrimes = PoolFunction("countPrimes") { (span: Span) in
        Count(primes: primeCount(span.lo, span.hi), workerPID: getpid())
    }

    /// Like `countPrimes`, but traps first when `crash` is true: the worker dies.
    static let crashOrCount = PoolFunction("crashOrCount") { (span: Span, crash: Bool) -> Count in
        if crash {
            let empty: [Int] = []
            _ = empty[span.lo]
        }
        return Count(primes: primeCount(span.lo, span.hi), workerPID: getpid())
    }
}
