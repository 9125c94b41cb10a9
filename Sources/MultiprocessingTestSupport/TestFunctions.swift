// The pool functions the test suite runs. The tests (the parent side) and the
// `multiprocessing-test-worker` executable (the worker side) both link this module, so both
// agree on names and types.
//
// Registering a function: declare it as a `public static let` of `TestFunctions` in a file of
// this folder, and put it in that file's list (`memory`, `output`…); a new file's list goes
// into `all` below, which the test worker serves. A function the worker must not serve goes
// into `unserved` instead. Forgetting is caught: TestFunctionRegistryTests reads this folder's
// sources and fails, naming the property and its file, for every declaration in neither list
// (Swift cannot enumerate static lets at run time).

@_spi(Testing) public import Multiprocessing
import Synchronization

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

/// A value that encodes, but whose decoding always fails (in the worker, as an argument).
public struct DecodeBomb: Codable, Sendable {
    public init() {}
    public init(from decoder: any Decoder) throws {
        throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "refuses to decode"))
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode("bomb")
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
    /// Writes the worker's pid to the file at `path`, then sleeps `ms` milliseconds: a test
    /// learns which worker is running the task.
    public static let announceThenSleep = PoolFunction("announceThenSleep") { (path: String, ms: Int) -> Int32 in
        let pid = getpid()
        if let file = fopen(path + ".tmp", "w") {
            fputs("\(pid)", file)
            fclose(file)
            rename(path + ".tmp", path)
        }
        usleep(UInt32(ms) * 1000)
        return pid
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
    /// Forks a process that keeps the worker's pipes open for `ms` milliseconds (it does not
    /// exec, so it inherits them), writes its pid to `path`, and exits the worker: the worker is
    /// gone, but its result pipe does not end.
    public static let exitLeavingPipeOpen = PoolFunction("exitLeavingPipeOpen") { (path: String, ms: Int) -> Int in
        let holder = fork()
        if holder == 0 {
            usleep(UInt32(ms) * 1000)
            _exit(0)
        }
        if let file = fopen(path + ".tmp", "w") {
            fputs("\(holder)", file)
            fclose(file)
            rename(path + ".tmp", path)
        }
        exit(3)
    }
    /// Returns a value that cannot be encoded.
    public static let makeUnencodable = PoolFunction("makeUnencodable") { () in Unencodable() }
    /// Takes a value that cannot be decoded in the worker.
    public static let takeUnencodable = PoolFunction("takeUnencodable") { (_: Unencodable) in 1 }
    /// Takes a value that encodes in the parent and fails to decode in the worker.
    public static let takeDecodeBomb = PoolFunction("takeDecodeBomb") { (_: DecodeBomb) in 1 }
    /// Prints to stdout and stderr.
    public static let chatty = PoolFunction("chatty") { (x: Int) -> Int in
        print("chatty stdout \(x)")
        let line = "chatty stderr \(x)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        return x
    }
    /// Writes bytes that are not a frame to the worker's result stream, then waits: the parent
    /// must notice the corrupt stream and replace the worker.
    public static let corruptChannel = PoolFunction("corruptChannel") { (garbage: [UInt8]) -> Int in
        WorkerTesting.writeToResultStream(garbage)
        sleep(30)
        return 0
    }
    /// What the worker's descriptors point to ("fd -> target"), without the one reading them.
    public static let openDescriptors = PoolFunction("openDescriptors") { () -> [String] in
        openDescriptorNumbers().map { fd in
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
            let target = String(decoding: buffer[0..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return "\(fd) -> \(target)"
        }
    }
    /// Returns nothing.
    public static let noResult = PoolFunction("noResult") { (_: Int) -> Void in }

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

    /// The functions declared here that the test worker deliberately does not serve.
    public static let unserved: [any AnyPoolFunction] = [notServed, squareWrongTypes]

    /// This folder, whose sources the registration test reads.
    public static let sourceDirectory: String = {
        let file = #filePath
        return String(file[..<(file.lastIndex(of: "/") ?? file.endIndex)])
    }()

    /// Every function the test worker serves.
    public static let all: [any AnyPoolFunction] =
        [
            square, mul, add3, ping, pid, echoBytes, echoString, scale, asyncDouble, checkedSqrt, failOnFive, sleepMs,
            blockMs, announceThenSleep, trapAt, fatal, exitWith, exitLeavingPipeOpen, corruptChannel, openDescriptors,
            takeDecodeBomb,
            makeUnencodable,
            takeUnencodable, chatty, noResult, setUp,
            readInit, failingSetUp,
            packedMulAdd, packedScale, packedShift, packedMix, packedNarrow, packedWidths, packedFailNegative,
            packedMarkOrFail, packedMarks, packedLabel, packedAsyncFailNegative, packedIsEven, packedNot, packedSelect,
        ] + memory + output + crash + signals + forkServer + announce + arguments + statistics + chunks + crashReports
        + share + syncServe + clusterRole + launch
}

/// The descriptors open in this process, without the one used to list them.
public func openDescriptorNumbers() -> [Int32] {
    guard let directory = opendir("/proc/self/fd") else { return [] }
    defer { closedir(directory) }
    let own = dirfd(directory)
    var result: [Int32] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if let fd = Int32(name), fd != own { result.append(fd) }
    }
    return result.sorted()
}

/// The threads of this process.
public func threadCount() -> Int {
    guard let directory = opendir("/proc/self/task") else { return 0 }
    defer { closedir(directory) }
    var count = 0
    while let entry = readdir(directory) {
        if entry.pointee.d_name.0 != UInt8(ascii: ".") { count += 1 }
    }
    return count
}

/// Children of this process that exited and were not reaped.
public func zombieChildren() -> [Int32] {
    guard let directory = opendir("/proc") else { return [] }
    defer { closedir(directory) }
    let me = getpid()
    var zombies: [Int32] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard let pid = Int32(name), let file = fopen("/proc/\(pid)/stat", "r") else { continue }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 512)
        guard fgets(&buffer, 512, file) != nil else { continue }
        let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let close = line.lastIndex(of: ")") else { continue }
        let fields = line[line.index(after: close)...].split(separator: " ")
        if fields.count > 2, fields[0] == "Z", Int32(fields[1]) == me { zombies.append(pid) }
    }
    return zombies
}

