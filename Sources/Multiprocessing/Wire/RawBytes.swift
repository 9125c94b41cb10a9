// RawBytes.swift
//
// Comparisons over raw memory, 8 bytes at a time: key matching in the decoder and the UTF-8
// check of strings read from the wire.

/// Whether `count` bytes at `a` and `b` are equal (8 at a time).
@inline(__always)
func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    var i = 0
    while i + 8 <= count {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
            return false
        }
        i += 8
    }
    while i < count {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}

/// Whether the `count` bytes at `p` are all ASCII (8 at a time).
@inline(__always)
func isAllASCII(_ p: UnsafeRawPointer, _ count: Int) -> Bool {
    var i = 0
    var high: UInt64 = 0
    while i + 8 <= count {
        high |= p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        i += 8
    }
    while i < count {
        high |= UInt64(p.load(fromByteOffset: i, as: UInt8.self))
        i += 1
    }
    return high & 0x8080_8080_8080_8080 == 0
}
