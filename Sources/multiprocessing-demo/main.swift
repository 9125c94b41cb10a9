// multiprocessing-demo: a real CPU-bound job (counting primes over 64 ranges), run serially and
// on a pool of worker processes, with the speedup.
//
//     swift run -c release multiprocessing-demo [processes]

import Multiprocessing

/// Counts the primes in `lo..<hi` by trial division: deliberately CPU-bound.
func countPrimes(_ lo: Int, _ hi: Int) -> Int {
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

/// The same function, declared for the pool's workers.
let primesInRange = PoolFunction("primesInRange") { (lo: Int, hi: Int) -> Int in countPrimes(lo, hi) }

// Workers re-execute this program: in them, this line serves tasks and never returns.
Pool.bootstrap(serving: [primesInRange])

let processes = CommandLine.arguments.dropFirst().first.flatMap { Int($0) }
let ranges = (0..<64).map { i in (2_000_000 + i * 20_000, 2_020_000 + i * 20_000) }
let clock = ContinuousClock()

print("Counting primes in \(ranges.count) ranges of 20,000 numbers, from 2,000,000 up.")
var serial: [Int] = []
let serialTime = clock.measure { serial = ranges.map { countPrimes($0.0, $0.1) } }
print("serially:            \(serialTime)")

let pool = try Pool(processes: processes)
var parallel: [Int] = []
let poolTime = try clock.measure { parallel = try pool.starmap(primesInRange, ranges, chunksize: 1) }
print("on \(pool.processes) worker processes: \(poolTime)")
pool.close()
try pool.join()

guard parallel == serial else { fatalError("the pool's results differ from the serial ones") }
let hundredths = Int((serialTime / poolTime * 100).rounded())
let fraction = hundredths % 100 < 10 ? "0\(hundredths % 100)" : "\(hundredths % 100)"
print("same \(serial.reduce(0, +)) primes; speedup \(hundredths / 100).\(fraction)×")
