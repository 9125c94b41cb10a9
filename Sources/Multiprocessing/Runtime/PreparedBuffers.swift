// Large read buffers made present ahead of need, on a thread of their own.
//
// Every large result the parent reads (a frame or an attachment of 1 MiB or more) goes into a
// fresh array, made present in one system call before the copy (see `uninitializedBytes`). The
// parent keeps those arrays (they are the results it returns), so their memory is always new to
// the process, and on this machine (a virtual machine that hands freed memory back to its host)
// making it present is the parent's largest cost: 256 MiB of fresh memory took 118–135 ms on one
// thread (2.0–2.3 GB/s), against about 10 ms for a copy of as many bytes. It was all on the one
// I/O thread, between the copies it does for every worker. Two threads made the same memory
// present in 62–81 ms: the work spreads over both cores.
//
// So the I/O thread, reading a large payload, takes a buffer of that exact size that this
// preparer made present ahead of time on its own thread, and asks for more; when none is ready
// it makes its own as before (then both threads populate at once). Only the second read of a
// size within ``PreparedBuffers/idleRelease`` of the first starts the preparing: a lone large
// result now and then costs no buffers made for nothing. The preparer keeps at most
// ``PreparedBuffers/spares`` buffers of the size last asked for, up to
// ``PreparedBuffers/largest`` bytes each; spares not taken within ``PreparedBuffers/idleRelease``
// are given back, and the thread ends (the next large read starts another).
// Measured: `pool-workloads echo` (64 × 4 MiB), 2 × 14 runs alternating, median 2.61 → 3.25 and
// 2.51 → 2.96 GB/s; the I/O thread's time 183 → 109 ms.

import Dispatch
import Synchronization

/// Fresh byte buffers of the size the parent's large reads last asked for, made present ahead of
/// need on a thread of their own (see the file's header).
final class PreparedBuffers: Sendable {
    /// The parent's preparer (the I/O thread's readers share it).
    static let shared = PreparedBuffers()

    /// How many buffers are kept ready: two, so that the I/O thread, which takes one per large
    /// payload, does not find none while the next is being made.
    static let spares = 2
    /// The largest buffer prepared: the first buffer of a large frame
    /// (``FrameAccumulator/firstLargeBuffer``). Larger reads make their own.
    static let largest = FrameAccumulator.firstLargeBuffer
    /// How long spares wait to be taken before they are given back.
    static let idleRelease: Duration = .milliseconds(100)

    private struct State {
        /// The size of the buffers prepared (0: none asked for yet).
        var size = 0
        var ready: [[UInt8]] = []
        var threadRunning = false
        /// When the last take was (of `size`).
        var lastTake: MonotonicInstant?
        /// How many buffers were taken ready (for the tests and benchmarks).
        var taken = 0
        /// How many buffers were made ready (for the tests).
        var made = 0
    }

    private let state = Mutex(State())
    /// Signalled on every take that leaves fewer than ``spares`` ready.
    private let demand = DispatchSemaphore(value: 0)

    /// A present buffer of exactly `count` bytes (contents undefined) if one is ready, else nil;
    /// when the last take was of the same size and recent (within ``idleRelease``), the
    /// preparer then makes the spares of this size ready again. Sizes below
    /// ``presentBufferSize`` or above ``largest`` are not prepared (always nil).
    func take(_ count: Int) -> [UInt8]? {
        guard count >= presentBufferSize, count <= PreparedBuffers.largest else { return nil }
        let now = MonotonicInstant.now
        var dropped: [[UInt8]] = []
        let (buffer, startThread) = state.withLock { state -> ([UInt8]?, Bool) in
            let recent =
                state.size == count
                && state.lastTake.map { now < $0.advanced(by: PreparedBuffers.idleRelease) } ?? false
            state.lastTake = now
            if state.size != count {
                state.size = count
                swap(&dropped, &state.ready)
            }
            let buffer = state.ready.popLast()
            if buffer != nil { state.taken += 1 }
            // A lone read of this size: nothing is prepared for it.
            guard recent else { return (buffer, false) }
            if state.threadRunning {
                // Under the lock, so that a thread about to end sees it (see `prepare`).
                demand.signal()
                return (buffer, false)
            }
            state.threadRunning = true
            return (buffer, true)
        }
        dropped = []  // freed outside the lock
        if startThread {
            do {
                try startDetachedThread(name: "mp-buffers") { [self] in prepare() }
            } catch {
                // No thread: reads make their own buffers, as they would without a preparer.
                state.withLock { $0.threadRunning = false }
            }
        }
        return buffer
    }

    /// How many buffers were taken ready so far.
    var takenCount: Int { state.withLock { $0.taken } }

    /// How many buffers were made ready so far (some may have been given back since, unused).
    var madeCount: Int { state.withLock { $0.made } }

    /// How many buffers are ready now.
    var readyCount: Int { state.withLock { $0.ready.count } }

    /// The preparer's thread: makes spares until there are enough, waits for a take, and gives
    /// the spares back (and ends) when none is taken for ``idleRelease``.
    private func prepare() {
        while true {
            while let size = state.withLock({ $0.ready.count < PreparedBuffers.spares ? $0.size : nil }) {
                let buffer = uninitializedBytes(size)
                let unused = state.withLock { state -> [UInt8]? in
                    guard state.size == size, state.ready.count < PreparedBuffers.spares else { return buffer }
                    state.ready.append(buffer)
                    state.made += 1
                    return nil
                }
                _ = unused  // a buffer of a size no longer asked for: freed here, outside the lock
            }
            if demand.wait(until: MonotonicInstant.now.advanced(by: PreparedBuffers.idleRelease)) { continue }
            var released: [[UInt8]] = []
            let ended = state.withLock { state -> Bool in
                // A take between the timeout and this lock signalled: serve it first.
                guard demand.wait(timeout: .now()) == .timedOut else { return false }
                swap(&released, &state.ready)
                state.threadRunning = false
                return true
            }
            released = []
            if ended { return }
        }
    }
}
