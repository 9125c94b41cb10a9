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

    /// Declares a pool function with a synchronous body.
    /// - Parameters:
    ///   - name: A name unique among the functions the workers serve, the same in every process.
    ///   - body: What the worker runs. Errors it throws reach the caller (see ``RemoteError``).
    @inlinable
    public init(_ name: String, _ body: @escaping @Sendable (repeat each Argument) throws -> Result) {
        self.name = name
        self.signatureFingerprint = Self.makeSignatureFingerprint()
        self.body = { (arguments: repeat each Argument) in try body(repeat each arguments) }
        self.syncBody = body
        let packedRunner = Self.makePackedRunner(body)
        self.packedRunner = packedRunner
        self.packedCallStride = packedRunner == nil ? nil : PackedLayout.stride(of: repeat (each Argument).self)
    }

    /// The loop a worker runs over a chunk of packed items: built here, inlined where the
    /// function is declared, so that it is compiled for the concrete types and loads, calls and
    /// stores without any generic overhead per item. Nil unless every argument and the result
    /// are plain numbers.
    @inlinable
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
    public init(_ name: String, _ body: @escaping @Sendable (repeat each Argument) async throws -> Result) {
        self.name = name
        self.signatureFingerprint = Self.makeSignatureFingerprint()
        self.body = body
        self.syncBody = nil
        self.packedRunner = nil
        self.packedCallStride = nil
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
        var arguments: [String] = []
        for type in repeat (each Argument).self { arguments.append(_typeName(type, qualified: true)) }
        return "(\(arguments.joined(separator: ", "))) -> \(_typeName(Result.self, qualified: true))"
    }

    @usableFromInline
    static func makeSignatureFingerprint() -> UInt64 { fingerprint(signature) }
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
        self.signatureFingerprint = Self.makeSignatureFingerprint()
        self.body = { (arguments: repeat each Argument) in try wrapped(repeat each arguments) }
        self.syncBody = wrapped
        self.packedRunner = nil
        self.packedCallStride = nil
    }

    /// Declares a pool function whose `async` body returns nothing.
    /// - Parameters:
    ///   - name: A name unique among the functions the workers serve, the same in every process.
    ///   - body: What the worker runs.
    @_disfavoredOverload
    public init(_ name: String, _ body: @escaping @Sendable (repeat each Argument) async throws -> Void) {
        self.name = name
        self.signatureFingerprint = Self.makeSignatureFingerprint()
        self.body = { (arguments: repeat each Argument) in
            try await body(repeat each arguments)
            return PoolVoid()
        }
        self.syncBody = nil
        self.packedRunner = nil
        self.packedCallStride = nil
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
