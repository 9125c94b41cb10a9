// Where a node agent logs: the agent's stderr, which `mpiexec` (or `srun`) passes on to the job's
// stderr, so that what goes wrong on a node (a worker that cannot start, a worker that breaks the
// protocol, an event loop that fails) is seen where the job was started. The level comes from
// `MULTIPROCESSING_LOG_LEVEL` (`trace`, `debug`, `info`, `notice`, `warning`, `error`, `critical`;
// default `warning`), which `mpiexec -x MULTIPROCESSING_LOG_LEVEL` hands to every rank; every
// message names the agent's rank and host.

#if MPI
    import Logging

    extension NodeAgent {
        /// The variable that sets the agents' log level.
        static let logLevelVariable = "MULTIPROCESSING_LOG_LEVEL"

        /// The agents' level: `MULTIPROCESSING_LOG_LEVEL`'s, when it names one, else warning.
        static func logLevel(_ value: String?) -> Logger.Level {
            value.flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .warning
        }

        /// The logger of the agent at `endpoint`: its stderr, at `MULTIPROCESSING_LOG_LEVEL`, with
        /// its rank and host in every message's metadata.
        static func makeLogger(endpoint: ClusterEndpoint) -> Logger {
            var logger = Logger(
                label: "swift-multiprocessing.agent", factory: { StreamLogHandler.standardError(label: $0) })
            logger.logLevel = logLevel(environmentValue(logLevelVariable))
            logger[metadataKey: "rank"] = "\(endpoint.rank)"
            logger[metadataKey: "host"] = "\(endpoint.host)"
            return logger
        }
    }
#endif
