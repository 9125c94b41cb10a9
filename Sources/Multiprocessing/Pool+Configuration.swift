// `Pool.Configuration`: everything a pool is created with, as one value (processes, the
// workers' initializer, the limits on a worker's life, the worker executable and its arguments,
// the logger), and its validation. `Pool.init(_:)` takes one; the labelled initializers build one.

import CoreMetrics
public import Logging

extension Pool {
    /// Everything a pool is created with, as one value: how many workers, what each runs first,
    /// what bounds a worker's life, which program workers run, where the pool logs.
    ///
    /// Build one, change what you need, and hand it to ``Pool/init(_:)`` or
    /// ``withPool(configuration:_:)-5uj6t``. Every property has the default the labelled
    /// initializers use, so `Pool(Pool.Configuration())` is `Pool()`.
    ///
    /// ```swift
    /// var configuration = Pool.Configuration(processes: 4)
    /// configuration.initializer = try .init(connect, "db://local")
    /// configuration.taskTimeout = .seconds(30)
    /// configuration.maxMemoryPerChild = 512 << 20
    /// let pool = try Pool(configuration)
    /// ```
    ///
    /// A configuration is a plain value: keep one to create several pools alike, or read a
    /// pool's own from ``Pool/configuration``. Nothing is checked until a pool is created from it
    /// (or ``validate()`` is called): then a value out of range throws
    /// ``PoolError/Code/invalidArgument`` naming the property.
    public struct Configuration: Sendable {
        /// How many worker processes the pool keeps; at least 1. Default: nil, the CPUs this
        /// process may run on.
        public var processes: Int?

        /// The pool function every worker runs once when it starts, replacements included
        /// (Python's `initializer` and `initargs`). Default: nil, none.
        ///
        /// If it throws (or does not finish within ``startTimeout``) in three workers in a row,
        /// the pool fails all work with ``PoolError/Code/initializerFailed``.
        public var initializer: Initializer?

        /// Replace a worker after it has run this many tasks (a chunk of a `map` is one task);
        /// at least 1. Default: nil, workers stay for the pool's life.
        public var maxTasksPerChild: Int?

        /// Kill a worker whose task (chunk) runs longer, and fail that task with
        /// ``PoolError/Code/taskTimedOut``; above zero. Default: nil, no limit.
        public var taskTimeout: Duration?

        /// Replace a worker whose resident memory (RSS) is above this many bytes after a task,
        /// once that task's result is delivered; above zero. Default: nil, never.
        public var maxMemoryPerChild: Int?

        /// A hard limit, enforced by the kernel, on the memory each worker may allocate (bytes;
        /// `RLIMIT_DATA`: heap, anonymous mappings and thread stacks, set by the worker before its
        /// initializer); above zero. A task that needs more fails with
        /// ``PoolError/Code/workerLost``; a limit too low for a worker to run breaks the pool with
        /// ``PoolError/Code/initializerFailed``. Default: nil, no limit.
        public var workerMemoryLimit: Int?

        /// How long a new worker may take to become ready (reach
        /// ``Pool/bootstrap(serving:errorTypes:)`` and run the ``initializer``); above zero. A
        /// worker not ready by then is killed and counts as an initializer failure. Default:
        /// ``Pool/defaultStartTimeout`` (2 minutes); nil waits forever.
        public var startTimeout: Duration?

        #if MPI
            /// Where the workers run when the program is an MPI job (the package's `MPI` trait):
            /// ``Pool/Cluster/mpi`` runs them under the job's node agents, on their nodes. Default:
            /// nil, on this machine. Without an MPI launcher a cluster pool runs on this machine too.
            public var cluster: Pool.Cluster?
        #endif

        /// The program workers run. Default: nil, the one set with ``Pool/setExecutable(_:)``,
        /// else this program again (its `main` must call
        /// ``Pool/bootstrap(serving:errorTypes:)`` first).
        public var executable: String?

        /// The command-line arguments workers get after the program's path (their
        /// `CommandLine.arguments.dropFirst()`). Default: nil, this process's own
        /// (`CommandLine.arguments.dropFirst()`) when workers run this program again, as CPython's
        /// `spawn` gives workers the parent's `sys.argv`, and none when they run another
        /// ``executable``.
        ///
        /// Workers run the program's `main` up to ``Pool/bootstrap(serving:errorTypes:)``, so
        /// whatever runs before it sees these arguments: a command line parsed there (rather than
        /// after `Pool.bootstrap`, see <doc:HowWorkersStart>) parses in every worker as it did in
        /// the parent. Set `[]` for none, or what a separate worker executable expects.
        public var arguments: [String]?

