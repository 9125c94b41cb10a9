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
///
/// The initializers, and the pool's methods that take a `PoolFunction`, require the types to be
/// `Codable`; the type itself does not, so that declaring one costs no run-time conformance
/// checks as a program (and every worker) starts. A generic function of yours that passes a
/// `PoolFunction<A, R>` on to the pool states `where A: Codable, R: Codable` itself.
public struct PoolFunction<each Argument: Sendable, Result: Sendable>: AnyPoolFunction {
    /// The name workers know the function by.
    public let name: String
    @usableFromInline let body: @Sendable (repeat each Argument) async throws -> Result
    /// The body again when it is synchronous: workers call it directly, without the cost of an
    /// async call per item.
    @usableFromInline let syncBody: (@Sendable (repeat each Argument) throws -> Result)?
    /// The loop over a chunk of packed items, when the arguments and the result are plain
    /// numbers (see ``PackedLayout``) and the body is synchronous.
    @usableFromInline let packedRunner: PackedRunner?
    /// The fingerprint of ``signature``, computed once: it travels with every chunk.
    @usableFromInline let signatureFingerprint: UInt64
    /// The stride a lone call's arguments travel packed at, when the worker runs it through
    /// ``packedRunner``; nil: encoded. Stored, not computed: a computed property of a generic
    /// type, read by the library's unspecialized code, made the type's metadata at every call.
    @usableFromInline let packedCallStride: Int?
    /// How a worker runs this function's calls from their encoded form (``ChunkRunner``), made by
    /// the initializers, where the `Codable` conformances of the types are at hand: the type's
    /// own generic parameters do not require them, because the Swift runtime checks every
    /// requirement of a generic type the first time it makes the type's metadata from its
    /// mangled name (as a `let square = PoolFunction(…)` at the top level of `main` does), and
    /// each new (type, protocol) pair scans every conformance record of every loaded library:
    /// 3.8M instructions for `pool-workloads`' seven functions with Foundation loaded, in every
    /// process before `Pool.bootstrap`, in a worker before it could serve (callgrind).
    let coded: CodedCalls<repeat each Argument, Result>

    /// Declares a pool function with a synchronous body.
    /// - Parameters:
    ///   - name: A name unique among the functions the workers serve, the same in every process.
    ///   - body: What the worker runs. Errors it throws reach the caller (see ``RemoteError``).
    @inlinable @inline(__always)
    public init(_ name: String, _ body: @escaping @Sendable (repeat each Argument) throws -> Result)
    where repeat each Argument: Codable, Result: Codable {
        // The packed loop is made here, inlined where the function is declared; the rest in the
        // library.
        self.init(
            name: name, body: { (arguments: repeat each Argument) in try body(repeat each arguments) },
            syncBody: body, packedRunner: Self.makePackedRunner(body))
    }

    /// The initializers' common part: the fingerprint, the packed call's stride and the coded
    /// calls, made with the `Codable` conformances the caller passes.
    @usableFromInline
    init(
        name: String, body: @escaping @Sendable (repeat each Argument) async throws -> Result,
        syncBody: (@Sendable (repeat each Argument) throws -> Result)?, packedRunner: PackedRunner?
    ) where repeat each Argument: Codable, Result: Codable {
        self.name = name
        self.signatureFingerprint = Self.makeSignatureFingerprint()
        self.body = body
        self.syncBody = syncBody
        self.packedRunner = packedRunner
        self.packedCallStride = packedRunner == nil ? nil : PackedLayout.stride(of: repeat (each Argument).self)
        self.coded = CodedCalls()
    }

    /// The loop a worker runs over a chunk of packed items: built here, inlined where the
    /// function is declared, so that it is compiled for the concrete types and loads, calls and
    /// stores without any generic overhead per item. Nil unless every argument and the result
    /// are plain numbers.
    @inlinable @inline(__always)
    static func makePackedRunner(_ body: @escaping @Sendable (repeat each Argument) throws -> Result) -> PackedRunner? {
        guard PackedLayout.stride(of: repeat (each Argument).self) != nil, PackedLayout.isPlain(Result.self) else {
            return nil
        }
        let stride = MemoryLayout<(repeat each Argument)>.stride
        let resultStride = MemoryLayout<Result>.stride
        return { input, count, output in
            for index in 0..<count {
                let arguments = input.loadUnaligned(fromByteOffset: index &* stride, as: (repeat each Argument).self)
                do {
                    let value = try body(repeat each arguments)
                    output.storeBytes(of: value, toByteOffset: index &* resultStride, as: Result.self)
                } catch {
                    return PackedFailure(index: index, error: error)
                }
            }
            return nil
        }
    }

