// WireDecoder.swift
//
// The `Decoder` of the binary wire format (see WireFormat.swift), plus `WireCoding.decode`
// and `WireCoding.skipValue`.
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
        if let leaf = _WireLeaf(T.self), reader.canReadLeaf(leaf) {
            do {
                return try reader.readLeaf(leaf, as: T.self)
            } catch {
                throw _wireDecodingError(error, codingPath: [])
            }
        }
        let start = reader.offset
        do {
            try skipValue(in: &reader)
        } catch {
            throw _wireDecodingError(error, codingPath: [])
        }
        let decoder = _WireDecoder(
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
        let valueEnd = try reader.bytes.withUnsafeBytes { try _RawScan(raw: $0, end: end).skip(at: start) }
        try reader.skip(valueEnd - start)
    }
}

/// Bounds-checked parsing directly on the buffer's memory (no array retains), for skipping
/// values and scanning map entries. Every read checks `end` and throws ``WireFormatError``.
struct _RawScan {
    let raw: UnsafeRawBufferPointer
    /// The exclusive end of the readable range; `end <= raw.count`.
    let end: Int

    @inline(never)
    func truncated(_ at: Int, _ needed: Int) -> WireFormatError {
        WireFormatError(.truncated, at: at, "needed \(needed) byte(s), \(Swift.max(0, end - at)) remain")
    }

    @inline(__always)
    func byte(at pos: Int) throws -> UInt8 {
        guard pos < end else { throw truncated(pos, 1) }
        return raw[pos]
    }

    /// Reads a varint length at `pos` (advancing it) and checks that `length * unit` bytes
    /// remain.
    @inline(__always)
    func length(_ pos: inout Int, unit: Int = 1) throws -> Int {
        let at = pos
        let first = try byte(at: pos)
        let value: UInt64
        if first < 0x80 {
            value = UInt64(first)
            pos += 1
        } else {
            value = try varintSlow(&pos)
        }
        guard value <= UInt64((end - pos) / unit) else {
            throw WireFormatError(
                .invalidLength, at: at, "length \(value) × \(unit) exceeds the \(end - pos) remaining byte(s)")
        }
        return Int(value)
    }

    private func varintSlow(_ pos: inout Int) throws -> UInt64 {
        let start = pos
        var result: UInt64 = 0
        var shift: UInt64 = 0
        for index in 0..<10 {
            let b = try byte(at: pos)
            pos += 1
            if index == 9 && b > 1 {
                throw WireFormatError(.malformedVarint, at: start, "varint overflows 64 bits")
            }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
        throw WireFormatError(.malformedVarint, at: start, "varint longer than 10 bytes")
    }

    /// The end of the value whose tag is at `pos` (O(1), never recursive).
    @inline(__always)
    func skip(at pos: Int) throws -> Int {
        let tag = try byte(at: pos)
        var p = pos + 1
        if tag >= WireTag.smallIntBase { return p }
        switch tag {
        case WireTag.null, WireTag.false, WireTag.true:
            return p
        case WireTag.int, WireTag.uint, WireTag.double:
            guard end - p >= 8 else { throw truncated(p, 8) }
            return p + 8
        case WireTag.float:
            guard end - p >= 4 else { throw truncated(p, 4) }
            return p + 4
        case WireTag.string, WireTag.bytes:
            let count = try length(&p)
            return p + count
        case WireTag.array, WireTag.map:
            guard end - p >= 4 else { throw truncated(p, 4) }
            let length = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: p, as: UInt32.self))
            p += 4
            guard UInt64(length) <= UInt64(end - p) else {
                throw WireFormatError(.invalidLength, at: pos, "container of \(length) byte(s) but \(end - p) remain")
            }
            return p + Int(length)
        case WireTag.typedArray:
            let kindByte = try byte(at: p)
            guard let kind = WireElementKind(rawValue: kindByte) else {
                throw WireFormatError(.unknownTag, at: p, "unknown typed-array element kind \(kindByte)")
            }
            p += 1
            let count = try length(&p, unit: kind.width)
            return p + count * kind.width
        default:
            throw WireFormatError(.unknownTag, at: pos, "unknown tag 0x\(String(tag, radix: 16))")
        }
    }

    /// If the map entry at `entry` has the key `key`, the byte range of its value.
    @inline(__always)
    func entry(at entry: Int, matching key: UnsafeRawBufferPointer) throws -> Range<Int>? {
        var pos = entry
        let length = try self.length(&pos)
        guard length == key.count, keyEquals(at: pos, key) else { return nil }
        pos += length
        return pos..<(try skip(at: pos))
    }

    /// Whether the `key.count` bytes at `pos` (known to be in range) equal `key`.
    @inline(__always)
    func keyEquals(at pos: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        guard let a = raw.baseAddress, let b = key.baseAddress else { return key.isEmpty }
        return _bytesEqual(a + pos, b, key.count)
    }
}

