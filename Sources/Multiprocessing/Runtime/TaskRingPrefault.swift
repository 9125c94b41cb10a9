// The parent makes its own mapping of every worker's task ring present while its I/O thread has
// nothing to do, a slice at a time, so that the first large job does not pay for it.
//
// A page of a worker's channel is mapped in each process on its first touch there, whichever
// process allocated it: before it writes a task frame of 64 KiB or more, the parent makes the
// part of the task ring the frame can reach present in one call (``LocalTransport/makePresent(ahead:in:extent:)``).
// For a fresh pool's first `starmap` of 1e6 pairs (chunks of 2 MB, a ring's worth), that call
// took 1.0–1.2 ms per worker on the submitting thread, one worker after the other, before the
// second worker had its first chunk. The I/O thread is usually idle once the workers are ready
// (the caller is making its input), so it does this then: once it has waited
// ``idleDelayMilliseconds`` for an event in vain, one ``slice`` per turn of its loop, polling
// (without waiting) between two slices, so that an event waits for one slice at most. What a
// slice made present counts as present for the writes (``TaskChannel/presentExtent``).

import Synchronization

extension LocalTransport {
    /// How long the I/O thread waits for an event in vain before it makes task rings present.
    static let idleDelayMilliseconds: Int32 = 1
    /// How many bytes one step makes present: 16 pages, 30–60 µs on the development VM.
    static let taskRingSlice = 64 << 10

    /// Makes the next slice of a task ring present in this process's mapping (the first ready
    /// worker's whose ring is not all present yet: not while workers start, which a cold start
    /// waits for). Returns false when there was none left. Call under the loop lock. The memory
    /// is made present outside the channel lock (a submitting thread does not wait for it); a
    /// write that made the same pages present meanwhile only made this one redundant.
    func prefaultTaskRingSlice() -> Bool {
        let ready = loop.readers.compactMap { $0.1.ready ? $0.0 : nil }
        let next = channels.withLock { channels -> (WorkerID, SharedChannel, Int)? in
            for id in ready {
                guard let channel = channels.table[id], channel.input != nil else { continue }
                if channel.presentExtent < channel.shared.tasks.capacity {
                    return (id, channel.shared, channel.presentExtent)
                }
            }
            return nil
        }
        guard let (id, shared, extent) = next else { return false }
        let count = min(LocalTransport.taskRingSlice, shared.tasks.capacity - extent)
        shared.tasks.makePresent(offset: extent, count: count)
        channels.withLock { channels in
            _ = channels.table.update(id) { channel in
                // Another write may have made more present meanwhile; only a contiguous extent
                // counts (a ring made present from its start).
                if channel.shared === shared, channel.presentExtent >= extent {
                    channel.presentExtent = max(channel.presentExtent, extent + count)
                }
            }
        }
        return true
    }
}
