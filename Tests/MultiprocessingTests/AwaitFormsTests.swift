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

@Suite("Await forms") struct AwaitFormsTests {
    // MARK: - withPool from the main actor

    @MainActor
    @Test("withPool from the main actor takes the README's plain closure and runs it there", .timeLimit(.minutes(1)))
    func withPoolFromMainActor() async throws {
        var bodyRuns = 0  // main-actor state the body may use: it runs on the caller's actor
        let squares = try await withPool(processes: 2, executable: TestPools.workerExecutable) { pool in
            MainActor.assertIsolated("withPool's body left the caller's actor")
            bodyRuns += 1
            return try await pool.map(F.square, 0..<10)
        }
        #expect(squares == (0..<10).map { $0 * $0 })

        var configuration = Pool.Configuration(processes: 1)
        configuration.executable = TestPools.workerExecutable
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

    /// The three `await` forms, each running one long task (or one short one) in one chunk.
    enum Form: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case apply, map, starmap

        var testDescription: String { rawValue }

        /// Runs a task of `ms` milliseconds with `timeout`; returns what the task returned: `ms`
        /// (`blockMs`), or for `starmap` the pid of the worker that ran it (`announceThenSleep`).
        func run(_ pool: Pool, ms: Int, timeout: Duration) async throws -> [Int] {
            switch self {
            case .apply: [try await pool.apply(F.blockMs, ms, timeout: timeout)]
            case .map: try await pool.map(F.blockMs, [ms], timeout: timeout)
            case .starmap:
                try await pool.starmap(F.announceThenSleep, [(pidMarkerPath(), ms)], timeout: timeout).map(Int.init)
            }
        }
    }

    @Test(
        "timeout: on an await form kills a task running longer with its worker: .taskTimedOut",
        .timeLimit(.minutes(1)), arguments: Form.allCases)
    func awaitFormTimeoutKillsLongTask(form: Form) async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        #expect(try await pool.apply(F.square, 2) == 4)  // started: the time is the task's
        let worker = try #require(pool.workerPIDs.first)
        let start = ContinuousClock.now
        async let outcome: PoolError.Code? = {
            do {
                _ = try await form.run(pool, ms: 30_000, timeout: .milliseconds(300))
                return nil
            } catch {
                return poolCode(error)
            }
        }()
        // When the pool killed the worker, seen from a thread of this test's own (a cooperative
        // thread may be busy with other tests and resume this one late).
        let killed = await onThread { () -> ContinuousClock.Instant? in
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                if !processIsAlive(worker) { return ContinuousClock.now }
                usleep(1_000)
            }
            return nil
        }
        #expect(await outcome == .taskTimedOut)
        let elapsed = try #require(try killed.get()) - start
        #expect(elapsed >= .milliseconds(300), "killed after \(elapsed), before its timeout")
        #expect(elapsed < .seconds(3), "killed after \(elapsed)")
        // A replacement serves the next call.
        let after = try await form.run(pool, ms: 1, timeout: .seconds(20))
        let replacement = try #require(pool.workerPIDs.first)
        #expect(replacement != worker)
        #expect(after == [form == .starmap ? Int(replacement) : 1])
    }

    @Test(
        "timeout: on an await form lets a task under it finish", .timeLimit(.minutes(1)),
        arguments: Form.allCases)
    func awaitFormTimeoutSparesShortTask(form: Form) async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        #expect(try await pool.apply(F.square, 2) == 4)
        let worker = try #require(pool.workerPIDs.first)
        #expect(try await form.run(pool, ms: 50, timeout: .seconds(20)) == [form == .starmap ? Int(worker) : 50])
        #expect(pool.workerPIDs == [worker])  // nobody was killed
    }

    @Test(
        "timeout: on an await form not above zero throws .invalidArgument", .timeLimit(.minutes(1)),
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
