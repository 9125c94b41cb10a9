// Workers are spawned on a thread of the pool's (Runtime/WorkerSpawner.swift): `Pool(...)`
// returns once the first runs, the others start meanwhile. What callers see must not change: a new
// pool lists all its workers, serves at once, and a program that cannot start still fails
// `Pool(...)` itself.

import Multiprocessing
import MultiprocessingTestSupport
import Testing

@Suite("Spawner", .offCooperativePool)
struct SpawnerTests {
    @Test("A new pool lists all its workers at once, each a live process of its own", .timeLimit(.minutes(1)))
    func newPoolListsAllWorkers() throws {
        // Six workers: the later ones are still being spawned when Pool(...) returns.
        let pool = try TestPools.make(processes: 6)
        defer { pool.stop() }
        let pids = pool.workerPIDs
        #expect(pids.count == 6)
        #expect(Set(pids).count == 6)
        // A cluster pool's pids are its agents' children, on their nodes.
        if !TestBackend.isCluster { #expect(pids.allSatisfy(processIsAlive)) }
    }

    @Test("A new pool's first call is served while its other workers start", .timeLimit(.minutes(1)))
    func firstCallWhileStarting() async throws {
        let pool = try TestPools.make(processes: 6)
        defer { pool.stop() }
        #expect(try await pool.apply(F.square, 7) == 49)
        #expect(try await pool.map(F.square, Array(0..<60), chunksize: 1) == (0..<60).map { $0 * $0 })
        #expect(pool.workerPIDs.count == 6)
    }

    @Test("A program that cannot be started fails Pool(...) with spawnFailed, naming it", .timeLimit(.minutes(1)))
    func missingProgramFailsInit() throws {
        var configuration = Pool.Configuration(processes: 3)
        configuration.executable = "/nonexistent/spawner-test-worker"
        do {
            let pool = try Pool(configuration)
            pool.stop()
            Issue.record("Pool(...) started without its program")
        } catch let error as PoolError {
            #expect(error.code == .spawnFailed)
            #expect(error.message.contains("/nonexistent/spawner-test-worker"), "\(error)")
        }
    }
}