        /// Where the pool logs worker starts, exits and faults. Default: nil, nowhere.
        public var logger: Logger?

        /// The pool's name in its metrics (the `pool` dimension of every metric, see
        /// <doc:StatisticsAndMetrics>) and in its log messages (the `pool` metadata); not empty.
        /// Give each pool of a program its own. Default: `"default"`.
        public var label: String

        /// The factory the pool's metrics come from; nil: `MetricsSystem.factory` when the pool
        /// is created (the bootstrapped one, or one bound with `withMetricsFactory`). For tests,
        /// which must not bootstrap the process-wide metrics system.
        var metricsFactory: (any MetricsFactory)?

        /// Whether the crash report the Swift runtime writes to a crashing worker's stderr (a
        /// backtrace of every thread, dozens of lines) goes on to this process's stderr with the
        /// rest of the worker's output. Default: ``CrashReports-swift.struct/forward``.
        ///
        /// ``CrashReports-swift.struct/suppress`` keeps the report out of your stderr; the
        /// error still says where the worker crashed (``PoolError/crashFrames``), and everything
        /// else workers print still passes.
        ///
        /// ```swift
        /// var configuration = Pool.Configuration()
        /// configuration.crashReports = .suppress
        /// ```
        public var crashReports: CrashReports = .forward

        /// Creates a configuration; every parameter left out keeps its default.
        ///
        /// ```swift
        /// let configuration = Pool.Configuration(processes: 2, maxTasksPerChild: 100)
        /// ```
        ///
        /// - Parameters:
        ///   - processes: How many workers; nil: the CPUs this process may run on.
        ///   - initializer: What every worker runs once when it starts; nil: nothing.
        ///   - maxTasksPerChild: Replace a worker after this many tasks; nil: never.
        ///   - taskTimeout: Kill a worker whose task runs longer; nil: no limit.
        ///   - maxMemoryPerChild: Replace a worker whose resident memory is above this many bytes
        ///     after a task; nil: never.
        ///   - workerMemoryLimit: A kernel-enforced limit on the memory a worker may allocate
        ///     (bytes); nil: no limit.
        ///   - startTimeout: How long a new worker may take to become ready; default
        ///     ``Pool/defaultStartTimeout``, nil waits forever.
        ///   - executable: The program workers run; nil: this program again.
        ///   - arguments: The workers' command-line arguments; nil: this process's own when
        ///     workers run this program, none for another executable.
        ///   - logger: Where the pool logs; nil: nowhere.
        ///   - label: The pool's name in its metrics and log messages; default `"default"`.
        public init(
            processes: Int? = nil, initializer: Initializer? = nil, maxTasksPerChild: Int? = nil,
            taskTimeout: Duration? = nil, maxMemoryPerChild: Int? = nil, workerMemoryLimit: Int? = nil,
            startTimeout: Duration? = Pool.defaultStartTimeout, executable: String? = nil, arguments: [String]? = nil,
            logger: Logger? = nil, label: String = "default"
        ) {
            self.processes = processes
            self.initializer = initializer
            self.maxTasksPerChild = maxTasksPerChild
            self.taskTimeout = taskTimeout
            self.maxMemoryPerChild = maxMemoryPerChild
            self.workerMemoryLimit = workerMemoryLimit
            self.startTimeout = startTimeout
            self.executable = executable
            self.arguments = arguments
            self.logger = logger
            self.label = label
        }

