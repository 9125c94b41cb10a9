// Packed items: the zero-parse path for values that are plain numbers.
//
// When every argument of a function is a fixed-width number (Int, Int8…Int64, UInt, UInt8…
// UInt64, Float, Double), a chunk's items travel as the raw bytes of the parent's array of
// argument tuples: one memcpy in the parent, one in the worker, no tag, no length, no Codable.
// Results that are such a number come back the same way. Parent and workers run the same
// module on the same machine, so the in-memory layout of such a tuple is the same on both ends;
// the frame still carries the stride, and a reader that expects another one refuses the chunk.
//
// `Bool` and other enums are left out on purpose: not every byte is a valid value of them, and
// a broken worker must not be able to make the parent read an invalid one.

/// The packed layout of plain numeric values and tuples of them.
@usableFromInline
enum PackedLayout {
    /// Whether `T`'s bytes are the whole of its value, and every byte pattern is a valid one.
    @inlinable
    static func isPlain<T>(_: T.Type) -> Bool {
        T.self == Int.self || T.self == Double.self || T.self == Int64.self || T.self == UInt64.self
            || T.self == UInt.self || T.self == Int32.self || T.self == UInt32.self || T.self == Float.self
            || T.self == Int16.self || T.self == UInt16.self || T.self == Int8.self || T.self == UInt8.self
    }

    /// The stride of `(repeat each T)` when every element is plain (and there is at least one),
    /// else nil.
    @inlinable
    static func stride<each T>(of types: repeat (each T).Type) -> Int? {
        var any = false
        for type in repeat each types {
            guard isPlain(type) else { return nil }
            any = true
        }
        return any ? MemoryLayout<(repeat each T)>.stride : nil
    }

    /// Whether `count` items of `stride` bytes fit in `available` bytes.
    static func fits(_ count: Int, of stride: Int, in available: Int) -> Bool {
        let (length, overflow) = count.multipliedReportingOverflow(by: stride)
        return !overflow && count >= 0 && length <= available
    }

    /// Reads `count` packed values of `T` (whose stride is `stride`) from `reader`.
    /// - Throws: ``FrameError`` when the stride is not `T`'s or the bytes are too few.
    static func read<T>(_: T.Type = T.self, count: Int, stride: Int, from reader: inout ByteReader) throws -> [T] {
        guard fits(count, of: stride, in: reader.remaining) else {
            throw FrameError(description: "\(count) packed items overrun their frame")
        }
        return try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            try copy(T.self, count: count, stride: stride, from: &reader, into: UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }
}

extension PackedLayout {
    /// Copies `count` packed values of `T` (whose stride is `stride`) from `reader` straight
    /// into `destination`, which has room for them: the one copy of a result on its way from
    /// the frame into the caller's array (ListSink.swift).
    /// - Throws: ``FrameError`` when the stride is not `T`'s or the bytes are too few.
    static func copy<T>(
        _: T.Type = T.self, count: Int, stride: Int, from reader: inout ByteReader,
        into destination: UnsafeMutableRawBufferPointer
    ) throws {
        let start = try take(T.self, count: count, stride: stride, from: &reader)
        let length = count * stride
        precondition(destination.count >= length, "no room for the packed values")
        guard length > 0 else { return }
        reader.bytes.withUnsafeBytes { raw in
            destination.baseAddress!.copyMemory(from: raw.baseAddress! + start, byteCount: length)
        }
    }

    /// Checks that `count` packed values of `T` of `stride` bytes are next in `reader`, and
    /// moves past them (see ``take(count:stride:expected:from:)``).
    private static func take<T>(_: T.Type, count: Int, stride: Int, from reader: inout ByteReader) throws -> Int {
        precondition(_isPOD(T.self), "packed values must be trivial")
        return try take(count: count, stride: stride, expected: MemoryLayout<T>.stride, from: &reader)
    }

    /// Checks that `count` packed values of `stride` bytes, the `expected` stride, are next in
    /// `reader`, and moves past them: the one place every way of reading packed values (a
    /// chunk's into an array, a lone call's result) checks stride and bounds.
    /// - Returns: the offset of the first one.
    /// - Throws: ``FrameError`` when the stride is not the expected one or the bytes are too few.
    static func take(count: Int, stride: Int, expected: Int, from reader: inout ByteReader) throws -> Int {
        guard stride == expected, stride > 0 else {
            throw FrameError(description: "packed items of stride \(stride), expected \(expected)")
        }
        guard fits(count, of: stride, in: reader.remaining) else {
            throw FrameError(description: "\(count) packed items overrun their frame")
        }
        let start = reader.offset
        try reader.skip(count * stride)
        return start
    }
}

extension ByteWriter {
    /// Appends the raw bytes of `values` (plain values, see ``PackedLayout``).
    mutating func writePacked<T>(_ values: ArraySlice<T>) {
        values.withUnsafeBytes { writeRaw($0) }
    }

}
