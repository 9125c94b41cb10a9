import Multiprocessing

func primes(_ lo: Int, _ hi: Int) -> Int {
    var n = 0
    for k in max(lo, 2)..<hi {
        var d = 2
        var prime = true
        while d * d <= k {
            if k % d == 0 {
                prime = false
                break
            }
            d += 1
        }
        if prime { n += 1 }
    }
    return n
}
let countPrimes = PoolFunction("countPrimes") { (lo: Int, hi: Int) -> Int in primes(lo, hi) }

Pool.bootstrap(serving: [countPrimes])
let ranges = (0..<32).map { (200_000 + $0 * 10_000, 210_000 + $0 * 10_000) }
let clock = ContinuousClock()
var serial: [Int] = []
let serialTime = clock.measure { serial = ranges.map { primes($0.0, $0.1) } }
let pool = try Pool()
var parallel: [Int] = []
let poolTime = try clock.measure { parallel = try pool.starmap(countPrimes, ranges, chunksize: 1) }
precondition(serial == parallel)
print("serial \(serialTime), pool(\(pool.processes)) \(poolTime)")
pool.close()
try pool.join()
