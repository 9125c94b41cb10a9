// The `await` forms as a program's async `main` uses them: `withPool` called from the main actor
// with a plain closure, as the README writes it (the body runs on the caller's actor), and the
// `timeout:` of `apply`, `map` and `starmap`.

import Multiprocessing
import MultiprocessingTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("Await forms", .offCooperativePool) struct AwaitFormsTests {
    // MARK: - withPool from the main actor

    @MainActor
    @Test("withPool from the main actor takes the README's plain closure and runs it there", .timeLimit(.minutes(1)))
    func withPoolFromMainActor() async throws {
        var bodyRuns = 0  // main-actor state the body may use: it runs on the caller's actor
        let squares = try await withPool(configuration: TestPools.configuration(processes: 2)) { pool in
            MainActor.assertIsolated("withPool's body left the caller's actor")
            bodyRuns += 1
            return try await pool.map(F.square, 0..<10)
        }
        #expect(squares == (0..<10).map { $0 * $0 })

        let configuration = TestPools.configuration(processes: 1)
        let (products, used) = try await withPool(configuration: configuration) { pool in
            MainActor.assertIsolated("withPool's body left the caller's actor")
            bodyRuns += 1
            return (try await pool.starmap(F.mul, [(2, 3), (4, 5)]), pool)
        }
        #expect(products == [6, 20])
        #expect(bodyRuns == 2)
        #expect(errorCode { try used.apply(F.square, 1) } == .notRunning)  // terminated on return
    }

    // MARK: - timeout: on apply, map and starmap

    /// The three `await` forms and the three blocking ones (run on a thread of their own, not on
    /// the cooperative pool), each running one long task (or one short one) in one chunk.
    enum Form: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case apply, map, starmap, blockingApply, blockingMap, blockingStarmap

        var testDescription: String { rawValue }

        /// Runs a task of `ms` milliseconds with `timeout` that writes its worker's pid to
        /// `marker` when it starts; returns what it returned: that pid.
        func run(_ pool: Pool, ms: Int, timeout: Duration, marker: String = pidMarkerPath()) async throws -> [Int] {
            switch self {
            case .apply: [Int(try await pool.apply(F.announceThenSleep, marker, ms, timeout: timeout))]
            case .map:
                try await pool.map(F.announceThenSleepOne, [MarkedSleep(marker: marker, ms: ms)], timeout: timeout)
                    .map(Int.init)
            case .starmap:
                try await pool.starmap(F.announceThenSleep, [(marker, ms)], timeout: timeout).map(Int.init)
            case .blockingApply:
                try await onThread { [Int(try pool.apply(F.announceThenSleep, marker, ms, timeout: timeout))] }.get()
            case .blockingMap:
                try await onThread {
                    try pool.map(F.announceThenSleepOne, [MarkedSleep(marker: marker, ms: ms)], timeout: timeout)
                        .map(Int.init)
                }.get()
            case .blockingStarmap:
                try await onThread {
                    try pool.starmap(F.announceThenSleep, [(marker, ms)], timeout: timeout).map(Int.init)
                }.get()
            }
        }
    }

    @Test(
        "timeout: on apply, map and starmap (await and blocking) kills a task running longer with its worker: .taskTimedOut",
        .timeLimit(.minutes(1)), arguments: Form.allCases)
    func awaitFormTimeoutKillsLongTask(form: Form) async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        #expect(try await pool.apply(F.square, 2) == 4)  // started: the time is the task's
        let worker = try #require(pool.workerPIDs.first)
        let marker = pidMarkerPath()
        // Before the call: its chunk is dispatched, and its timeout starts, after this.
        let submitted = ContinuousClock.now
        async let outcome: PoolError.Code? = {
            do {
                _ = try await form.run(pool, ms: 30_000, timeout: .milliseconds(300), marker: marker)
                return nil
            } catch {
                return poolCode(error)
            }
        }()
        // From the task's start in the worker (its marker; the call itself may be submitted late
        // by a busy cooperative pool) to its worker's death, seen from a thread of this test's own.
        let lifetime = await onThread { () -> (sinceSubmit: Duration, sinceStart: Duration)? in
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline && pidInMarker(marker) == 0 { usleep(1_000) }
            let started = ContinuousClock.now
            while ContinuousClock.now < deadline {
                if !processIsAlive(worker) {
                    let now = ContinuousClock.now
                    return (now - submitted, now - started)
                }
                usleep(1_000)
            }
            return nil
        }
        #expect(await outcome == .taskTimedOut)
        let elapsed = try #require(try lifetime.get(), "the task did not start, or its worker lived on")
        // Not before its timeout: the timeout counts from the chunk's dispatch, after `submitted`
        // (this thread may see the marker late, never the death early).
        #expect(elapsed.sinceSubmit >= .milliseconds(300), "killed \(elapsed.sinceSubmit) after the call")
        #expect(elapsed.sinceStart < .seconds(3), "killed \(elapsed.sinceStart) after it started")
        // A replacement serves the next call.
        let after = try await form.run(pool, ms: 1, timeout: .seconds(20))
        let replacement = try #require(pool.workerPIDs.first)
        #expect(replacement != worker)
        #expect(after == [Int(replacement)])
    }

    @Test(
        "timeout: on apply, map and starmap (await and blocking) lets a task under it finish", .timeLimit(.minutes(1)),
        arguments: Form.allCases)
    func awaitFormTimeoutSparesShortTask(form: Form) async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        #expect(try await pool.apply(F.square, 2) == 4)
        let worker = try #require(pool.workerPIDs.first)
        #expect(try await form.run(pool, ms: 50, timeout: .seconds(20)) == [Int(worker)])
        #expect(pool.workerPIDs == [worker])  // nobody was killed
    }

    @Test(
        "timeout: on apply, map and starmap (await and blocking) not above zero throws .invalidArgument",
        .timeLimit(.minutes(1)),
        arguments: Form.allCases)
    func awaitFormTimeoutValidated(form: Form) async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        for timeout in [Duration.zero, .milliseconds(-1)] {
            do {
                _ = try await form.run(pool, ms: 1, timeout: timeout)
                Issue.record("a timeout of \(timeout) was accepted")
            } catch {
                #expect(poolCode(error) == .invalidArgument)
                #expect("\(error)".contains("timeout must be above zero"))
            }
        }
    }
}
