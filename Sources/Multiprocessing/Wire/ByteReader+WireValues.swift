// ByteReader+WireValues.swift
//
// The leaf readers of the wire format: one tagged value read from a `ByteReader` as the type
// asked for (numbers through the conversions of WireScalar.swift), and whole numeric arrays in
// one bulk copy. A value of the wrong kind throws a `WireMismatch`, which the caller maps to a
// `DecodingError` with its coding path (WireMismatch.swift).

extension ByteReader {
    /// Reads a tagged numeric value; any other tag throws a mismatch for `expected`.
    mutating func readScalarValue(expected: any Any.Type) throws -> WireScalar {
        let tag = try readUInt8()
        if tag >= WireTag.smallIntBase { return .int(Int64(tag & WireTag.smallIntMax)) }
        switch tag {
        case WireTag.int: return .int(try readInt64())
        case WireTag.uint: return .uint(try readUInt64())
        case WireTag.double: return .double(Double(bitPattern: try readUInt64()))
        case WireTag.float: return .float(Float(bitPattern: try readUInt32()))
        default: throw WireMismatch(expected: expected, reason: .tag(tag))
        }
    }

    /// Reads one element of a typed array of `kind`.
    mutating func readRawScalar(_ kind: WireElementKind) throws -> WireScalar {
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
        case WireTag.int: return try WireScalar.int(try readInt64()).integer(I.self)
        case WireTag.uint: return try WireScalar.uint(try readUInt64()).integer(I.self)
        default: throw WireMismatch(expected: I.self, reason: .tag(tag))
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
        default: throw WireMismatch(expected: Bool.self, reason: .tag(tag))
        }
    }

    mutating func readStringValue() throws -> String {
        let tag = try readUInt8()
        guard tag == WireTag.string else { throw WireMismatch(expected: String.self, reason: .tag(tag)) }
        return try readString()
    }

    /// Whether the next value can be read as `leaf` by ``readLeaf(_:as:)``: always for
    /// scalars (which throw on a mismatch); for arrays, only when the bytes hold that exact
    /// layout (otherwise the caller decodes the array element by element).
    @inline(__always)
    func canReadLeaf(_ leaf: WireLeaf) -> Bool {
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
    mutating func readLeaf<T>(_ leaf: WireLeaf, as _: T.Type) throws -> T {
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
