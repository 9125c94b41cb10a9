// WireEncoder.swift
//
// The `Encoder` of the binary wire format (see WireFormat.swift) with its containers, plus
// `WireCoding.encode`. Leaf values (numbers, Bool, String, [UInt8], numeric arrays) are
// written by ByteWriter+WireValues.swift, never through an `Encoder` instance.
//
// Hand-written because no package in reach provides a fast binary Codable coder without
// Foundation. Values that are not leaves go through a small tree of encoder nodes that write
// in place into the output and patch container lengths when they finish (only containers
// that the Codable API lets a caller fill later get buffers of their own).

extension WireCoding {
    /// Appends the encoding of `value` to `writer`.
    ///
    /// The encoding is self-delimiting, so values can be written back to back.
    /// - Throws: `EncodingError.invalidValue` for what cannot be encoded (a container body
    ///   larger than 4 GiB, conflicting containers requested from one encoder, or a type that
    ///   the wire format does not support such as `Int128`), or any error thrown by
    ///   `value.encode(to:)`. On error, `writer` is left as it was.
    static func encode<T: Encodable>(_ value: T, into writer: inout ByteWriter) throws {
        if writer.attachesLargeBytes && T.self == [UInt8].self
            && writer.attachIfLarge(unsafeBitCast(value, to: [UInt8].self))
        {
            return
        }
        if writer.writeLeaf(value) { return }
        // The root node writes straight into `writer`'s buffer (borrowed by swapping).
        let root = WireEncoder(parent: nil, component: .none)
        let base = writer.count
        root.base = base
        swap(&root.body, &writer)
        do {
            try value.encode(to: root)
            try root.finish()
        } catch {
            swap(&root.body, &writer)
            writer.bytes.removeSubrange(base...)
            throw error
        }
        swap(&root.body, &writer)
    }
}

// MARK: - Encoder

/// One node of the encoding tree, and the `Encoder` (and single-value container) for it.
///
/// A node writes its own encoding, already in wire format, into `body` starting at `base`.
/// A container node first writes its header with placeholders (tag, u32 length, a 1-byte
/// count slot) and `finish()` patches them once the contents are known, widening the count
/// slot only for 128+ elements.
///
/// Values encoded through `encode(_:forKey:)` are complete when that call returns, so their
/// child node *borrows* the parent's buffer (swapped in, O(1)), writes in place and finishes
/// before handing it back: no per-value buffers, no copies. The root borrows the caller's
/// `ByteWriter` the same way. Only `nestedContainer`, `nestedUnkeyedContainer` and
/// `superEncoder`, which the caller may fill later, get buffers of their own; they are
/// `deferred` children spliced in at their recorded offsets by `finish()`.
final class WireEncoder: Encoder, SingleValueEncodingContainer {
    enum State: UInt8 {
        case empty, single, keyed, unkeyed
    }

    // `@exclusivity(unchecked)`: these are mutated on every encoded value, and the dynamic
    // exclusivity checks of class properties would cost more than the writes themselves.
    // Accesses never overlap: only the node that currently holds the buffer writes to it.
    @exclusivity(unchecked) var state: State = .empty
    /// The buffer this node writes to (its own, or borrowed from its parent / the caller).
    @exclusivity(unchecked) var body = ByteWriter(reservingCapacity: 0)
    /// Where this node's encoding starts in `body`.
    @exclusivity(unchecked) var base = 0
    /// The number of elements (unkeyed) or pairs (keyed).
    @exclusivity(unchecked) var count = 0
    /// Children filled later by the caller, to be inserted at absolute `offset` in `body`.
    var deferred: [(offset: Int, child: WireEncoder)] = []
    /// A misuse found while encoding (e.g. conflicting containers), thrown by `finish()`.
    var error: (any Error)?

    /// The capacity reserved when a node with an empty buffer becomes a container.
    static let initialBodyCapacity = 64
    /// The container header: tag, u32 body length, 1-byte count slot.
    static let headerSize = 6

    let parent: WireEncoder?
    let component: WirePathComponent

    init(parent: WireEncoder?, component: WirePathComponent) {
        self.parent = parent
        self.component = component
    }

