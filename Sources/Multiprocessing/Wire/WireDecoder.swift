// WireDecoder.swift
//
// The `Decoder` of the binary wire format (see WireFormat.swift) with its containers, plus
// `WireCoding.decode` and `WireCoding.skipValue`. Leaf values (numbers, Bool, String, [UInt8],
// numeric arrays) are read by ByteReader+WireValues.swift; values are skipped by
// WireScanner.swift; read errors become `DecodingError`s in WireMismatch.swift.
//
// Hand-written because no package in reach provides a fast binary Codable coder without
// Foundation. It decodes straight from the bytes, without building a tree, and it must be
// safe on arbitrary input: every read is bounds-checked, lengths and counts are checked
// against the remaining bytes before anything is allocated, skipping never recurses, and
// container nesting is limited to `WireLimits.maxDepth`. Failures throw `DecodingError`
// (structural damage as `.dataCorrupted` with a `WireFormatError` underneath).

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

// MARK: - Decoder

/// The `Decoder` (and single-value container) for the value at `bytes[start..<end]`.
///
/// `end` is the exact end of the value (found by ``WireCoding/skipValue(in:)``), so nothing
/// inside can read past it. A decoder for a map also keeps the lookup state of its keyed
/// containers: the position of the entry after the last match (`nextEntry`, so in-order
/// access costs one key comparison) and of the last match itself (`lastEntry`, so
/// `contains` + `decodeNil` + `decode` of one key do not rescan).
final class WireDecoder: Decoder, SingleValueDecodingContainer {
    let bytes: [UInt8]
    let start: Int
    let end: Int
    let depth: Int
    let parent: WireDecoder?
    let component: WirePathComponent

    // Keyed-container state, set up by `openKeyed()`. `@exclusivity(unchecked)`: plain
    // integer loads and stores on every lookup, never accessed inout.
    @exclusivity(unchecked) private var keyedBody = -1
    @exclusivity(unchecked) private var keyedCount = 0
    @exclusivity(unchecked) private var nextEntry = 0
    @exclusivity(unchecked) private var nextIndex = 0
    @exclusivity(unchecked) private var lastEntry = -1
    /// How many single-value decodes of composite values are running on this decoder.
    @exclusivity(unchecked) private var passThrough = 0

    /// A lone nil value, for `superDecoder` of an absent key.
    private static let nilValue: [UInt8] = [WireTag.null]

    init(bytes: [UInt8], start: Int, end: Int, depth: Int, parent: WireDecoder?, component: WirePathComponent) {
        self.bytes = bytes
        self.start = start
        self.end = end
        self.depth = depth
        self.parent = parent
        self.component = component
    }

    var codingPath: [any CodingKey] {
        var path: [any CodingKey] = []
        var node: WireDecoder? = self
        while let current = node {
            if let key = current.component.codingKey { path.append(key) }
            node = current.parent
        }
        return path.reversed()
    }

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// The coding path of this decoder plus `component`, for errors.
    func path(_ component: WirePathComponent) -> [any CodingKey] {
        var path = codingPath
        if let key = component.codingKey { path.append(key) }
        return path
    }

    /// The tag of this value (the region is never empty).
    var tag: UInt8 { bytes[start] }

    /// A decoder for the value at `range` of `bytes` (or of `other`), one level deeper.
    func child(_ range: Range<Int>, in other: [UInt8]? = nil, component: WirePathComponent) throws -> WireDecoder {
        guard depth + passThrough < WireLimits.maxDepth else {
            let error = WireFormatError(
                .nestingTooDeep, at: range.lowerBound, "containers nested deeper than \(WireLimits.maxDepth) levels")
            throw wireDecodingError(error, codingPath: path(component))
        }
        return WireDecoder(
            bytes: other ?? bytes, start: range.lowerBound, end: range.upperBound, depth: depth + passThrough + 1,
            parent: self,
            component: component
        )
    }

