// WireLeaf.swift
//
// The leaf types of the wire coder's fast paths (numbers, Bool, String, [UInt8], numeric
// arrays): recognised by metatype comparison, written and read straight from the bytes without
// an `Encoder` or `Decoder` (ByteWriter+WireValues.swift, ByteReader+WireValues.swift).

/// The fast-path leaf types, found by metatype comparison (cheap, and constant-folded when
/// the caller is specialized). A non-generic enum, so that asking "is `T` a leaf?" needs no
/// `Optional<T>` metadata at run time.
enum WireLeaf {
    case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64
    case double, float, bool, string, bytes
    case intArray, int8Array, int16Array, int32Array, int64Array
    case uintArray, uint16Array, uint32Array, uint64Array, doubleArray, floatArray

    @inline(__always)
    init?<T>(_: T.Type) {
        if T.self == Int.self { self = .int; return }
        if T.self == String.self { self = .string; return }
        if T.self == Double.self { self = .double; return }
        if T.self == Bool.self { self = .bool; return }
        if T.self == [UInt8].self { self = .bytes; return }
        if T.self == Int64.self { self = .int64; return }
        if T.self == UInt64.self { self = .uint64; return }
        if T.self == UInt.self { self = .uint; return }
        if T.self == Int32.self { self = .int32; return }
        if T.self == UInt32.self { self = .uint32; return }
        if T.self == Float.self { self = .float; return }
        if T.self == Int16.self { self = .int16; return }
        if T.self == UInt16.self { self = .uint16; return }
        if T.self == Int8.self { self = .int8; return }
        if T.self == UInt8.self { self = .uint8; return }
        if T.self == [Int].self { self = .intArray; return }
        if T.self == [Double].self { self = .doubleArray; return }
        if T.self == [Int64].self { self = .int64Array; return }
        if T.self == [Int32].self { self = .int32Array; return }
        if T.self == [Int16].self { self = .int16Array; return }
        if T.self == [Int8].self { self = .int8Array; return }
        if T.self == [UInt].self { self = .uintArray; return }
        if T.self == [UInt64].self { self = .uint64Array; return }
        if T.self == [UInt32].self { self = .uint32Array; return }
        if T.self == [UInt16].self { self = .uint16Array; return }
        if T.self == [Float].self { self = .floatArray; return }
        return nil
    }

    /// Integers and floating point (what a typed-array element converts to).
    var isNumericScalar: Bool {
        switch self {
        case .int, .int8, .int16, .int32, .int64, .uint, .uint8, .uint16, .uint32, .uint64, .double, .float: return true
        default: return false
        }
    }

    /// The element kind of a typed-array leaf.
    var arrayKind: WireElementKind? {
        switch self {
        case .intArray, .int64Array: return .int64
        case .int32Array: return .int32
        case .int16Array: return .int16
        case .int8Array: return .int8
        case .uintArray, .uint64Array: return .uint64
        case .uint32Array: return .uint32
        case .uint16Array: return .uint16
        case .doubleArray: return .float64
        case .floatArray: return .float32
        default: return nil
        }
    }
}
