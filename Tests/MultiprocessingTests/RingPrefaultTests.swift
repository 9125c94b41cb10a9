// The first pages of a worker's rings made present off the first large job's path: by the worker
// while it is idle (RingPrefault, through the task reader's background work), and by the parent
// in one call before a large task frame goes into the ring (LocalTransport.makePresent).

import Synchronization
import Testing

@testable import Multiprocessing

#if canImport(Glibc)
    import Glibc
#endif

/// A fresh channel as the parent makes it, and the worker's view of the same memory file.
private func channelAndWorkerView() throws -> (parent: SharedChannel, worker: SharedChannel) {
    let parent = try SharedChannel.create()
    let worker = try SharedChannel.attach(fd: parent.file!.rawValue)
    parent.file?.close()
    return (parent, worker)
}

/// Which pages of `ring`'s data area exist in its memory file, whatever process touched them.
private func resident(_ ring: SharedRing) throws -> [Bool] {
    try residentPages(ring.dataStart, count: ring.capacity)
}

/// A task frame of `count` body bytes.
private func taskFrame(_ count: Int) -> [UInt8] {
    var writer = ByteWriter()
    let start = writer.beginFrame(.task)
    for _ in 0..<count { writer.writeUInt8(7) }
    writer.finishFrame(startingAt: start)
    return writer.bytes
}

@Suite("Ring pages made present ahead", .offCooperativePool)
struct RingPrefaultTests {
    @Test("A worker's prefault makes the first MiB of both rings present in the memory file, slice by slice")
    func workerPrefault() throws {
        let (parent, worker) = try channelAndWorkerView()
        #expect(try resident(parent.tasks).allSatisfy { !$0 })
        var prefault = RingPrefault([worker.tasks, worker.results])
        var steps = 0
        while prefault.step() { steps += 1 }
        #expect(prefault.isFinished)
        #expect(steps == 2 * RingPrefault.extent / RingPrefault.slice)
        // Seen through the parent's mapping: the pages exist, the rest of each ring does not.
        let present = RingPrefault.extent / pageSize
        for ring in [parent.tasks, parent.results] {
            let pages = try resident(ring)
            #expect(pages[..<present].allSatisfy { $0 })
            #expect(pages[present...].allSatisfy { !$0 })
        }
    }

    @Test("Before a large task frame, the parent makes the ring's pages it can reach present, once")
    func parentAhead() throws {
        let (parent, _) = try channelAndWorkerView()
        let ring = parent.tasks
        var extent = 0
        LocalTransport.makePresent(ahead: 512 << 10, in: ring, extent: &extent)
        #expect(extent == 512 << 10)
        var pages = try resident(ring)
        #expect(pages[..<128].allSatisfy { $0 } && pages[128...].allSatisfy { !$0 })
        // After a message of 512 KiB, the next one can reach 100 KiB further.
        let frame = taskFrame((512 << 10) - 5)
        #expect(frame.withUnsafeBytes { ring.write($0) } == 512 << 10)
        LocalTransport.makePresent(ahead: 100 << 10, in: ring, extent: &extent)
        #expect(extent == 612 << 10)
        // What is present already is not asked for again; the ring's end bounds the reach.
        LocalTransport.makePresent(ahead: 4 << 10, in: ring, extent: &extent)
        #expect(extent == 612 << 10)
        LocalTransport.makePresent(ahead: 8 << 20, in: ring, extent: &extent)
        #expect(extent == ring.capacity)
        pages = try resident(ring)
        #expect(pages.allSatisfy { $0 })
    }

    @Test("The task reader does background work only once a wait ran out, and hands out a frame first")
    func readerBackground() throws {
        let stream = try RingStream()
        let calls = Mutex(0)
        // The frame comes once the reader has done its work (or after 5 s, so that a reader that
        // waits wrongly fails the test instead of hanging it).
        _ = try OwnThread {
            var waited = 0
            while calls.withLock({ $0 }) < 4 && waited < 5000 {
                usleep(1000)
                waited += 1
            }
            stream.write(taskFrame(3))
        }
        var reader = stream.reader()
        // Three slices of work, then none left.
        reader.background = {
            calls.withLock { count in
                count += 1
                return count <= 3
            }
        }
        #expect(try reader.next()?.kind == FrameKind.task.rawValue)
        #expect(calls.withLock { $0 } == 4)
        // A frame that is there is handed out at once; the work that was done is not asked again.
        stream.write(taskFrame(5))
        #expect(try reader.next()?.bytes.count == 6)
        #expect(calls.withLock { $0 } == 4)
        #expect(reader.background == nil)
    }
}
