// The pool functions the test suite runs. The tests (the parent side) and the
// `multiprocessing-test-worker` executable (the worker side) both link this module, so both
// agree on names and types.

public import Multiprocessing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An error type that crosses back to the caller as itself.
public struct TestFailure: Error, Codable, Sendable, Equatable {
    public var reason: String
    public var value: Int
    public init(reason: String, value: Int) {
        self.reason = reason
        self.value = value
    }
}

/// An error type that is not registered: it comes back as a `RemoteError`.
public struct UnregisteredFailure: Error, CustomStringConvertible {
    public var description: String { "unregistered failure" }
    public init() {}
}

/// A value whose encoding always fails.
public struct Unencodable: Codable, Sendable {
    public init() {}
    public init(from decoder: any Decoder) throws {
        throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "never decodes"))
    }
    public func encode(to encoder: any Encoder) throws {
        throw EncodingError.invalidValue(self, .init(codingPath: [], debugDescription: "never encodes"))
    }
}

public struct Point: Codable, Sendable, Equatable {
    public var x: Double
    public var y: Double
    public var label: String?
    public init(x: Double, y: Double, label: String? = nil) {
        self.x = x
        self.y = y
        self.label = label
    }
}

public enum TestFunctions {
    public static let square = PoolFunction("square") { (x: Int) in x * x }
    public static let mul = PoolFunction("mul") { (x: Int, y: Int) in x * y }
    public static let add3 = PoolFunction("add3") { (a: Int, b: Int, c: Int) in a + b + c }
    public static let ping = PoolFunction("ping") { () in "pong" }
    public static let pid = PoolFunction("pid") { () -> Int32 in Int32(getpid()) }
    public static let echoBytes = PoolFunction("echoBytes") { (b: [UInt8]) in b }
    public static let echoString = PoolFunction("echoString") { (s: String) in s }
    public static let scale = PoolFunction("scale") { (p: Point, k: Double) in
        Point(x: p.x * k, y: p.y * k, label: p.label)
    }
    public static let asyncDouble = PoolFunction("asyncDouble") { (x: Int) async throws -> Int in
        try await Task.sleep(for: .milliseconds(1))
        return 2 * x
    }
    /// Throws a registered error for negative input.
    public static let checkedSqrt = PoolFunction("checkedSqrt") { (x: Int) throws -> Int in
        if x < 0 { throw TestFailure(reason: "negative", value: x) }
        var r = 0
        while (r + 1) * (r + 1) <= x { r += 1 }
        return r
    }
    /// Throws an unregistered error when x == 5.
    public static let failOnFive = PoolFunction("failOnFive") { (x: Int) throws -> Int in
        if x == 5 { throw UnregisteredFailure() }
        return x
    }
    /// Sleeps `ms` milliseconds, returns the pid.
    public static let sleepMs = PoolFunction("sleepMs") { (ms: Int) async throws -> Int32 in
        try await Task.sleep(for: .milliseconds(ms))
        return getpid()
    }
    /// Sleeps `ms` milliseconds blocking the thread, returns the argument.
    public static let blockMs = PoolFunction("blockMs") { (ms: Int) -> Int in
        usleep(UInt32(ms) * 1000)
        return ms
    }
    /// Traps when x == trapAt (index out of range).
    public static let trapAt = PoolFunction("trapAt") { (x: Int, trapAt: Int) -> Int in
        if x == trapAt {
            let empty: [Int] = []
            return empty[x]
        }
        return x
    }
    /// Calls `fatalError` with a message.
    public static let fatal = PoolFunction("fatal") { (message: String) -> Int in
        fatalError(message)
    }
    /// Exits the worker with a status.
    public static let exitWith = PoolFunction("exitWith") { (status: Int32) -> Int in
        exit(status)
    }
    /// Returns a value that cannot be encoded.
    public static let makeUnencodable = PoolFunction("makeUnencodable") { () in Unencodable() }
    /// Takes a value that cannot be decoded in the worker.
    public static let takeUnencodable = PoolFunction("takeUnencodable") { (_: Unencodable) in 1 }
    /// Prints to stdout and stderr.
    public static let chatty = PoolFunction("chatty") { (x: Int) -> Int in
        print("chatty stdout \(x)")
        let line = "chatty stderr \(x)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        return x
    }
    /// Writes bytes that are not a frame to the worker's result channel (fd 4), then waits: the
    /// parent must notice the corrupt stream and replace the worker.
    public static let corruptChannel = PoolFunction("corruptChannel") { (garbage: [UInt8]) -> Int in
        _ = garbage.withUnsafeBytes { write(4, $0.baseAddress, $0.count) }
        sleep(30)
        return 0
    }
    /// Returns nothing.
    public static let noResult = PoolFunction("noResult") { (_: Int) -> Void in }
    /// Counts primes in lo..<hi (CPU-bound work).
    public static let countPrimes = PoolFunction("countPrimes") { (lo: Int, hi: Int) in primeCount(lo, hi) }

    // Initializer support: the initializer stores a value the task then reads.
    nonisolated(unsafe) static var initialized: String = ""
    public static let setUp = PoolFunction("setUp") { (tag: String) -> Void in initialized = tag }
    public static let readInit = PoolFunction("readInit") { () in "\(initialized):\(getpid())" }
    public static let failingSetUp = PoolFunction("failingSetUp") { () throws -> Void in
        throw TestFailure(reason: "setup failed", value: 0)
    }

    /// A function the worker executable does NOT serve.
    public static let notServed = PoolFunction("notServed") { (x: Int) in x }
    /// Same name as `square`, other types: the worker must refuse it.
    public static let squareWrongTypes = PoolFunction("square") { (x: String) in x }

    /// Every function the test worker serves.
    public static let all: [any AnyPoolFunction] = [
        square, mul, add3, ping, pid, echoBytes, echoString, scale, asyncDouble, checkedSqrt, failOnFive, sleepMs,
        blockMs, trapAt, fatal, exitWith, corruptChannel, makeUnencodable, takeUnencodable, chatty, noResult, countPrimes, setUp,
        readInit, failingSetUp,
    ]
}

public func primeCount(_ lo: Int, _ hi: Int) -> Int {
    var n = 0
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
        if prime { n += 1 }
    }
    return n
}
