// ByteWriter+WireValues.swift
//
// The leaf writers of the wire format: one tagged value (a number, Bool, String, [UInt8] or a
// numeric array) appended to a `ByteWriter`. Shared by the fast paths of `WireCoding.encode`,
// the encoder's containers and the decoder (which re-tags typed-array elements), so that all of
// them write byte-identical values.

extension ByteWriter {
    /// Writes a signed integer value: a small-int tag for `0...127`, else `int` + Int64.
    @inline(__always)
    mutating func writeIntValue(_ v: Int64) {
        if v >= 0 && v <= Int64(WireTag.smallIntMax) {
            writeUInt8(WireTag.smallIntBase | UInt8(truncatingIfNeeded: v))
        } else {
            writeTagged(WireTag.int, v)
        }
    }

    /// Writes an unsigned integer value: a small-int tag for `0...127`, else `uint` + UInt64.
    @inline(__always)
    mutating func writeUIntValue(_ v: UInt64) {
        if v <= UInt64(WireTag.smallIntMax) {
            writeUInt8(WireTag.smallIntBase | UInt8(truncatingIfNeeded: v))
        } else {
            writeTagged(WireTag.uint, v)
        }
    }

    @inline(__always)
    mutating func writeBoolValue(_ v: Bool) {
        writeUInt8(v ? WireTag.true : WireTag.false)
    }

    @inline(__always)
    mutating func writeDoubleValue(_ v: Double) {
        writeTagged(WireTag.double, v.bitPattern)
    }

    @inline(__always)
    mutating func writeFloatValue(_ v: Float) {
        writeTagged(WireTag.float, v.bitPattern)
    }

    @inline(__always)
    mutating func writeStringValue(_ v: String) {
        writeUInt8(WireTag.string)
        writeString(v)
    }

    /// Writes `[UInt8]` as the `bytes` tag, a varint count and the raw bytes (one `memcpy`).
    mutating func writeBytesValue(_ v: [UInt8]) {
        writeUInt8(WireTag.bytes)
        writeVarint(UInt64(v.count))
        writeBytes(v)
    }

    /// Writes a numeric array as a typed array: tag, kind, varint count, raw LE elements.
    mutating func writeTypedArrayValue<E>(_ v: [E], kind: WireElementKind) {
        writeUInt8(WireTag.typedArray)
        writeUInt8(kind.rawValue)
        writeVarint(UInt64(v.count))
        v.withUnsafeBytes { writeRaw($0) }
    }

    /// Writes `value` directly if its type is one of the fast-path leaf types (``WireLeaf``)
    /// and returns `true`; returns `false` (writing nothing) otherwise.
    ///
    /// Metatype comparisons are cheap and fold away when `T` is specialized.
    @inline(__always)
    mutating func writeLeaf<T>(_ value: T) -> Bool {
        guard let leaf = WireLeaf(T.self) else { return false }
        switch leaf {
        case .int: writeIntValue(Int64(unsafeBitCast(value, to: Int.self)))
        case .int8: writeIntValue(Int64(unsafeBitCast(value, to: Int8.self)))
        case .int16: writeIntValue(Int64(unsafeBitCast(value, to: Int16.self)))
        case .int32: writeIntValue(Int64(unsafeBitCast(value, to: Int32.self)))
        case .int64: writeIntValue(unsafeBitCast(value, to: Int64.self))
        case .uint: writeUIntValue(UInt64(unsafeBitCast(value, to: UInt.self)))
        case .uint8: writeUIntValue(UInt64(unsafeBitCast(value, to: UInt8.self)))
        case .uint16: writeUIntValue(UInt64(unsafeBitCast(value, to: UInt16.self)))
        case .uint32: writeUIntValue(UInt64(unsafeBitCast(value, to: UInt32.self)))
        case .uint64: writeUIntValue(unsafeBitCast(value, to: UInt64.self))
        case .double: writeDoubleValue(unsafeBitCast(value, to: Double.self))
        case .float: writeFloatValue(unsafeBitCast(value, to: Float.self))
        case .bool: writeBoolValue(unsafeBitCast(value, to: Bool.self))
        case .string: writeStringValue(unsafeBitCast(value, to: String.self))
        case .bytes: writeBytesValue(unsafeBitCast(value, to: [UInt8].self))
        case .intArray: writeTypedArrayValue(unsafeBitCast(value, to: [Int].self), kind: .int64)
        case .int8Array: writeTypedArrayValue(unsafeBitCast(value, to: [Int8].self), kind: .int8)
        case .int16Array: writeTypedArrayValue(unsafeBitCast(value, to: [Int16].self), kind: .int16)
        case .int32Array: writeTypedArrayValue(unsafeBitCast(value, to: [Int32].self), kind: .int32)
        case .int64Array: writeTypedArrayValue(unsafeBitCast(value, to: [Int64].self), kind: .int64)
        case .uintArray: writeTypedArrayValue(unsafeBitCast(value, to: [UInt].self), kind: .uint64)
        case .uint16Array: writeTypedArrayValue(unsafeBitCast(value, to: [UInt16].self), kind: .uint16)
        case .uint32Array: writeTypedArrayValue(unsafeBitCast(value, to: [UInt32].self), kind: .uint32)
        case .uint64Array: writeTypedArrayValue(unsafeBitCast(value, to: [UInt64].self), kind: .uint64)
        case .doubleArray: writeTypedArrayValue(unsafeBitCast(value, to: [Double].self), kind: .float64)
        case .floatArray: writeTypedArrayValue(unsafeBitCast(value, to: [Float].self), kind: .float32)
        }
        return true
    }
}

extension ByteWriter {
    /// Writes `scalar` as a tagged value (exactly as the encoder writes that number).
    mutating func writeScalarValue(_ scalar: WireScalar) {
        switch scalar {
        case .int(let v): writeIntValue(v)
        case .uint(let v): writeUIntValue(v)
        case .double(let v): writeDoubleValue(v)
        case .float(let v): writeFloatValue(v)
        }
    }
}
