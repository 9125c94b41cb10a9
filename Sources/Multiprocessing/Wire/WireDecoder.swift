// WireDecoder.swift
//
// The `Decoder` (and single-value container) of the binary wire format (see WireFormat.swift),
// for values that are not leaves; its containers are in WireKeyedDecodingContainer.swift and
// WireUnkeyedDecodingContainer.swift.
//
// It decodes straight from the bytes, without building a tree, and it must be safe on arbitrary
// input: every read is bounds-checked, lengths and counts are checked against the remaining
// bytes before anything is allocated, skipping never recurses (WireScanner.swift), and container
// nesting is limited to `WireLimits.maxDepth`. Failures throw `DecodingError` (structural damage
// as `.dataCorrupted` with a `WireFormatError` underneath).

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
