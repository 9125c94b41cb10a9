// PoolMicro: package-benchmark micro-benchmarks of what one task costs in swift-multiprocessing.
//
// - "Wire …": the wire coder that carries arguments and results between processes, on its own (no
//   process involved): encode and decode of an Int, of a small Codable struct (an Int, a String
//   and 8 Doubles), of 1000 Ints and of 64 KiB of bytes; pack and unpack of 1000 (Int, Int)
//   pairs, as chunks of plain numbers travel; "Ring transfer …": a message through the data
//   plane's shared-memory ring and back out, in one thread; "Ring first 1 MiB task …": a fresh
//   pool's first large task into its worker's task ring, its pages made present by the worker
//   beforehand or not. Scaled benchmarks (`K` in the output) run 1000 operations per iteration
//   and report per operation.
// - "Pool apply round trip": one `pool.apply(add, 1, 2)` per iteration on a warm one-worker pool:
//   encode, copy into the worker's task ring, run, read the result from its result ring, decode
//   (its read and write syscall counts show that both sides, awake, make none).
// - "Pool starmap …" and "Pool map echo …": chunk throughput on a warm one-worker pool, one call
//   per iteration; the custom metrics report items per second and mebibytes per second.
// - "Pool imap square …": a stream read item by item with `next()` on a warm one-worker pool, one
//   stream per iteration: the consumer's per-item path (the stream's cursor and its lock) and the
//   pool's per-chunk path; the custom metric reports items per second. "… for try await": the
//   same stream read by its async iterator, which takes a chunk's waiting values at once.
// - "Pool apply sum of a shared 1 MiB [Int64]": one `pool.apply(sharedSum, table)` per iteration,
//   `table` a `Pool.share`d array the worker mapped in the warm-up: the handle's way through the
//   pool and its lookup in the worker, and the sum of 1 MiB read in place. "Pool share 16 MiB
//   [Int64]": one `pool.share` per iteration, its handle dropped at once (the value freed): the
//   copy into the pool's memory file (written through the file, one copy), in mebibytes per
//   second.
//
// Run from Benchmarks/: `swift package --disable-sandbox benchmark --target PoolMicro`. The pools
// start bench-worker (built with this target, found beside its executable) as their workers.

import Benchmark
import Foundation
@_spi(Benchmarks) import Multiprocessing
import PoolMicroFunctions
import Synchronization

/// The benchmarks of this target: package-benchmark's generated `main` calls this closure to
/// register them.
let benchmarks: @Sendable () -> Void = {
    registerWireBenchmarks()
    registerPoolBenchmarks()
}

// MARK: - Wire coder

/// A small value of the kind a pool function takes: a number, a name and a few measurements.
struct Sample: Codable {
    /// A number.
    var id: Int
    /// A short name.
    var name: String
    /// Eight measurements.
    var values: [Double]
}

/// The configuration of the wire coder benchmarks: `scalingFactor` operations per iteration.
/// - Parameter scalingFactor: `.kilo` for values that take nanoseconds, `.one` for larger ones.
/// - Returns: A configuration measuring time, throughput and allocations, for at most a second.
func wireConfiguration(_ scalingFactor: BenchmarkScalingFactor) -> Benchmark.Configuration {
    .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 10, scalingFactor: scalingFactor, maxDuration: .seconds(1), maxIterations: 10_000)
}

/// Registers "Wire encode `name`" and "Wire decode `name`": `value` through
/// `WireBenchmarks.encode(_:)` and back through `WireBenchmarks.decode(_:from:)`.
/// - Parameters:
///   - name: What the value is, for the benchmarks' names.
///   - value: The value to encode (and whose encoding to decode).
///   - scalingFactor: Operations per iteration.
func registerCodecBenchmarks<T: Codable>(_ name: String, _ value: T, scalingFactor: BenchmarkScalingFactor) {
    // Encoding these values cannot fail; a failure here is a bug in the coder.
    let bytes = try! WireBenchmarks.encode(value)
    Benchmark("Wire encode \(name)", configuration: wireConfiguration(scalingFactor)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try WireBenchmarks.encode(value))
        }
    }
    Benchmark("Wire decode \(name)", configuration: wireConfiguration(scalingFactor)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try WireBenchmarks.decode(T.self, from: bytes))
        }
    }
}

