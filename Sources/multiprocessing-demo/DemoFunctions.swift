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
        /// The node agent's rank and node, for a worker of a cluster pool (its agent sets
        /// `MULTIPROCESSING_CLUSTER_RANK` and `MULTIPROCESSING_CLUSTER_NODE`); nil on this machine.
        var node: String? = clusterNode()
    }

    static func clusterNode() -> String? {
        guard let rank = getenv("MULTIPROCESSING_CLUSTER_RANK"), let node = getenv("MULTIPROCESSING_CLUSTER_NODE")
        else {
            return nil
        }
        return "rank \(String(cString: rank)) on \(String(cString: node))"
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
