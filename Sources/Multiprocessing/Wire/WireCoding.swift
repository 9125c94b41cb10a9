// WireCoding.swift
//
// The entry points of the binary wire format (see WireFormat.swift): `WireCoding.encode`,
// `WireCoding.decode` and `WireCoding.skipValue`. Common leaf types (integers, floating point,
// Bool, String, [UInt8] and numeric arrays) are written and read straight from the bytes by
// metatype checks (ByteWriter+WireValues.swift, ByteReader+WireValues.swift), never through an
// `Encoder` or `Decoder` instance; everything else goes through `WireEncoder` / `WireDecoder`.
//
// Hand-written because no package in reach provides a fast binary Codable coder without
// Foundation.

/// Entry points of the wire format; see ``WireTag`` for the format itself.
enum WireCoding {
    /// Appends the encoding of `value` to `writer`.
    ///
    /// The encoding is self-delimiting, so values can be written back to back.
    /// - Throws: `EncodingError.invalidValue` for what cannot be encoded (a container body
    ///   larger than 4 GiB, conflicting containers requested from one encoder, or a type that
    ///   the wire format does not support such as `Int128`), or any error thrown by
    ///   `value.encode(to:)`. On error, `writer` is left as it was.
    static func encode<T: Encodable>(_ value: T, into writer: inout ByteWriter) throws {
        if writer.attachesLargeBytes && T.self == [UInt8].self
            && writer.attachIfLarge(unsafeBitCast(value, to: [UInt8].self))
        {
            return
        }
        if writer.writeLeaf(value) { return }
        // The root node writes straight into `writer`'s buffer (borrowed by swapping).
        let root = WireEncoder(parent: nil, component: .none)
        let base = writer.count
        root.base = base
        swap(&root.body, &writer)
        do {
            try value.encode(to: root)
            try root.finish()
        } catch {
            swap(&root.body, &writer)
            writer.bytes.removeSubrange(base...)
            throw error
        }
        swap(&root.body, &writer)
    }
}

extension WireCoding {
    /// Reads one value written by ``encode(_:into:)``, advancing `reader` past it.
    ///
    /// - Throws: `DecodingError` (`.typeMismatch`, `.valueNotFound`, `.keyNotFound`, or
    ///   `.dataCorrupted` whose underlying error is a ``WireFormatError``), or whatever
    ///   `T.init(from:)` throws. After an error the reader's position is unspecified.
    static func decode<T: Decodable>(_ type: T.Type, from reader: inout ByteReader) throws -> T {
        if reader.offset < reader.end && reader.bytes[reader.offset] == WireTag.attachedBytes {
            return try reader.readAttachedBytes(as: T.self)
        }
        if let leaf = WireLeaf(T.self), reader.canReadLeaf(leaf) {
            do {
                return try reader.readLeaf(leaf, as: T.self)
            } catch {
                throw wireDecodingError(error, codingPath: [])
            }
        }
        let start = reader.offset
        do {
            try skipValue(in: &reader)
        } catch {
            throw wireDecodingError(error, codingPath: [])
        }
        let decoder = WireDecoder(
            bytes: reader.bytes, start: start, end: reader.offset, depth: 1, parent: nil, component: .none
        )
        return try T(from: decoder)
    }

    /// Advances past one encoded value without decoding it.
    ///
    /// O(1) for every value (containers carry their byte length) and never recursive; it
    /// checks only the value's outer framing, not the contents of containers.
    /// - Throws: ``WireFormatError`` if the value is truncated or has an unknown tag.
    static func skipValue(in reader: inout ByteReader) throws {
        let start = reader.offset
        let end = reader.end
        let valueEnd = try reader.bytes.withUnsafeBytes { try WireScanner(raw: $0, end: end).skip(at: start) }
        try reader.skip(valueEnd - start)
    }
}
