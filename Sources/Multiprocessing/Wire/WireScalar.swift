// WireScalar.swift
//
// A number as the wire stores it, and the lenient but lossless conversions between numeric
// types that decoding allows (see the rules in WireFormat.swift): any integer tag into any
// integer type whose range holds it, integers into floating point only when exact.

/// A numeric value as stored on the wire (tagged or as a typed-array element).
enum WireScalar {
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
    static func doesNotFit(_ value: some CustomStringConvertible, _ type: any Any.Type) -> WireMismatch {
        WireMismatch(expected: type, reason: .doesNotFit("Number \(value) does not fit in \(type)."))
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
            throw WireMismatch(expected: I.self, reason: .tag(tag))
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
    func converted<T>(_ leaf: WireLeaf, as _: T.Type) throws -> T {
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
