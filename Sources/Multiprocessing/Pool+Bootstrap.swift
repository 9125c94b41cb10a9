// `Pool.bootstrap`: the first line of `main`, which turns a re-executed copy of the program into
// a worker.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension Pool {
    /// Hands the functions that workers run to the library. Call it first thing in `main`.
    ///
    /// Workers are started by executing the program again (or the executable given to
    /// ``Pool/init(processes:maxTasksPerChild:taskTimeout:maxMemoryPerChild:workerMemoryLimit:startTimeout:executable:logger:)``). In such a
    /// worker process this call serves tasks and never returns; in the parent it registers
    /// `errorTypes` and returns at once.
    ///
    /// ```swift
    /// let square = PoolFunction("square") { (x: Int) in x * x }
    ///
    /// @main struct App {
    ///     static func main() async throws {
    ///         Pool.bootstrap(serving: [square])
    ///         let pool = try Pool()
    ///         print(try await pool.map(square, 1...10))
    ///     }
    /// }
    /// ```
    ///
    /// Everything `main` does before this call also runs in every worker, so make it the first
    /// line. Workers are spawned (``StartMethod/spawn``), unless the environment variable
    /// `MULTIPROCESSING_START_METHOD` says `forkserver` (see
    /// ``bootstrap(serving:errorTypes:startMethod:)``). Workers run pool functions on Swift's
    /// concurrency thread pool while the main thread waits, so pool functions must not need the
    /// main actor.
    ///
    /// - Parameters:
    ///   - functions: Every function the workers may be asked to run. Names must be unique.
    ///   - errorTypes: `Codable` error types that should cross back to the caller as themselves
    ///     (see ``registerErrorType(_:)``).
    public static func bootstrap(
        serving functions: [any AnyPoolFunction], errorTypes: [any (Error & Codable & Sendable).Type] = []
    ) {
        bootstrap(serving: functions, errorTypes: errorTypes, startMethod: .spawn)
    }

    /// Hands the functions that workers run to the library, and chooses how workers of this
    /// program start. Call it first thing in `main`, before anything starts a thread.
    ///
    /// Like ``bootstrap(serving:errorTypes:)``; with ``StartMethod/forkServer`` this call forks
    /// the program once (while it runs one thread alone), and every worker of a pool that runs
    /// this program is a copy of that fork made here, which then serves: a worker starts in a
    /// fraction of a millisecond instead of the program's whole start.
    ///
    /// ```swift
    /// @main struct App {
    ///     static func main() async throws {
    ///         Pool.bootstrap(serving: [square], startMethod: .forkServer)
    ///         let pool = try Pool()
    ///         print(try await pool.map(square, 1...10))
    ///     }
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - functions: Every function the workers may be asked to run. Names must be unique.
    ///   - errorTypes: `Codable` error types that should cross back to the caller as themselves
    ///     (see ``registerErrorType(_:)``).
    ///   - startMethod: How workers of this program start (``StartMethod``); the environment
    ///     variable `MULTIPROCESSING_START_METHOD` (`spawn`, `forkserver`) overrides it.
    public static func bootstrap(
        serving functions: [any AnyPoolFunction], errorTypes: [any (Error & Codable & Sendable).Type] = [],
        startMethod: StartMethod
    ) {
        if getenv(workerEnvironmentKey) == nil {
            #if MPI
                // Under an MPI launcher, every rank but 0 becomes a node agent here, and never
                // returns: it relays its workers' errors, so it must know their types first.
                // (Rank 0 registers them again below; registering is idempotent.)
                for type in errorTypes { registerErrorType(type) }
                ClusterLaunch.bootstrap()
            #endif
            // First, before anything takes a lock: a forked worker goes on from here.
            _ = ForkServer.start(ForkServer.method(requested: startMethod))
        }
        for type in errorTypes { registerErrorType(type) }
        guard let raw = getenv(workerEnvironmentKey) else { return }
        let parentPID = Int32(String(cString: raw)) ?? 0
        unsetenv(workerEnvironmentKey)
        // Die with the parent; ignore the terminal's Ctrl-C, Ctrl-\ and hang-up.
        WorkerSignals.adopt(parentPID: parentPID)

        var table = emptyTable(String.self, (any ChunkRunner).self, capacity: functions.count)
        for function in functions {
            // Not a cast to `any ChunkRunner`: that looks the conformance up (PoolFunction.swift).
            let runner = function._served.runner
            if let existing = table[function.name], existing.signature != function.signature {
                fatalError(
                    "Pool.bootstrap(serving:): two functions are named '\(function.name)' "
                        + "(\(existing.signature) and \(function.signature))")
            }
            table[function.name] = runner
        }
        let served = table
        Task.detached {
            await WorkerLoop.serve(functions: served)
        }
        // The worker runs on the concurrency pool; this thread has nothing more to do.
        while true { pause() }
    }

    /// An empty dictionary with room for `capacity` entries, made by unspecialized generic code:
    /// code specialized for `[String: any ChunkRunner]` makes its storage's metadata from its
    /// mangled name, and the Swift runtime then checks `String: Hashable` by scanning every
    /// conformance record of every loaded library (0.35M instructions in a worker, callgrind);
    /// here the conformance comes from the caller.
    @_semantics("optimize.sil.specialize.generic.never")
    @inline(never)
    static func emptyTable<Key: Hashable, Value>(_: Key.Type, _: Value.Type, capacity: Int) -> [Key: Value] {
        Dictionary(minimumCapacity: capacity)
    }

    /// Lets errors of type `E` thrown in workers reach callers as `E` instead of ``RemoteError``.
    ///
    /// Register the type in both processes: list it in ``bootstrap(serving:errorTypes:)`` (which
    /// every process runs) or call this in the parent and in the worker executable.
    ///
    /// ```swift
    /// struct ParseError: Error, Codable { var line: Int }
    /// Pool.registerErrorType(ParseError.self)
    /// ```
    public static func registerErrorType<E: Error & Codable & Sendable>(_ type: E.Type) {
        ErrorTypeRegistry.shared.register(type)
    }
}
