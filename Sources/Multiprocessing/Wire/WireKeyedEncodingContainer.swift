// WireKeyedEncodingContainer.swift
//
// The keyed container of `WireEncoder`: writes key and value in place into the node's buffer;
// leaf values directly, others through a child node that borrows the buffer.

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
