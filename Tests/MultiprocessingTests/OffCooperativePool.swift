// `.offCooperativePool`: the trait that runs a suite's tests on threads of their own instead of
// swift-testing's cooperative pool. That pool has only as many threads as cores (two here), and
// a synchronous test is one job that holds its thread until it returns: a blocking `apply`, `map`,
// `join` or `get()`, a `usleep`, a pipe read, a long CPU loop. A full run queued every test behind
// such bodies (async tests waited minutes for a thread and failed their time limits under load).
// Under the trait, every job of the test (its synchronous body, and each resumption of an async
// one after an await) runs on a new thread (`OwnThreadExecutor`), so nothing of it waits for a
// cooperative thread or holds one. `.cpuBound` is the same for suites of long CPU loops (fuzzing,
// random models): so that they do not take every core from the rest of the run at once, at most
// one such test per core runs at a time (`TestAdmission`); the others wait, suspended. Only
// suites without time limits use it: the wait counts towards a test's time limit.

import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Runs each test of the suite (or the test) it is applied to off the cooperative pool, on
/// ``OwnThreadExecutor/shared``'s threads; admitted first by `admission`, if any.
struct OffCooperativePoolTrait: SuiteTrait, TestTrait, TestScoping {
    let admission: TestAdmission?

    var isRecursive: Bool { true }

    func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        // Each test case, not the suite around them: the suite's own scope would hold an
        // admission for as long as all its tests run.
        testCase == nil ? nil : self
    }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard let admission else {
            return try await withTaskExecutorPreference(OwnThreadExecutor.shared) { try await function() }
        }
        try await admission.admitted {
            try await withTaskExecutorPreference(OwnThreadExecutor.shared) { try await function() }
        }
    }
}

extension Trait where Self == OffCooperativePoolTrait {
    /// Runs every test of the suite on threads of its own, not on the cooperative pool: for
    /// tests that block (synchronous pool calls, sleeps, waits).
    static var offCooperativePool: Self { OffCooperativePoolTrait(admission: .blocking) }

    /// Runs every test of the suite on threads of its own, at most one per core at a time with
    /// the other `.cpuBound` tests: for long CPU loops. Not for tests with a time limit (the
    /// wait for admission counts towards it).
    static var cpuBound: Self { OffCooperativePoolTrait(admission: .cores) }
}

/// A task executor that runs every job on a new thread of its own: a job never waits for a
/// thread another job holds, however long that one blocks.
final class OwnThreadExecutor: TaskExecutor {
    static let shared = OwnThreadExecutor()

    /// Whether the calling thread is one of this executor's.
    static var isCurrent: Bool { pthread_getspecific(ownThreadKey) != nil }

    private static let ownThreadKey: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        precondition(status == 0, "pthread_key_create: \(status)")
        return key
    }()

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        let key = Self.ownThreadKey
        Thread.detach {
            pthread_setspecific(key, UnsafeRawPointer(bitPattern: 1))
            job.runSynchronously(on: executor)
        }
    }
}

/// Admits at most `width` bodies at a time; the others wait, suspended, in arrival order.
final class TestAdmission: Sendable {
    /// The `.cpuBound` tests': one per core.
    static let cores = TestAdmission(width: max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))

    /// The `.offCooperativePool` tests': four per core (they mostly wait for their workers).
    static let blocking = TestAdmission(width: 4 * max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))

    let width: Int
    private let state: Mutex<State>

    private struct State {
        var running = 0
        var nextID = 0
        var waiting: [(id: Int, continuation: CheckedContinuation<Void, any Error>)] = []
    }

    init(width: Int) {
        precondition(width > 0)
        self.width = width
        state = Mutex(State())
    }

    /// Runs `body` once admitted. Cancelled while waiting, it throws `CancellationError`
    /// without running `body`.
    func admitted<T>(_ body: () async throws -> T) async throws -> T {
        try await enter()
        defer { leave() }
        return try await body()
    }

    private func enter() async throws {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // A cancellation before this point is seen here (the flag is set before the
                // handler runs); one after it finds the waiter in the list.
                let admitted = state.withLock { state -> Bool? in
                    if Task.isCancelled { return nil }
                    guard state.running < width else {
                        state.waiting.append((id, continuation))
                        return false
                    }
                    state.running += 1
                    return true
                }
                switch admitted {
                case true?: continuation.resume()
                case nil: continuation.resume(throwing: CancellationError())
                case false?: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    private func leave() {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            guard !state.waiting.isEmpty else {
                state.running -= 1
                return nil
            }
            // The slot passes to the first waiter: `running` stays.
            return state.waiting.removeFirst().continuation
        }
        next?.resume()
    }

    /// How many bodies run now and how many wait (for the tests of the admission itself).
    var counts: (running: Int, waiting: Int) {
        state.withLock { ($0.running, $0.waiting.count) }
    }
}