// MARK: - Errors

/// A leaf value that does not fit the requested type; turned into a `DecodingError` with
/// the coding path by the container that read it.
struct _WireMismatch: Error {
    enum Reason {
        /// The value has the wrong tag.
        case tag(UInt8)
        /// The value has the right kind but does not fit (e.g. 300 as `Int8`).
        case doesNotFit(String)
    }

    var expected: any Any.Type
    var reason: Reason
}

/// Converts the internal errors of leaf reads into `DecodingError`s at `codingPath`;
/// other errors pass through unchanged.
func _wireDecodingError(_ error: any Error, codingPath: [any CodingKey]) -> any Error {
    if let mismatch = error as? _WireMismatch {
        switch mismatch.reason {
        case .tag(let tag) where tag == WireTag.null:
            return DecodingError.valueNotFound(
                mismatch.expected,
                DecodingError.Context(
                    codingPath: codingPath,
                    debugDescription: "Expected \(mismatch.expected) value but found nil instead.")
            )
        case .tag(let tag):
            return DecodingError.typeMismatch(
                mismatch.expected,
                DecodingError.Context(
                    codingPath: codingPath,
                    debugDescription: "Expected to decode \(mismatch.expected) but found \(WireTag.name(tag)) instead.")
            )
        case .doesNotFit(let message):
            return DecodingError.dataCorrupted(DecodingError.Context(codingPath: codingPath, debugDescription: message))
        }
    }
    if let wireError = error as? WireFormatError {
        return DecodingError.dataCorrupted(
            DecodingError.Context(
                codingPath: codingPath, debugDescription: wireError.description, underlyingError: wireError)
        )
    }
    return error
}

// MARK: - Scalars

/// A numeric value as stored on the wire (tagged or as a typed-array element).
enum _WireScalar {
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case float(Float)

    var tag: UInt8 {
        switch self {
        case .int: return WireTag.int
        case .uint: return WireTag.uint
        case .double: return WireTag.double
        case .float: return WireTag.float
        }
    }

    @inline(never)
    static func doesNotFit(_ value: some CustomStringConvertible, _ type: any Any.Type) -> _WireMismatch {
        _WireMismatch(expected: type, reason: .doesNotFit("Number \(value) does not fit in \(type)."))
    }

    /// The value as an integer of type `I`, if it is an integer within `I`'s range.
    @inline(__always)
    func integer<I: FixedWidthInteger>(_: I.Type) throws -> I {
        switch self {
        case .int(let v):
            guard let x = I(exactly: v) else { throw Self.doesNotFit(v, I.self) }
            return x
        case .uint(let v):
            guard let x = I(exactly: v) else { throw Self.doesNotFit(v, I.self) }
            return x
        case .double, .float:
            throw _WireMismatch(expected: I.self, reason: .tag(tag))
        }
    }

    /// The value as a `Double`: exact for floats and for integers that `Double` represents.
    func double() throws -> Double {
        switch self {
        case .double(let v): return v
        case .float(let v): return Double(v)
        case .int(let v):
            guard let x = Double(exactly: v) else { throw Self.doesNotFit(v, Double.self) }
            return x
        case .uint(let v):
            guard let x = Double(exactly: v) else { throw Self.doesNotFit(v, Double.self) }
            return x
        }
    }

