// The error the pool itself throws.

/// An error from the pool: a call it refused, a worker that died, a task that ran too long.
///
/// Match on ``code``; read ``description`` for what happened, in which function and worker, and
/// what to do about it. ``underlying`` holds the error behind this one: the ``SystemError`` of a
/// failed system call (a worker that could not be started), what the pool's initializer threw.
///
/// Values are made by the pool, and their properties are read-only: an error says what happened
/// where it happened, and nothing changes it on its way to you. (The public initializer that
/// earlier versions had is deprecated; to stand for a pool failure in your own tests, throw an
/// error of your own.)
///
/// ```swift
/// do {
///     let values = try pool.map(parse, lines)
/// } catch let error as PoolError where error.code == .workerLost {
///     print("a worker crashed:", error)
/// }
/// ```
public struct PoolError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Storage: UInt8, Sendable, CaseIterable {
            case notRunning = 1
            case stillRunning
            case invalidArgument
            case timeout
            case notReady
            case terminated
            case workerLost
            case taskTimedOut
            case cancelled
            case functionNotRegistered
            case encodingFailed
            case spawnFailed
            case initializerFailed
        }
        let storage: Storage

        /// The pool was closed or terminated and takes no new work.
        public static let notRunning = Code(storage: .notRunning)
        /// `join` was called before `close` or `terminate`.
        public static let stillRunning = Code(storage: .stillRunning)
        /// An argument was out of range (`processes`, `chunksize`, `maxTasksPerChild` below 1, …).
        public static let invalidArgument = Code(storage: .invalidArgument)
        /// A wait with a timeout (``AsyncResult/get(timeout:)``, a stream's `next(timeout:)`)
        /// ran out of time. The work goes on; wait again to get it.
        public static let timeout = Code(storage: .timeout)
        /// ``AsyncResult/successful()`` was asked before the result was ready, or
        /// ``AsyncResult/get(timeout:)`` was called in the result's own callback.
        public static let notReady = Code(storage: .notReady)
        /// The pool was terminated before the work finished.
        public static let terminated = Code(storage: .terminated)
        /// The worker running the task died (a signal, a trap, `exit`); the pool replaced it.
        public static let workerLost = Code(storage: .workerLost)
        /// The task ran longer than its timeout; its worker was killed and replaced.
        public static let taskTimedOut = Code(storage: .taskTimedOut)
        /// The result was cancelled with ``AsyncResult/cancel()``.
        public static let cancelled = Code(storage: .cancelled)
        /// The workers do not serve the function: it is missing from `Pool.bootstrap(serving:)`
        /// of the worker executable, or is registered there with other argument or result types.
        public static let functionNotRegistered = Code(storage: .functionNotRegistered)
        /// An argument or result could not be encoded or decoded.
        public static let encodingFailed = Code(storage: .encodingFailed)
        /// A worker process could not be started.
        public static let spawnFailed = Code(storage: .spawnFailed)
        /// The pool's initializer threw in the workers, so no worker could become ready.
        public static let initializerFailed = Code(storage: .initializerFailed)

        /// The code's name, e.g. `workerLost`.
        public var description: String { "\(storage)" }
    }

    /// What kind of failure this is.
    public let code: Code
    /// What happened, in words.
    public let message: String
    /// The pool function involved, if any.
    public let functionName: String?
    /// The worker process involved, if any.
    public let workerPID: Int32?
    /// The error behind this one, if any: for ``Code/spawnFailed``, the ``SystemError`` of the
    /// call that failed (`posix_spawn`'s `ENOENT` for an executable that is not there, `pipe2`'s
    /// `EMFILE` when the process has no descriptor left); for ``Code/initializerFailed``, what the
    /// initializer threw (the error itself when its type is registered with
    /// ``Pool/registerErrorType(_:)``, a ``RemoteError`` otherwise).
    public let underlying: (any Error & Sendable)?
    /// Where the worker crashed, for ``Code/workerLost``: the innermost frames of your code in the
    /// crashed thread of the Swift runtime's crash report, innermost first (at most five). Frames of
    /// the Swift runtime and standard library, of system libraries and of this package are left
    /// out. Empty when the worker died without a report (killed by a signal from outside, `exit`),
    /// when crash reports are off (`SWIFT_BACKTRACE=enable=no`), or when the report names none of
    /// your functions (a stripped executable). A frame has a file and line only when the worker
    /// executable has debug information; see <doc:ErrorsAndFaults>.
    public let crashFrames: [CrashFrame]

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: What kind of failure it is.
    ///   - message: What happened, in words.
    ///   - functionName: The pool function involved, if any.
    ///   - workerPID: The worker process involved, if any.
    ///   - underlying: The error behind this one, if any.
    @available(*, deprecated, message: "PoolError values are made by the pool; throw an error of your own instead")
    @_disfavoredOverload
    public init(
        _ code: Code, _ message: String, functionName: String? = nil, workerPID: Int32? = nil,
        underlying: (any Error & Sendable)? = nil
    ) {
        self.init(
            code, message, functionName: functionName, workerPID: workerPID, underlying: underlying, crashFrames: [])
    }

    /// The pool's own initializer (the public one is deprecated and disfavoured, so calls in the
    /// package, and in tests with `@testable import`, come here).
    init(
        _ code: Code, _ message: String, functionName: String? = nil, workerPID: Int32? = nil,
        underlying: (any Error & Sendable)? = nil, crashFrames: [CrashFrame] = []
    ) {
        self.code = code
        self.message = message
        self.functionName = functionName
        self.workerPID = workerPID
        self.underlying = underlying
        self.crashFrames = crashFrames
    }

    /// The code, the message and the underlying error, for people.
    public var description: String {
        var text = "PoolError.\(code): \(message)"
        if let underlying { text += " (underlying error: \(underlying))" }
        return text
    }
}