/// Registers the wire coder benchmarks.
func registerWireBenchmarks() {
    registerCodecBenchmarks("Int", 1_234_567, scalingFactor: .kilo)
    let sample = Sample(id: 42, name: "sensor-7", values: (0..<8).map { Double($0) * 0.5 })
    registerCodecBenchmarks("Sample struct", sample, scalingFactor: .kilo)
    registerCodecBenchmarks("[Int] x1000", Array(0..<1000), scalingFactor: .one)
    registerCodecBenchmarks(
        "[UInt8] 64 KiB", (0..<65_536).map { UInt8(truncatingIfNeeded: $0) }, scalingFactor: .one)

    let pairs = (0..<1000).map { ($0, 2 * $0) }
    let packed = WireBenchmarks.pack(pairs)
    Benchmark("Wire pack (Int, Int) x1000", configuration: wireConfiguration(.one)) { _ in
        blackHole(WireBenchmarks.pack(pairs))
    }
    Benchmark("Wire unpack (Int, Int) x1000", configuration: wireConfiguration(.one)) { _ in
        blackHole(try WireBenchmarks.unpack((Int, Int).self, from: packed))
    }
    // The result paths of `map`/`starmap` over plain numbers: a worker stores its results straight
    // into the frame, the parent copies them from it straight into the caller's array.
    Benchmark("Wire fill packed results Int x1000", configuration: wireConfiguration(.one)) { _ in
        blackHole(WireBenchmarks.fillPackedResults(count: 1000))
    }
    let resultFrame = WireBenchmarks.fillPackedResults(count: 1000)
    Benchmark("Wire copy packed results into place Int x1000", configuration: wireConfiguration(.one)) { _ in
        var list = [Int](repeating: 0, count: 4000)
        try WireBenchmarks.copyPackedResults(resultFrame, count: 1000, into: &list, at: 2000)
        blackHole(list)
    }

    // The data plane's ring alone: a small message and a large one, in and out in one thread.
    for (name, count) in [("16 B", 16), ("64 KiB", 64 * 1024), ("4 MiB", 4 << 20)] {
        let message = [UInt8](repeating: 3, count: count)
        let scaling: BenchmarkScalingFactor = count < 1024 ? .kilo : .one
        Benchmark("Ring transfer \(name)", configuration: wireConfiguration(scaling)) { benchmark in
            let ring = try RingBenchmarks()
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { blackHole(ring.transfer(message)) }
        }
    }

    // A fresh pool's first large task (1 MiB) into its worker's task ring, as the parent writes
    // it: the ring's pages made present by the worker while it was idle (RingPrefault), or never
    // touched. The channel is made before the measurement; a fresh one each iteration.
    for prefaulted in [true, false] {
        let name = prefaulted ? "worker-prefaulted" : "untouched"
        let configuration = Benchmark.Configuration(
            metrics: [.wallClock], warmupIterations: 0, scalingFactor: .one, maxDuration: .seconds(1),
            maxIterations: 50)
        Benchmark("Ring first 1 MiB task into a fresh ring, \(name)", configuration: configuration) { benchmark in
            let fresh = try FreshRingBenchmarks(prefaulted: prefaulted)
            benchmark.startMeasurement()
            blackHole(fresh.writeFirstTask())
        }
    }

    // A spin's look at where the other side runs, after that side noted it (CPUNotes): what the
    // parent pays before each task write, and a spinner once every 64 turns.
    Benchmark("Ring CPU note and look x1000", configuration: wireConfiguration(.one)) { benchmark in
        let notes = try CPUNotesBenchmarks()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<1000 { blackHole(notes.noteAndLook()) }
        }
    }

    // A lone call's record of its worker sharing the caller's CPU (Colocation): what a shared
    // call's wait pays after it ended (an unshared one only loads an atomic flag).
    Benchmark("Ring colocation record, shared call x1000", configuration: wireConfiguration(.one)) { benchmark in
        let record = ColocationBenchmarks()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(record.sharedCalls(1000)) }
    }

    // A stream's cursor lock, as `next(timeout:)` takes it for every item: the turns of the
    // thread it is biased to, and ordinary turns (a compare-exchange and a releasing store).
    Benchmark("Stream cursor lock, owned turn x1000", configuration: wireConfiguration(.one)) { benchmark in
        let lock = CursorLockBenchmarks()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(lock.ownedTurns(1000)) }
    }
    Benchmark("Stream cursor lock, ordinary turn x1000", configuration: wireConfiguration(.one)) { benchmark in
        let lock = CursorLockBenchmarks()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(lock.ordinaryTurns(1000)) }
    }

    // One default `starmap` chunk's results (32,768 Ints, 256 KiB) through a ring into their
    // list: straight from the ring (DirectResults), and the way before (a frame buffer, then the
    // list).
    Benchmark("Ring results into the list, direct, Int x32768", configuration: wireConfiguration(.one)) { benchmark in
        let path = try DirectResultsBenchmarks()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(path.takeDirectly()) }
    }
    Benchmark("Ring results into the list, through a frame, Int x32768", configuration: wireConfiguration(.one)) {
        benchmark in
        let path = try DirectResultsBenchmarks()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try path.takeThroughFrame()) }
    }

    // A worker's side of one `starmap` chunk (32,768 pairs, 512 KiB) through its rings, with the
    // parent's write of the task and read of the result: in place (the items run where they lie
    // in the task ring, the results stored in the result ring), and the way before (both copied
    // through buffers of the worker's own).
    Benchmark("Ring chunk run in place, (Int, Int) x32768", configuration: wireConfiguration(.one)) { benchmark in
        let chunk = try InPlaceChunkBenchmarks()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try chunk.runInPlace()) }
    }
    Benchmark("Ring chunk run through buffers, (Int, Int) x32768", configuration: wireConfiguration(.one)) {
        benchmark in
        let chunk = try InPlaceChunkBenchmarks()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try chunk.runCopying()) }
    }
}

