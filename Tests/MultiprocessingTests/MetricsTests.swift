// Tests of the pool's swift-metrics (Runtime/PoolMetrics.swift) with MetricsTestKit's
// `TestMetrics`: given to each pool through its configuration's internal factory (or bound with
// `withMetricsFactory`), so that no test bootstraps the process-wide metrics system; the global
// path runs in a parent program of its own (the `metrics` role), which does bootstrap it.

import CoreMetrics
import Foundation
import MetricsTestKit
import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

private typealias Name = PoolMetrics.Name

/// A pool of the test worker whose metrics go to `metrics`, labelled `label`.
private func meteredPool(_ metrics: TestMetrics, label: String = "test", processes: Int = 2) throws -> Pool {
    try statisticsPool(processes: processes) {
        $0.metricsFactory = metrics
        $0.label = label
    }
}

extension TestMetrics {
    /// The total of the counter `label` with the pool's and `extra` dimension, 0 if never made.
    fileprivate func total(_ label: String, pool: String = "test", _ extra: (String, String)) -> Int64 {
        (try? expectCounter(label, [("pool", pool), extra]).totalValue) ?? -1
    }

    fileprivate func outcome(_ value: String, pool: String = "test") -> Int64 {
        total(Name.tasksCompleted, pool: pool, ("outcome", value))
    }

    fileprivate func restarts(_ cause: String, pool: String = "test") -> Int64 {
        total(Name.workerRestarts, pool: pool, ("cause", cause))
    }

    /// The last value of the gauge `label` of the pool.
    fileprivate func gauge(_ label: String, pool: String = "test") -> Double? {
        try? expectGauge(label, [("pool", pool)]).lastValue
    }
}

