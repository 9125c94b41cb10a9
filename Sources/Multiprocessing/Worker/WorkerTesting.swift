// A hook for the package's own fault tests: a task that writes bytes into its worker's result
// stream itself, as a broken worker would (a corrupt frame). SPI, not API:
// `@_spi(Testing) import Multiprocessing`.

import Synchronization

/// What a worker's result stream is, for ``WorkerTesting``: set once the worker mapped its
/// channel.
let workerResultStream = Mutex<ResultWriter?>(nil)

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
}
