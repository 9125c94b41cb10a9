// The error types that cross the process boundary as themselves.

import Synchronization

/// Maps the name of a registered `Codable` error type to how to encode and decode it.
final class ErrorTypeRegistry: Sendable {
    struct Entry: Sendable {
        let encode: @Sendable (any Error, inout ByteWriter) throws -> Void
        let decode: @Sendable (inout ByteReader) throws -> any Error & Sendable
    }

    static let shared = ErrorTypeRegistry()

    private let entries = Mutex<[String: Entry]>([:])

    /// The stable name of an error type: its fully qualified Swift name.
    static func name(of type: Any.Type) -> String { String(reflecting: type) }

    func register<E: Error & Codable & Sendable>(_ type: E.Type) {
        let entry = Entry(
            encode: { error, writer in try WireCoding.encode(error as! E, into: &writer) },
            decode: { reader in try WireCoding.decode(E.self, from: &reader) }
        )
        entries.withLock { $0[ErrorTypeRegistry.name(of: type)] = entry }
    }

    func entry(named name: String) -> Entry? {
        entries.withLock { $0[name] }
    }
}
