// The server's endpoints: the prime count offloaded to the pool and the same computed in the
// handler (for comparison), a task that crashes its worker, the metrics for Prometheus and a
// health check.

import Hummingbird
import Multiprocessing
import Prometheus

/// The largest `below` accepted, so that one request cannot hold a worker for minutes.
let maximumLimit = 20_000_000

/// The router of the server's endpoints.
func makeRouter(pool: Pool, registry: PrometheusCollectorRegistry) -> Router<BasicRequestContext> {
    let router = Router()
    router.add(middleware: MetricsMiddleware())

    // The CPU-bound work, offloaded: the handler suspends while a worker process counts.
    router.get("primes") { request, _ -> String in
        let limit = try primesLimit(request)
        do {
            return "\(try await pool.apply(countPrimesInWorker, limit))\n"
        } catch let error as PoolError {
            throw HTTPError(status(of: error), message: "\(error)")
        }
    }

    // The same work computed in the request handler, on the server's own threads: for comparing
    // throughput and latency, not for serving.
    router.get("primes/inline") { request, _ -> String in
        "\(countPrimes(below: try primesLimit(request)))\n"
    }

    // A task that traps its worker: answered 500, and the pool replaces the worker.
    router.get("crash") { _, _ -> String in
        do {
            return "\(try await pool.apply(crashWorker, "GET /crash"))\n"
        } catch let error as PoolError {
            throw HTTPError(status(of: error), message: "\(error)")
        }
    }

    router.get("metrics") { _, _ -> String in registry.emitToString() }
    router.get("health") { _, _ -> String in "ok\n" }
    return router
}

/// The `below` query parameter of a `/primes` request.
/// - Throws: `HTTPError(.badRequest)` if it is missing, not a number or out of range.
private func primesLimit(_ request: Request) throws -> Int {
    guard let limit = request.uri.queryParameters.get("below", as: Int.self), (0...maximumLimit).contains(limit)
    else {
        throw HTTPError(.badRequest, message: "needs ?below=N with N in 0...\(maximumLimit)\n")
    }
    return limit
}

/// The HTTP status for a pool error: a lost worker is the server's fault (500), a task past its
/// timeout a gateway timeout (504), a pool that has stopped means the server is going away (503).
private func status(of error: PoolError) -> HTTPResponse.Status {
    switch error.code {
    case .taskTimedOut: .gatewayTimeout
    case .notRunning, .terminated: .serviceUnavailable
    default: .internalServerError
    }
}
