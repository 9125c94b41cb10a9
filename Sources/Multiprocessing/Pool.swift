// The public face of the pool: creating it, its lifecycle (close, terminate, join) and what it
// tells about itself. The calls that submit work are in Pool+Apply/Map/Imap.swift.

import CoreMetrics
public import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A pool of worker processes that runs ``PoolFunction``s in parallel: Python's
/// `multiprocessing.Pool` for Swift.
///
/// Each worker is a separate OS process running this program again (see
/// ``bootstrap(serving:errorTypes:)``), so a crash, a leak or a runaway task in one cannot take
/// the caller down: a worker that dies fails only the tasks it was running, and is replaced.
///
/// ```swift
/// let square = PoolFunction("square") { (x: Int) in x * x }
///
/// @main struct App {
///     static func main() async throws {
///         Pool.bootstrap(serving: [square])
///         let pool = try Pool(processes: 4)
///         let squares = try await pool.map(square, 0..<100)
///         pool.close()
///         try pool.join()
///     }
/// }
/// ```
///
/// A pool is safe to use from many threads and tasks at once. Stop it with ``close()`` then
/// ``join()`` (finish the submitted work) or ``terminate()`` (kill the workers now); a pool
/// released while running terminates its workers. ``withPool(processes:maxTasksPerChild:taskTimeout:maxMemoryPerChild:workerMemoryLimit:startTimeout:executable:logger:_:)-394ew``
/// does that for you, like Python's `with Pool() as p:`.
///
/// Every setting of a pool is a property of a ``Configuration`` value: create a pool from one with
/// ``init(_:)``, or with the labelled initializers, which build one.
public final class Pool: Sendable {
    let core: PoolCore

    /// The number of worker processes the pool keeps.
    public let processes: Int

    /// The pids of the workers that take tasks now. Replacements (after `maxTasksPerChild`, a
    /// crash or a timeout) show up here with new pids. The first time, it waits until the pool's
    /// first workers have all been started.
    public var workerPIDs: [Int32] { core.workerPIDs }

    /// The configuration the pool was created with, its defaults resolved: ``Configuration/processes``
    /// is the number of workers (``processes``) and ``Configuration/executable`` the program they
    /// run. `Pool(pool.configuration)` creates a pool like this one.
    public let configuration: Configuration