/// This process's resident set size in MiB (VmRSS).
public func residentMegabytes() -> Double {
    guard let file = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 256)
    while fgets(&buffer, 256, file) != nil {
        let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if line.hasPrefix("VmRSS:") {
            let kilobytes = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return kilobytes / 1024
        }
    }
    return 0
}

// Packed chunks: when every argument is a plain number (Int, Int8…Int64, UInt…UInt64, Float,
// Double), chunks travel as raw bytes. These functions cover every plain type, tuples with
// padding, throwing bodies, and the paths beside the packed one (non-plain results, async
// bodies, Bool). All wrap instead of trapping, so extremes are valid input. The test worker
// serves them: they are listed in `all`.
extension TestFunctions {
    /// (Int, Int) -> Int, wrapping.
    public static let packedMulAdd = PoolFunction("packedMulAdd") { (a: Int, b: Int) -> Int in a &* 31 &+ b }
    /// (Int8, Double) -> Double: padding between the elements of the argument tuple.
    public static let packedScale = PoolFunction("packedScale") { (k: Int8, x: Double) -> Double in Double(k) * x }
    /// (Double, Int8) -> Double: padding after the last element (size 9, stride 16).
    public static let packedShift = PoolFunction("packedShift") { (x: Double, k: Int8) -> Double in x + Double(k) }
    /// (UInt16, Int32, Float) -> Int64.
    public static let packedMix = PoolFunction("packedMix") { (a: UInt16, b: Int32, f: Float) -> Int64 in
        Int64(a) &* 100_000 &+ Int64(b) &+ Int64(f.bitPattern)
    }
    /// Double -> Float.
    public static let packedNarrow = PoolFunction("packedNarrow") { (x: Double) -> Float in Float(x) }
    /// The other widths: (UInt8, Int16, UInt32, Int64, UInt64, UInt) -> UInt64, wrapping.
    public static let packedWidths = PoolFunction("packedWidths") {
        (a: UInt8, b: Int16, c: UInt32, d: Int64, e: UInt64, f: UInt) -> UInt64 in
        UInt64(a) &+ UInt64(bitPattern: Int64(b)) &* 3 &+ UInt64(c) &* 5 &+ UInt64(bitPattern: d) &* 7 &+ e &* 11
            &+ UInt64(f) &* 13
    }
    /// Int -> Int, synchronous: throws the registered `TestFailure` (value: x) for negative x,
    /// else returns x × 3 (wrapping).
    public static let packedFailNegative = PoolFunction("packedFailNegative") { (x: Int) throws -> Int in
        if x < 0 { throw TestFailure(reason: "negative", value: x) }
        return x &* 3
    }
    /// Int -> Int, synchronous: throws `TestFailure` for negative x; for x > 0 notes x in the
    /// worker's `packedMarks` (a test learns whether the call ran), then returns x.
    public static let packedMarkOrFail = PoolFunction("packedMarkOrFail") { (x: Int) throws -> Int in
        if x < 0 { throw TestFailure(reason: "negative", value: x) }
        if x > 0 { marked.withLock { $0.append(x) } }
        return x
    }
    /// The x > 0 that `packedMarkOrFail` ran for in this worker, in order.
    public static let packedMarks = PoolFunction("packedMarks") { () -> [Int] in marked.withLock { $0 } }
    /// Int -> String (packed arguments, encoded results): throws `TestFailure` for negative x.
    public static let packedLabel = PoolFunction("packedLabel") { (x: Int) throws -> String in
        if x < 0 { throw TestFailure(reason: "negative", value: x) }
        return "#\(x)"
    }
    /// Int -> Int with an async body (packed arguments, the generic loop): throws `TestFailure`
    /// for negative x, else returns x × 5 (wrapping).
    public static let packedAsyncFailNegative = PoolFunction("packedAsyncFailNegative") {
        (x: Int) async throws -> Int in
        await Task.yield()
        if x < 0 { throw TestFailure(reason: "negative", value: x) }
        return x &* 5
    }
    /// Int -> Bool (packed arguments, a result that is not plain).
    public static let packedIsEven = PoolFunction("packedIsEven") { (x: Int) -> Bool in x % 2 == 0 }
    /// Bool -> Bool: Bool is not plain, nothing travels packed.
    public static let packedNot = PoolFunction("packedNot") { (b: Bool) -> Bool in !b }
    /// (Int, Bool) -> Int: one argument is not plain, nothing travels packed.
    public static let packedSelect = PoolFunction("packedSelect") { (x: Int, negate: Bool) -> Int in
        negate ? 0 &- x : x
    }
}

/// What `TestFunctions.packedMarkOrFail` noted in this worker.
private let marked = Mutex<[Int]>([])
