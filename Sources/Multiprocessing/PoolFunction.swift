// Declaring the functions that workers can run.

/// A function that pool workers can run, declared once under a name that is the same in every
/// process.
///
/// Closures cannot cross a process boundary, so a worker runs a `PoolFunction` by name: the
/// parent sends the name and the encoded arguments, the worker looks the name up among the
/// functions its `main` passed to ``Pool/bootstrap(serving:errorTypes:)`` and runs the body.
/// Arguments and results are `Codable`; the argument list is a parameter pack, so
/// `PoolFunction<Int, Int, Int>` takes two `Int`s and returns an `Int`.
///
/// ```swift
/// let square = PoolFunction("square") { (x: Int) in x * x }              // PoolFunction<Int, Int>
/// let mul    = PoolFunction("mul") { (x: Int, y: Int) in x * y }         // PoolFunction<Int, Int, Int>
/// let ping   = PoolFunction("ping") { () in "pong" }                     // no arguments
/// let fetch  = PoolFunction("fetch") { (path: String) async throws -> [UInt8] in try await load(path) }
/// let setUp  = PoolFunction("setUp") { (n: Int) -> Void in configure(n) } // PoolFunction<Int, PoolVoid>
/// ```
///
/// Declare pool functions as global or static `let`s so the parent and the workers (which run the
/// same program, or a worker executable that links the same module) agree on them.
public struct PoolFunction<each Argument: Codable & Sendable, Result: Codable & Sendable>: AnyPoolFunction {
    /// The name workers know the function by.
    public let name: String
    let body: @Sendable (repeat each Argument) async throws -> Result
    /// The body again when it is synchronous: workers call it directly, without the cost of an
    /// async call per item.
    let syncBody: (@Sendable (repeat each Argument) throws -> Result)?

    /// Declares a pool function with a synchronous body.
    /// - Parameters:
    ///   - name: A name unique among the functions the workers serve, the same in every process.
    ///   - body: What the worker runs. Errors it throws reach the caller (see ``RemoteError``).
    public init(_ name: String, _ body: @escaping @Sendable (repeat each Argument) throws -> Result) {
        self.name = name
        self.body = { (arguments: repeat each Argument) in try body(repeat each arguments) }
        self.syncBody = body
    }

    /// Declares a pool function with an `async` body.
    /// - Parameters:
    ///   - name: A name unique among the functions the workers serve, the same in every process.
    ///   - body: What the worker runs. Errors it throws reach the caller (see ``RemoteError``).
    @_disfavoredOverload
    public init(_ name: String, _ body: @escaping @Sendable (repeat each Argument) async throws -> Result) {
        self.name = name
        self.body = body
        self.syncBody = nil
    }

    /// Runs the body here, in the calling process (no worker involved): for tests, and for
    /// serial baselines.
    ///
    /// ```swift
    /// let nine = try await square(3)
    /// ```
    public func callAsFunction(_ arguments: repeat each Argument) async throws -> Result {
        try await body(repeat each arguments)
    }

    /// The argument and result types, e.g. `"(Swift.Int, Swift.Int) -> Swift.Int"`. Workers check
    /// it, so that a function registered under the same name with other types is not called with
    /// bytes it cannot read.
    public var signature: String {
        var arguments: [String] = []
        for type in repeat (each Argument).self { arguments.append(String(reflecting: type)) }
        return "(\(arguments.joined(separator: ", "))) -> \(String(reflecting: Result.self))"
    }
}

extension PoolFunction where Result == PoolVoid {
    /// Declares a pool function whose body returns nothing.
    /// - Parameters:
    ///   - name: A name unique among the functions the workers serve, the same in every process.
    ///   - body: What the worker runs.
    public init(_ name: String, _ body: @escaping @Sendable (repeat each Argument) throws -> Void) {
        let wrapped = { @Sendable (arguments: repeat each Argument) throws -> PoolVoid in
            try body(repeat each arguments)
            return PoolVoid()
        }
        self.name = name
        self.body = { (arguments: repeat each Argument) in try wrapped(repeat each arguments) }
        self.syncBody = wrapped
    }

    /// Declares a pool function whose `async` body returns nothing.
    /// - Parameters:
    ///   - name: A name unique among the functions the workers serve, the same in every process.
    ///   - body: What the worker runs.
    @_disfavoredOverload
    public init(_ name: String, _ body: @escaping @Sendable (repeat each Argument) async throws -> Void) {
        self.name = name
        self.body = { (arguments: repeat each Argument) in
            try await body(repeat each arguments)
            return PoolVoid()
        }
        self.syncBody = nil
    }
}

/// Any ``PoolFunction``, whatever its types: what ``Pool/bootstrap(serving:errorTypes:)`` takes.
///
/// Only ``PoolFunction`` conforms; do not conform other types.
public protocol AnyPoolFunction: Sendable {
    /// The name workers know the function by.
    var name: String { get }
    /// The argument and result types.
    var signature: String { get }
}

/// The result of a ``PoolFunction`` whose body returns `Void` (Swift's `Void` is not `Codable`).
public struct PoolVoid: Codable, Sendable, Hashable, CustomStringConvertible {
    /// The only value.
    public init() {}
    /// `()`, like `Void`.
    public var description: String { "()" }
}

/// A 64-bit FNV-1a hash: a compact, stable fingerprint of a function's signature.
func fingerprint(_ string: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in string.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01b3
    }
    return hash
}
