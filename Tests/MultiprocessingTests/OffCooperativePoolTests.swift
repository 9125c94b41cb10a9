// The `.offCooperativePool` trait itself (OffCooperativePool.swift): a synchronous test under it
// runs on a thread of its own, an async one resumes on such threads after every await, blocking
// bodies under it leave the cooperative pool free, and its admission lets in at most its width
// at a time, the first arrivals first, and lets a cancelled waiter go without running it.

import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("Off the cooperative pool", .offCooperativePool) struct OffCooperativePoolTests {
    @Test("A synchronous test under the trait runs on a thread of its own", .timeLimit(.minutes(1)))
    func synchronousBody() {
        #expect(OwnThreadExecutor.isCurrent)
    }

    @Test(
        "An async test under the trait runs on threads of its own, after awaits and in child tasks",
        .timeLimit(.minutes(1)))
    func asyncBody() async throws {
        #expect(OwnThreadExecutor.isCurrent)
        try await Task.sleep(for: .milliseconds(5))
        #expect(OwnThreadExecutor.isCurrent)
        async let child = OwnThreadExecutor.isCurrent
        #expect(await child)
        // An unstructured task does not inherit the preference: it runs on the cooperative pool.
        #expect(await Task.detached { OwnThreadExecutor.isCurrent }.value == false)
    }

    @Test(
        "Bodies blocking under the executor leave the cooperative pool free: a 10 ms sleep loop on it is never held up",
        .timeLimit(.minutes(1)))
    func blockingBodiesLeaveThePoolFree() async throws {
        // Four bodies blocking 3 s each: on the cooperative pool (two threads here) they would hold
        // every thread for at least 3 s, and the loop's wake-ups would come that late.
        let blocking = 4
        let blocked = Counters()
        let probe = Task.detached { () -> Duration in
            let clock = ContinuousClock()
            var worst = Duration.zero
            while blocked.done.load(ordering: .acquiring) < blocking {
                let before = clock.now
                try? await Task.sleep(for: .milliseconds(10))
                worst = max(worst, clock.now - before - .milliseconds(10))
            }
            return worst
        }
        await withTaskExecutorPreference(OwnThreadExecutor.shared) {
            await withTaskGroup { group in
                for _ in 0..<blocking {
                    group.addTask {
                        usleep(3_000_000)
                        blocked.done.add(1, ordering: .releasing)
                    }
                }
            }
        }
        let worst = await probe.value
        #expect(worst < .milliseconds(1_500), "the cooperative pool's sleep loop woke \(worst) late")
    }

    @Test(
        "The admission lets in at most its width at a time, the first arrivals first, and every body runs",
        .timeLimit(.minutes(1)))
    func admissionWidth() async throws {
        let admission = TestAdmission(width: 2)
        let counters = Counters()
        try await withThrowingTaskGroup { group in
            for index in 0..<6 {
                group.addTask {
                    try await admission.admitted {
                        counters.order.withLock { $0.append(index) }
                        let now = counters.inside.add(1, ordering: .acquiringAndReleasing).newValue
                        counters.most.max(now, ordering: .acquiringAndReleasing)
                        // Held until all six have arrived: the first two are inside together.
                        while counters.done.load(ordering: .acquiring) == 0 {
                            try await Task.sleep(for: .milliseconds(2))
                        }
                        counters.inside.subtract(1, ordering: .acquiringAndReleasing)
                    }
                }
                // Arrival order: each is inside or waiting before the next arrives.
                let arrived = await eventuallyAsync(timeout: .seconds(30)) {
                    admission.counts.running + admission.counts.waiting == index + 1
                }
                #expect(arrived)
            }
            #expect(admission.counts == (2, 4))
            // Only the first two arrivals are inside.
            #expect(Set(counters.order.withLock { $0 }) == [0, 1])
            counters.done.store(1, ordering: .releasing)
            try await group.waitForAll()
        }
        let most = counters.most.load(ordering: .acquiring)
        #expect(most == 2)
        #expect(counters.order.withLock { $0 }.sorted() == Array(0..<6))
        #expect(admission.counts == (0, 0))
    }

    @Test(
        "A test cancelled while it waits for admission throws CancellationError without running",
        .timeLimit(.minutes(1)))
    func cancelledWhileWaiting() async throws {
        let admission = TestAdmission(width: 1)
        let release = Counters()
        let holder = Task {
            try await admission.admitted {
                while release.done.load(ordering: .acquiring) == 0 { try await Task.sleep(for: .milliseconds(5)) }
            }
        }
        #expect(await eventuallyAsync(timeout: .seconds(30)) { admission.counts.running == 1 })
        let ran = Counters()
        let waiter = Task { try await admission.admitted { ran.done.store(1, ordering: .releasing) } }
        #expect(await eventuallyAsync(timeout: .seconds(30)) { admission.counts.waiting == 1 })
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(admission.counts == (1, 0))
        release.done.store(1, ordering: .releasing)
        try await holder.value
        let didRun = ran.done.load(ordering: .acquiring)
        #expect(didRun == 0)
        #expect(admission.counts == (0, 0))
        // The slot is free again: the next body runs at once.
        #expect(try await admission.admitted { 7 } == 7)
    }
}

/// Counters and a record the tests' tasks share.
private final class Counters: Sendable {
    let done = Atomic(0)
    let inside = Atomic(0)
    let most = Atomic(0)
    let order = Mutex<[Int]>([])
}