    /// Creates a pool from a configuration and starts its workers. Every other initializer
    /// builds a ``Configuration`` and calls this one.
    ///
    /// It returns once the first worker process runs (not once it is ready: its first task
    /// waits for it); the others are started meanwhile, on a thread of the pool's, and
    /// ``workerPIDs`` waits for them, so a new pool lists all its workers. One of them that cannot
    /// be started once the first one could is started again, as a replacement would be; several
    /// failures in a row break the pool (its calls then fail, naming the last one).
    ///
    /// ```swift
    /// var configuration = Pool.Configuration(processes: 4)
    /// configuration.initializer = try .init(connect, "db://local")
    /// configuration.taskTimeout = .seconds(30)
    /// let pool = try Pool(configuration)
    /// ```
    ///
    /// - Parameter configuration: How many workers, what they run first, what bounds their
    ///   lives, the program they run, where the pool logs; see ``Configuration``.
    /// - Throws: ``PoolError`` `.invalidArgument` naming the property out of range (see
    ///   ``Configuration/validate()``); `.spawnFailed` when the workers cannot be started.
    public init(_ configuration: Configuration) throws {
        if getenv(workerEnvironmentKey) != nil {
            // A worker whose `main` creates a pool before `Pool.bootstrap` would start workers of
            // its own, which would do the same: a process explosion. Stop at the first.
            fatalError(
                "A Pool was created in a worker process before Pool.bootstrap(serving:) ran: call "
                    + "Pool.bootstrap(serving:) on the first line of main, before creating any Pool.")
        }
        try configuration.validate()
        var count = configuration.processes ?? availableCPUCount()
        guard count >= 1 else {
            throw PoolError(.invalidArgument, "processes must be at least 1, not \(count)")
        }
        let executable =
            configuration.executable ?? Pool.defaultExecutable.withLock { $0 } ?? currentExecutablePath()
        var resolved = configuration
        resolved.processes = count
        resolved.executable = executable
        let startFrame = Pool.startFrame(
            initializer: configuration.initializer.map { ($0.functionName, $0.signature, $0.arguments) },
            maxMemoryPerChild: configuration.maxMemoryPerChild,
            workerMemoryLimit: configuration.workerMemoryLimit)
        var transport: (any WorkerTransport)?
        #if MPI
            if let cluster = configuration.cluster,
                let (clusterTransport, processes) = try Pool.clusterTransport(
                    cluster, configuration: configuration, startFrame: startFrame)
            {
                transport = clusterTransport
                count = processes
            }
        #endif
        resolved.processes = count
        let options = PoolCore.Options(
            executable: executable,
            arguments: configuration.workerArguments(executable: executable),
            startFrame: startFrame,
            logger: Pool.logger(configuration),
            processes: count, maxTasksPerChild: configuration.maxTasksPerChild,
            taskTimeout: configuration.taskTimeout, maxMemoryPerChild: configuration.maxMemoryPerChild,
            workerMemoryLimit: configuration.workerMemoryLimit, startTimeout: configuration.startTimeout,
            metrics: PoolMetrics(
                label: configuration.label, factory: configuration.metricsFactory ?? MetricsSystem.factory),
            crashReports: configuration.crashReports)
        do {
            core = try PoolCore(options: options, transport: transport)
        } catch let error as PoolError {
            throw error  // the transport's own, with the failed call as its underlying error
        } catch {
            throw PoolError(.spawnFailed, "the pool could not set up its event loop: \(error)")
        }
        self.processes = count
        self.configuration = resolved
        try core.start()
        options.logger.debug(
            "pool started", metadata: ["processes": "\(count)", "executable": "\(options.executable)"])
    }

    /// Creates a pool and starts its workers.
    ///
    /// ```swift
    /// let pool = try Pool(processes: 4, maxTasksPerChild: 100, taskTimeout: .seconds(30))
    /// ```
    ///
    /// The same as ``init(_:)`` with a ``Configuration`` of these values.
    ///
    /// - Parameters:
    ///   - processes: How many workers; default: the CPUs this process may run on.
    ///   - maxTasksPerChild: Replace a worker after it has run this many tasks (a chunk of a
    ///     `map` is one task); nil keeps workers for the pool's life.
    ///   - taskTimeout: Kill a worker whose task (chunk) runs longer and fail that task with
    ///     ``PoolError/Code/taskTimedOut``; nil for no limit.
    ///   - maxMemoryPerChild: Replace a worker whose resident memory (RSS) is above this many bytes
    ///     after a task, once that task's result is delivered (for leaks in the code a task
    ///     calls); nil never replaces a worker for its memory.
    ///   - workerMemoryLimit: A hard limit, enforced by the kernel, on the memory each worker may
    ///     allocate (bytes; `RLIMIT_DATA`: heap, anonymous mappings and thread stacks, set by the
    ///     worker before its initializer). A task that needs more fails with
    ///     ``PoolError/Code/workerLost``, saying the limit stopped it; the worker is replaced, the
    ///     parent is unharmed. A limit too low for a worker to run breaks the pool with
    ///     ``PoolError/Code/initializerFailed``. nil for no limit.
    ///   - startTimeout: How long a new worker may take to become ready (reach
    ///     ``bootstrap(serving:errorTypes:)`` and run the initializer). A worker not ready by then
    ///     is killed and counts as an initializer failure: three in a row break the pool with
    ///     ``PoolError/Code/initializerFailed``. Default: ``defaultStartTimeout`` (2 minutes); nil
    ///     waits forever.
    ///   - executable: The program workers run; nil runs this program again (its `main` must
    ///     call ``bootstrap(serving:errorTypes:)`` first). See also ``setExecutable(_:)``.
    ///   - logger: Where the pool logs worker starts, exits and faults; default: nowhere.
    /// - Throws: ``PoolError`` `.invalidArgument` for a count below 1, a timeout or memory size
    ///   not above zero; `.spawnFailed` when the workers cannot be started.
    public convenience init(
        processes: Int? = nil, maxTasksPerChild: Int? = nil, taskTimeout: Duration? = nil,
        maxMemoryPerChild: Int? = nil, workerMemoryLimit: Int? = nil,
        startTimeout: Duration? = Pool.defaultStartTimeout, executable: String? = nil, logger: Logger? = nil
    ) throws {
        try self.init(
            Configuration(
                processes: processes, maxTasksPerChild: maxTasksPerChild, taskTimeout: taskTimeout,
                maxMemoryPerChild: maxMemoryPerChild, workerMemoryLimit: workerMemoryLimit,
                startTimeout: startTimeout, executable: executable, logger: logger))
    }