// MARK: - Pool

/// The pool that the pool benchmarks use: started (and warmed) by a benchmark's setup, stopped by
/// its teardown, so that no worker outlives the benchmark.
final class BenchmarkPool: Sendable {
    /// The running pool, between `start()` and `stop()`.
    private let running = Mutex<Pool?>(nil)

    /// The running pool.
    /// - Precondition: `start()` ran and `stop()` did not since.
    var pool: Pool {
        guard let pool = running.withLock({ $0 }) else { preconditionFailure("the benchmark pool is not running") }
        return pool
    }

    /// Starts a one-worker pool of bench-worker and runs one call, so that the worker is up and
    /// has served a task before anything is measured.
    /// - Throws: ``MissingWorkerError`` when bench-worker is not beside this executable, or what
    ///   creating the pool or the call throws.
    func start() throws {
        let pool = try Pool(processes: 1, executable: try workerExecutablePath())
        _ = try pool.apply(MicroFunctions.add, 0, 0)
        running.withLock { $0 = pool }
    }

    /// Kills the worker and waits until it has exited; does nothing when no pool runs.
    /// - Throws: what `Pool.join()` throws.
    func stop() throws {
        guard let pool = running.withLock({ $0.take() }) else { return }
        pool.terminate()
        try pool.join()
    }
}

/// The pool of the pool benchmarks.
let benchmarkPool = BenchmarkPool()

/// bench-worker was not found beside the benchmark's executable.
struct MissingWorkerError: Error, CustomStringConvertible {
    /// Where it was looked for.
    var path: String

    /// What went wrong and how to fix it.
    var description: String {
        "bench-worker not found at \(path): build it in the benchmark's configuration "
            + "(swift build -c release --product bench-worker)"
    }
}

