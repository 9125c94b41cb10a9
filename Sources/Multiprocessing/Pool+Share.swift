// `share`: hand every worker one large read-only value once, as a small handle that tasks take
// as an argument and read in place (joblib memory-maps large arguments, Ray puts them in its
// object store once; CPython's users hand-roll `shared_memory`).
//
// The parent copies the elements once into a new range of the pool's memory file (see
// Runtime/SharedSegment.swift), through a mapping of its own, which it keeps: the handle reads
// in place in the parent too. The copy runs on the calling thread (about 20–50 ms for 256 MiB,
// most of it the kernel supplying the pages); there is no `async` form, as the copy is bounded
// work on memory the caller already has, like building the array was.

extension Pool {
    /// Copies `array` once into memory every worker of the pool can map, and returns a small
    /// handle on it that tasks take as an argument and read in place.
    ///
    /// ```swift
    /// let table = try pool.share(numbers)       // [Int64], 256 MiB: copied once
    /// let sums = try await pool.starmap(sumSlice, slices.map { (table, $0) })
    /// ```
    ///
    /// Passing the handle sends a few numbers, not the elements. Each worker maps the value the
    /// first time one of its tasks decodes the handle, and keeps it mapped; replacement workers
    /// map it too. The value is freed when the last handle in this process goes and every call
    /// submitted until then has finished (a worker's death, a timeout, a cancellation or
    /// ``terminate()`` included), or when the pool has stopped. See <doc:SharingData>.
    ///
    /// The copy runs on the calling thread: about 20–50 ms for 256 MiB, which the kernel spends
    /// mostly supplying the pages.
    ///
    /// - Parameter array: The elements; any `BitwiseCopyable` type (numbers, structs and tuples of
    ///   them). Pointers in them mean nothing in a worker.
    /// - Returns: The handle, a `RandomAccessCollection` of the elements.
    /// - Throws: ``PoolError`` `.notRunning` after ``close()`` or ``terminate()``;
    ///   `.invalidArgument` on a cluster pool (its workers are on other machines and cannot map
    ///   this machine's memory), for an element type aligned to more than 64 bytes, or when the
    ///   system refuses the memory (the ``SystemError`` is the underlying error).
    public func share<Element: BitwiseCopyable & Sendable>(_ array: [Element]) throws -> SharedArray<Element> {
        guard core.lifecycle == .running else { throw core.notRunningError(functionName: nil) }
        guard let segment = core.sharedSegment else {
            throw PoolError(
                .invalidArgument,
                "share needs workers on this machine: this pool's workers run on a cluster and cannot map its "
                    + "memory; pass the value as an argument instead")
        }
        guard MemoryLayout<Element>.alignment <= SharedValueHeader.maxAlignment else {
            throw PoolError(
                .invalidArgument,
                "share supports elements aligned to at most \(SharedValueHeader.maxAlignment) bytes, not "
                    + "\(MemoryLayout<Element>.alignment) (\(Element.self))")
        }
        let stride = MemoryLayout<Element>.stride
        guard
            let length = SharedValueHeader.rangeLength(count: array.count, stride: stride, pageSize: systemPageSize)
        else {
            throw PoolError(.invalidArgument, "\(array.count) elements of \(stride) bytes are too many to share")
        }
        let (offset, mapping) = try segment.allocate(length: length)
        let id = SharedValueRegistry.makeID()
        let typeFingerprint = SharedValueHeader.typeFingerprint(of: Element.self)
        mapping.populateForWriting()
        array.withUnsafeBytes { bytes in
            if let source = bytes.baseAddress {
                (mapping.base + SharedValueHeader.size).copyMemory(from: source, byteCount: bytes.count)
            }
        }
        SharedValueHeader(
            id: id, count: UInt64(array.count), stride: UInt64(stride), typeFingerprint: typeFingerprint
        ).write(to: mapping.base)
        let storage = SharedValueStorage(
            id: id, offset: offset, count: array.count, typeFingerprint: typeFingerprint, mapping: mapping,
            segment: segment)
        return SharedArray(storage)
    }
}
