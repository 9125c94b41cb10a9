// The handle of a shared read-only array (`Pool.share`): a small `Codable` value that tasks take
// as an argument and read in place, in the parent and in workers alike.
//
// What crosses a process boundary is four numbers (the value's id, its range's offset in the
// pool's memory file, its count, its element type's fingerprint), never the elements. Decoding
// resolves them: in the parent, to the live value of that id (a handle a worker returns comes
// back as the same value); in a worker, to its mapping of the range (see WorkerSharedValues.swift).
// A handle that names nothing live fails to decode with a `DecodingError` saying why: the call
// that carried it fails with `.encodingFailed`, and nothing crashes.
//
// Elements: any `BitwiseCopyable` type (the plain numbers, and structs and tuples of them). Their
// bytes are copied once by the parent and read in place everywhere, so their layout must be the
// same in every process: parent and workers run the same code on one machine, and the handle
// carries a fingerprint of the element type's name, stride and alignment, which decoding checks.
// Unlike a task's packed arguments (`PackedLayout`), workers only ever read bytes the parent
// wrote, so types with invalid bit patterns (`Bool`, enums) are fine here.
//
// Reading is `@inlinable`, so that a pool function summing a slice compiles to a plain loop over
// the mapped memory.

/// A read-only array shared with every worker of a pool, made by ``Pool/share(_:)``.
///
/// A `SharedArray` is a handle: passing it to a task sends a few numbers, not the elements. A
/// task reads the elements in place, from memory its worker mapped once (the first time one of
/// its tasks decoded the handle) and keeps mapped for the tasks after it. It is a
/// `RandomAccessCollection`, in the parent and in workers alike.
///
/// ```swift
/// let sumSlice = PoolFunction("sumSlice") { (table: SharedArray<Int64>, range: Range<Int>) in
///     table.withUnsafeBufferPointer { $0[range].reduce(0, &+) }
/// }
///
/// let table = try pool.share(numbers)            // copied once, into shared memory
/// let slices = (0..<64).map { i in i * table.count / 64..<(i + 1) * table.count / 64 }
/// let sums = try await pool.starmap(sumSlice, slices.map { (table, $0) })
/// ```
///
/// The value is freed when the last handle in the parent goes and every call submitted until
/// then has finished. A handle kept in a worker beyond its task reads zeros once the value is
/// freed; a handle decoded after that fails. See <doc:SharingData>.
public struct SharedArray<Element: BitwiseCopyable & Sendable>: RandomAccessCollection, @unchecked Sendable {
    /// The first element, in the memory `owner` keeps mapped.
    @usableFromInline let elements: UnsafePointer<Element>
    /// What keeps the memory mapped: the parent's storage of the value, or a worker's mapping.
    @usableFromInline let owner: AnyObject

    /// The number of elements.
    public let count: Int

    let id: UInt64
    let offset: Int

    init(id: UInt64, offset: Int, count: Int, elements: UnsafeRawPointer, owner: AnyObject) {
        self.id = id
        self.offset = offset
        self.count = count
        self.owner = owner
        self.elements = UnsafePointer(elements.bindMemory(to: Element.self, capacity: count))
    }

    /// The handle of a value held in the parent.
    init(_ storage: SharedValueStorage) {
        self.init(
            id: storage.id, offset: storage.offset, count: storage.count, elements: storage.elements, owner: storage)
    }

    /// The index of the first element: 0.
    @inlinable public var startIndex: Int { 0 }

    /// One past the last element's index: ``count``.
    @inlinable public var endIndex: Int { count }

    /// The element at `position`, read in place.
    /// - Parameter position: An index in `0..<count`; any other stops the program, as an
    ///   `Array`'s subscript does.
    @inlinable public subscript(position: Int) -> Element {
        precondition(position >= 0 && position < count, "SharedArray index \(position) out of range 0..<\(count)")
        return withExtendedLifetime(owner) { elements[position] }
    }

    /// Calls `body` with the elements in place: the fastest way to read many of them.
    ///
    /// ```swift
    /// let sum = table.withUnsafeBufferPointer { $0[range].reduce(0, &+) }
    /// ```
    ///
    /// - Parameter body: Reads the elements; the buffer is valid only during the call, and must
    ///   not be written (the memory is mapped read-only in workers: a write stops the worker).
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    @inlinable public func withUnsafeBufferPointer<R, E: Error>(
        _ body: (UnsafeBufferPointer<Element>) throws(E) -> R
    ) throws(E) -> R {
        defer { withExtendedLifetime(owner) {} }
        return try body(UnsafeBufferPointer(start: elements, count: count))
    }

    /// Calls `body` with the elements in place (what the standard library's algorithms use
    /// where they can).
    /// - Parameter body: Reads the elements.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    @inlinable public func withContiguousStorageIfAvailable<R>(
        _ body: (UnsafeBufferPointer<Element>) throws -> R
    ) rethrows -> R? {
        defer { withExtendedLifetime(owner) {} }
        return try body(UnsafeBufferPointer(start: elements, count: count))
    }
}

extension SharedArray: Codable {
    /// Encodes the handle: four numbers, not the elements.
    /// - Parameter encoder: Any encoder; the pool's own when the handle is a task's argument.
    /// - Throws: What the encoder throws.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.unkeyedContainer()
        try container.encode(id)
        try container.encode(UInt64(offset))
        try container.encode(UInt64(count))
        try container.encode(SharedValueHeader.typeFingerprint(of: Element.self))
    }

    /// Decodes a handle: in the parent, the live value it names; in a worker of the pool that
    /// shared it, its mapping of the value (mapped now, the first time in this worker).
    /// - Parameter decoder: Any decoder; the pool's own when the handle is a task's argument.
    /// - Throws: `DecodingError.dataCorrupted` when the handle names no live value of this
    ///   process or its pool (freed, forged, of another element type, or decoded in a process
    ///   that is neither), saying which.
    public init(from decoder: any Decoder) throws {
        var container = try decoder.unkeyedContainer()
        let id = try container.decode(UInt64.self)
        let rawOffset = try container.decode(UInt64.self)
        let rawCount = try container.decode(UInt64.self)
        let typeFingerprint = try container.decode(UInt64.self)
        func failure(_ reason: String) -> DecodingError {
            DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "a SharedArray<\(Element.self)> handle cannot be read here: \(reason)"))
        }
        guard let offset = Int(exactly: rawOffset), let count = Int(exactly: rawCount) else {
            throw failure("its offset \(rawOffset) or count \(rawCount) is out of range")
        }
        guard typeFingerprint == SharedValueHeader.typeFingerprint(of: Element.self) else {
            throw failure("it was made for another element type")
        }
        if let storage = SharedValueRegistry.storage(id) {
            guard storage.offset == offset, storage.count == count, storage.typeFingerprint == typeFingerprint else {
                throw failure("it names value \(id), but not as it was shared")
            }
            self.init(storage)
            return
        }
        do {
            let mapping = try WorkerSharedValues.mapping(
                id: id, offset: offset, count: count, stride: MemoryLayout<Element>.stride,
                typeFingerprint: typeFingerprint)
            self.init(
                id: id, offset: offset, count: count,
                elements: UnsafeRawPointer(mapping.base + SharedValueHeader.size), owner: mapping)
        } catch {
            throw failure(error.description)
        }
    }
}

extension SharedArray: CustomStringConvertible {
    /// `SharedArray<Int64>(count: 1000)`: a handle's description does not list its elements.
    public var description: String { "SharedArray<\(Element.self)>(count: \(count))" }
}
