// What a spin pays to look where the other side of a channel runs (CPUNotes.swift), reachable from
// the Benchmarks package: one side's note and the other side's look, through a fresh channel's two
// views. SPI, not API: `@_spi(Benchmarks) import Multiprocessing`.

/// A fresh channel's two views, for benchmarks of the CPU notes.
@_spi(Benchmarks)
public final class CPUNotesBenchmarks: @unchecked Sendable {
    private let parent: SharedChannel
    private let worker: SharedChannel

    /// A fresh channel and its worker's view (made, not measured).
    /// - Throws: `SystemError` when the shared memory cannot be made.
    public init() throws {
        parent = try SharedChannel.create()
        worker = try SharedChannel.attach(fd: parent.file!.rawValue)
        parent.file?.close()
    }

    /// The parent notes where it runs, as it does before writing a task; the worker looks, as its
    /// spin does every 64 turns. Returns whether the two share this thread's CPU (they do, unless
    /// the thread moved in between).
    public func noteAndLook() -> Bool {
        parent.parentCPUNotes.note()
        return worker.workerCPUNotes.otherSideSharesThisCPU
    }
}
