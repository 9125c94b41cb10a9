// WireBenchmarks.swift
//
// The wire coder, reachable from the Benchmarks package (its micro-benchmarks measure encoding
// and decoding on their own). SPI, not API: `@_spi(Benchmarks) import Multiprocessing`.

/// The binary coder that carries arguments and results between processes, for benchmarks.
@_spi(Benchmarks)
public enum WireBenchmarks {
    /// Encodes `value` as a call argument or result is encoded.
    /// - Throws: `EncodingError` for a value the format cannot carry.
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        var writer = ByteWriter()
        try WireCoding.encode(value, into: &writer)
        return writer.bytes
    }

    /// Decodes a value that ``encode(_:)`` wrote.
    /// - Throws: `DecodingError` for bytes that do not hold a `T`.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        var reader = ByteReader(bytes)
        return try WireCoding.decode(type, from: &reader)
    }

    /// Packs plain numbers (or tuples of them) as a chunk of packed items carries them (one copy).
    public static func pack<T>(_ values: [T]) -> [UInt8] {
        precondition(_isPOD(T.self), "only trivial values can be packed")
        var writer = ByteWriter(reservingCapacity: values.count * MemoryLayout<T>.stride)
        writer.writePacked(values[...])
        return writer.bytes
    }

    /// Reads back what ``pack(_:)`` wrote.
    /// - Throws: when the bytes are not a whole number of `T`s.
    public static func unpack<T>(_ type: T.Type, from bytes: [UInt8]) throws -> [T] {
        precondition(_isPOD(T.self), "only trivial values can be unpacked")
        var reader = ByteReader(bytes)
        return try PackedLayout.read(
            type, count: bytes.count / MemoryLayout<T>.stride,
            stride: MemoryLayout<T>.stride, from: &reader)
    }

    /// Builds the result frame of `count` plain `Int` results as a worker's packed loop does:
    /// stored straight into the frame (`ResultFrameBuilder.fillPacked`). Returns the frame.
    public static func fillPackedResults(count: Int) -> [UInt8] {
        var builder = ResultFrameBuilder(job: 1, chunkIndex: 0)
        builder.fillPacked(stride: MemoryLayout<Int>.stride, count: count) { raw in
            for index in 0..<count { raw.storeBytes(of: index, toByteOffset: index * 8, as: Int.self) }
        }
        return builder.finish()
    }

    /// Copies the packed `Int` results of `frame` (made by ``fillPackedResults(count:)``) into
    /// `destination` at `offset`, as the parent's list of results is filled in place.
    /// - Throws: when the frame does not hold `count` packed `Int`s.
    public static func copyPackedResults(
        _ frame: [UInt8], count: Int, into destination: inout [Int], at offset: Int
    )
        throws
    {
        var reader = ByteReader(frame, offset: 5)
        let header = try ResultHeader.read(from: &reader)
        let copied = destination.withUnsafeMutableBytes { raw in
            ResultItems.copyPacked(
                reader, header: header, expected: count, as: Int.self,
                into: UnsafeMutableRawBufferPointer(rebasing: raw[(offset * 8)...]))
        }
        guard copied else { throw FrameError(description: "not \(count) packed Int results") }
    }
}
