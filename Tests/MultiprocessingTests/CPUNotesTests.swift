// Where each side of a worker's channel last ran (CPUNotes.swift): what a fresh channel holds,
// that one side's note reaches the other side's view, and that a real worker notes where it runs
// when it takes a task (what the parent's spin for a lone call's result looks at).

import MultiprocessingTestSupport
import Synchronization
import Testing

@testable import Multiprocessing

#if canImport(Glibc)
    import Glibc
#endif

/// The CPUs this machine has (a CPU number is below it).
private let configuredCPUs = Int64(sysconf(Int32(_SC_NPROCESSORS_CONF)))

@Suite("Where each side of a channel runs", .offCooperativePool)
struct CPUNotesTests {
    @Test("A fresh channel's notes are unknown to both sides: neither spinner yields early")
    func freshChannel() throws {
        let parent = try SharedChannel.create()
        let worker = try SharedChannel.attach(fd: parent.file!.rawValue)
        parent.file?.close()
        #expect(parent.parentCPUNotes.otherSide == CPUNotes.unknown)
        #expect(worker.workerCPUNotes.otherSide == CPUNotes.unknown)
        #expect(!parent.parentCPUNotes.otherSideSharesThisCPU)
        #expect(!worker.workerCPUNotes.otherSideSharesThisCPU)
    }

    @Test("A side's note is the CPU it runs on, seen through the other side's mapping")
    func noteCrossesTheMapping() throws {
        let parent = try SharedChannel.create()
        let worker = try SharedChannel.attach(fd: parent.file!.rawValue)
        parent.file?.close()
        // The thread may move between the note and the look: retried until it stayed put.
        var checked = false
        for _ in 0..<1000 where !checked {
            let before = Int64(currentCPU())
            parent.parentCPUNotes.note()
            let shares = parent.workerCPUNotes.otherSideSharesThisCPU
            let after = Int64(currentCPU())
            guard before == after else { continue }
            #expect(worker.workerCPUNotes.otherSide == before)
            #expect(shares)
            #expect(!parent.parentCPUNotes.otherSideSharesThisCPU, "the worker never noted anything")
            checked = true
        }
        #expect(checked)
        // The worker's side, the same way.
        worker.workerCPUNotes.note()
        #expect((0..<configuredCPUs).contains(parent.parentCPUNotes.otherSide))
    }

    @Test(
        "A worker notes the CPU it runs on when it takes a task, and the parent where it writes one",
        .disabled(if: TestBackend.isCluster, "reads the local transport's channels: a cluster pool has node agents"))
    func workerNotesOnTask() throws {
        let pool = try TestPools.make(processes: 1)
        defer { pool.stop() }
        #expect(try pool.apply(F.square, 6) == 36)
        guard let transport = pool.core.transport as? LocalTransport else {
            Issue.record("the test pool does not run on the local transport")
            return
        }
        let notes = transport.channels.withLock { channels in
            var notes: [(worker: Int64, parent: Int64)] = []
            channels.table.updateEach { _, channel in
                notes.append((channel.shared.parentCPUNotes.otherSide, channel.shared.workerCPUNotes.otherSide))
            }
            return notes
        }
        #expect(notes.count == 1)
        for note in notes {
            #expect((0..<configuredCPUs).contains(note.worker), "worker noted \(note.worker)")
            #expect((0..<configuredCPUs).contains(note.parent), "parent noted \(note.parent)")
        }
    }
}
