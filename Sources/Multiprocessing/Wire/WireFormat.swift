// WireFormat.swift
//
// Tag constants, element kinds and limits of the binary wire format that carries Codable
// values (call arguments and results) between the parent and its workers, and the hosts it
// runs on (64-bit, little endian).
//
// The coder is hand-written because no package in reach provides a fast binary Codable
// coder without Foundation (and Foundation is off-limits here for startup cost).

/// The binary format that carries `Codable` values between processes.
///
/// The format is tagged and self-describing: every value starts with a 1-byte tag, and every
/// value is self-delimiting, so several values can be written back to back and read in
/// sequence. Multi-byte scalars are little endian; "varint" is unsigned LEB128 (at most 10
/// bytes); "u32" is a 4-byte little-endian length.
///
/// | Tag         | Name        | Payload                                                          |
/// |-------------|-------------|------------------------------------------------------------------|
/// | `0x00`      | nil         | none                                                             |
/// | `0x01`      | false       | none                                                             |
/// | `0x02`      | true        | none                                                             |
/// | `0x03`      | int         | Int64 (8 bytes); signed integers outside `0...127`               |
/// | `0x04`      | uint        | UInt64 (8 bytes); unsigned integers outside `0...127`            |
/// | `0x05`      | double      | IEEE 754 binary64 bit pattern (8 bytes)                          |
/// | `0x06`      | float       | IEEE 754 binary32 bit pattern (4 bytes)                          |
/// | `0x07`      | string      | varint byte count, UTF-8                                         |
/// | `0x08`      | bytes       | varint byte count, raw bytes (`[UInt8]`)                         |
/// | `0x09`      | array       | u32 body length, body = varint count + `count` values            |
/// | `0x0A`      | map         | u32 body length, body = varint count + `count` (key, value) pairs |
/// | `0x0B`      | typed array | element-kind byte, varint count, `count` raw LE elements         |
/// | `0x80–0xFF` | small int   | none; the value is `tag & 0x7F` (0...127), any integer type      |
///
/// A map key is a varint byte count followed by the UTF-8 of the key's `stringValue` (int
/// keys, e.g. of `[Int: V]`, use their decimal `stringValue`, exactly like JSON). The u32 body
/// length of arrays and maps lets a reader skip a container in O(1); skipping never recurses.
///
/// Typed arrays (the fast path of `[Int]`, `[Int64]`, `[Int32]`, `[Int16]`, `[Int8]`, `[UInt]`,
/// `[UInt64]`, `[UInt32]`, `[UInt16]`, `[Double]`, `[Float]`) use ``WireElementKind`` to name
/// the element type; `[UInt8]` uses the `bytes` tag.
///
/// Decoding is lenient where it is lossless:
/// - any integer tag (small, int, uint) decodes into any integer type whose range holds the
///   value; otherwise `DecodingError.dataCorrupted` ("does not fit");
/// - an integer decodes as `Double`/`Float` only if exactly representable;
/// - `float` decodes as `Double` (exact); `double` decodes as `Float` by rounding, if finite
///   values are within `Float`'s range (like `JSONDecoder`);
/// - typed arrays and `bytes` can be read through an unkeyed container (e.g. as `[Int?]`);
/// - a `nil` tag where a value is required gives `DecodingError.valueNotFound`; any other
///   mismatch gives `DecodingError.typeMismatch`; structural damage gives
///   `DecodingError.dataCorrupted` whose underlying error is a ``WireFormatError``.
///
/// Other rules:
/// - a value that encodes nothing (no container requested) is written as an empty map;
/// - like `JSONEncoder`, `Optional<Optional<T>>.some(nil)` is written as `nil` and reads back
///   as `nil`; `Int128`/`UInt128` are not supported (`EncodingError.invalidValue`);
/// - when a keyed container holds the same key twice (e.g. a class and its superclass sharing
///   one container), lookups find the first occurrence;
/// - the decoder accepts at most ``WireLimits/maxDepth`` nested containers (and single-value
///   pass-throughs), so hostile input cannot exhaust the stack.
enum WireTag {
    static let null: UInt8 = 0x00
    static let `false`: UInt8 = 0x01
    static let `true`: UInt8 = 0x02
    static let int: UInt8 = 0x03
    static let uint: UInt8 = 0x04
    static let double: UInt8 = 0x05
    static let float: UInt8 = 0x06
    static let string: UInt8 = 0x07
    static let bytes: UInt8 = 0x08
    static let array: UInt8 = 0x09
    static let map: UInt8 = 0x0A
    static let typedArray: UInt8 = 0x0B
    /// A `[UInt8]` value that travels after its frame instead of inside it: the tag and a
    /// varint index into the frame's attachments (see Attachments.swift). Only a top-level value
    /// of a frame's item is ever attached.
    static let attachedBytes: UInt8 = 0x0C
    /// Tags `0x80...0xFF` encode the integers `0...127` in the tag byte itself.
    static let smallIntBase: UInt8 = 0x80
    /// The largest integer carried by a small-int tag.
    static let smallIntMax: UInt8 = 0x7F

    /// A human-readable name of `tag`, for error messages.
    static func name(_ tag: UInt8) -> String {
        if tag >= smallIntBase { return "small int \(tag & smallIntMax)" }
        switch tag {
        case null: return "nil"
        case `false`, `true`: return "bool"
        case int: return "int"
        case uint: return "uint"
        case double: return "double"
        case float: return "float"
        case string: return "string"
        case bytes: return "bytes"
        case array: return "array"
        case map: return "map"
        case typedArray: return "typed array"
        case attachedBytes: return "attached bytes"
        default: return "unknown tag 0x\(String(tag, radix: 16))"
        }
    }
}

/// The element type of a typed numeric array (tag ``WireTag/typedArray``).
enum WireElementKind: UInt8 {
    case int8 = 1
    case int16 = 2
    case int32 = 3
    case int64 = 4
    case uint8 = 5
    case uint16 = 6
    case uint32 = 7
    case uint64 = 8
    case float32 = 9
    case float64 = 10

    /// The size of one element in bytes.
    var width: Int {
        switch self {
        case .int8, .uint8: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32, .float32: return 4
        case .int64, .uint64, .float64: return 8
        }
    }
}

/// Limits of the wire format.
enum WireLimits {
    /// The deepest nesting of containers the decoder accepts (bounds the recursion, and so
    /// the stack, that corrupt or hostile input can cause).
    static let maxDepth = 512
}

#if _endian(big)
    #error("The wire format copies numeric arrays in host byte order; big-endian hosts are not supported.")
#endif

#if !_pointerBitWidth(_64)
    #error("The wire format maps Int/UInt to 64-bit elements; only 64-bit hosts are supported.")
#endif
