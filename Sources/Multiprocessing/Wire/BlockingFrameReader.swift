// BlockingFrameReader.swift
//
// The worker's side of the frame stream: the next frame from its blocking task pipe, polling
// briefly before it sleeps.

/// Reads frames from a blocking descriptor (the worker's side): as many bytes as are there at
/// each read, so a frame usually costs one `read`, and frames sent together cost one in all.
struct BlockingFrameReader {
    let fd: Int32
    private var accumulator = FrameAccumulator()
    private var frames: [FrameAccumulator.Frame] = []
    private var nextFrame = 0

    /// How long to poll for the next frame, without sleeping, before sleeping in `read`.
    var spin: Duration

    init(fd: Int32, spin: Duration = .zero) {
        self.fd = fd
        self.spin = spin
    }

    /// The next frame, waiting for it; nil at a clean end of file.
    /// - Throws: ``FrameError`` for a malformed stream or one that ends inside a frame.
    mutating func next() throws -> FrameAccumulator.Frame? {
        while nextFrame == frames.count {
            frames.removeAll(keepingCapacity: true)
            nextFrame = 0
            // A frame that follows within `spin` is read without the wake-up of a sleeping
            // thread (what that costs: see the performance article).
            if spin > .zero { _ = pollReadable(fd, spinningFor: spin) }
            let open = try accumulator.read(from: fd, into: &frames, returningOnFrame: true)
            if !open && frames.isEmpty {
                if accumulator.hasPartialFrame { throw FrameError(description: "end of file inside a frame") }
                return nil
            }
        }
        defer { nextFrame += 1 }
        return frames[nextFrame]
    }
}