    /// Declares a pool function with an `async` body.
    /// - Parameters:
    ///   - name: A name unique among the functions the workers serve, the same in every process.
    ///   - body: What the worker runs. Errors it throws reach the caller (see ``RemoteError``).
    @_disfavoredOverload
    public init(_ name: String, _ body: @escaping @Sendable (repeat each Argument) async throws -> Result)
    where repeat each Argument: Codable, Result: Codable {
        self.init(name: name, body: body, syncBody: nil, packedRunner: nil)
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
    public var signature: String { Self.signature }

    static var signature: String {
        // `_typeName(_:qualified:)` is the name `String(reflecting:)` prints for a type, without
        // the printing machinery around it, whose conformance checks (is a metatype
        // `CustomDebugStringConvertible`? `TextOutputStreamable`? …) scan every conformance of
        // every loaded library on first use: with Foundation loaded, ~1M instructions per
        // function, which every process paid for every function it declares before `main` went on
        // (in a worker, before it could serve: callgrind, 5.5M instructions for 5 functions).
        // Appended in place rather than `joined(separator:)`: the unspecialized `joined` looked up
        // its sequence's associated types at run time (0.25M instructions, callgrind).
        var text = "("
        var first = true
        for type in repeat (each Argument).self {
            if !first { text += ", " }
            first = false
            text += _typeName(type, qualified: true)
        }
        return text + ") -> " + _typeName(Result.self, qualified: true)
    }

    @usableFromInline
    static func makeSignatureFingerprint() -> UInt64 { fingerprint(signature) }
}

extension PoolFunction where Result == PoolVoid {
    /// Declares a pool function whose body returns nothing.
    /// - Parameters:
    ///   - name: A name unique among the functions the workers serve, the same in every process.
    ///   - body: What the worker runs.
    public init(_ name: String, _ body: @escaping @Sendable (repeat each Argument) throws -> Void)
    where repeat each Argument: Codable {
        let wrapped = { @Sendable (arguments: repeat each Argument) throws -> PoolVoid in
            try body(repeat each arguments)
            return PoolVoid()
        }
        self.init(
            name: name, body: { (arguments: repeat each Argument) in try wrapped(repeat each arguments) },
            syncBody: wrapped, packedRunner: nil)
    }

    /// Declares a pool function whose `async` body returns nothing.
    /// - Parameters:
    ///   - name: A name unique among the functions the workers serve, the same in every process.
    ///   - body: What the worker runs.
    @_disfavoredOverload
    public init(_ name: String, _ body: @escaping @Sendable (repeat each Argument) async throws -> Void)
    where repeat each Argument: Codable {
        self.init(
            name: name,
            body: { (arguments: repeat each Argument) in
                try await body(repeat each arguments)
                return PoolVoid()
            }, syncBody: nil, packedRunner: nil)
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
    /// What a worker serves the function through: the library's own, not for use.
    var _served: _ServedPoolFunction { get }
}

/// What ``Pool/bootstrap(serving:errorTypes:)`` hands a worker for one ``PoolFunction``: the
/// library's own, not for use.
///
/// A requirement of ``AnyPoolFunction`` rather than a cast of each function to the worker's
/// protocol: a cast of a value of a generic type to a protocol looks the conformance up at run
/// time, which scans every conformance record of every loaded library (0.45M instructions for
/// seven functions, in every worker before it serves).
public struct _ServedPoolFunction: Sendable {
    let runner: any ChunkRunner
}

/// Runs `count` packed calls: the arguments of call `i` are at `input + i × argument stride`, its
/// result goes to `output + i × result stride`. Stops at the first call that throws.
@usableFromInline
typealias PackedRunner =
    @Sendable (_ input: UnsafeRawPointer, _ count: Int, _ output: UnsafeMutableRawPointer) ->
    PackedFailure?

/// The call of a packed chunk that threw, and its error.
@usableFromInline
struct PackedFailure {
    @usableFromInline let index: Int
    @usableFromInline let error: any Error

    @inlinable
    init(index: Int, error: any Error) {
        self.index = index
        self.error = error
    }
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