    var codingPath: [any CodingKey] {
        var path: [any CodingKey] = []
        var node: WireEncoder? = self
        while let current = node {
            if let key = current.component.codingKey { path.append(key) }
            node = current.parent
        }
        return path.reversed()
    }

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    // MARK: Encoder

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        switch state {
        case .empty:
            beginContainer(.keyed)
            return KeyedEncodingContainer(WireKeyedEncodingContainer<Key>(encoder: self))
        case .keyed:
            return KeyedEncodingContainer(WireKeyedEncodingContainer<Key>(encoder: self))
        case .single, .unkeyed:
            recordMisuse(
                "a keyed container was requested after a \(state == .single ? "single value" : "unkeyed container") was encoded"
            )
            return KeyedEncodingContainer(WireKeyedEncodingContainer<Key>(encoder: detached()))
        }
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        switch state {
        case .empty:
            beginContainer(.unkeyed)
            return WireUnkeyedEncodingContainer(encoder: self)
        case .unkeyed:
            return WireUnkeyedEncodingContainer(encoder: self)
        case .single, .keyed:
            recordMisuse(
                "an unkeyed container was requested after a \(state == .single ? "single value" : "keyed container") was encoded"
            )
            return WireUnkeyedEncodingContainer(encoder: detached())
        }
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        self
    }

    /// Writes the container header with placeholders for the length and count.
    private func beginContainer(_ newState: State) {
        state = newState
        if body.bytes.capacity == 0 { body.bytes.reserveCapacity(Self.initialBodyCapacity) }
        body.writeTagged(newState == .keyed ? WireTag.map : WireTag.array, UInt32(0))
        body.writeUInt8(0)
    }

    /// An encoder whose output is thrown away (returned after a recorded misuse, so that
    /// the caller does not trap and `finish()` reports the error).
    private func detached() -> WireEncoder {
        WireEncoder(parent: self, component: .none)
    }

    private func recordMisuse(_ message: String) {
        if error == nil {
            error = EncodingError.invalidValue(
                message,
                EncodingError.Context(
                    codingPath: codingPath, debugDescription: "Invalid use of the wire encoder: \(message).")
            )
        }
    }

    // MARK: Body building (used by the containers)

    /// Writes a map key: varint byte count + UTF-8 of `key.stringValue`.
    @inline(__always)
    func writeKey(_ key: some CodingKey) {
        body.writeString(key.stringValue)
    }

    /// Encodes `value` (not a leaf) through a child node that borrows this node's buffer and
    /// finishes in place.
    func encodeChild<T: Encodable>(_ value: T, component: WirePathComponent) throws {
        let child = WireEncoder(parent: self, component: component)
        child.base = body.count
        swap(&child.body, &body)
        defer { swap(&child.body, &body) }
        try value.encode(to: child)
        try child.finish()
    }

    /// Adds a child that the caller fills later; it is spliced in by `finish()`.
    func deferredChild(component: WirePathComponent) -> WireEncoder {
        let child = WireEncoder(parent: self, component: component)
        deferred.append((offset: body.count, child: child))
        count += 1
        return child
    }

    /// Completes this node's encoding in `body[base...]`: splices in deferred children and
    /// patches the container header.
    func finish() throws {
        if let error { throw error }
        switch state {
        case .single:
            return
        case .empty:
            // Nothing was encoded (like JSONEncoder's `{}`): an empty map.
            body.writeTagged(WireTag.map, UInt32(1))
            body.writeUInt8(0)
        case .keyed, .unkeyed:
            let contentStart = base + Self.headerSize
            if !deferred.isEmpty {
                // Copy the contents out (so truncating does not copy the whole buffer).
                let content = Array(body.bytes[contentStart...])
                body.bytes.removeSubrange(contentStart...)
                var cursor = 0
                for (offset, child) in deferred {
                    body.writeBytes(content[cursor..<(offset - contentStart)])
                    try child.finish()
                    body.writeBytes(child.body.bytes)
                    cursor = offset - contentStart
                }
                body.writeBytes(content[cursor...])
            }
            var countSize = 1
            while UInt64(count) >> (7 * countSize) != 0 { countSize += 1 }
            if countSize > 1 {
                body.bytes.insert(contentsOf: repeatElement(0, count: countSize - 1), at: contentStart)
            }
            let length = body.count - (base + 5)
            guard length <= Int(UInt32.max) else {
                throw EncodingError.invalidValue(
                    length,
                    EncodingError.Context(
                        codingPath: codingPath,
                        debugDescription: "A container body of \(length) bytes exceeds the wire format's 4 GiB limit."
                    )
                )
            }
            let base = self.base
            var remaining = UInt64(count)
            body.bytes.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: UInt32(length).littleEndian, toByteOffset: base + 1, as: UInt32.self)
                var index = base + 5
                while remaining >= 0x80 {
                    raw[index] = UInt8(truncatingIfNeeded: remaining) | 0x80
                    remaining >>= 7
                    index += 1
                }
                raw[index] = UInt8(truncatingIfNeeded: remaining)
            }
        }
    }

    // MARK: SingleValueEncodingContainer

    @inline(__always)
    private func beginSingle() throws {
        guard state == .empty else {
            throw EncodingError.invalidValue(
                "single value",
                EncodingError.Context(
                    codingPath: codingPath,
                    debugDescription:
                        "Attempt to encode a value through a single value container that already holds a value."
                )
            )
        }
        state = .single
    }

    func encodeNil() throws { try beginSingle(); body.writeUInt8(WireTag.null) }
    func encode(_ value: Bool) throws { try beginSingle(); body.writeBoolValue(value) }
    func encode(_ value: String) throws { try beginSingle(); body.writeStringValue(value) }
    func encode(_ value: Double) throws { try beginSingle(); body.writeDoubleValue(value) }
    func encode(_ value: Float) throws { try beginSingle(); body.writeFloatValue(value) }
    func encode(_ value: Int) throws { try beginSingle(); body.writeIntValue(Int64(value)) }
    func encode(_ value: Int8) throws { try beginSingle(); body.writeIntValue(Int64(value)) }
    func encode(_ value: Int16) throws { try beginSingle(); body.writeIntValue(Int64(value)) }
    func encode(_ value: Int32) throws { try beginSingle(); body.writeIntValue(Int64(value)) }
    func encode(_ value: Int64) throws { try beginSingle(); body.writeIntValue(value) }
    func encode(_ value: UInt) throws { try beginSingle(); body.writeUIntValue(UInt64(value)) }
    func encode(_ value: UInt8) throws { try beginSingle(); body.writeUIntValue(UInt64(value)) }
    func encode(_ value: UInt16) throws { try beginSingle(); body.writeUIntValue(UInt64(value)) }
    func encode(_ value: UInt32) throws { try beginSingle(); body.writeUIntValue(UInt64(value)) }
    func encode(_ value: UInt64) throws { try beginSingle(); body.writeUIntValue(value) }

    func encode<T: Encodable>(_ value: T) throws {
        guard state == .empty else { try beginSingle(); return }
        if body.writeLeaf(value) {
            state = .single
            return
        }
        // A composite value encodes itself into this same node (same coding path).
        try value.encode(to: self)
    }
}

