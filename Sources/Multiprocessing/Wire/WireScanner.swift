// WireScanner.swift
//
// Varint scanning, skipping and map-key matching directly on the buffer's memory: how the
// decoder finds the end of a value in O(1) without recursing, and the value of a key in a map.
// Safe on arbitrary input: every read is bounds-checked and throws `WireFormatError`.

/// Bounds-checked parsing directly on the buffer's memory (no array retains), for skipping
/// values and scanning map entries. Every read checks `end` and throws ``WireFormatError``.
struct WireScanner {
    let raw: UnsafeRawBufferPointer
    /// The exclusive end of the readable range; `end <= raw.count`.
    let end: Int

    @inline(never)
    func truncated(_ at: Int, _ needed: Int) -> WireFormatError {
        WireFormatError(.truncated, at: at, "needed \(needed) byte(s), \(Swift.max(0, end - at)) remain")
    }

    @inline(__always)
    func byte(at pos: Int) throws -> UInt8 {
        guard pos < end else { throw truncated(pos, 1) }
        return raw[pos]
    }

    /// Reads a varint length at `pos` (advancing it) and checks that `length * unit` bytes
    /// remain.
    @inline(__always)
    func length(_ pos: inout Int, unit: Int = 1) throws -> Int {
        let at = pos
        let first = try byte(at: pos)
        let value: UInt64
        if first < 0x80 {
            value = UInt64(first)
            pos += 1
        } else {
            value = try varintSlow(&pos)
        }
        guard value <= UInt64((end - pos) / unit) else {
            throw WireFormatError(
                .invalidLength, at: at, "length \(value) × \(unit) exceeds the \(end - pos) remaining byte(s)")
        }
        return Int(value)
    }

    private func varintSlow(_ pos: inout Int) throws -> UInt64 {
        var p = pos
        defer { pos = p }
        return try Varint.decode(at: pos) {
            defer { p += 1 }
            return try byte(at: p)
        }
    }

    /// The end of the value whose tag is at `pos` (O(1), never recursive).
    @inline(__always)
    func skip(at pos: Int) throws -> Int {
        let tag = try byte(at: pos)
        var p = pos + 1
        if tag >= WireTag.smallIntBase { return p }
        switch tag {
        case WireTag.null, WireTag.false, WireTag.true:
            return p
        case WireTag.int, WireTag.uint, WireTag.double:
            guard end - p >= 8 else { throw truncated(p, 8) }
            return p + 8
        case WireTag.float:
            guard end - p >= 4 else { throw truncated(p, 4) }
            return p + 4
        case WireTag.string, WireTag.bytes:
            let count = try length(&p)
            return p + count
        case WireTag.array, WireTag.map:
            guard end - p >= 4 else { throw truncated(p, 4) }
            let length = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: p, as: UInt32.self))
            p += 4
            guard UInt64(length) <= UInt64(end - p) else {
                throw WireFormatError(.invalidLength, at: pos, "container of \(length) byte(s) but \(end - p) remain")
            }
            return p + Int(length)
        case WireTag.typedArray:
            let kindByte = try byte(at: p)
            guard let kind = WireElementKind(rawValue: kindByte) else {
                throw WireFormatError(.unknownTag, at: p, "unknown typed-array element kind \(kindByte)")
            }
            p += 1
            let count = try length(&p, unit: kind.width)
            return p + count * kind.width
        default:
            throw WireFormatError(.unknownTag, at: pos, "unknown tag 0x\(String(tag, radix: 16))")
        }
    }

    /// If the map entry at `entry` has the key `key`, the byte range of its value.
    @inline(__always)
    func entry(at entry: Int, matching key: UnsafeRawBufferPointer) throws -> Range<Int>? {
        var pos = entry
        let length = try self.length(&pos)
        guard length == key.count, keyEquals(at: pos, key) else { return nil }
        pos += length
        return pos..<(try skip(at: pos))
    }

    /// Whether the `key.count` bytes at `pos` (known to be in range) equal `key`.
    @inline(__always)
    func keyEquals(at pos: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        guard let a = raw.baseAddress, let b = key.baseAddress else { return key.isEmpty }
        return bytesEqual(a + pos, b, key.count)
    }
}