    // MARK: Decoder

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        if keyedBody < 0 { try openKeyed() }
        return KeyedDecodingContainer(WireKeyedDecodingContainer<Key>(decoder: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try WireUnkeyedDecodingContainer(decoder: self)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        self
    }

    // MARK: Keyed lookup

    private func openKeyed() throws {
        guard tag == WireTag.map else {
            throw wireDecodingError(
                WireMismatch(expected: [String: Any].self, reason: .tag(tag)), codingPath: codingPath)
        }
        var reader = ByteReader(bytes, offset: start + 5, end: end)
        do {
            // Every entry takes at least 2 bytes (key length + value tag).
            keyedCount = try reader.readLength(unit: 2)
        } catch {
            throw wireDecodingError(error, codingPath: codingPath)
        }
        keyedBody = reader.offset
        nextEntry = keyedBody
        nextIndex = 0
    }

    /// Finds the value of the key whose UTF-8 is `key`: first the entry after the last
    /// match, then the last match, then a linear scan. Returns the value's byte range.
    func find(_ key: UnsafeRawBufferPointer) throws -> Range<Int>? {
        try bytes.withUnsafeBytes { raw in
            let scan = WireScanner(raw: raw, end: end)
            if nextIndex < keyedCount, let range = try scan.entry(at: nextEntry, matching: key) {
                lastEntry = nextEntry
                nextEntry = range.upperBound
                nextIndex += 1
                return range
            }
            if lastEntry >= 0, let range = try scan.entry(at: lastEntry, matching: key) {
                return range
            }
            var entryStart = keyedBody
            for index in 0..<keyedCount {
                var pos = entryStart
                let length = try scan.length(&pos)
                let keyStart = pos
                pos += length
                let valueEnd = try scan.skip(at: pos)
                if length == key.count && scan.keyEquals(at: keyStart, key) {
                    lastEntry = entryStart
                    nextEntry = valueEnd
                    nextIndex = index + 1
                    return pos..<valueEnd
                }
                entryStart = valueEnd
            }
            return nil
        }
    }

    /// The value range for `key`, or `nil` if absent; damage throws `dataCorrupted`.
    func lookup(_ key: some CodingKey) throws -> Range<Int>? {
        do {
            return try withUTF8(of: key) { try find($0) }
        } catch {
            throw wireDecodingError(error, codingPath: path(.key(key)))
        }
    }

    /// The keys of the map, in order (stops quietly at damaged data).
    func allKeyStrings() -> [String] {
        var keys: [String] = []
        var reader = ByteReader(unchecked: bytes, offset: keyedBody, end: end)
        for _ in 0..<keyedCount {
            guard let key = try? reader.readString(), (try? WireCoding.skipValue(in: &reader)) != nil else { break }
            keys.append(key)
        }
        return keys
    }

    /// A decoder over `nil`, for `superDecoder` of an absent key.
    func nilDecoder(component: WirePathComponent) throws -> WireDecoder {
        try child(0..<1, in: Self.nilValue, component: component)
    }

    // MARK: SingleValueDecodingContainer

    @inline(__always)
    private func single<T>(_ read: (inout ByteReader) throws -> T) throws -> T {
        var reader = ByteReader(unchecked: bytes, offset: start, end: end)
        do {
            return try read(&reader)
        } catch {
            throw wireDecodingError(error, codingPath: codingPath)
        }
    }

    func decodeNil() -> Bool { tag == WireTag.null }
    func decode(_: Bool.Type) throws -> Bool { try single { try $0.readBoolValue() } }
    func decode(_: String.Type) throws -> String { try single { try $0.readStringValue() } }
    func decode(_: Double.Type) throws -> Double { try single { try $0.readDoubleValue() } }
    func decode(_: Float.Type) throws -> Float { try single { try $0.readFloatValue() } }
    func decode(_: Int.Type) throws -> Int { try single { try $0.readIntegerValue(Int.self) } }
    func decode(_: Int8.Type) throws -> Int8 { try single { try $0.readIntegerValue(Int8.self) } }
    func decode(_: Int16.Type) throws -> Int16 { try single { try $0.readIntegerValue(Int16.self) } }
    func decode(_: Int32.Type) throws -> Int32 { try single { try $0.readIntegerValue(Int32.self) } }
    func decode(_: Int64.Type) throws -> Int64 { try single { try $0.readIntegerValue(Int64.self) } }
    func decode(_: UInt.Type) throws -> UInt { try single { try $0.readIntegerValue(UInt.self) } }
    func decode(_: UInt8.Type) throws -> UInt8 { try single { try $0.readIntegerValue(UInt8.self) } }
    func decode(_: UInt16.Type) throws -> UInt16 { try single { try $0.readIntegerValue(UInt16.self) } }
    func decode(_: UInt32.Type) throws -> UInt32 { try single { try $0.readIntegerValue(UInt32.self) } }
    func decode(_: UInt64.Type) throws -> UInt64 { try single { try $0.readIntegerValue(UInt64.self) } }

    func decode<T: Decodable>(_: T.Type) throws -> T {
        if let leaf = WireLeaf(T.self) {
            var reader = ByteReader(unchecked: bytes, offset: start, end: end)
            if reader.canReadLeaf(leaf) {
                do {
                    return try reader.readLeaf(leaf, as: T.self)
                } catch {
                    throw wireDecodingError(error, codingPath: codingPath)
                }
            }
        }
        // A composite value decodes itself from this same decoder (same coding path). This
        // recursion is not bounded by the data (think `init(from:)` decoding an optional of
        // its own type through a single value container, fed a non-nil value), so it counts
        // towards the nesting limit too.
        guard depth + passThrough < WireLimits.maxDepth else {
            let error = WireFormatError(
                .nestingTooDeep, at: start, "values nested deeper than \(WireLimits.maxDepth) levels")
            throw wireDecodingError(error, codingPath: codingPath)
        }
        passThrough += 1
        defer { passThrough -= 1 }
        return try T(from: self)
    }
}

/// Calls `body` with the UTF-8 bytes of `key.stringValue` (no copy for native strings).
@inline(__always)
private func withUTF8<R>(of key: some CodingKey, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    var string = key.stringValue
    return try string.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
}

// MARK: - Keyed container

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

// MARK: - Unkeyed container

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
