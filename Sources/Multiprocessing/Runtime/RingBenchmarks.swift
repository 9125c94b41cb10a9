// The data plane's ring on its own, reachable from the Benchmarks package: what one message costs
// the ring itself (a copy in, a copy out, the positions and the wake-up protocol), with no process
// and no pool around it. SPI, not API: `@_spi(Benchmarks) import Multiprocessing`.

/// A worker channel's ring with both ends in this process, for benchmarks.
@_spi(Benchmarks)
public final class RingBenchmarks: @unchecked Sendable {
    private let channel: SharedChannel
    private var buffer: [UInt8]

    /// A ring of the size workers get.
    /// - Throws: `SystemError` when the shared memory cannot be made.
    public init() throws {
        channel = try SharedChannel.create()
        channel.file?.close()
        buffer = [UInt8](repeating: 0, count: 64 * 1024)
    }

    /// Sends `bytes` through the ring and reads them back, piece by piece as they fit; returns the
    /// number of bytes read.
    /// - Parameter bytes: The message.
    /// - Returns: How many bytes came out (`bytes.count`).
    public func transfer(_ bytes: [UInt8]) -> Int {
        var sent = 0
        var received = 0
        let ring = channel.results
        while received < bytes.count {
            if sent < bytes.count {
                sent += bytes.withUnsafeBytes { ring.write(UnsafeRawBufferPointer(rebasing: $0[sent...])) }
            }
            received += buffer.withUnsafeMutableBytes { ring.read(into: $0.baseAddress!, count: $0.count) }
        }
        return received
    }
}