    /// The value as a `Float`: doubles are rounded if within range (like `JSONDecoder`),
    /// integers must be exactly representable.
    func float() throws -> Float {
        switch self {
        case .float(let v): return v
        case .double(let v):
            guard !v.isFinite || abs(v) <= Double(Float.greatestFiniteMagnitude) else {
                throw Self.doesNotFit(v, Float.self)
            }
            return Float(v)
        case .int(let v):
            guard let x = Float(exactly: v) else { throw Self.doesNotFit(v, Float.self) }
            return x
        case .uint(let v):
            guard let x = Float(exactly: v) else { throw Self.doesNotFit(v, Float.self) }
            return x
        }
    }

    /// The value converted to the numeric leaf type `leaf` (which must be `T`).
    ///
    /// - Precondition: `leaf.isNumericScalar` and `leaf` describes `T`.
    func converted<T>(_ leaf: _WireLeaf, as _: T.Type) throws -> T {
        switch leaf {
        case .int: return unsafeBitCast(try integer(Int.self), to: T.self)
        case .int8: return unsafeBitCast(try integer(Int8.self), to: T.self)
        case .int16: return unsafeBitCast(try integer(Int16.self), to: T.self)
        case .int32: return unsafeBitCast(try integer(Int32.self), to: T.self)
        case .int64: return unsafeBitCast(try integer(Int64.self), to: T.self)
        case .uint: return unsafeBitCast(try integer(UInt.self), to: T.self)
        case .uint8: return unsafeBitCast(try integer(UInt8.self), to: T.self)
        case .uint16: return unsafeBitCast(try integer(UInt16.self), to: T.self)
        case .uint32: return unsafeBitCast(try integer(UInt32.self), to: T.self)
        case .uint64: return unsafeBitCast(try integer(UInt64.self), to: T.self)
        case .double: return unsafeBitCast(try double(), to: T.self)
        case .float: return unsafeBitCast(try float(), to: T.self)
        default: preconditionFailure("not a numeric scalar leaf")
        }
    }
}

extension ByteWriter {
    /// Writes `scalar` as a tagged value (exactly as the encoder writes that number).
    mutating func writeScalarValue(_ scalar: _WireScalar) {
        switch scalar {
        case .int(let v): writeIntValue(v)
        case .uint(let v): writeUIntValue(v)
        case .double(let v): writeDoubleValue(v)
        case .float(let v): writeFloatValue(v)
        }
    }
}

// MARK: - Leaf readers

extension ByteReader {
    /// Reads a tagged numeric value; any other tag throws a mismatch for `expected`.
    mutating func readScalarValue(expected: any Any.Type) throws -> _WireScalar {
        let tag = try readUInt8()
        if tag >= WireTag.smallIntBase { return .int(Int64(tag & WireTag.smallIntMax)) }
        switch tag {
        case WireTag.int: return .int(try readInt64())
        case WireTag.uint: return .uint(try readUInt64())
        case WireTag.double: return .double(Double(bitPattern: try readUInt64()))
        case WireTag.float: return .float(Float(bitPattern: try readUInt32()))
        default: throw _WireMismatch(expected: expected, reason: .tag(tag))
        }
    }

    /// Reads one element of a typed array of `kind`.
    mutating func readRawScalar(_ kind: WireElementKind) throws -> _WireScalar {
        switch kind {
        case .int8: return .int(Int64(Int8(bitPattern: try readUInt8())))
        case .int16: return .int(Int64(try readLittleEndian(Int16.self)))
        case .int32: return .int(Int64(try readLittleEndian(Int32.self)))
        case .int64: return .int(try readLittleEndian(Int64.self))
        case .uint8: return .uint(UInt64(try readUInt8()))
        case .uint16: return .uint(UInt64(try readLittleEndian(UInt16.self)))
        case .uint32: return .uint(UInt64(try readLittleEndian(UInt32.self)))
        case .uint64: return .uint(try readLittleEndian(UInt64.self))
        case .float32: return .float(Float(bitPattern: try readLittleEndian(UInt32.self)))
        case .float64: return .double(Double(bitPattern: try readLittleEndian(UInt64.self)))
        }
    }

    /// Reads an integer value (small, int or uint tag) into `I`, checking its range.
    @inline(__always)
    mutating func readIntegerValue<I: FixedWidthInteger>(_: I.Type) throws -> I {
        let tag = try readUInt8()
        if tag >= WireTag.smallIntBase { return I(truncatingIfNeeded: tag & WireTag.smallIntMax) }
        return try readIntegerSlow(I.self, tag: tag)
    }

