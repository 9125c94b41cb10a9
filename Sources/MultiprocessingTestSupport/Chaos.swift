// The chaos run: caller threads use a pool through its blocking API (lone `apply`s, which take
// the direct-wait path, sleeping tasks, multi-chunk `map`s and `starmap`s) while a killer thread
// SIGKILLs one of its workers at random every 100 ms. Every call must return its exact result or
// fail with `PoolError.workerLost`, and none may hang. Shared by the in-process chaos test and
// the test worker's `chaos` role (which also counts descriptors and zombies in a process of its
// own). Real threads, not tasks: the calls block, and Swift's cooperative pool must stay free.
// The run counts as finished only once its last kill has landed.

public import Multiprocessing
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What a chaos run saw.
public struct ChaosReport: Sendable {
    /// The seed every random choice of the run derives from.
    public var seed: UInt64
    /// Calls that returned.
    public var calls = 0
    /// Calls that returned exactly the expected value.
    public var exact = 0
    /// Calls that failed with `PoolError.workerLost`.
    public var lost = 0
    /// Workers the killer SIGKILLed.
    public var kills = 0
    /// Every other outcome: a wrong value or another error, with the call that produced it.
    public var unexpected: [String] = []
    /// The calls still running (one per caller thread at most); empty once the run finished.
    public var running: [String] = []
}

/// A chaos run in progress; it starts its threads at once.
public final class ChaosRun: Sendable {
    private struct State {
        var report: ChaosReport
        var threadsLeft: Int
        var current: [Int: String] = [:]
    }
    private let state: Mutex<State>

    /// Starts `callers` caller threads and a killer thread on `pool`, for `duration`; every call
    /// already running then finishes before the run does.
    /// - Throws: `TestFailure` when a thread cannot be started.
    public init(
        pool: Pool, seed: UInt64, duration: Duration, callers: Int = 4, killEvery: Duration = .milliseconds(100)
    ) throws {
        state = Mutex(State(report: ChaosReport(seed: seed), threadsLeft: callers + 1))
        let deadline = ContinuousClock.now + duration
        // One stream per thread, each seeded from the run's (seeds a fixed step apart would give
        // SplitMix64 streams that are shifted copies of each other).
        var seeds = SplitMix64(seed: seed)
        for caller in 0..<callers {
            let callerSeed = seeds.next()
            try startThread { [self] in
                var random = SplitMix64(seed: callerSeed)
                var number = 0
                while ContinuousClock.now < deadline {
                    let call = ChaosCall.random(using: &random)
                    let label = "caller \(caller) call \(number): \(call)"
                    state.withLock { $0.current[caller] = label }
                    let outcome = call.run(on: pool)
                    state.withLock { state in
                        state.current[caller] = nil
                        state.report.calls += 1
                        switch outcome {
                        case .exact: state.report.exact += 1
                        case .lost: state.report.lost += 1
                        case .unexpected(let what): state.report.unexpected.append("\(label): \(what)")
                        }
                    }
                    number += 1
                }
                state.withLock { $0.threadsLeft -= 1 }
            }
        }
        let killerSeed = seeds.next()
        try startThread { [self] in
            var random = SplitMix64(seed: killerSeed)
            var lastVictim: Int32?
            while ContinuousClock.now < deadline {
                sleepFor(killEvery)
                let pids = pool.workerPIDs
                guard !pids.isEmpty else { continue }
                let victim = pids[Int(random.next() % UInt64(pids.count))]
                if kill(victim, SIGKILL) == 0 {
                    state.withLock { $0.report.kills += 1 }
                    lastVictim = victim
                }
            }
            // The run ends once its last kill has landed: a SIGKILLed process runs on until the
            // kernel schedules it, and a caller that found the pool full meanwhile sent work to a
            // worker about to die (the final `map` of a chaos test failed with .workerLost).
            if let lastVictim { waitUntilDead(lastVictim, timeout: .seconds(5)) }
            state.withLock { $0.threadsLeft -= 1 }
        }
    }

    /// Waits until `pid` is gone or a zombie (its SIGKILL has landed), for at most `timeout`.
    private func waitUntilDead(_ pid: Int32, timeout: Duration) {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            guard let file = fopen("/proc/\(pid)/stat", "r") else { return }
            var buffer = [CChar](repeating: 0, count: 512)
            let read = fgets(&buffer, 512, file) != nil
            fclose(file)
            guard read else { return }
            // The state is the first field after the command's closing parenthesis.
            let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard let close = line.lastIndex(of: ")") else { return }
            let state = line[line.index(after: close)...].drop { $0 == " " }.first
            if state == "Z" || state == "X" { return }
            usleep(1_000)
        }
    }

    /// Whether every thread of the run has ended.
    public var isFinished: Bool { state.withLock { $0.threadsLeft == 0 } }

    /// What the run saw so far, with the calls still running.
    public var report: ChaosReport {
        state.withLock { state in
            var report = state.report
            report.running = state.current.sorted { $0.key < $1.key }.map(\.value)
            return report
        }
    }

    /// Blocks until the run has finished or `timeout` passed; whether it finished.
    public func wait(timeout: Duration) -> Bool {
        let end = ContinuousClock.now + timeout
        while !isFinished && ContinuousClock.now < end { usleep(10_000) }
        return isFinished
    }
}

