// The work the server offloads to its pool: counting primes (CPU-bound, long enough to matter)
// and a task that traps, to show that a crash costs one worker, not the server.

import Multiprocessing

/// The number of primes below `limit`, by trial division: deliberately plain CPU work, the same
/// code whether it runs in a worker (`/primes`) or in the request handler (`/primes/inline`).
func countPrimes(below limit: Int) -> Int {
    guard limit > 2 else { return 0 }
    var count = 1  // 2
    var candidate = 3
    while candidate < limit {
        var divisor = 3
        var isPrime = true
        while divisor * divisor <= candidate {
            if candidate % divisor == 0 {
                isPrime = false
                break
            }
            divisor += 2
        }
        if isPrime { count += 1 }
        candidate += 2
    }
    return count
}

/// `countPrimes(below:)` in a worker process.
let countPrimesInWorker = PoolFunction("countPrimes") { (limit: Int) -> Int in countPrimes(below: limit) }

/// Traps its worker (a `fatalError`, as an index out of range or a force-unwrapped nil would):
/// the pool fails this one call with `PoolError.workerLost` and starts a replacement worker.
let crashWorker = PoolFunction("crashWorker") { (reason: String) -> Int in
    fatalError("crash requested: \(reason)")
}

/// Everything the server's workers serve.
let poolFunctions: [any AnyPoolFunction] = [countPrimesInWorker, crashWorker]