    private mutating func readIntegerSlow<I: FixedWidthInteger>(_: I.Type, tag: UInt8) throws -> I {
        switch tag {
        case WireTag.int: return try _WireScalar.int(try readInt64()).integer(I.self)
        case WireTag.uint: return try _WireScalar.uint(try readUInt64()).integer(I.self)
        default: throw _WireMismatch(expected: I.self, reason: .tag(tag))
        }
    }

    mutating func readDoubleValue() throws -> Double {
        if try peekUInt8() == WireTag.double {
            try skip(1)
            return Double(bitPattern: try readUInt64())
        }
        return try readScalarValue(expected: Double.self).double()
    }

    mutating func readFloatValue() throws -> Float {
        if try peekUInt8() == WireTag.float {
            try skip(1)
            return Float(bitPattern: try readUInt32())
        }
        return try readScalarValue(expected: Float.self).float()
    }

    mutating func readBoolValue() throws -> Bool {
        let tag = try readUInt8()
        switch tag {
        case WireTag.true: return true
        case WireTag.false: return false
        default: throw _WireMismatch(expected: Bool.self, reason: .tag(tag))
        }
    }

    mutating func readStringValue() throws -> String {
        let tag = try readUInt8()
        guard tag == WireTag.string else { throw _WireMismatch(expected: String.self, reason: .tag(tag)) }
        return try readString()
    }

    /// Whether the next value can be read as `leaf` by ``readLeaf(_:as:)``: always for
    /// scalars (which throw on a mismatch); for arrays, only when the bytes hold that exact
    /// layout (otherwise the caller decodes the array element by element).
    @inline(__always)
    func canReadLeaf(_ leaf: _WireLeaf) -> Bool {
        switch leaf {
        case .bytes:
            guard offset < end else { return false }
            let tag = bytes[offset]
            return tag == WireTag.bytes
                || (tag == WireTag.typedArray && end - offset >= 2
                    && bytes[offset + 1] == WireElementKind.uint8.rawValue)
        default:
            guard let kind = leaf.arrayKind else { return true }
            return end - offset >= 2 && bytes[offset] == WireTag.typedArray && bytes[offset + 1] == kind.rawValue
        }
    }

    /// Reads `T`, the type described by `leaf`.
    ///
    /// - Precondition: `leaf` describes `T`, and ``canReadLeaf(_:)`` returned `true`.
    @inline(__always)
    mutating func readLeaf<T>(_ leaf: _WireLeaf, as _: T.Type) throws -> T {
        switch leaf {
        case .int: return unsafeBitCast(try readIntegerValue(Int.self), to: T.self)
        case .int8: return unsafeBitCast(try readIntegerValue(Int8.self), to: T.self)
        case .int16: return unsafeBitCast(try readIntegerValue(Int16.self), to: T.self)
        case .int32: return unsafeBitCast(try readIntegerValue(Int32.self), to: T.self)
        case .int64: return unsafeBitCast(try readIntegerValue(Int64.self), to: T.self)
        case .uint: return unsafeBitCast(try readIntegerValue(UInt.self), to: T.self)
        case .uint8: return unsafeBitCast(try readIntegerValue(UInt8.self), to: T.self)
        case .uint16: return unsafeBitCast(try readIntegerValue(UInt16.self), to: T.self)
        case .uint32: return unsafeBitCast(try readIntegerValue(UInt32.self), to: T.self)
        case .uint64: return unsafeBitCast(try readIntegerValue(UInt64.self), to: T.self)
        case .double: return unsafeBitCast(try readDoubleValue(), to: T.self)
        case .float: return unsafeBitCast(try readFloatValue(), to: T.self)
        case .bool: return unsafeBitCast(try readBoolValue(), to: T.self)
        case .string: return unsafeBitCast(try readStringValue(), to: T.self)
        case .bytes: return unsafeBitCast(try readByteArray(), to: T.self)
        case .intArray: return unsafeBitCast(try readTypedArray(Int.self, .int64), to: T.self)
        case .int8Array: return unsafeBitCast(try readTypedArray(Int8.self, .int8), to: T.self)
        case .int16Array: return unsafeBitCast(try readTypedArray(Int16.self, .int16), to: T.self)
        case .int32Array: return unsafeBitCast(try readTypedArray(Int32.self, .int32), to: T.self)
        case .int64Array: return unsafeBitCast(try readTypedArray(Int64.self, .int64), to: T.self)
        case .uintArray: return unsafeBitCast(try readTypedArray(UInt.self, .uint64), to: T.self)
        case .uint16Array: return unsafeBitCast(try readTypedArray(UInt16.self, .uint16), to: T.self)
        case .uint32Array: return unsafeBitCast(try readTypedArray(UInt32.self, .uint32), to: T.self)
        case .uint64Array: return unsafeBitCast(try readTypedArray(UInt64.self, .uint64), to: T.self)
        case .doubleArray: return unsafeBitCast(try readTypedArray(Double.self, .float64), to: T.self)
        case .floatArray: return unsafeBitCast(try readTypedArray(Float.self, .float32), to: T.self)
        }
    }

