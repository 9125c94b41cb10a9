// What `imap` and `imapUnordered` compile in the caller's module, for its types: reading the
// input a batch at a time, appending a batch of plain numbers to a task frame, and reading a
// chunk's packed results. The stream itself (StreamStorage) is generic code of the library, which
// runs unspecialized and looks types' metadata up at run time; these closures, made in inlinable
// code, are what it calls once a chunk instead (callgrind, `pool-workloads imap`: the feeding
// step ~8,000 instructions a chunk of 1000 `Int`s, most of it metadata look-ups, and the packed
// read ~2,000).

extension Pool {
    /// A stream's input, as the library's feeder reads it (made in the caller's module).
    @usableFromInline
    struct StreamInput<Element> {
        /// `pull(&batch, n)` appends up to `n` more items to `batch` (see ``Pool/batches(of:)``).
        @usableFromInline let pull: (inout [Element], Int) -> Void
        /// For plain numbers sent packed: `feedPacked(n, body)` reads up to `n` more items and,
        /// unless there are none (the end of the input), calls `body` with their bytes (`count ×`
        /// their stride, an array's memory) and their count; returns the count. Reads through
        /// `pull`.
        @usableFromInline let feedPacked: ((Int, (UnsafeRawBufferPointer, Int) -> Void) -> Int)?

        /// - Parameter packed: The function's arguments travel packed (``PoolFunction/packedArgumentStride``).
        @inlinable
        init<S: Sequence<Element>>(_ items: S, packed: Bool) {
            let pull = Pool.batches(of: items)
            self.pull = pull
            guard packed else {
                feedPacked = nil
                return
            }
            var batch: [Element] = []
            feedPacked = { limit, body in
                pull(&batch, limit)
                // The items are copied by `body`; they need not live until the next chunk.
                defer { batch.removeAll(keepingCapacity: true) }
                let count = batch.count
                if count > 0 { batch.withUnsafeBytes { body($0, count) } }
                return count
            }
        }
    }

    /// Reads the packed results of a stream's chunk, `count` of them, as `[R]`; nil when they are
    /// not that (the stream then decodes them the general way, which says why).
    @usableFromInline
    typealias PackedChunkReader<R> = @Sendable (_ items: ByteReader, _ header: ResultHeader, _ count: Int) -> [R]?

    /// The packed-result reader for `R`, compiled in the caller's module; nil when `R` is not a
    /// plain number (its results never come back packed).
    @inlinable
    static func packedChunkReader<R>(for _: R.Type) -> PackedChunkReader<R>? {
        guard PackedLayout.isPlain(R.self) else { return nil }
        return { items, header, count in
            guard header.packed, header.itemCount == count else { return nil }
            var copied = false
            let values = [R](unsafeUninitializedCapacity: count) { buffer, initialized in
                copied = items.copyPacked(
                    count: count, stride: MemoryLayout<R>.stride, into: UnsafeMutableRawBufferPointer(buffer))
                initialized = copied ? count : 0
            }
            return copied ? values : nil
        }
    }

    /// Reads `items` a batch at a time: `pull(&batch, n)` appends up to `n` more items. Made in
    /// the caller's module (inlined), so that iterating the caller's sequence is compiled for its
    /// concrete type rather than run through generic code item by item.
    @inlinable
    static func batches<S: Sequence>(of items: S) -> (inout [S.Element], Int) -> Void {
        var iterator: S.Iterator? = items.makeIterator()
        var ended = false
        return { batch, limit in
            guard !ended else { return }
            // Moved out and back: the captured variable is accessed once a batch, not once an
            // item, and an iterator with copy-on-write storage is never copied (taking it leaves
            // the closure's copy empty, so the storage stays uniquely referenced).
            var local = iterator.take()!
            defer { iterator = local }
            // An empty batch is filled in place, without `append`'s capacity and uniqueness
            // checks per item (measured: 3e6 items of a lazy map, 52 → 14 instructions an
            // item); the first 64 Ki items at most, so that a huge chunksize reserves nothing
            // the input may never fill. The rest, if any, is appended.
            let reserved = batch.isEmpty ? min(limit, 1 << 16) : 0
            if reserved > 0 {
                batch = [S.Element](unsafeUninitializedCapacity: reserved) { buffer, count in
                    while count < reserved {
                        guard let item = local.next() else {
                            ended = true
                            return
                        }
                        (buffer.baseAddress! + count).initialize(to: item)
                        count += 1
                    }
                }
            }
            while !ended && batch.count < limit {
                guard let item = local.next() else {
                    ended = true
                    return
                }
                batch.append(item)
            }
        }
    }
}