/// The path of bench-worker: SwiftPM builds it (a dependency of this target) into the folder that
/// holds this benchmark's executable.
/// - Throws: ``MissingWorkerError`` when there is no executable file at that path.
func workerExecutablePath() throws -> String {
    let executable =
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        ?? CommandLine.arguments[0]
    let path = URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("bench-worker").path
    guard FileManager.default.isExecutableFile(atPath: path) else { throw MissingWorkerError(path: path) }
    return path
}

/// Custom metrics of the throughput benchmarks: values per second, measured per iteration.
enum ThroughputMetric {
    /// Items (calls of the pool function) per second.
    static let items = BenchmarkMetric.custom("items/s", polarity: .prefersLarger, useScalingFactor: false)
    /// Mebibytes sent to the workers per second (as many come back).
    static let mebibytes = BenchmarkMetric.custom("MiB/s", polarity: .prefersLarger, useScalingFactor: false)
}

/// The configuration of the pool benchmarks: a warm pool from `benchmarkPool`, at most 2 seconds.
///
/// The common metrics are time, throughput, allocations and the `read`/`write` calls of this
/// process (Linux). CPU time is left out: Linux counts it in 10 ms ticks, too coarse for one
/// iteration; package-benchmark does not count syscalls or context switches on Linux.
/// - Parameter extra: Metrics beyond the common ones.
/// - Returns: A configuration whose setup starts the pool and whose teardown stops it.
func poolConfiguration(_ extra: [BenchmarkMetric] = []) -> Benchmark.Configuration {
    .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .readSyscalls, .writeSyscalls] + extra,
        warmupIterations: 3, scalingFactor: .one, maxDuration: .seconds(2), maxIterations: 10_000,
        setup: { try benchmarkPool.start() }, teardown: { try benchmarkPool.stop() })
}

/// Seconds in `duration`, as a `Double`.
/// - Parameter duration: A measured time.
/// - Returns: The same time in seconds.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

