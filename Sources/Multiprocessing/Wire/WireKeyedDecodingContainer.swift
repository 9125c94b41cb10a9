// WireKeyedDecodingContainer.swift
//
// The keyed container of `WireDecoder`: reads the entries of a wire-format map by key, leaf
// values straight from the bytes, with one lookup per key (the lookup state lives in the
// decoder, see WireDecoder.swift).

struct WireKeyedDecodingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: WireDecoder

    var codingPath: [any CodingKey] { decoder.codingPath }

    var allKeys: [Key] {
        decoder.allKeyStrings().compactMap { Key(stringValue: $0) }
    }

    func contains(_ key: Key) -> Bool {
        (try? decoder.lookup(key)) != nil
    }

    private func require(_ key: Key) throws -> Range<Int> {
        guard let range = try decoder.lookup(key) else {
            throw DecodingError.keyNotFound(
                key,
                DecodingError.Context(
                    codingPath: codingPath, debugDescription: "No value associated with key \"\(key.stringValue)\".")
            )
        }
        return range
    }

    @inline(__always)
    private func read<T>(_ range: Range<Int>, _ key: Key, _ body: (inout ByteReader) throws -> T) throws -> T {
        var reader = ByteReader(unchecked: decoder.bytes, offset: range.lowerBound, end: range.upperBound)
        do {
            return try body(&reader)
        } catch {
            throw wireDecodingError(error, codingPath: decoder.path(.key(key)))
        }
    }

    @inline(__always)
    private func leaf<T>(_ key: Key, _ body: (inout ByteReader) throws -> T) throws -> T {
        try read(try require(key), key, body)
    }

    @inline(__always)
    private func leafIfPresent<T>(_ key: Key, _ body: (inout ByteReader) throws -> T) throws -> T? {
        guard let range = try decoder.lookup(key), decoder.bytes[range.lowerBound] != WireTag.null else { return nil }
        return try read(range, key, body)
    }

    private func value<T: Decodable>(_: T.Type, at range: Range<Int>, _ key: Key) throws -> T {
        if let leaf = WireLeaf(T.self) {
            var reader = ByteReader(unchecked: decoder.bytes, offset: range.lowerBound, end: range.upperBound)
            if reader.canReadLeaf(leaf) {
                do {
                    return try reader.readLeaf(leaf, as: T.self)
                } catch {
                    throw wireDecodingError(error, codingPath: decoder.path(.key(key)))
                }
            }
        }
        return try T(from: try decoder.child(range, component: .key(key)))
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        decoder.bytes[try require(key).lowerBound] == WireTag.null
    }

    func decode(_: Bool.Type, forKey key: Key) throws -> Bool { try leaf(key) { try $0.readBoolValue() } }
    func decode(_: String.Type, forKey key: Key) throws -> String { try leaf(key) { try $0.readStringValue() } }
    func decode(_: Double.Type, forKey key: Key) throws -> Double { try leaf(key) { try $0.readDoubleValue() } }
    func decode(_: Float.Type, forKey key: Key) throws -> Float { try leaf(key) { try $0.readFloatValue() } }
    func decode(_: Int.Type, forKey key: Key) throws -> Int { try leaf(key) { try $0.readIntegerValue(Int.self) } }
    func decode(_: Int8.Type, forKey key: Key) throws -> Int8 { try leaf(key) { try $0.readIntegerValue(Int8.self) } }
    func decode(_: Int16.Type, forKey key: Key) throws -> Int16 {
        try leaf(key) { try $0.readIntegerValue(Int16.self) }
    }
    func decode(_: Int32.Type, forKey key: Key) throws -> Int32 {
        try leaf(key) { try $0.readIntegerValue(Int32.self) }
    }
    func decode(_: Int64.Type, forKey key: Key) throws -> Int64 {
        try leaf(key) { try $0.readIntegerValue(Int64.self) }
    }
    func decode(_: UInt.Type, forKey key: Key) throws -> UInt { try leaf(key) { try $0.readIntegerValue(UInt.self) } }
    func decode(_: UInt8.Type, forKey key: Key) throws -> UInt8 {
        try leaf(key) { try $0.readIntegerValue(UInt8.self) }
    }
    func decode(_: UInt16.Type, forKey key: Key) throws -> UInt16 {
        try leaf(key) { try $0.readIntegerValue(UInt16.self) }
    }
    func decode(_: UInt32.Type, forKey key: Key) throws -> UInt32 {
        try leaf(key) { try $0.readIntegerValue(UInt32.self) }
    }
    func decode(_: UInt64.Type, forKey key: Key) throws -> UInt64 {
        try leaf(key) { try $0.readIntegerValue(UInt64.self) }
    }

    func decode<T: Decodable>(_: T.Type, forKey key: Key) throws -> T {
        try value(T.self, at: try require(key), key)
    }

    // One lookup each, instead of the default's contains + decodeNil + decode.
    func decodeIfPresent(_: Bool.Type, forKey key: Key) throws -> Bool? {
        try leafIfPresent(key) { try $0.readBoolValue() }
    }
    func decodeIfPresent(_: String.Type, forKey key: Key) throws -> String? {
        try leafIfPresent(key) { try $0.readStringValue() }
    }
    func decodeIfPresent(_: Double.Type, forKey key: Key) throws -> Double? {
        try leafIfPresent(key) { try $0.readDoubleValue() }
    }
    func decodeIfPresent(_: Float.Type, forKey key: Key) throws -> Float? {
        try leafIfPresent(key) { try $0.readFloatValue() }
    }
    func decodeIfPresent(_: Int.Type, forKey key: Key) throws -> Int? {
        try leafIfPresent(key) { try $0.readIntegerValue(Int.self) }
    }
    func decodeIfPresent(_: Int8.Type, forKey key: Key) throws -> Int8? {
        try leafIfPresent(key) { try $0.readIntegerValue(Int8.self) }
    }
    func decodeIfPresent(_: Int16.Type, forKey key: Key) throws -> Int16? {
        try leafIfPresent(key) { try $0.readIntegerValue(Int16.self) }
    }
    func decodeIfPresent(_: Int32.Type, forKey key: Key) throws -> Int32? {
        try leafIfPresent(key) { try $0.readIntegerValue(Int32.self) }
    }
    func decodeIfPresent(_: Int64.Type, forKey key: Key) throws -> Int64? {
        try leafIfPresent(key) { try $0.readIntegerValue(Int64.self) }
    }
    func decodeIfPresent(_: UInt.Type, forKey key: Key) throws -> UInt? {
        try leafIfPresent(key) { try $0.readIntegerValue(UInt.self) }
    }
    func decodeIfPresent(_: UInt8.Type, forKey key: Key) throws -> UInt8? {
        try leafIfPresent(key) { try $0.readIntegerValue(UInt8.self) }
    }
    func decodeIfPresent(_: UInt16.Type, forKey key: Key) throws -> UInt16? {
        try leafIfPresent(key) { try $0.readIntegerValue(UInt16.self) }
    }
    func decodeIfPresent(_: UInt32.Type, forKey key: Key) throws -> UInt32? {
        try leafIfPresent(key) { try $0.readIntegerValue(UInt32.self) }
    }
    func decodeIfPresent(_: UInt64.Type, forKey key: Key) throws -> UInt64? {
        try leafIfPresent(key) { try $0.readIntegerValue(UInt64.self) }
    }

    func decodeIfPresent<T: Decodable>(_: T.Type, forKey key: Key) throws -> T? {
        guard let range = try decoder.lookup(key), decoder.bytes[range.lowerBound] != WireTag.null else { return nil }
        return try value(T.self, at: range, key)
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type,
        forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try decoder.child(try require(key), component: .key(key)).container(keyedBy: NestedKey.self)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try decoder.child(try require(key), component: .key(key)).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        try superDecoder(for: WireKey.super)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        try superDecoder(for: key)
    }

    private func superDecoder(for key: some CodingKey) throws -> any Decoder {
        guard let range = try decoder.lookup(key) else {
            return try decoder.nilDecoder(component: .key(key))
        }
        return try decoder.child(range, component: .key(key))
    }
}