@Suite("Pool metrics", .offCooperativePool)
struct MetricsTests {
    /// Guards: an `imap` of 20 items of which 5 throw (two in one chunk) counts 15 `success` and 5 `failed`, every
    /// other outcome 0 (made at pool creation, so a scrape shows them), and times every chunk
    /// (5 waits, 5 runs).
    @Test(.timeLimit(.minutes(1))) func imapWithFailuresCountsOutcomes() async throws {
        let metrics = TestMetrics()
        let pool = try meteredPool(metrics)
        defer { pool.stop() }
        let inputs = (0..<20).map { [1, 2, 9, 13, 17].contains($0) ? -$0 : $0 }  // two in the first chunk
        var iterator = try pool.imap(F.checkedSqrt, inputs, chunksize: 4).makeAsyncIterator()
        for _ in 0..<20 { _ = try? await iterator.next() }
        #expect(metrics.outcome("success") == 15)
        #expect(metrics.outcome("failed") == 5)
        for other in ["worker_lost", "timed_out", "cancelled", "terminated"] { #expect(metrics.outcome(other) == 0) }
        for cause in ["max_tasks", "max_memory", "crashed", "timed_out", "cancelled", "start_failed"] {
            #expect(metrics.restarts(cause) == 0)
        }
        let wait = try metrics.expectTimer(Name.taskWait, [("pool", "test")])
        let run = try metrics.expectTimer(Name.taskRun, [("pool", "test")])
        #expect(wait.values.count == 5 && run.values.count == 5)
        #expect(wait.values.allSatisfy { $0 >= 0 } && run.values.allSatisfy { $0 > 0 })
        #expect(wait.displayUnit == .seconds && run.displayUnit == .seconds)
    }

    /// Guards the gauges: with both workers held and two tasks waiting, queued 2, busy 2,
    /// workers 2; once released, queued 0 and busy 0.
    @Test(.timeLimit(.minutes(1))) func gaugesFollowTheQueueAndTheBusyWorkers() async throws {
        let metrics = TestMetrics()
        let pool = try meteredPool(metrics)
        defer { pool.stop() }
        let (tasks, markers, release) = heldTasks(4)
        let result = try pool.mapAsync(F.holdUntilReleased, tasks, chunksize: 1)
        #expect(await eventuallyAsync(timeout: .seconds(30)) { markers.filter { pidInMarker($0) != 0 }.count == 2 })
        // Busy once the pool has read both workers' "ready", which may come after the markers
        // (and recorded by that event's thread after the lock); held, nothing else changes.
        _ = await eventuallyAsync(timeout: .seconds(10)) {
            metrics.gauge(Name.workersBusy) == 2 && metrics.gauge(Name.workers) == 2
        }
        #expect(metrics.gauge(Name.tasksQueued) == 2)
        #expect(metrics.gauge(Name.workersBusy) == 2)
        #expect(metrics.gauge(Name.workers) == 2)
        touch(release)
        _ = try await result.value
        #expect(await eventuallyAsync(timeout: .seconds(10)) { metrics.gauge(Name.workersBusy) == 0 })
        #expect(metrics.gauge(Name.tasksQueued) == 0)
        #expect(metrics.outcome("success") == 4)
    }

    /// Guards: a worker killed mid-task counts one `worker_lost` task and one `crashed` restart.
    @Test(.timeLimit(.minutes(1))) func aKilledWorkerCountsWorkerLostAndCrashed() async throws {
        let metrics = TestMetrics()
        let pool = try meteredPool(metrics, processes: 1)
        defer { pool.stop() }
        // Held until killed (never released), so a slow start cannot let it finish first.
        let (tasks, markers, release) = heldTasks(1)
        defer { touch(release) }
        let result = try pool.applyAsync(F.holdUntilReleased, tasks[0])
        let pid = await awaitPIDMarker(markers[0])
        try #require(pid > 0)
        kill(pid, SIGKILL)
        await #expect(throws: PoolError.self) { try await result.value }
        #expect(await eventuallyAsync(timeout: .seconds(10)) { metrics.restarts("crashed") == 1 })
        #expect(metrics.outcome("worker_lost") == 1)
        #expect(metrics.outcome("success") == 0)
    }

    /// Guards: a task past its timeout counts `timed_out`, its worker a `timed_out` restart.
    @Test(.timeLimit(.minutes(1))) func aTimeoutCountsTimedOut() async throws {
        let metrics = TestMetrics()
        let pool = try meteredPool(metrics, processes: 1)
        defer { pool.stop() }
        await #expect(throws: PoolError.self) { try await pool.apply(F.blockMs, 10_000, timeout: .milliseconds(200)) }
        #expect(await eventuallyAsync(timeout: .seconds(10)) { metrics.restarts("timed_out") == 1 })
        #expect(metrics.outcome("timed_out") == 1)
    }

    /// Guards the `pool` dimension: two pools with their own labels count apart.
    @Test(.timeLimit(.minutes(1))) func theLabelIsThePoolDimension() async throws {
        let metrics = TestMetrics()
        let hashing = try meteredPool(metrics, label: "hashing", processes: 1)
        let thumbnails = try meteredPool(metrics, label: "thumbnails", processes: 1)
        defer {
            hashing.stop()
            thumbnails.stop()
        }
        _ = try await hashing.map(F.square, 0..<3, chunksize: 1)
        _ = try await thumbnails.apply(F.square, 2)
        #expect(metrics.outcome("success", pool: "hashing") == 3)
        #expect(metrics.outcome("success", pool: "thumbnails") == 1)
    }

    /// Guards: a pool created inside `withMetricsFactory` reports to that factory.
    @Test(.timeLimit(.minutes(1))) func aTaskLocalFactoryIsUsed() async throws {
        let metrics = TestMetrics()
        let pool = try withMetricsFactory(metrics) {
            try Pool(Pool.Configuration(processes: 1, executable: TestPools.workerExecutable, label: "local"))
        }
        defer { pool.stop() }
        _ = try await pool.apply(F.square, 3)
        #expect(metrics.outcome("success", pool: "local") == 1)
    }

    /// Guards the cost without a metrics system: the no-op factory makes no metrics at all.
    @Test func noMetricsWithoutABackend() {
        #expect(PoolMetrics(label: "x", factory: NOOPMetricsHandler.instance) == nil)
        #expect(PoolMetrics(label: "x", factory: TestMetrics()) != nil)
    }

    /// Guards the global path: a program that bootstraps `MetricsSystem` (the `metrics` parent
    /// role, TestMetrics as its backend) gets its pool's counters — 6 successes and 2 failures of
    /// an `imap`, one `worker_lost` and one `crashed` restart — under its default label.
    @Test(.timeLimit(.minutes(2)), .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func aBootstrappedMetricsSystemGetsTheCounts() throws {
        let (stdout, stderr) = try runParentProgram(["metrics"])
        let lines = Set(stdout.split(separator: "\n").map(String.init))
        #expect(lines.contains("outcome success 6"), "stdout: \(stdout)\nstderr: \(stderr.suffix(2000))")
        #expect(lines.contains("outcome failed 2"))
        #expect(lines.contains("outcome worker_lost 1"))
        #expect(lines.contains("restart crashed 1"))
        #expect(lines.contains("label default"))
    }
}
