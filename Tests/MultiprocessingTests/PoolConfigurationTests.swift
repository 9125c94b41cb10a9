// `Pool.Configuration`: its defaults, the validation of each property, pools made from one
// (which behave as pools made with the labelled initializers, and show the configuration they
// run with), the labelled initializers building one, and `withPool(configuration:)`.

import Multiprocessing
import MultiprocessingTestSupport
import Testing

private typealias Configuration = Pool.Configuration

/// A configuration of the test worker executable.
private func testConfiguration(processes: Int? = 2) -> Configuration {
    Configuration(processes: processes, executable: TestPools.workerExecutable)
}

/// One property out of range, and the name the error must give.
private struct InvalidCase: Sendable, CustomTestStringConvertible {
    let field: String
    let change: @Sendable (inout Configuration) -> Void
    var testDescription: String { field }
}

private let invalidCases: [InvalidCase] = [
    InvalidCase(field: "processes") { $0.processes = 0 },
    InvalidCase(field: "maxTasksPerChild") { $0.maxTasksPerChild = 0 },
    InvalidCase(field: "taskTimeout") { $0.taskTimeout = .zero },
    InvalidCase(field: "maxMemoryPerChild") { $0.maxMemoryPerChild = 0 },
    InvalidCase(field: "workerMemoryLimit") { $0.workerMemoryLimit = -1 },
    InvalidCase(field: "startTimeout") { $0.startTimeout = .milliseconds(-1) },
]

@Suite("Pool configuration", .offCooperativePool)
struct PoolConfigurationTests {
    // MARK: - The value

    @Test("A new configuration has the labelled initializers' defaults")
    func defaults() {
        let configuration = Configuration()
        #expect(configuration.processes == nil)
        #expect(configuration.initializer == nil)
        #expect(configuration.maxTasksPerChild == nil)
        #expect(configuration.taskTimeout == nil)
        #expect(configuration.maxMemoryPerChild == nil)
        #expect(configuration.workerMemoryLimit == nil)
        #expect(configuration.startTimeout == Pool.defaultStartTimeout)
        #expect(configuration.executable == nil)
        #expect(configuration.logger == nil)
    }

