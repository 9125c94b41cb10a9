// `withPool`: a pool for the length of a closure, like Python's `with Pool() as p:`.

public import Logging

/// Runs `body` with a new pool made from `configuration` and terminates the pool when `body`
/// returns or throws, like Python's `with Pool(…) as p:`. Work still running then is killed; get
/// your results inside.
///
/// ```swift
/// var configuration = Pool.Configuration(processes: 4)
/// configuration.initializer = try .init(connect, "db://local")
/// let rows = try withPool(configuration: configuration) { pool in
///     try pool.map(query, ids)
/// }
/// ```
///
/// - Parameters:
///   - configuration: The pool's configuration; see ``Pool/Configuration``.
///   - body: What to do with the pool.
/// - Throws: what ``Pool/init(_:)`` throws, and what `body` throws.
public func withPool<T>(configuration: Pool.Configuration, _ body: (Pool) throws -> T) throws -> T {
    let pool = try Pool(configuration)
    defer {
        pool.terminate()
        try? pool.join()
    }
    return try body(pool)
}

/// Runs the async `body` with a new pool made from `configuration` and terminates the pool when
/// `body` returns or throws.
///
/// ```swift
/// let configuration = Pool.Configuration(processes: 4, taskTimeout: .seconds(30))
/// let squares = try await withPool(configuration: configuration) { pool in
///     try await pool.map(square, 0..<100)
/// }
/// ```
///
/// `body` runs on the caller's actor (the main actor, when called from an async `main` or a
/// `@MainActor` function), as `withTaskGroup`'s does: it need not be `@Sendable`, may use the
/// caller's state, and its result need not be `Sendable`.
///
/// - Parameters:
///   - configuration: The pool's configuration; see ``Pool/Configuration``.
///   - isolation: The actor `body` runs on; the caller's, by default.
///   - body: What to do with the pool.
/// - Throws: what ``Pool/init(_:)`` throws, and what `body` throws.
public func withPool<T>(
    configuration: Pool.Configuration, isolation: isolated (any Actor)? = #isolation,
    _ body: (Pool) async throws -> T
) async throws -> T {
    let pool = try Pool(configuration)
    do {
        let result = try await body(pool)
        pool.terminate()
        try? await pool.joined()
        return result
    } catch {
        pool.terminate()
        try? await pool.joined()
        throw error
    }
}

/// Runs `body` with a new pool and terminates the pool when `body` returns or throws, like
/// Python's `with Pool() as p:`. Work still running then is killed; get your results inside.
///
/// ```swift
/// let squares = try withPool(processes: 4) { pool in
///     try pool.map(square, 0..<100)
/// }
/// ```
///
/// The same as ``withPool(configuration:_:)`` with a ``Pool/Configuration`` of these values.
///
/// - Parameters: the same as ``Pool/init(processes:maxTasksPerChild:taskTimeout:maxMemoryPerChild:workerMemoryLimit:startTimeout:executable:logger:)``.
/// - Throws: what `Pool.init` throws, and what `body` throws.
public func withPool<T>(
    processes: Int? = nil, maxTasksPerChild: Int? = nil, taskTimeout: Duration? = nil, maxMemoryPerChild: Int? = nil,
    workerMemoryLimit: Int? = nil, startTimeout: Duration? = Pool.defaultStartTimeout, executable: String? = nil,
    logger: Logger? = nil, _ body: (Pool) throws -> T
) throws -> T {
    try withPool(
        configuration: Pool.Configuration(
            processes: processes, maxTasksPerChild: maxTasksPerChild, taskTimeout: taskTimeout,
            maxMemoryPerChild: maxMemoryPerChild, workerMemoryLimit: workerMemoryLimit, startTimeout: startTimeout,
            executable: executable, logger: logger),
        body)
}

/// Runs the async `body` with a new pool and terminates the pool when `body` returns or throws.
///
/// ```swift
/// let squares = try await withPool(processes: 4) { pool in
///     try await pool.map(square, 0..<100)
/// }
/// ```
///
/// The same as ``withPool(configuration:isolation:_:)`` with a ``Pool/Configuration`` of these
/// values. `body` runs on the caller's actor, so an async `main` can pass it a plain closure.
///
/// - Parameters: the same as ``Pool/init(processes:maxTasksPerChild:taskTimeout:maxMemoryPerChild:workerMemoryLimit:startTimeout:executable:logger:)``,
///   and `isolation`, the actor `body` runs on (the caller's, by default).
/// - Throws: what `Pool.init` throws, and what `body` throws.
public func withPool<T>(
    processes: Int? = nil, maxTasksPerChild: Int? = nil, taskTimeout: Duration? = nil, maxMemoryPerChild: Int? = nil,
    workerMemoryLimit: Int? = nil, startTimeout: Duration? = Pool.defaultStartTimeout, executable: String? = nil,
    logger: Logger? = nil, isolation: isolated (any Actor)? = #isolation, _ body: (Pool) async throws -> T
) async throws -> T {
    try await withPool(
        configuration: Pool.Configuration(
            processes: processes, maxTasksPerChild: maxTasksPerChild, taskTimeout: taskTimeout,
            maxMemoryPerChild: maxMemoryPerChild, workerMemoryLimit: workerMemoryLimit, startTimeout: startTimeout,
            executable: executable, logger: logger),
        isolation: isolation, body)
}