/// Registers the benchmarks that run tasks in a worker.
func registerPoolBenchmarks() {
    // A plain synchronous function: its lone call travels as one packed item.
    Benchmark("Pool apply round trip", configuration: poolConfiguration()) { _ in
        blackHole(try benchmarkPool.pool.apply(MicroFunctions.add, 1, 2))
    }
    // The same call of an async function: encoded, through the generic coder on both sides.
    Benchmark("Pool apply round trip, encoded arguments", configuration: poolConfiguration()) { _ in
        blackHole(try benchmarkPool.pool.apply(MicroFunctions.addAsync, 1, 2))
    }

    let pairs = (0..<100_000).map { ($0, $0) }
    let starmapConfiguration = poolConfiguration([ThroughputMetric.items])
    Benchmark("Pool starmap add 100K pairs, chunksize 1000", configuration: starmapConfiguration) { benchmark in
        let pool = benchmarkPool.pool
        let start = ContinuousClock.now
        let sums = try pool.starmap(MicroFunctions.add, pairs, chunksize: 1000)
        let elapsed = seconds(ContinuousClock.now - start)
        benchmark.measurement(ThroughputMetric.items, Int(Double(pairs.count) / elapsed))
        blackHole(sums)
    }

    // A map of many short chunks (a common pattern: chunksize 1, ~50 µs tasks): the worker holds
    // the doorbell for their results while more are queued (ResultWriter.swift); the parent's
    // `read` calls (its doorbell drains among them) show how often it was woken.
    let spins = [Int](repeating: 50, count: 200)
    Benchmark("Pool map 200 chunks of 50 µs, chunksize 1", configuration: starmapConfiguration) { benchmark in
        let pool = benchmarkPool.pool
        let start = ContinuousClock.now
        let results = try pool.map(MicroFunctions.spin, spins, chunksize: 1)
        let elapsed = seconds(ContinuousClock.now - start)
        benchmark.measurement(ThroughputMetric.items, Int(Double(spins.count) / elapsed))
        blackHole(results)
    }

    let streamItems = 100_000
    Benchmark("Pool imap square 100K lazy items, chunksize 1000", configuration: starmapConfiguration) { benchmark in
        let pool = benchmarkPool.pool
        let start = ContinuousClock.now
        let stream = try pool.imap(MicroFunctions.square, (0..<streamItems).lazy.map { $0 }, chunksize: 1000)
        var total = 0
        while let value = try stream.next() { total &+= value }
        let elapsed = seconds(ContinuousClock.now - start)
        benchmark.measurement(ThroughputMetric.items, Int(Double(streamItems) / elapsed))
        blackHole(total)
    }

    Benchmark("Pool imap square 100K lazy items, for try await", configuration: starmapConfiguration) { benchmark in
        let pool = benchmarkPool.pool
        let start = ContinuousClock.now
        let stream = try pool.imap(MicroFunctions.square, (0..<streamItems).lazy.map { $0 }, chunksize: 1000)
        var total = 0
        for try await value in stream { total &+= value }
        let elapsed = seconds(ContinuousClock.now - start)
        benchmark.measurement(ThroughputMetric.items, Int(Double(streamItems) / elapsed))
        blackHole(total)
    }

    let echoConfiguration = poolConfiguration([ThroughputMetric.mebibytes])
    /// A `map` echo of `blobs`, one a chunk, in MiB/s.
    func echoBenchmark(_ name: String, _ blobs: [[UInt8]]) {
        let mebibytes = Double(blobs.reduce(0) { $0 + $1.count }) / Double(1 << 20)
        Benchmark(name, configuration: echoConfiguration) { benchmark in
            let pool = benchmarkPool.pool
            let start = ContinuousClock.now
            let echoed = try pool.map(MicroFunctions.echo, blobs, chunksize: 1)
            let elapsed = seconds(ContinuousClock.now - start)
            benchmark.measurement(ThroughputMetric.mebibytes, Int(mebibytes / elapsed))
            blackHole(echoed)
        }
    }
    echoBenchmark(
        "Pool map echo 8 x 1 MiB, chunksize 1", (0..<8).map { [UInt8](repeating: UInt8($0), count: 1 << 20) })
    // Results of 4 MiB: each read into a fresh buffer that the parent made present ahead of time
    // on a thread of its own (PreparedBuffers.swift), not on the I/O thread between its copies.
    echoBenchmark(
        "Pool map echo 16 x 4 MiB, chunksize 1", (0..<16).map { [UInt8](repeating: UInt8($0), count: 4 << 20) })

    let sharedNumbers = (0..<(1 << 17)).map { Int64($0) }
    let sharedTable = Mutex<SharedArray<Int64>?>(nil)
    let sharedConfiguration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .readSyscalls, .writeSyscalls],
        warmupIterations: 3, scalingFactor: .one, maxDuration: .seconds(2), maxIterations: 10_000,
        setup: {
            try benchmarkPool.start()
            let table = try benchmarkPool.pool.share(sharedNumbers)
            sharedTable.withLock { $0 = table }
        },
        teardown: {
            sharedTable.withLock { $0 = nil }
            try benchmarkPool.stop()
        })
    Benchmark("Pool apply sum of a shared 1 MiB [Int64]", configuration: sharedConfiguration) { _ in
        guard let table = sharedTable.withLock({ $0 }) else { preconditionFailure("no shared table") }
        blackHole(try benchmarkPool.pool.apply(MicroFunctions.sharedSum, table))
    }

    let shareSource = (0..<(2 << 20)).map { Int64($0) }
    let shareMebibytes = Double(shareSource.count * 8) / Double(1 << 20)
    Benchmark("Pool share 16 MiB [Int64]", configuration: poolConfiguration([ThroughputMetric.mebibytes])) {
        benchmark in
        let start = ContinuousClock.now
        let table = try benchmarkPool.pool.share(shareSource)
        let elapsed = seconds(ContinuousClock.now - start)
        benchmark.measurement(ThroughputMetric.mebibytes, Int(shareMebibytes / elapsed))
        blackHole(table.count)
    }
}