        /// Checks every value against its range, as creating a pool does, without starting
        /// anything.
        ///
        /// ```swift
        /// var configuration = Pool.Configuration()
        /// configuration.maxTasksPerChild = 0
        /// try configuration.validate()   // throws: maxTasksPerChild must be at least 1, not 0
        /// ```
        ///
        /// - Throws: ``PoolError`` ``PoolError/Code/invalidArgument`` naming the first property
        ///   out of range: `processes` or `maxTasksPerChild` below 1, `taskTimeout`,
        ///   `maxMemoryPerChild`, `workerMemoryLimit` or `startTimeout` not above zero, `label`
        ///   empty.
        public func validate() throws(PoolError) {
            if let processes, processes < 1 {
                throw PoolError(.invalidArgument, "processes must be at least 1, not \(processes)")
            }
            if let maxTasksPerChild, maxTasksPerChild < 1 {
                throw PoolError(.invalidArgument, "maxTasksPerChild must be at least 1, not \(maxTasksPerChild)")
            }
            if let taskTimeout, taskTimeout <= .zero {
                throw PoolError(.invalidArgument, "taskTimeout must be above zero, not \(taskTimeout)")
            }
            if let maxMemoryPerChild, maxMemoryPerChild < 1 {
                throw PoolError(.invalidArgument, "maxMemoryPerChild must be above zero, not \(maxMemoryPerChild)")
            }
            if let workerMemoryLimit, workerMemoryLimit < 1 {
                throw PoolError(.invalidArgument, "workerMemoryLimit must be above zero, not \(workerMemoryLimit)")
            }
            if let startTimeout, startTimeout <= .zero {
                throw PoolError(.invalidArgument, "startTimeout must be above zero, not \(startTimeout)")
            }
            if label.isEmpty {
                throw PoolError(.invalidArgument, "label must not be empty")
            }
        }
    }
}

extension Pool.Configuration {
    /// What becomes of the crash report the Swift runtime writes to a crashing worker's stderr:
    /// passed on to the parent's stderr, or kept out of it. Either way the pool reads it, so the
    /// error names where the worker crashed (see <doc:ErrorsAndFaults>).
    public struct CrashReports: Sendable, Hashable, CustomStringConvertible {
        private enum Kind: Hashable {
            case forward, suppress
        }
        private let kind: Kind

        /// The report goes on to the parent's stderr with the rest of the worker's stderr (the
        /// default).
        public static let forward = CrashReports(kind: .forward)

        /// The report, from its first line (`*** Signal 4: Backtracing from 0x…`) to the end of
        /// the dying worker's stderr, is not passed on to the parent's stderr; what the worker
        /// printed before it (the runtime's one-line `Fatal error: …` message included) still
        /// is. ``PoolError/crashFrames`` and the error's description keep the crash location.
        public static let suppress = CrashReports(kind: .suppress)

        /// `forward` or `suppress`.
        public var description: String {
            switch kind {
            case .forward: "forward"
            case .suppress: "suppress"
            }
        }
    }
}

extension Pool.Configuration {
    /// The arguments workers running `executable` get (see ``arguments``).
    func workerArguments(executable: String) -> [String] {
        arguments ?? (isCurrentExecutable(executable) ? Array(CommandLine.arguments.dropFirst()) : [])
    }
}

extension Pool.Configuration {
    /// A call of a pool function that every worker makes once when it starts: the function and
    /// its arguments, encoded when the value is made.
    ///
    /// The function's argument types are part of its type, so the call is encoded here, once,
    /// and a ``Pool/Configuration`` stays one plain type whatever the initializer takes.
    ///
    /// ```swift
    /// let connect = PoolFunction("connect") { (url: String) -> Void in Database.shared.open(url) }
    /// var configuration = Pool.Configuration()
    /// configuration.initializer = try .init(connect, "db://local")
    /// ```
    public struct Initializer: Sendable, Hashable {
        /// The name of the pool function the workers run.
        public let functionName: String
        /// The fingerprint of its types, which the worker checks against the function it serves.
        let signature: UInt64
        /// Its arguments, encoded.
        let arguments: [UInt8]

        /// Encodes a call of `function` with `arguments`.
        ///
        /// - Parameters:
        ///   - function: A pool function the workers serve (list it in
        ///     ``Pool/bootstrap(serving:errorTypes:)``). Its result is dropped.
        ///   - arguments: Its arguments.
        /// - Throws: ``PoolError`` ``PoolError/Code/encodingFailed`` if an argument cannot be
        ///   encoded.
        public init<each A, R>(
            _ function: PoolFunction<repeat each A, R>, _ arguments: repeat each A
        ) throws(PoolError) where repeat each A: Codable, R: Codable {
            var writer = ByteWriter()
            do {
                try function.encodeArguments(repeat each arguments, into: &writer)
            } catch {
                throw PoolError(
                    .encodingFailed,
                    "the arguments of the initializer '\(function.name)' could not be encoded: \(error)",
                    functionName: function.name)
            }
            self.functionName = function.name
            self.signature = function.signatureFingerprint
            self.arguments = writer.bytes
        }
    }
}
