// WireUnkeyedEncodingContainer.swift
//
// The unkeyed container of `WireEncoder`: writes elements in place into the node's buffer;
// leaf values directly, others through a child node that borrows the buffer.

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
