// http-server: a Hummingbird 2 server that offloads its CPU-bound endpoint to a process pool,
// exposes its metrics and the pool's to Prometheus, and runs under ServiceLifecycle, which stops
// the HTTP server and then the pool on SIGTERM or SIGINT (graceful shutdown: the requests in
// flight finish, then the workers exit).
//
//     swift run -c release --package-path Examples http-server --port 8080
//     curl 'http://127.0.0.1:8080/primes?below=100000'    # 9592, counted in a worker process
//     curl 'http://127.0.0.1:8080/primes/inline?below=100000'   # the same, in the handler
//     curl -i http://127.0.0.1:8080/crash                  # 500; the server goes on
//     curl http://127.0.0.1:8080/metrics                   # Prometheus text format
//
// On start it prints `listening on HOST:PORT` on stdout (with `--port 0`, the port it was given).
// Logs go to stderr.

import Foundation
import Hummingbird
import Logging
import Metrics
import Multiprocessing
import MultiprocessingServiceLifecycle
import Prometheus
import ServiceLifecycle

Pool.bootstrap(serving: poolFunctions)  // workers serve from here and never return

// A trapping worker's crash report: the crashed thread only (the error still names the line).
setenv("SWIFT_BACKTRACE", "threads=crashed,registers=none,images=none", 0)

let settings: Settings
do {
    settings = try Settings(
        arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
} catch {
    FileHandle.standardError.write(Data("http-server: \(error)\n".utf8))
    exit(64)
}

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
    return handler
}
let logger = Logger(label: "http-server")

// Metrics first, so that the pool's and the router's metrics go to Prometheus. Swift metrics
// labels may have dots (Hummingbird's `hb.requests`); Prometheus names may not.
let registry = PrometheusCollectorRegistry()
var factory = PrometheusMetricsFactory(registry: registry)
factory.nameAndLabelSanitizer = { name, labels in
    (name.replacingOccurrences(of: ".", with: "_"), labels.map { ($0.replacingOccurrences(of: ".", with: "_"), $1) })
}
MetricsSystem.bootstrap(factory)

var configuration = Pool.Configuration(processes: settings.processes, taskTimeout: .seconds(60))
configuration.logger = logger
let pool = try Pool(configuration)

let app = Application(
    router: makeRouter(pool: pool, registry: registry),
    configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "http-server"),
    onServerRunning: { channel in
        // Unbuffered, so that a script reading a pipe or file sees it at once.
        let port = channel.localAddress?.port ?? settings.port
        FileHandle.standardOutput.write(Data("listening on \(settings.host):\(port)\n".utf8))
    },
    logger: logger)

// Services shut down in the reverse order of this list: the HTTP server first (its requests in
// flight finish, and they need the pool), then the pool (closed, joined within the timeout).
let group = ServiceGroup(
    services: [PoolService(pool, gracefulShutdownTimeout: settings.shutdownTimeout), app],
    gracefulShutdownSignals: [.sigterm, .sigint],
    logger: logger)
try await group.run()
logger.info("stopped: the pool's workers have exited")