/// One call a caller thread makes, with the inputs that fix its expected result.
enum ChaosCall: CustomStringConvertible {
    /// A lone `apply` of `square`: the direct-wait path.
    case square(Int)
    /// A lone `apply` of a task that sleeps so long, so that kills land while it runs.
    case sleep(Int)
    /// A `map` of `square` over 0..<count (plain numbers: packed chunks).
    case mapSquares(count: Int, chunksize: Int)
    /// A `starmap` of `mul` over (i, i + 1) for i in 0..<count.
    case starmapProducts(count: Int, chunksize: Int)
    /// A `map` of sleeping tasks, several chunks.
    case mapSleeps([Int], chunksize: Int)
    /// A `map` of `echoString` (encoded, not packed, chunks).
    case mapStrings(count: Int, chunksize: Int)

    enum Outcome {
        case exact
        case lost
        case unexpected(String)
    }

    static func random(using random: inout SplitMix64) -> ChaosCall {
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }
        switch pick(0...5) {
        case 0: return .square(pick(-1000...1000))
        case 1: return .sleep(pick(5...40))
        case 2: return .mapSquares(count: pick(1...400), chunksize: pick(1...40))
        case 3: return .starmapProducts(count: pick(1...300), chunksize: pick(1...30))
        case 4: return .mapSleeps((0..<pick(2...8)).map { _ in pick(5...30) }, chunksize: pick(1...2))
        default: return .mapStrings(count: pick(1...100), chunksize: pick(1...10))
        }
    }

    var description: String {
        switch self {
        case .square(let x): return "apply(square, \(x))"
        case .sleep(let ms): return "apply(blockMs, \(ms))"
        case .mapSquares(let count, let chunksize): return "map(square, 0..<\(count), chunksize: \(chunksize))"
        case .starmapProducts(let count, let chunksize):
            return "starmap(mul, \(count) pairs, chunksize: \(chunksize))"
        case .mapSleeps(let ms, let chunksize): return "map(blockMs, \(ms), chunksize: \(chunksize))"
        case .mapStrings(let count, let chunksize): return "map(echoString, \(count) strings, chunksize: \(chunksize))"
        }
    }

    func run(on pool: Pool) -> Outcome {
        do {
            switch self {
            case .square(let x):
                return Self.check(try pool.apply(TestFunctions.square, x), x * x)
            case .sleep(let ms):
                return Self.check(try pool.apply(TestFunctions.blockMs, ms), ms)
            case .mapSquares(let count, let chunksize):
                let values = try pool.map(TestFunctions.square, 0..<count, chunksize: chunksize)
                return Self.check(values, (0..<count).map { $0 * $0 })
            case .starmapProducts(let count, let chunksize):
                let pairs = (0..<count).map { ($0, $0 + 1) }
                let values = try pool.starmap(TestFunctions.mul, pairs, chunksize: chunksize)
                return Self.check(values, pairs.map { $0.0 * $0.1 })
            case .mapSleeps(let ms, let chunksize):
                return Self.check(try pool.map(TestFunctions.blockMs, ms, chunksize: chunksize), ms)
            case .mapStrings(let count, let chunksize):
                let strings = (0..<count).map { "s\($0)" }
                return Self.check(try pool.map(TestFunctions.echoString, strings, chunksize: chunksize), strings)
            }
        } catch let error as PoolError where error.code == .workerLost {
            return .lost
        } catch {
            return .unexpected("threw \(error)")
        }
    }

    private static func check<T: Equatable>(_ value: T, _ expected: T) -> Outcome {
        value == expected ? .exact : .unexpected("returned \(value), not \(expected)")
    }
}

/// A deterministic generator (SplitMix64), so that a run's choices follow from its seed (the
/// tests' fuzzers use it too).
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public init(state: UInt64) { self.state = state }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private func sleepFor(_ duration: Duration) {
    let (seconds, attoseconds) = duration.components
    usleep(UInt32(seconds) * 1_000_000 + UInt32(attoseconds / 1_000_000_000_000))
}

private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Starts a detached thread running `body`.
private func startThread(_ body: @escaping @Sendable () -> Void) throws {
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(
        &thread, nil,
        { raw in
            Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, context)
    guard status == 0 else {
        Unmanaged<ThreadBody>.fromOpaque(context).release()
        throw TestFailure(reason: "pthread_create failed", value: Int(status))
    }
    pthread_detach(thread)
}