    /// How long a new worker may take to become ready unless the pool says otherwise: 2 minutes,
    /// long enough for an initializer that loads a large model or opens connections, short
    /// enough that a worker stuck before ``bootstrap(serving:errorTypes:)`` fails the pool's
    /// calls instead of leaving them waiting forever.
    public static let defaultStartTimeout: Duration = .seconds(120)

    /// Creates a pool whose every worker runs `initializer(initArgs…)` once when it starts,
    /// replacements included.
    ///
    /// ```swift
    /// let connect = PoolFunction("connect") { (url: String) -> Void in Database.shared.open(url) }
    /// let pool = try Pool(processes: 4, initializer: connect, initArgs: ("db://local"))
    /// ```
    ///
    /// If the initializer throws in every worker the pool starts (three in a row), the pool
    /// gives up and fails all work with ``PoolError/Code/initializerFailed``. The same as
    /// ``init(_:)`` with a ``Configuration`` whose ``Configuration/initializer`` is
    /// `try .init(initializer, initArgs…)`.
    ///
    /// - Parameters:
    ///   - processes: How many workers; default: the CPUs this process may run on.
    ///   - initializer: A pool function the workers serve, run once per worker.
    ///   - initArgs: Its arguments.
    ///   - maxTasksPerChild: Replace a worker after it has run this many tasks.
    ///   - taskTimeout: Kill a worker whose task runs longer.
    ///   - maxMemoryPerChild: Replace a worker whose resident memory is above this many bytes
    ///     after a task.
    ///   - workerMemoryLimit: A kernel-enforced limit on the memory a worker may allocate (bytes).
    ///   - startTimeout: How long a new worker may take to run the initializer and become ready;
    ///     nil waits forever.
    ///   - executable: The program workers run; nil runs this program again.
    ///   - logger: Where the pool logs; default: nowhere.
    /// - Throws: ``PoolError`` `.invalidArgument`, `.encodingFailed` (initArgs), `.spawnFailed`.
    public convenience init<each A, R>(
        processes: Int? = nil, initializer: PoolFunction<repeat each A, R>, initArgs: (repeat each A),
        maxTasksPerChild: Int? = nil, taskTimeout: Duration? = nil, maxMemoryPerChild: Int? = nil,
        workerMemoryLimit: Int? = nil, startTimeout: Duration? = Pool.defaultStartTimeout, executable: String? = nil,
        logger: Logger? = nil
    ) throws where repeat each A: Codable, R: Codable {
        try self.init(
            Configuration(
                processes: processes, initializer: try Configuration.Initializer(initializer, repeat each initArgs),
                maxTasksPerChild: maxTasksPerChild, taskTimeout: taskTimeout, maxMemoryPerChild: maxMemoryPerChild,
                workerMemoryLimit: workerMemoryLimit, startTimeout: startTimeout, executable: executable,
                logger: logger))
    }