// MARK: - Keyed container

struct WireKeyedEncodingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: WireEncoder

    var codingPath: [any CodingKey] { encoder.codingPath }

    @inline(__always)
    private func leaf(_ key: Key, _ write: (inout ByteWriter) -> Void) {
        encoder.writeKey(key)
        write(&encoder.body)
        encoder.count += 1
    }

    mutating func encodeNil(forKey key: Key) throws { leaf(key) { $0.writeUInt8(WireTag.null) } }
    mutating func encode(_ value: Bool, forKey key: Key) throws { leaf(key) { $0.writeBoolValue(value) } }
    mutating func encode(_ value: String, forKey key: Key) throws { leaf(key) { $0.writeStringValue(value) } }
    mutating func encode(_ value: Double, forKey key: Key) throws { leaf(key) { $0.writeDoubleValue(value) } }
    mutating func encode(_ value: Float, forKey key: Key) throws { leaf(key) { $0.writeFloatValue(value) } }
    mutating func encode(_ value: Int, forKey key: Key) throws { leaf(key) { $0.writeIntValue(Int64(value)) } }
    mutating func encode(_ value: Int8, forKey key: Key) throws { leaf(key) { $0.writeIntValue(Int64(value)) } }
    mutating func encode(_ value: Int16, forKey key: Key) throws { leaf(key) { $0.writeIntValue(Int64(value)) } }
    mutating func encode(_ value: Int32, forKey key: Key) throws { leaf(key) { $0.writeIntValue(Int64(value)) } }
    mutating func encode(_ value: Int64, forKey key: Key) throws { leaf(key) { $0.writeIntValue(value) } }
    mutating func encode(_ value: UInt, forKey key: Key) throws { leaf(key) { $0.writeUIntValue(UInt64(value)) } }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { leaf(key) { $0.writeUIntValue(UInt64(value)) } }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { leaf(key) { $0.writeUIntValue(UInt64(value)) } }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { leaf(key) { $0.writeUIntValue(UInt64(value)) } }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { leaf(key) { $0.writeUIntValue(value) } }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        encoder.writeKey(key)
        if !encoder.body.writeLeaf(value) {
            try encoder.encodeChild(value, component: .key(key))
        }
        encoder.count += 1
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type,
        forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        encoder.writeKey(key)
        let child = encoder.deferredChild(component: .key(key))
        return child.container(keyedBy: NestedKey.self)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        encoder.writeKey(key)
        let child = encoder.deferredChild(component: .key(key))
        return child.unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        encoder.writeKey(WireKey.super)
        return encoder.deferredChild(component: .key(WireKey.super))
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        encoder.writeKey(key)
        return encoder.deferredChild(component: .key(key))
    }
}

