// Where the consumer of an `imap`/`imapUnordered` stream is in the chunk it is handing out, item
// by item. StreamStorage.swift keeps it under a lock of its own, apart from the stream's state
// machine, so that taking an item does not contend with the I/O thread delivering results: the
// consumer touches the state machine once per chunk, not once per item.

/// The chunk being handed out, and the position in it.
@usableFromInline
struct StreamCursor<Element: Sendable>: Sendable {
    @usableFromInline var values: [Element] = []
    @usableFromInline var failures: [Int: any Error] = [:]
    @usableFromInline var count = 0
    @usableFromInline var position = 0
    @usableFromInline var valueIndex = 0
    /// The fast path (``takeValue()``, ``takeValues()``) hands out `values` below this index: all
    /// but the last of a chunk without failures (in which `position == valueIndex` throughout),
    /// none of one with failures. One comparison an item, where checking the position against
    /// the count and the failures for emptiness took three loads and two (see ``takeValue()``).
    @usableFromInline var fastEnd = 0

    @inlinable
    init() {}

    /// The next item if it is a value that does not end its chunk: the common case, which
    /// ``ResultStream`` inlines into the consumer's loop. (`valueIndex < fastEnd <= values.count`
    /// holds, so the read needs no bounds check. With ``fastEnd``, the loop of `pool-workloads
    /// imap` reading 3e6 items with `next()`, its own sum included, is 34 instructions an item
    /// (callgrind), from 43.)
    @inlinable
    mutating func takeValue() -> Element? {
        let index = valueIndex
        guard index < fastEnd else { return nil }
        valueIndex = index &+ 1
        position = index &+ 1
        return values.withUnsafeBufferPointer { $0[index] }
    }

    /// The values waiting in the chunk being handed out, all but its last (which ends the chunk
    /// through ``take()``), at once: an iterator hands them out by itself (see
    /// ``ResultStream/AsyncIterator``). Empty when the chunk has a failure or one item left.
    @inlinable
    mutating func takeValues() -> ArraySlice<Element> {
        guard valueIndex < fastEnd else { return [] }
        let taken = values[valueIndex..<fastEnd]
        valueIndex = fastEnd
        position = fastEnd
        return taken
    }

    /// The next item, and whether it ends its chunk (the cursor is then empty again).
    @inlinable
    mutating func take() -> (Result<Element, any Error>, endsChunk: Bool)? {
        guard position < count else { return nil }
        let outcome: Result<Element, any Error>
        if !failures.isEmpty, let error = failures[position] {
            outcome = .failure(error)
        } else {
            outcome = .success(values[valueIndex])
            valueIndex += 1
        }
        position += 1
        let ends = position == count
        if ends { self = StreamCursor() }
        return (outcome, ends)
    }

    /// Starts handing out `chunk`, a chunk of this element type (the stream's).
    @inlinable
    mutating func load(_ chunk: StreamChunk) {
        if let box = chunk.box {
            load(unsafeDowncast(box, to: StreamChunkBox<Element>.self).results)
        } else {
            load(StreamChunkResults(failing: chunk.count, with: chunk.failure!))
        }
    }

    /// Starts handing out `chunk`.
    @inlinable
    mutating func load(_ chunk: StreamChunkResults<Element>) {
        self = StreamCursor()
        values = chunk.values
        failures = chunk.failures
        count = chunk.count
        // Without failures, `count == values.count`: every value but the last is fast.
        fastEnd = failures.isEmpty ? max(0, min(count, values.count) - 1) : 0
    }
}
