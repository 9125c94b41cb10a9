// WireMismatch.swift
//
// How a leaf value that does not fit the requested type, and structural damage found while
// reading, become the `DecodingError`s that Codable callers expect, with their coding path.

/// A leaf value that does not fit the requested type; turned into a `DecodingError` with
/// the coding path by the container that read it.
struct WireMismatch: Error {
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
func wireDecodingError(_ error: any Error, codingPath: [any CodingKey]) -> any Error {
    if let mismatch = error as? WireMismatch {
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