    /// Reads a `bytes` value (or a typed array of `uint8`) as `[UInt8]` (one `memcpy`).
    /// - Precondition: ``canReadLeaf(_:)`` for `.bytes` returned `true`.
    private mutating func readByteArray() throws -> [UInt8] {
        try skip(bytes[offset] == WireTag.bytes ? 1 : 2)
        let count = try readLength()
        return Array(try readBytes(count))
    }

    /// Reads a typed array of `kind` as `[E]` (one bulk copy).
    /// - Precondition: ``canReadLeaf(_:)`` for that array returned `true`.
    private mutating func readTypedArray<E>(_: E.Type, _ kind: WireElementKind) throws -> [E] {
        try skip(2)
        let count = try readLength(unit: kind.width)
        let raw = try readBytes(count * kind.width)
        guard count > 0 else { return [] }
        // `reserveCapacity` + `append` are specialized here; `init(unsafeUninitializedCapacity:)`
        // would look up generic array metadata at run time on every call.
        var result: [E] = []
        result.reserveCapacity(count)
        raw.withUnsafeBytes { source in
            result.append(contentsOf: source.assumingMemoryBound(to: E.self))
        }
        return result
    }
}

/// Calls `body` with the UTF-8 bytes of `key.stringValue` (no copy for native strings).
@inline(__always)
private func withUTF8<R>(of key: some CodingKey, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    var string = key.stringValue
    return try string.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
}

// MARK: - Decoder

/// The `Decoder` (and single-value container) for the value at `bytes[start..<end]`.
///
/// `end` is the exact end of the value (found by ``WireCoding/skipValue(in:)``), so nothing
/// inside can read past it. A decoder for a map also keeps the lookup state of its keyed
/// containers: the position of the entry after the last match (`nextEntry`, so in-order
/// access costs one key comparison) and of the last match itself (`lastEntry`, so
/// `contains` + `decodeNil` + `decode` of one key do not rescan).
final class _WireDecoder: Decoder, SingleValueDecodingContainer {
    let bytes: [UInt8]
    let start: Int
    let end: Int
    let depth: Int
    let parent: _WireDecoder?
    let component: _WirePathComponent

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

    init(bytes: [UInt8], start: Int, end: Int, depth: Int, parent: _WireDecoder?, component: _WirePathComponent) {
        self.bytes = bytes
        self.start = start
        self.end = end
        self.depth = depth
        self.parent = parent
        self.component = component
    }

    var codingPath: [any CodingKey] {
        var path: [any CodingKey] = []
        var node: _WireDecoder? = self
        while let current = node {
            if let key = current.component.codingKey { path.append(key) }
            node = current.parent
        }
        return path.reversed()
    }

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// The coding path of this decoder plus `component`, for errors.
    func path(_ component: _WirePathComponent) -> [any CodingKey] {
        var path = codingPath
        if let key = component.codingKey { path.append(key) }
        return path
    }

    /// The tag of this value (the region is never empty).
    var tag: UInt8 { bytes[start] }