    deinit {
        if core.lifecycle == .running {
            core.logger.warning(
                "a Pool was released without close() or terminate(): terminating its workers",
                metadata: ["processes": "\(processes)"])
            core.terminate()
        }
    }

    // MARK: - Lifecycle

    /// Stops taking new work. Work already submitted still runs; then the workers exit.
    /// An `imap` stream still open reads the rest of its input now (as CPython's does), so that
    /// ``join()`` can finish; its results wait for you. Calling it again, or after
    /// ``terminate()``, does nothing.
    public func close() {
        if core.lifecycle == .running { core.logger.debug("pool closed", metadata: ["processes": "\(processes)"]) }
        core.close()
    }

    /// Kills the workers now. Every result not yet complete fails with
    /// ``PoolError/Code/terminated``; nothing waits forever. Calling it again does nothing.
    public func terminate() {
        if core.lifecycle != .terminated {
            core.logger.debug("pool terminated", metadata: ["processes": "\(processes)"])
        }
        core.terminate()
    }

    /// Waits until every worker has exited and every callback has run: after ``close()``, once
    /// all submitted work is done; after ``terminate()``, once the killed workers are reaped.
    /// Calling it again is fine.
    ///
    /// Called from a callback, it returns once everything else is done, its own callback (and
    /// those of callbacks waiting in it) excepted: the callbacks queued meanwhile run inside it.
    ///
    /// - Throws: ``PoolError/Code/stillRunning`` if neither ``close()`` nor ``terminate()`` was
    ///   called first.
    public func join() throws {
        guard core.lifecycle != .running else {
            throw PoolError(.stillRunning, "join() needs close() or terminate() first")
        }
        _ = core.stopped.wait(until: nil, helping: core.callbacks)
        core.callbacks.waitUntilDrained()
    }

    /// Waits, without blocking a thread, until every worker has exited and every callback has
    /// run (see ``join()``).
    /// - Throws: ``PoolError/Code/stillRunning`` if neither ``close()`` nor ``terminate()`` was
    ///   called first; `CancellationError` if the waiting task is cancelled.
    public func joined() async throws {
        guard core.lifecycle != .running else {
            throw PoolError(.stillRunning, "joined() needs close() or terminate() first")
        }
        _ = try await core.stopped.value(onCancel: {})
        try await core.callbacks.drained()
    }

    // MARK: - Worker executable

    static let defaultExecutable = Mutex<String?>(nil)

    /// Sets the program that pools created afterwards start as workers, when their `executable`
    /// argument is nil (Python's `set_executable`). nil goes back to this program itself.
    ///
    /// Use it when the caller's `main` cannot call ``bootstrap(serving:errorTypes:)`` (a test
    /// runner, a plugin): build a small executable whose `main` calls `bootstrap` with the same
    /// functions, and point the pool at it.
    public static func setExecutable(_ path: String?) {
        defaultExecutable.withLock { $0 = path }
    }

    /// The first frame a worker gets: the initializer call, if any; the resident memory above
    /// which the worker asks to be replaced after a task; the limit it sets on the memory it may
    /// allocate (0: none).
    static func startFrame(
        initializer: (name: String, signature: UInt64, arguments: [UInt8])?, maxMemoryPerChild: Int?,
        workerMemoryLimit: Int?
    ) -> [UInt8] {
        var writer = ByteWriter()
        let frame = writer.beginFrame(.start)
        if let initializer {
            writer.writeUInt8(1)
            writer.writeString(initializer.name)
            writer.writeUInt64(initializer.signature)
            writer.writeUInt32(UInt32(initializer.arguments.count))
            writer.writeBytes(initializer.arguments)
        } else {
            writer.writeUInt8(0)
        }
        writer.writeUInt64(UInt64(maxMemoryPerChild ?? 0))
        writer.writeUInt64(UInt64(workerMemoryLimit ?? 0))
        writer.finishFrame(startingAt: frame)
        return writer.bytes
    }
}
