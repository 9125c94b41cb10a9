// PoolService under a real ServiceGroup and alone: a graceful shutdown lets the work in flight
// finish and then joins the pool; past its deadline it terminates the pool; cancellation
// terminates at once. Every pool runs the test worker executable, and every check that a worker
// is gone looks at the process itself.

import Foundation
import Logging
import Multiprocessing
import MultiprocessingServiceLifecycle
import MultiprocessingTestSupport
import ServiceLifecycle
import Testing

@Suite("PoolService")
struct PoolServiceTests {
    @Test(
        "graceful shutdown while a map is in flight: the map finishes, then the pool is closed and joined",
        .timeLimit(.minutes(1)))
    func gracefulShutdownFinishesTheMapInFlight() async throws {
        let pool = try ServiceTestPools.make()
        defer { pool.terminate() }
        let workers = pool.workerPIDs
        let markers = (0..<6).map { _ in ServiceTestPools.markerPath() }
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: PoolService(pool))], logger: Logger(label: "test")))
        let running = Task { try await group.run() }

        let map = Task {
            try await pool.map(
                TestFunctions.announceThenSleepOne, markers.map { .init(marker: $0, ms: 300) }, chunksize: 1)
        }
        #expect(await ServiceTestPools.awaitMarker(markers[0]) != 0, "the map's first item never started")
        await group.triggerGracefulShutdown()

        // Every item ran to its end in the worker that announced it: none was killed or skipped.
        let results = try await map.value
        #expect(results == markers.map { ServiceTestPools.pidInMarker($0) })
        #expect(results.allSatisfy { workers.contains($0) })
        try await running.value
        // Closed (new work is refused), joined (join returns at once) and its workers gone.
        #expect(ServiceTestPools.code { try pool.apply(TestFunctions.square, 3) } == .notRunning)
        try await pool.joined()
        #expect(workers.allSatisfy { !ServiceTestPools.processIsAlive($0) })
    }

    @Test(
        "a graceful shutdown whose deadline passes terminates the pool: the call in flight fails with .terminated",
        .timeLimit(.minutes(1)))
    func deadlinePassedTerminates() async throws {
        let pool = try ServiceTestPools.make()
        defer { pool.terminate() }
        let workers = pool.workerPIDs
        let marker = ServiceTestPools.markerPath()
        let service = PoolService(pool, gracefulShutdownTimeout: .milliseconds(500))
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: service)], logger: Logger(label: "test")))
        let running = Task { try await group.run() }

        let call = Task { try await pool.apply(TestFunctions.announceThenSleep, marker, 50_000) }
        let busy = await ServiceTestPools.awaitMarker(marker)
        #expect(busy != 0, "the call never started")
        let clock = ContinuousClock()
        let start = clock.now
        await group.triggerGracefulShutdown()
        #expect(await ServiceTestPools.code { try await call.value } == .terminated)
        try await running.value
        let elapsed = clock.now - start
        // It waited for the deadline, then stopped the 50 s call long before its end.
        #expect(elapsed >= .milliseconds(500))
        #expect(elapsed < .seconds(20))
        #expect(!ServiceTestPools.processIsAlive(busy))
        #expect(workers.allSatisfy { !ServiceTestPools.processIsAlive($0) })
    }

    @Test("cancelling run() terminates the pool at once, without a graceful shutdown", .timeLimit(.minutes(1)))
    func cancellationTerminates() async throws {
        let pool = try ServiceTestPools.make()
        defer { pool.terminate() }
        let workers = pool.workerPIDs
        let marker = ServiceTestPools.markerPath()
        // No ServiceGroup: nothing but cancellation ends run(). A deadline it must not wait for.
        let service = PoolService(pool, gracefulShutdownTimeout: .seconds(600))
        let running = Task { try await service.run() }

        let call = Task { try await pool.apply(TestFunctions.announceThenSleep, marker, 50_000) }
        let busy = await ServiceTestPools.awaitMarker(marker)
        #expect(busy != 0, "the call never started")
        running.cancel()
        try await running.value
        #expect(await ServiceTestPools.code { try await call.value } == .terminated)
        #expect(ServiceTestPools.code { try pool.apply(TestFunctions.square, 3) } == .notRunning)
        #expect(!ServiceTestPools.processIsAlive(busy))
        #expect(workers.allSatisfy { !ServiceTestPools.processIsAlive($0) })
    }

    @Test(
        "cancelled while a graceful shutdown waits for the work: it terminates the pool then", .timeLimit(.minutes(1)))
    func cancellationDuringGracefulShutdownTerminates() async throws {
        let pool = try ServiceTestPools.make()
        defer { pool.terminate() }
        let workers = pool.workerPIDs
        let marker = ServiceTestPools.markerPath()
        // No deadline: only the cancellation can end the wait for the 50 s call.
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: PoolService(pool, gracefulShutdownTimeout: nil))],
                logger: Logger(label: "test")))
        let running = Task { try await group.run() }

        let call = Task { try await pool.apply(TestFunctions.announceThenSleep, marker, 50_000) }
        let busy = await ServiceTestPools.awaitMarker(marker)
        #expect(busy != 0, "the call never started")
        await group.triggerGracefulShutdown()
        // Closed: the graceful shutdown has begun and waits for the call.
        #expect(
            await ServiceTestPools.eventually {
                ServiceTestPools.code { try pool.applyAsync(TestFunctions.square, 3) } == .notRunning
            })
        #expect(ServiceTestPools.processIsAlive(busy))
        running.cancel()
        _ = try? await running.value
        #expect(await ServiceTestPools.code { try await call.value } == .terminated)
        #expect(workers.allSatisfy { !ServiceTestPools.processIsAlive($0) })
    }
}