    @Test(
        "A property out of range fails validate() and Pool.init with invalidArgument naming it",
        arguments: invalidCases)
    fileprivate func invalidProperty(_ invalid: InvalidCase) {
        var configuration = testConfiguration()
        invalid.change(&configuration)
        #expect(throws: PoolError.self) { try configuration.validate() }
        do {
            _ = try Pool(configuration)
            Issue.record("Pool(\(invalid.field) out of range) was created")
        } catch {
            let error = error as? PoolError
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.hasPrefix("\(invalid.field) must be") == true, "\(String(describing: error))")
        }
    }

    @Test("The smallest values in range pass validation")
    func smallestValid() throws {
        let configuration = Configuration(
            processes: 1, maxTasksPerChild: 1, taskTimeout: .nanoseconds(1), maxMemoryPerChild: 1, workerMemoryLimit: 1,
            startTimeout: .nanoseconds(1))
        try configuration.validate()
        try Configuration(startTimeout: nil).validate()
    }

    @Test("An initializer whose arguments cannot be encoded fails with encodingFailed")
    func unencodableInitializer() {
        let error = #expect(throws: PoolError.self) {
            try Configuration.Initializer(F.takeUnencodable, Unencodable())
        }
        #expect(error?.code == .encodingFailed)
        #expect(error?.functionName == "takeUnencodable")
    }

    @Test("An initializer is its function's name and its encoded arguments")
    func initializerValue() throws {
        let initializer = try Configuration.Initializer(F.setUp, "tag")
        #expect(initializer.functionName == "setUp")
        #expect(initializer == (try Configuration.Initializer(F.setUp, "tag")))
        #expect(initializer != (try Configuration.Initializer(F.setUp, "other")))
    }

    // MARK: - Pools made from one

    @Test("A pool made from a configuration runs its initializer and honours its limits", .timeLimit(.minutes(1)))
    func poolFromConfiguration() throws {
        var configuration = testConfiguration()
        configuration.initializer = try .init(F.setUp, "configured")
        configuration.maxTasksPerChild = 1
        configuration.taskTimeout = .seconds(1)
        let pool = try Pool(configuration)
        defer { pool.stop() }
        #expect(pool.processes == 2)
        #expect(pool.workerPIDs.count == 2)
        #expect(try pool.map(F.square, 0..<20, chunksize: 5) == (0..<20).map { $0 * $0 })
        // Every worker ran the initializer, and ran one task only (maxTasksPerChild: 1).
        let texts = try (0..<4).map { _ in try pool.applyAsync(F.readInit) }.map { try $0.get() }
        #expect(texts.allSatisfy { $0.hasPrefix("configured:") }, "\(texts)")
        #expect(Set(texts).count == 4)
        // The task timeout kills a task that blocks past it.
        #expect(errorCode { try pool.apply(F.blockMs, 5_000) } == .taskTimedOut)
    }

    @Test("A pool's configuration is the one it was made with, defaults resolved", .timeLimit(.minutes(1)))
    func configurationReadBack() throws {
        var configuration = testConfiguration(processes: nil)
        configuration.initializer = try .init(F.setUp, "read-back")
        configuration.maxMemoryPerChild = 1 << 30
        configuration.startTimeout = .seconds(30)
        let pool = try Pool(configuration)
        defer { pool.stop() }
        let read = pool.configuration
        #expect(read.processes == pool.processes && pool.processes >= 1)
        #expect(read.executable == TestPools.workerExecutable)
        #expect(read.initializer == configuration.initializer)
        #expect(read.maxMemoryPerChild == 1 << 30)
        #expect(read.startTimeout == .seconds(30))
        #expect(read.maxTasksPerChild == nil && read.taskTimeout == nil && read.workerMemoryLimit == nil)
        // It makes a pool like this one.
        var copy = read
        copy.processes = 1
        let twin = try Pool(copy)
        defer { twin.stop() }
        #expect(try twin.apply(F.readInit).hasPrefix("read-back:"))
    }

    @Test("The labelled initializers build the configuration of their values", .timeLimit(.minutes(1)))
    func labelledInitializers() throws {
        let plain = try Pool(
            processes: 1, maxTasksPerChild: 3, taskTimeout: .seconds(5), maxMemoryPerChild: 1 << 30,
            workerMemoryLimit: 1 << 34, startTimeout: nil, executable: TestPools.workerExecutable)
        defer { plain.stop() }
        let read = plain.configuration
        #expect(read.processes == 1)
        #expect(read.initializer == nil)
        #expect(read.maxTasksPerChild == 3)
        #expect(read.taskTimeout == .seconds(5))
        #expect(read.maxMemoryPerChild == 1 << 30)
        #expect(read.workerMemoryLimit == 1 << 34)
        #expect(read.startTimeout == nil)
        #expect(read.executable == TestPools.workerExecutable)
        #expect(try plain.apply(F.square, 9) == 81)

        let initialized = try Pool(
            processes: 1, initializer: F.setUp, initArgs: ("labelled"), executable: TestPools.workerExecutable)
        defer { initialized.stop() }
        #expect(initialized.configuration.initializer == (try Configuration.Initializer(F.setUp, "labelled")))
        #expect(initialized.configuration.startTimeout == Pool.defaultStartTimeout)
        #expect(try initialized.apply(F.readInit).hasPrefix("labelled:"))
    }

    // MARK: - withPool(configuration:)

    @Test("withPool(configuration:) runs the body with that pool and terminates it", .timeLimit(.minutes(1)))
    func withPoolBlocking() throws {
        var configuration = testConfiguration()
        configuration.initializer = try .init(F.setUp, "scoped")
        var kept: Pool?
        let (squares, text) = try withPool(configuration: configuration) { pool in
            kept = pool
            #expect(pool.processes == 2)
            return (try pool.map(F.square, 0..<10), try pool.apply(F.readInit))
        }
        #expect(squares == (0..<10).map { $0 * $0 })
        #expect(text.hasPrefix("scoped:"))
        #expect(errorCode { try kept?.apply(F.square, 1) } == .notRunning)
    }

    @Test("Async withPool(configuration:) runs the body with that pool and terminates it", .timeLimit(.minutes(1)))
    func withPoolAsync() async throws {
        var configuration = testConfiguration()
        configuration.maxTasksPerChild = 1
        let (squares, pool) = try await withPool(configuration: configuration) { pool in
            (try await pool.map(F.square, 0..<6, chunksize: 1), pool)
        }
        #expect(squares == (0..<6).map { $0 * $0 })
        #expect(pool.configuration.maxTasksPerChild == 1)
        #expect(errorCode { try pool.apply(F.square, 1) } == .notRunning)
    }

    @Test("withPool(configuration:) with a property out of range throws before running the body")
    func withPoolInvalid() async {
        var configuration = testConfiguration()
        configuration.taskTimeout = .zero
        var ran = false
        #expect(errorCode { try withPool(configuration: configuration) { _ in ran = true } } == .invalidArgument)
        await #expect(throws: PoolError.self) {
            try await withPool(configuration: configuration) { _ async in ran = true }
        }
        #expect(!ran)
    }
}
