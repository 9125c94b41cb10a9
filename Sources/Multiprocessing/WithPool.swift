// `withPool`: a pool for the length of a closure, like Python's `with Pool() as p:`.

public import Logging

/// Runs `body` with a new pool and terminates the pool when `body` returns or throws, like
/// Python's `with Pool() as p:`. Work still running then is killed; get your results inside.
///
/// ```swift
/// let squares = try withPool(processes: 4) { pool in
///     try pool.map(square, 0..<100)
/// }
/// ```
///
/// - Parameters: the same as ``Pool/init(processes:maxTasksPerChild:taskTimeout:maxMemoryPerChild:workerMemoryLimit:startTimeout:executable:logger:)``.
/// - Throws: what `Pool.init` throws, and what `body` throws.
public func withPool<T>(
    processes: Int? = nil, maxTasksPerChild: Int? = nil, taskTimeout: Duration? = nil, maxMemoryPerChild: Int? = nil,
    workerMemoryLimit: Int? = nil, startTimeout: Duration? = Pool.defaultStartTimeout, executable: String? = nil,
    logger: Logger? = nil, _ body: (Pool) throws -> T
) throws -> T {
    let pool = try Pool(
        processes: processes, maxTasksPerChild: maxTasksPerChild, taskTimeout: taskTimeout,
        maxMemoryPerChild: maxMemoryPerChild, workerMemoryLimit: workerMemoryLimit, startTimeout: startTimeout,
        executable: executable, logger: logger)
    defer {
        pool.terminate()
        try? pool.join()
    }
    return try body(pool)
}

/// Runs the async `body` with a new pool and terminates the pool when `body` returns or throws.
///
/// ```swift
/// let squares = try await withPool(processes: 4) { pool in
///     try await pool.map(square, 0..<100)
/// }
/// ```
///
/// - Parameters: the same as ``Pool/init(processes:maxTasksPerChild:taskTimeout:maxMemoryPerChild:workerMemoryLimit:startTimeout:executable:logger:)``.
/// - Throws: what `Pool.init` throws, and what `body` throws.
public func withPool<T>(
    processes: Int? = nil, maxTasksPerChild: Int? = nil, taskTimeout: Duration? = nil, maxMemoryPerChild: Int? = nil,
    workerMemoryLimit: Int? = nil, startTimeout: Duration? = Pool.defaultStartTimeout, executable: String? = nil,
    logger: Logger? = nil, _ body: (Pool) async throws -> T
) async throws -> T {
    let pool = try Pool(
        processes: processes, maxTasksPerChild: maxTasksPerChild, taskTimeout: taskTimeout,
        maxMemoryPerChild: maxMemoryPerChild, workerMemoryLimit: workerMemoryLimit, startTimeout: startTimeout,
        executable: executable, logger: logger)
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
