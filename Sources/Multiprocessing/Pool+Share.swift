// `share`: hand every worker one large read-only value once, as a small handle that tasks take
// as an argument and read in place (joblib memory-maps large arguments, Ray puts them in its
// object store once; CPython's users hand-roll `shared_memory`).
//
// The parent copies the elements once into a new range of the pool's memory file (see
// Runtime/SharedSegment.swift), by writing them into the file (pwrite): the kernel fills each new
// page from the array as it allocates it, one pass over the memory, where a copy through a
// mapping first gets each page zeroed, then writes it again. The parent keeps a mapping of the
// range, so the handle reads in place in the parent too (its pages come into that mapping as the
// parent reads them). The copy runs on the calling thread; there is no `async` form, as the copy
// is bounded work on memory the caller already has, like building the array was. On the
// project's 2-core VM, 256 MiB took 0.11–0.14 s (best and median of 5 runs of `pool-workloads
// share`, alternating, under load), 0.18–0.21 s copied through the mapping; most of it is the
// system supplying fresh pages (on that VM each one costs the host a fault).

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
    /// The copy runs on the calling thread, written into the memory file in one pass: about
    /// 0.1 s for 256 MiB on a 2-core VM, most of it the system supplying fresh pages.
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
        let (offset, mapping) = try array.withUnsafeBytes { bytes throws(PoolError) in
            try segment.allocate(length: length, contents: bytes, at: SharedValueHeader.size)
        }
        let id = SharedValueRegistry.makeID()
        let typeFingerprint = SharedValueHeader.typeFingerprint(of: Element.self)
        // The header last: a worker takes the range for a value only once it names one.
        SharedValueHeader(
            id: id, count: UInt64(array.count), stride: UInt64(stride), typeFingerprint: typeFingerprint
        ).write(to: mapping.base)
        let storage = SharedValueStorage(
            id: id, offset: offset, count: array.count, typeFingerprint: typeFingerprint, mapping: mapping,
            segment: segment)
        return SharedArray(storage)
    }
}
