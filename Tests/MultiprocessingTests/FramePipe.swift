// A pipe for the tests of the frame layer (FrameTests, AttachmentTests): bytes written to one
// end, read from the other by a FrameAccumulator.

@testable import Multiprocessing

/// A non-blocking pipe whose read end feeds a FrameAccumulator. Each end is closed once: tests
/// run in parallel, and closing a descriptor twice could close another test's.
final class FramePipe: @unchecked Sendable {
    let readFD: Int32
    private var writeFD: Int32
    private var readClosed = false

    init() throws {
        // This pipe closes its ends itself, each once.
        (readFD, writeFD) = try PipePair.make().release()
        try setNonBlocking(readFD)
        growPipeBuffer(writeFD, to: 1 << 20)
    }

    func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in try? writeFully(writeFD, raw) }
    }

    /// The write end (-1 once closed).
    var writeEnd: Int32 { writeFD }

    func closeWriter() {
        guard writeFD >= 0 else { return }
        closeDescriptor(writeFD)
        writeFD = -1
    }

    func close() {
        closeWriter()
        if !readClosed {
            closeDescriptor(readFD)
            readClosed = true
        }
    }
}
