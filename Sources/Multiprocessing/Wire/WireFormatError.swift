// WireFormatError.swift
//
// The structural errors of wire-format bytes, thrown by the readers and wrapped by the decoder
// as the underlying error of `DecodingError.dataCorrupted`.

/// A structural error in wire-format bytes: truncation, malformed varint, invalid UTF-8,
/// an impossible length, an unknown tag, or nesting that is too deep.
///
/// ``ByteReader`` throws it directly; the `Decoder` wraps it as the underlying error of
/// `DecodingError.dataCorrupted`.
struct WireFormatError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong.
    enum Kind: String, Sendable {
        /// The input ended before the value did.
        case truncated
        /// A varint is longer than 10 bytes or overflows 64 bits.
        case malformedVarint
        /// A string is not valid UTF-8.
        case invalidUTF8
        /// A length or count is larger than the bytes that remain.
        case invalidLength
        /// A tag or element kind byte is not part of the format.
        case unknownTag
        /// Containers are nested deeper than ``WireLimits/maxDepth``.
        case nestingTooDeep
    }

    /// What went wrong.
    var kind: Kind
    /// The absolute byte offset where the problem was detected.
    var offset: Int
    /// Details for humans.
    var detail: String

    init(_ kind: Kind, at offset: Int, _ detail: String) {
        self.kind = kind
        self.offset = offset
        self.detail = detail
    }

    var description: String {
        "WireFormatError.\(kind.rawValue) at byte \(offset): \(detail)"
    }
}
