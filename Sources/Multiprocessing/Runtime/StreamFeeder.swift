// The input side of an `imap`/`imapUnordered` stream: the caller's sequence, read a chunk at a
// time (of the size the stream asks for) and encoded into the frames that go to the workers (the
// closure is made in Pool+Imap.swift).

/// Produces the next chunk of a stream's input, encoded. Only ever called under the feed lock,
/// so the (possibly non-Sendable) input iterator it holds is never touched by two threads at
/// once; that is what makes the `@unchecked Sendable` sound.
final class StreamFeeder: @unchecked Sendable {
    enum Slot {
        /// A chunk for the workers, of `count` items.
        case chunk(PoolCore.Scheduler.Chunk, count: Int)
        /// One item that failed before it could be sent (its arguments did not encode).
        case local(index: Int, any Error)
    }

    private let produce: (_ chunkIndex: Int, _ size: Int) -> [Slot]

    /// `produce` returns the slots of the next `size` input items (one chunk, possibly split
    /// around an item that failed to encode), or nothing at the end of the input.
    init(_ produce: @escaping (_ chunkIndex: Int, _ size: Int) -> [Slot]) {
        self.produce = produce
    }

    func next(chunkIndex: Int, size: Int) -> [Slot] { produce(chunkIndex, size) }
}
