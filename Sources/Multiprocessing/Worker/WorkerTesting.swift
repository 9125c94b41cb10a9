// Hooks for the package's own tests, which act inside a worker process: a task that writes bytes
// into its worker's result stream itself, as a broken worker would (a corrupt frame); and how
// many chunks the worker served on its synchronous path and on its async one. SPI, not API:
// `@_spi(Testing) import Multiprocessing`.

import Synchronization

/// What a worker's result stream is, for ``WorkerTesting``: set once the worker mapped its
/// channel.
let workerResultStream = Mutex<ResultWriter?>(nil)

/// How many chunks this worker served, by path (counted by its serve loop, its one writer: a
/// relaxed load and store each, no locked instruction).
let servedChunks = ServedChunkCounts()

/// The counts behind ``WorkerTesting/servedChunks``.
final class ServedChunkCounts: Sendable {
    let synchronous = Atomic<Int>(0)
    let asynchronous = Atomic<Int>(0)

    /// One chunk served without an async call.
    @inline(__always)
    func countSynchronous() {
        synchronous.store(synchronous.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    /// One chunk served through an async call (an `async` body).
    @inline(__always)
    func countAsynchronous() {
        asynchronous.store(asynchronous.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    /// Chunks whose packed items ran from the task ring, and those of them whose results were
    /// stored in place in the result ring (WorkerLoop's `runInPlace`).
    let itemsInPlace = Atomic<Int>(0)
    let resultsInPlace = Atomic<Int>(0)

    /// One chunk run in place; `results`: its results stored in place too.
    @inline(__always)
    func countInPlace(results: Bool) {
        itemsInPlace.store(itemsInPlace.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
        if results { resultsInPlace.store(resultsInPlace.load(ordering: .relaxed) &+ 1, ordering: .relaxed) }
    }
}

/// Test hooks that act inside a worker process.
@_spi(Testing)
public enum WorkerTesting {
    /// Writes `bytes` into this worker's result stream as they are, outside any frame. Does
    /// nothing outside a worker.
    /// - Parameter bytes: What the parent reads next from this worker.
    public static func writeToResultStream(_ bytes: [UInt8]) {
        guard let writer = workerResultStream.withLock({ $0 }) else { return }
        bytes.withUnsafeBytes { writer.send($0) }
    }

    /// How many chunks this worker has served so far without an async call (functions with a
    /// synchronous body) and through one (`async` bodies), the running chunk included. Both 0
    /// outside a worker.
    public static var servedChunks: (synchronous: Int, asynchronous: Int) {
        (
            Multiprocessing.servedChunks.synchronous.load(ordering: .relaxed),
            Multiprocessing.servedChunks.asynchronous.load(ordering: .relaxed)
        )
    }

    /// How many results this worker sent with a held doorbell (chunks of a job seen only as a
    /// whole, such as a `map` of several chunks), and how many doorbells it rang for them. Both 0
    /// outside a worker.
    public static var heldDoorbells: (results: Int, rung: Int) {
        workerResultStream.withLock { $0?.heldCounts } ?? (0, 0)
    }

    /// How many chunks this worker has run from its task ring, their packed items where they
    /// lay (no copy), and how many of them had their results stored in place in its result ring
    /// too. Both 0 outside a worker.
    public static var servedInPlace: (items: Int, results: Int) {
        (
            Multiprocessing.servedChunks.itemsInPlace.load(ordering: .relaxed),
            Multiprocessing.servedChunks.resultsInPlace.load(ordering: .relaxed)
        )
    }
}
