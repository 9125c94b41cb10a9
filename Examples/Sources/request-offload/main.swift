// request-offload: a server-style use. Requests arrive concurrently (here, 200 simulated
// requests in a task group); each handler offloads its CPU-heavy part to the pool with `await`,
// so the server's own threads stay free, a crash in the heavy part cannot take the server down,
// and a request whose client goes away (a cancelled task) stops its work in the pool.
//
//     swift run -c release --package-path Examples request-offload

import Multiprocessing

/// The heavy part of a request: a deliberately slow hash of its payload.
let digest = PoolFunction("digest") { (payload: [UInt8], rounds: Int) -> UInt64 in
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for _ in 0..<rounds {
        for byte in payload {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
    }
    return hash
}

Pool.bootstrap(serving: [digest])

/// A request handler: validates, offloads, formats.
func handle(request id: Int, pool: Pool) async throws -> String {
    let payload = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* id) }
    let hash = try await pool.apply(digest, payload, 50)
    return "request \(id): \(String(hash, radix: 16))"
}

let pool = try Pool(taskTimeout: .seconds(10))
let clock = ContinuousClock()
var answered = 0
let elapsed = try await clock.measure {
    try await withThrowingTaskGroup(of: String.self) { group in
        for id in 0..<200 {
            group.addTask { try await handle(request: id, pool: pool) }
        }
        for try await _ in group { answered += 1 }
    }
}
print("Answered \(answered) concurrent requests on \(pool.processes) worker processes in \(elapsed).")

// A client that goes away: its handler's task is cancelled, and the pool stops its work.
let impatient = Task { try await pool.apply(digest, [UInt8](repeating: 1, count: 1 << 20), 10_000) }
try await Task.sleep(for: .milliseconds(50))
impatient.cancel()
do {
    _ = try await impatient.value
} catch is CancellationError {
    print("A cancelled request stopped its work in the pool at once; the pool goes on.")
}
print("Still serving:", try await handle(request: 1, pool: pool))
pool.close()
try await pool.joined()