// MARK: - Unkeyed container

struct WireUnkeyedEncodingContainer: UnkeyedEncodingContainer {
    let encoder: WireEncoder

    var codingPath: [any CodingKey] { encoder.codingPath }

    var count: Int { encoder.count }

    @inline(__always)
    private func leaf(_ write: (inout ByteWriter) -> Void) {
        write(&encoder.body)
        encoder.count += 1
    }

    mutating func encodeNil() throws { leaf { $0.writeUInt8(WireTag.null) } }
    mutating func encode(_ value: Bool) throws { leaf { $0.writeBoolValue(value) } }
    mutating func encode(_ value: String) throws { leaf { $0.writeStringValue(value) } }
    mutating func encode(_ value: Double) throws { leaf { $0.writeDoubleValue(value) } }
    mutating func encode(_ value: Float) throws { leaf { $0.writeFloatValue(value) } }
    mutating func encode(_ value: Int) throws { leaf { $0.writeIntValue(Int64(value)) } }
    mutating func encode(_ value: Int8) throws { leaf { $0.writeIntValue(Int64(value)) } }
    mutating func encode(_ value: Int16) throws { leaf { $0.writeIntValue(Int64(value)) } }
    mutating func encode(_ value: Int32) throws { leaf { $0.writeIntValue(Int64(value)) } }
    mutating func encode(_ value: Int64) throws { leaf { $0.writeIntValue(value) } }
    mutating func encode(_ value: UInt) throws { leaf { $0.writeUIntValue(UInt64(value)) } }
    mutating func encode(_ value: UInt8) throws { leaf { $0.writeUIntValue(UInt64(value)) } }
    mutating func encode(_ value: UInt16) throws { leaf { $0.writeUIntValue(UInt64(value)) } }
    mutating func encode(_ value: UInt32) throws { leaf { $0.writeUIntValue(UInt64(value)) } }
    mutating func encode(_ value: UInt64) throws { leaf { $0.writeUIntValue(value) } }

    mutating func encode<T: Encodable>(_ value: T) throws {
        if !encoder.body.writeLeaf(value) {
            try encoder.encodeChild(value, component: .index(encoder.count))
        }
        encoder.count += 1
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type
    ) -> KeyedEncodingContainer<NestedKey> {
        let child = encoder.deferredChild(component: .index(encoder.count))
        return child.container(keyedBy: NestedKey.self)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let child = encoder.deferredChild(component: .index(encoder.count))
        return child.unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        encoder.deferredChild(component: .index(encoder.count))
    }
}
