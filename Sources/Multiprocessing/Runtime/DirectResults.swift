// Packed results straight from a worker's result ring into their place in the caller's list: one
// copy, with no frame buffer between (a `map` or `starmap` of plain numbers).
//
// Without this, the parent's I/O thread copied each chunk's result frame out of the ring into a
// buffer of its own (allocated per chunk), and the list's sink then copied the values from that
// buffer into the list: every result crossed the parent's memory twice, on the one thread that
// also writes the next tasks (the `starmap` bottleneck, see the performance article).
//
// How: before the I/O thread cuts a worker's bytes into frames, it looks at the next frame in
// the ring where it lies (``take(from:target:into:)``). A result frame of packed values, whole in
// the ring, of ``smallestPayload`` bytes or more, whose job's sink registered here
// (``register(_:pool:job:)``) and takes them (the right count and stride, not a duplicate, the
// outcome not yet known), has its values copied from the ring into the list under the sink's
// lock, and is then freed. What goes on to the pool's core is the frame's header alone, marked as
// delivered (``FrameAccumulator/Frame/deliveredDirectly``, which no worker can set: it is not on
// the wire), so that the scheduler counts the chunk as before. Anything else (a frame not yet
// whole, an error among the results, a sink that is not a list of plain numbers) goes the usual
// way, through the frame accumulator: a frame cut short by a worker's death is therefore never
// copied into the list, and fails its task as before.
//
// The table is process-wide, keyed by the pool's core and the job (jobs are numbered per pool):
// the I/O thread knows the core (its events), the submitting thread both. A core is named by its
// serial number (``PoolCore/serial``), never by its address: a sink that outlives its core (a
// result handle kept after the pool went) must not match a new core made at the same address.

import Synchronization

/// A job's sink that takes a chunk's packed results straight from a ring (``DirectResults``).
protocol DirectResultTarget: AnyObject, Sendable {
    /// Takes chunk `index`'s `count` packed values of `stride` bytes each: calls `copy` with
    /// where they go (room for exactly `count × stride` bytes), under the sink's lock. Returns
    /// false, without calling `copy`, when they must go the usual way instead.
    ///
    /// Returns true also for a chunk the sink no longer wants (a duplicate, or one that came
    /// after the outcome was known), without copying it: the bytes are dropped.
    func takeDirectly(index: Int, count: Int, stride: Int, _ copy: (UnsafeMutableRawPointer) -> Void) -> Bool
}

enum DirectResults {
    /// The smallest packed payload taken straight from the ring: below it, what the frame
    /// buffer costs is small beside the look-up.
    static let smallestPayload = 16 << 10

    /// A frame's bytes before its packed values: u32 length | u8 kind | u64 job | u64 chunk
    /// index | u32 count | u8 flags | u64 run time | u32 stride (see ResultFrame.swift).
    static let prefixSize = 4 + 30 + 4

    /// The smallest frame, its length field included, taken straight from the ring.
    static let smallestFrame = smallestPayload + prefixSize

    private struct Key: Hashable {
        /// The pool's core, by its ``PoolCore/serial``.
        let pool: UInt64
        let job: UInt64
    }

    private struct Entry {
        weak var target: (any DirectResultTarget)?
    }

    private static let table = Mutex<[Key: Entry]>([:])

    /// Lets the I/O thread of the pool whose core has serial number `pool` hand `job`'s packed
    /// results to `target`. Register before the job is submitted; ``unregister(pool:job:)`` once
    /// its outcome is known.
    static func register(_ target: any DirectResultTarget, pool: UInt64, job: UInt64) {
        let key = Key(pool: pool, job: job)
        table.withLock { $0[key] = Entry(target: target) }
    }

    static func unregister(pool: UInt64, job: UInt64) {
        _ = table.withLock { $0.removeValue(forKey: Key(pool: pool, job: job)) }
    }

    /// The target of `job` in the pool whose core has serial number `pool`, if one is
    /// registered (and still there).
    static func target(pool: UInt64, job: UInt64) -> (any DirectResultTarget)? {
        let key = Key(pool: pool, job: job)
        return table.withLock { $0[key]?.target }
    }

    /// Takes the frames at the front of `ring` that go straight into their lists (see the file's
    /// header), one after another, appending each one's header to `frames` as delivered; stops at
    /// the first frame that goes the usual way, and leaves it (and all after it) in the ring.
    /// Call only at a frame boundary (no frame half cut by the consumer's accumulator).
    /// - Parameter target: The target of a job, by its number (a look-up in ``register(_:pool:job:)``'s table).
    static func take(
        from ring: SharedRing, target: (UInt64) -> (any DirectResultTarget)?,
        into frames: inout [FrameAccumulator.Frame]
    ) {
        while let (position, available) = ring.readable(), available >= smallestFrame {
            var prefix: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
            typealias Parsed = (job: UInt64, header: ResultHeader, length: Int)
            let parsed = withUnsafeMutableBytes(of: &prefix) { raw -> Parsed? in
                ring.copy(from: position, count: prefixSize, into: raw.baseAddress!)
                let length = Int(raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian)
                guard raw[4] == FrameKind.result.rawValue, length <= available - 4 else { return nil }
                let job = raw.loadUnaligned(fromByteOffset: 5, as: UInt64.self).littleEndian
                let chunk = raw.loadUnaligned(fromByteOffset: 13, as: UInt64.self).littleEndian
                let count = Int(raw.loadUnaligned(fromByteOffset: 21, as: UInt32.self).littleEndian)
                let flags = raw[25]
                let stride = Int(raw.loadUnaligned(fromByteOffset: 34, as: UInt32.self).littleEndian)
                // Packed, none failed; exactly `count` values of `stride` bytes (no overflow:
                // both are 32-bit).
                guard flags == 2, stride > 0, length == prefixSize - 4 + count * stride,
                    count * stride >= smallestPayload, chunk <= UInt64(Int.max)
                else { return nil }
                let header = ResultHeader(
                    job: job, chunkIndex: chunk, itemCount: count, anyFailed: false, packed: true,
                    runNanoseconds: raw.loadUnaligned(fromByteOffset: 26, as: UInt64.self).littleEndian,
                    deliveredDirectly: true)
                return (job, header, length)
            }
            guard let parsed, let sink = target(parsed.job) else { return }
            let stride = (parsed.length - (prefixSize - 4)) / parsed.header.itemCount
            let taken = sink.takeDirectly(
                index: Int(parsed.header.chunkIndex), count: parsed.header.itemCount, stride: stride
            ) { destination in
                ring.copy(
                    from: position &+ UInt64(prefixSize), count: parsed.header.itemCount * stride, into: destination)
            }
            guard taken else { return }
            ring.consume(to: position &+ UInt64(4 + parsed.length))
            if ring.takeProducerWaiting() { ring.wakeProducer() }
            // The header alone, as the frame's body (kind byte first), for the scheduler.
            let body = withUnsafeBytes(of: &prefix) { Array($0[4..<(prefixSize - 4)]) }
            frames.append(FrameAccumulator.Frame(bytes: body, deliveredDirectly: true))
        }
    }
}
