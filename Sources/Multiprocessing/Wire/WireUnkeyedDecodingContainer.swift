// WireUnkeyedDecodingContainer.swift
//
// The unkeyed container of `WireDecoder`: reads a wire-format array element by element, or the
// raw elements of a typed array or `bytes` value, each as the type asked for.

/// Reads an `array` sequentially, or the elements of a typed array / `bytes` value.
struct WireUnkeyedDecodingContainer: UnkeyedDecodingContainer {
    let decoder: WireDecoder
    /// `nil` for tagged elements; the raw element kind for typed arrays and bytes.
    let elementKind: WireElementKind?
    let elementCount: Int
    private var position: Int
    private(set) var currentIndex = 0

    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { elementCount }
    var isAtEnd: Bool { currentIndex >= elementCount }

    init(decoder: WireDecoder) throws {
        self.decoder = decoder
        var reader = ByteReader(unchecked: decoder.bytes, offset: decoder.start, end: decoder.end)
        do {
            let tag = try reader.readUInt8()
            switch tag {
            case WireTag.array:
                try reader.skip(4)
                elementKind = nil
                elementCount = try reader.readLength()
            case WireTag.typedArray:
                let kindByte = try reader.readUInt8()
                guard let kind = WireElementKind(rawValue: kindByte) else {
                    throw WireFormatError(
                        .unknownTag, at: decoder.start + 1, "unknown typed-array element kind \(kindByte)")
                }
                elementKind = kind
                elementCount = try reader.readLength(unit: kind.width)
            case WireTag.bytes:
                elementKind = .uint8
                elementCount = try reader.readLength()
            default:
                throw WireMismatch(expected: [Any].self, reason: .tag(tag))
            }
        } catch {
            throw wireDecodingError(error, codingPath: decoder.codingPath)
        }
        position = reader.offset
    }

    private func atEnd(_ type: any Any.Type) -> DecodingError {
        DecodingError.valueNotFound(
            type,
            DecodingError.Context(
                codingPath: decoder.path(.index(currentIndex)), debugDescription: "Unkeyed container is at end.")
        )
    }

    private func mapped(_ error: any Error) -> any Error {
        wireDecodingError(error, codingPath: decoder.path(.index(currentIndex)))
    }

    /// A decoder for the next element (advancing past it).
    private mutating func nextDecoder() throws -> WireDecoder {
        guard !isAtEnd else { throw atEnd((any Decoder).self) }
        var reader = ByteReader(unchecked: decoder.bytes, offset: position, end: decoder.end)
        if let kind = elementKind {
            // Give the raw element a tag of its own so it can be decoded like any value.
            var writer = ByteWriter(reservingCapacity: 9)
            do {
                writer.writeScalarValue(try reader.readRawScalar(kind))
            } catch {
                throw mapped(error)
            }
            let child = try decoder.child(0..<writer.count, in: writer.bytes, component: .index(currentIndex))
            position = reader.offset
            currentIndex += 1
            return child
        }
        do {
            try WireCoding.skipValue(in: &reader)
        } catch {
            throw mapped(error)
        }
        let child = try decoder.child(position..<reader.offset, component: .index(currentIndex))
        position = reader.offset
        currentIndex += 1
        return child
    }

    private mutating func next<T: Decodable>(_: T.Type) throws -> T {
        guard !isAtEnd else { throw atEnd(T.self) }
        if let leaf = WireLeaf(T.self) {
            var reader = ByteReader(unchecked: decoder.bytes, offset: position, end: decoder.end)
            if let kind = elementKind {
                if leaf.isNumericScalar {
                    do {
                        let value = try reader.readRawScalar(kind).converted(leaf, as: T.self)
                        position = reader.offset
                        currentIndex += 1
                        return value
                    } catch {
                        throw mapped(error)
                    }
                }
            } else if reader.canReadLeaf(leaf) {
                do {
                    let value = try reader.readLeaf(leaf, as: T.self)
                    position = reader.offset
                    currentIndex += 1
                    return value
                } catch {
                    throw mapped(error)
                }
            }
        }
        return try T(from: try nextDecoder())
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { throw atEnd(Any?.self) }
        guard elementKind == nil else { return false }
        let reader = ByteReader(unchecked: decoder.bytes, offset: position, end: decoder.end)
        let tag: UInt8
        do {
            tag = try reader.peekUInt8()
        } catch {
            throw mapped(error)
        }
        guard tag == WireTag.null else { return false }
        position += 1
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(type) }
    mutating func decode(_ type: String.Type) throws -> String { try next(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try next(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next(type) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try nextDecoder().container(keyedBy: NestedKey.self)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try nextDecoder().unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        try nextDecoder()
    }
}
