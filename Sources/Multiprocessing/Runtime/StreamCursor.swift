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

    @inlinable
    init() {}

    /// The next item if it is a value that does not end its chunk: the common case, which
    /// ``ResultStream`` inlines into the consumer's loop.
    @inlinable
    mutating func takeValue() -> Element? {
        guard position &+ 1 < count, failures.isEmpty else { return nil }
        let value = values[valueIndex]
        valueIndex &+= 1
        position &+= 1
        return value
    }

    /// The values waiting in the chunk being handed out, all but its last (which ends the chunk
    /// through ``take()``), at once: an iterator hands them out by itself (see
    /// ``ResultStream/AsyncIterator``). Empty when the chunk has a failure or one item left.
    @inlinable
    mutating func takeValues() -> ArraySlice<Element> {
        guard position &+ 1 < count, failures.isEmpty else { return [] }
        let n = count &- 1 &- position
        let taken = values[valueIndex..<(valueIndex &+ n)]
        valueIndex &+= n
        position &+= n
        return taken
    }

    /// The next item, and whether it ends its chunk (the cursor is then empty again).
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

    /// Starts handing out `chunk`.
    mutating func load(_ chunk: StreamChunkResults<Element>) {
        self = StreamCursor()
        values = chunk.values
        failures = chunk.failures
        count = chunk.count
    }
}
