// Counting the failed items of a result frame without decoding them, for the pool's statistics
// (the scheduler counts items by outcome as it handles the chunk's completion).

extension ResultItems {
    /// How many items of a result frame are errors: 0 when its header says none failed (packed
    /// results never do), else the items whose outcome byte marks an error, each skipped by its
    /// length. An unreadable rest counts as failed, as the sink then fails those items.
    static func failedCount(_ reader: ByteReader, header: ResultHeader) -> Int {
        guard header.anyFailed, !header.packed else { return 0 }
        var reader = reader
        var failed = 0
        for index in 0..<header.itemCount {
            do {
                let outcome = try reader.readUInt8()
                let length = Int(try reader.readUInt32())
                try reader.skip(length)
                if outcome != 0 { failed += 1 }
            } catch {
                return failed + header.itemCount - index
            }
        }
        return failed
    }
}
