// The lone call's own path through the pool: a call of one chunk that an idle worker starts at
// once skips the scheduler's action lists (`SchedulerStateMachine.startAtOnce`), and its result,
// when it ends the job, is delivered and finished in one step (`completeAtOnce`,
// `JobSink.deliverLast`); an `apply`'s progress counter is made only when somebody asks for it.
// The scheduler's tests check that these paths leave the state the general ones leave; these
// check what a caller sees: values, errors, progress and statistics.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

@Suite("The lone call's path", .offCooperativePool) struct LoneCallPathTests {
    /// Guards the lazily made progress: asked for while the call runs it reads 0 of 1, then
    /// reaches 1 of 1, finished, and its update stream ends; asked for only after the call ended
    /// it reads 1 of 1, finished, at once (a thrown error counts as its item come back).
    @Test(.timeLimit(.minutes(1))) func progressOfACall() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let running = try pool.applyAsync(F.sleepMs, 300)
        #expect(running.progress == PoolProgress(completed: 0, total: 1, isFinished: false))
        var last: PoolProgress?
        for await update in running.progressUpdates { last = update }
        #expect(last == PoolProgress(completed: 1, total: 1, isFinished: true))
        _ = try await running.value

        let quick = try pool.applyAsync(F.square, 7)
        #expect(try await quick.value == 49)
        #expect(quick.progress == PoolProgress(completed: 1, total: 1, isFinished: true))
        var updates: [PoolProgress] = []
        for await update in quick.progressUpdates { updates.append(update) }
        #expect(updates == [PoolProgress(completed: 1, total: 1, isFinished: true)])

        let failing = try pool.applyAsync(F.checkedSqrt, -4)
        await #expect(throws: TestFailure.self) { try await failing.value }
        #expect(failing.progress == PoolProgress(completed: 1, total: 1, isFinished: true))
    }

    /// Guards a call whose worker dies: nothing came back (0 of 1), yet its progress finishes.
    @Test(.timeLimit(.minutes(1))) func progressOfALostCall() async throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        let lost = try pool.applyAsync(F.exitWith, 3)
        await #expect(throws: PoolError.self) { try await lost.value }
        #expect(lost.progress == PoolProgress(completed: 0, total: 1, isFinished: true))
    }

    /// Guards the counts of calls that take the lone path: every value right, every success and
    /// failure counted once, nothing left queued or running.
    @Test(.timeLimit(.minutes(1))) func statisticsOfLoneCalls() async throws {
        let pool = try TestPools.make(processes: 2)
        defer { pool.stop() }
        var failures = 0
        for x in -10..<90 {
            do {
                let root = try await pool.apply(F.checkedSqrt, x * x)
                #expect(root == abs(x))
            } catch {
                failures += 1
            }
        }
        #expect(failures == 0)
        for x in 1...5 {
            await #expect(throws: TestFailure.self) { try await pool.apply(F.checkedSqrt, -x) }
        }
        let statistics = pool.statistics
        #expect(statistics.tasksCompleted.succeeded == 100)
        #expect(statistics.tasksCompleted.failed == 5)
        #expect(statistics.tasksQueued == 0 && statistics.tasksRunning == 0)
    }

    /// Guards maxTasksPerChild on the lone path: each worker serves two calls, then is replaced
    /// (the path leaves a spent worker to the scheduler, which retires it).
    @Test(.timeLimit(.minutes(1))) func maxTasksPerChildOnLoneCalls() throws {
        let pool = try TestPools.make(processes: 1, maxTasksPerChild: 2)
        defer { pool.stop() }
        var pids: [Int32] = []
        for _ in 0..<6 { pids.append(try pool.apply(F.pid)) }
        #expect(pids[0] == pids[1] && pids[2] == pids[3] && pids[4] == pids[5])
        #expect(Set(pids).count == 3)
        #expect(pool.statistics.workerRestarts.maxTasks >= 2)
    }

    /// Guards the copy a packed result's decoder loads from: only a value of the expected
    /// stride that the frame holds whole, and that fits the buffer, is copied.
    @Test func lonePackedCopyChecksStrideAndBounds() {
        func frame(stride: UInt32, bytes: [UInt8]) -> ByteReader {
            var writer = ByteWriter(reservingCapacity: 32)
            writer.writeUInt32(stride)
            for byte in bytes { writer.writeUInt8(byte) }
            return ByteReader(writer.bytes)
        }
        var buffer = [UInt8](repeating: 0xEE, count: 16)
        let value: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        let copied = buffer.withUnsafeMutableBytes {
            frame(stride: 8, bytes: value).copyLonePacked(stride: 8, into: $0)
        }
        #expect(copied && Array(buffer[0..<8]) == value && buffer[8] == 0xEE)
        buffer = [UInt8](repeating: 0xEE, count: 16)
        let refusals = buffer.withUnsafeMutableBytes { out in
            // Another stride; cut short; too big for the buffer; not even a stride.
            [
                frame(stride: 4, bytes: value).copyLonePacked(stride: 8, into: out),
                frame(stride: 8, bytes: Array(value[0..<7])).copyLonePacked(stride: 8, into: out),
                frame(stride: 32, bytes: value + value + value + value).copyLonePacked(stride: 32, into: out),
                ByteReader([1, 0]).copyLonePacked(stride: 8, into: out),
            ]
        }
        #expect(refusals == [false, false, false, false])
        #expect(buffer == [UInt8](repeating: 0xEE, count: 16))
    }
}