    /// A decoder for the value at `range` of `bytes` (or of `other`), one level deeper.
    func child(_ range: Range<Int>, in other: [UInt8]? = nil, component: _WirePathComponent) throws -> _WireDecoder {
        guard depth + passThrough < WireLimits.maxDepth else {
            let error = WireFormatError(
                .nestingTooDeep, at: range.lowerBound, "containers nested deeper than \(WireLimits.maxDepth) levels")
            throw _wireDecodingError(error, codingPath: path(component))
        }
        return _WireDecoder(
            bytes: other ?? bytes, start: range.lowerBound, end: range.upperBound, depth: depth + passThrough + 1,
            parent: self,
            component: component
        )
    }

    // MARK: Decoder

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        if keyedBody < 0 { try openKeyed() }
        return KeyedDecodingContainer(_WireKeyedDecodingContainer<Key>(decoder: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try _WireUnkeyedDecodingContainer(decoder: self)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        self
    }

    // MARK: Keyed lookup

    private func openKeyed() throws {
        guard tag == WireTag.map else {
            throw _wireDecodingError(
                _WireMismatch(expected: [String: Any].self, reason: .tag(tag)), codingPath: codingPath)
        }
        var reader = ByteReader(bytes, offset: start + 5, end: end)
        do {
            // Every entry takes at least 2 bytes (key length + value tag).
            keyedCount = try reader.readLength(unit: 2)
        } catch {
            throw _wireDecodingError(error, codingPath: codingPath)
        }
        keyedBody = reader.offset
        nextEntry = keyedBody
        nextIndex = 0
    }

    /// Finds the value of the key whose UTF-8 is `key`: first the entry after the last
    /// match, then the last match, then a linear scan. Returns the value's byte range.
    func find(_ key: UnsafeRawBufferPointer) throws -> Range<Int>? {
        try bytes.withUnsafeBytes { raw in
            let scan = _RawScan(raw: raw, end: end)
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
            throw _wireDecodingError(error, codingPath: path(.key(key)))
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
    func nilDecoder(component: _WirePathComponent) throws -> _WireDecoder {
        try child(0..<1, in: Self.nilValue, component: component)
    }

    // MARK: SingleValueDecodingContainer

    @inline(__always)
    private func single<T>(_ read: (inout ByteReader) throws -> T) throws -> T {
        var reader = ByteReader(unchecked: bytes, offset: start, end: end)
        do {
            return try read(&reader)
        } catch {
            throw _wireDecodingError(error, codingPath: codingPath)
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
        if let leaf = _WireLeaf(T.self) {
            var reader = ByteReader(unchecked: bytes, offset: start, end: end)
            if reader.canReadLeaf(leaf) {
                do {
                    return try reader.readLeaf(leaf, as: T.self)
                } catch {
                    throw _wireDecodingError(error, codingPath: codingPath)
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
            throw _wireDecodingError(error, codingPath: codingPath)
        }
        passThrough += 1
        defer { passThrough -= 1 }
        return try T(from: self)
    }
}

// MARK: - Keyed container

struct _WireKeyedDecodingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: _WireDecoder

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
            throw _wireDecodingError(error, codingPath: decoder.path(.key(key)))
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
        if let leaf = _WireLeaf(T.self) {
            var reader = ByteReader(unchecked: decoder.bytes, offset: range.lowerBound, end: range.upperBound)
            if reader.canReadLeaf(leaf) {
                do {
                    return try reader.readLeaf(leaf, as: T.self)
                } catch {
                    throw _wireDecodingError(error, codingPath: decoder.path(.key(key)))
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
        try superDecoder(for: _WireKey.super)
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
struct _WireUnkeyedDecodingContainer: UnkeyedDecodingContainer {
    let decoder: _WireDecoder
    /// `nil` for tagged elements; the raw element kind for typed arrays and bytes.
    let elementKind: WireElementKind?
    let elementCount: Int
    private var position: Int
    private(set) var currentIndex = 0

    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { elementCount }
    var isAtEnd: Bool { currentIndex >= elementCount }

    init(decoder: _WireDecoder) throws {
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
                throw _WireMismatch(expected: [Any].self, reason: .tag(tag))
            }
        } catch {
            throw _wireDecodingError(error, codingPath: decoder.codingPath)
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
        _wireDecodingError(error, codingPath: decoder.path(.index(currentIndex)))
    }

    /// A decoder for the next element (advancing past it).
    private mutating func nextDecoder() throws -> _WireDecoder {
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
        if let leaf = _WireLeaf(T.self) {
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
