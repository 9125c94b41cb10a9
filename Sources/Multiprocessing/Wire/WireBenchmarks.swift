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
}
