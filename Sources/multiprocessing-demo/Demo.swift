// multiprocessing-demo: a real CPU-bound job run serially and on a pool of worker processes,
// with a live progress bar, the speedup and per-worker task counts; and a second mode that
// crashes workers on purpose and shows the pool healing.
//
//     swift run -c release multiprocessing-demo [--processes N] [--size N] [--chunksize N]
//     swift run -c release multiprocessing-demo faults
//     mpiexec -n 3 .build-mpi/release/multiprocessing-demo --cluster   (built with --traits MPI)

import ArgumentParser
import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@main
struct Main {
    static func main() {
        // Workers re-execute this program: in them, this line serves tasks and never returns.
        Pool.bootstrap(serving: [DemoFunctions.countPrimes, DemoFunctions.crashOrCount])
        Demo.main()
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "multiprocessing-demo",
        abstract: "Counts primes serially and on a pool of worker processes, and shows the pool healing.",
        subcommands: [Speedup.self, Faults.self],
        defaultSubcommand: Speedup.self)
}

/// The shared options.
struct PoolOptions: ParsableArguments {
    @Option(help: "Worker processes (default: the CPUs available).")
    var processes: Int?

    @Option(help: "How many ranges of 10,000 numbers to search for primes (the default takes a few seconds).")
    var size: Int = 640

    @Option(help: "Ranges per task (default: 1, so the bar moves range by range).")
    var chunksize: Int = 1

    @Flag(help: "Run the workers on the ranks of the MPI job this program is (mpiexec; needs the MPI trait).")
    var cluster = false

    func validate() throws {
        guard size >= 1 else { throw ValidationError("--size must be at least 1") }
        guard chunksize >= 1 else { throw ValidationError("--chunksize must be at least 1") }
        if let processes, processes < 1 { throw ValidationError("--processes must be at least 1") }
        #if !MPI
            if cluster {
                throw ValidationError("--cluster needs a build with the MPI trait: swift build --traits MPI")
            }
        #endif
    }

    /// The pool these options ask for.
    func makePool() throws -> Pool {
        var configuration = Pool.Configuration(processes: processes)
        #if MPI
            if cluster { configuration.cluster = .mpi }
        #endif
        return try Pool(configuration)
    }

    /// The job: ranges of 10,000 numbers from 1,000,000 up.
    var ranges: [(Int, Int)] {
        (0..<size).map { i in (1_000_000 + i * 10_000, 1_010_000 + i * 10_000) }
    }
}

struct Speedup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Counts primes serially, then on the pool, and prints the speedup (the default).")

    @OptionGroup var options: PoolOptions

    func run() throws {
        let ranges = options.ranges
        let clock = ContinuousClock()
        print("Counting primes in \(ranges.count) ranges of 10,000 numbers from 1,000,000 up.")

        var serial: [Int] = []
        let bar = ProgressBar(label: "serial", total: ranges.count)
        let serialTime = clock.measure {
            for (i, range) in ranges.enumerated() {
                serial.append(primeCount(range.0, range.1))
                bar.update(completed: i + 1)
            }
        }
        bar.finish(elapsed: serialTime)

        let pool = try options.makePool()
        defer {
            pool.close()
            try? pool.join()
        }
        let poolBar = ProgressBar(label: "pool ×\(pool.processes)", total: ranges.count)
        var results: [DemoFunctions.Count] = []
        let poolTime = try clock.measure {
            let stream = try pool.imap(
                DemoFunctions.countPrimes, ranges.map { Span(lo: $0.0, hi: $0.1) }, chunksize: options.chunksize)
            while let result = try stream.next() {
                results.append(result)
                poolBar.update(completed: results.count)
            }
        }
        poolBar.finish(elapsed: poolTime)

        guard results.map(\.primes) == serial else {
            throw ValidationError("the pool's results differ from the serial ones")
        }
        print("Both found \(serial.reduce(0, +)) primes. Speedup: \(format(serialTime / poolTime))×")
        print("Tasks per worker process:")
        let perWorker = Dictionary(grouping: results, by: \.workerPID).mapValues(\.count)
        for (pid, count) in perWorker.sorted(by: { $0.key < $1.key }) {
            print("  pid \(pid): \(count) ranges")
        }
        if results.contains(where: { $0.node != nil }) {
            print("Tasks per node agent:")
            let perNode = Dictionary(grouping: results, by: { $0.node ?? "this machine" }).mapValues(\.count)
            for (node, count) in perNode.sorted(by: { $0.key < $1.key }) {
                print("  \(node): \(count) ranges")
            }
        }
    }
}

struct Faults: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Runs tasks of which some crash their worker, and shows the pool healing.")

    @OptionGroup var options: PoolOptions

    func run() throws {
        // Crashing workers print the runtime's one-line "Fatal error" to stderr; skip the full
        // backtrace (SWIFT_BACKTRACE is read by each worker at start) to keep the demo readable.
        setenv("SWIFT_BACKTRACE", "enable=no", 0)
        let pool = try options.makePool()
        defer {
            pool.close()
            try? pool.join()
        }
        let ranges = Array(options.ranges.prefix(24))
        print("Workers before: \(pool.workerPIDs.sorted())")
        print("Running \(ranges.count) tasks; every 8th one traps (an index out of range) and kills its worker.\n")
        let results = try ranges.enumerated().map { i, range in
            try pool.applyAsync(DemoFunctions.crashOrCount, Span(lo: range.0, hi: range.1), i % 8 == 7)
        }
        var lost = 0
        for (i, result) in results.enumerated() {
            do {
                let count = try result.get()
                print("task \(i): \(count.primes) primes (worker \(count.workerPID))")
            } catch let error as PoolError where error.code == .workerLost {
                lost += 1
                print("task \(i): \(error.code): worker \(error.workerPID ?? 0) died; its last words:")
                let words = error.message.split(separator: "\n").dropFirst()
                for line in words.prefix(2) { print("    \(line)") }
            }
        }
        print("\n\(results.count - lost) tasks succeeded, \(lost) failed with their worker; nothing hung.")
        // Replacements start in the background; give the last one a moment.
        let deadline = ContinuousClock.now + .seconds(2)
        while pool.workerPIDs.count < pool.processes && ContinuousClock.now < deadline { usleep(10_000) }
        print("Workers after:  \(pool.workerPIDs.sorted()) (the crashed ones were replaced)")
        let check = try pool.map(DemoFunctions.countPrimes, [Span(lo: 2, hi: 100)])
        print("The healed pool still works: \(check[0].primes) primes below 100.")
    }
}

/// Formats a ratio with two decimals.
func format(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}
