// A fresh pool's first large task frame into its worker's task ring, on its own and reachable from
// the Benchmarks package: the ring's first pages made present beforehand by the worker's idle
// prefault (RingPrefault.swift) through its own mapping, or left untouched, then the parent's
// write as its flush does it (LocalTransport.makePresent, then the copy). SPI, not API:
// `@_spi(Benchmarks) import Multiprocessing`.

/// A fresh channel with its worker's view, for benchmarks of the first write into its task ring.
@_spi(Benchmarks)
public final class FreshRingBenchmarks: @unchecked Sendable {
    private let parent: SharedChannel
    private let worker: SharedChannel
    private let frame: [UInt8]
    private var extent = 0

    /// A fresh channel (made, not measured), the worker's prefault done through its view when
    /// `prefaulted`.
    /// - Parameter prefaulted: Whether the worker made its rings' first pages present.
    /// - Throws: `SystemError` when the shared memory cannot be made.
    public init(prefaulted: Bool) throws {
        parent = try SharedChannel.create()
        worker = try SharedChannel.attach(fd: parent.file!.rawValue)
        parent.file?.close()
        if prefaulted {
            var prefault = RingPrefault([worker.tasks, worker.results])
            while prefault.step() {}
        }
        // A task frame of the size the worker makes present.
        frame = [UInt8](repeating: 7, count: RingPrefault.extent)
    }

    /// Writes the frame into the task ring as the parent writes a large task; returns the bytes
    /// written (all of them: the ring is empty).
    public func writeFirstTask() -> Int {
        LocalTransport.makePresent(ahead: frame.count, in: parent.tasks, extent: &extent)
        return frame.withUnsafeBytes { parent.tasks.write($0) }
    }
}
