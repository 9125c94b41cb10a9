// Errors thrown by pool functions in a worker, as the caller sees them.

/// An error that a pool function threw in a worker process.
///
/// Errors cross the process boundary as their type name and `description`. An error type that is
/// `Codable` and registered with ``Pool/registerErrorType(_:)`` (or listed in
/// ``Pool/bootstrap(serving:errorTypes:)``) comes back as itself instead.
///
/// ```swift
/// do {
///     _ = try pool.apply(parse, "x")
/// } catch let error as RemoteError {
///     print(error.typeName, error.message, error.workerPID)
/// }
/// ```
public struct RemoteError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The Swift type of the original error, e.g. `"MyApp.ParseError"`.
    public var typeName: String
    /// The original error's `description` (`String(describing:)`).
    public var message: String
    /// The pool function that threw it.
    public var functionName: String
    /// The worker process it was thrown in.
    public var workerPID: Int32

    /// Creates a remote error.
    public init(typeName: String, message: String, functionName: String, workerPID: Int32) {
        self.typeName = typeName
        self.message = message
        self.functionName = functionName
        self.workerPID = workerPID
    }

    /// The type, the function, the worker and the message, for people.
    public var description: String {
        "\(typeName) thrown by '\(functionName)' in worker \(workerPID): \(message)"
    }
}
