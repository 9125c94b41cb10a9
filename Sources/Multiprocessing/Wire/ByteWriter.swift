// ByteWriter.swift
//
// The append-only little-endian byte buffer that wire-format values (see WireFormat.swift) and
// message frames are written into.
//
// Hand-written because no package in reach provides a fast binary Codable coder (or its
// buffers) without Foundation.

/// An append-only byte buffer with little-endian and LEB128 writers.
@usableFromInline
struct ByteWriter {
    /// The bytes written so far.
    var bytes: [UInt8]
    /// Large byte arrays written by reference, to travel after the frame (see Attachments.swift).
    var attachments: [[UInt8]] = []
    /// Whether a large top-level `[UInt8]` value is attached instead of copied into ``bytes``.
    var attachesLargeBytes = false

    /// Creates an empty writer with room for `reservingCapacity` bytes.
    init(reservingCapacity: Int = 64) {
        bytes = []
        if reservingCapacity > 0 { bytes.reserveCapacity(reservingCapacity) }
    }

    /// The number of bytes written so far.
    var count: Int { bytes.count }

    /// Appends one byte.
    @inline(__always)
    mutating func writeUInt8(_ v: UInt8) {
        bytes.append(v)
    }

    /// Appends `v` as 4 little-endian bytes.
    @inline(__always)
    mutating func writeUInt32(_ v: UInt32) {
        bytes.append(contentsOf: ScalarBytes(value: v))
    }

    /// Appends `v` as 8 little-endian bytes.
    @inline(__always)
    mutating func writeUInt64(_ v: UInt64) {
        bytes.append(contentsOf: ScalarBytes(value: v))
    }

    /// Appends the byte `tag` followed by `v` in little-endian order, in one append.
    @inline(__always)
    mutating func writeTagged<T: FixedWidthInteger>(_ tag: UInt8, _ v: T) {
        bytes.append(contentsOf: ScalarBytes(tag: tag, value: v))
    }

    /// Appends `v` as 8 little-endian bytes (two's complement).
    @inline(__always)
    mutating func writeInt64(_ v: Int64) {
        writeUInt64(UInt64(bitPattern: v))
    }

    /// Appends `v` as an unsigned LEB128 varint (1...10 bytes).
    @inline(__always)
    mutating func writeVarint(_ v: UInt64) {
        if v < 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v))
        } else {
            writeVarintSlow(v)
        }
    }

    private mutating func writeVarintSlow(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    /// Appends the UTF-8 byte count of `s` as a varint, then its UTF-8 bytes.
    mutating func writeString(_ s: String) {
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { utf8 in
            writeVarint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
        if done == nil {
            var copy = s
            copy.withUTF8 { utf8 in
                writeVarint(UInt64(utf8.count))
                bytes.append(contentsOf: utf8)
            }
        }
    }

    /// Appends the bytes of `b` as they are, without a length. Contiguous collections
    /// (`[UInt8]`, `ArraySlice<UInt8>`, `UnsafeRawBufferPointer`, ...) are copied with `memcpy`.
    @inline(__always)
    mutating func writeBytes(_ b: some Collection<UInt8>) {
        bytes.append(contentsOf: b)
    }

    /// Appends the bytes of `p` as they are, without a length.
    @inline(__always)
    mutating func writeRaw(_ p: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: p)
    }

    /// Appends 4 placeholder bytes and returns their offset, to be filled in later with
    /// ``patchUInt32(_:at:)`` (e.g. a length that is known only after the body is written).
    mutating func reserveUInt32() -> Int {
        let offset = bytes.count
        writeUInt32(0)
        return offset
    }

    /// Overwrites the 4 bytes at `offset` with `v`, little endian.
    ///
    /// - Precondition: `offset...offset+3` were written before (e.g. by ``reserveUInt32()``).
    mutating func patchUInt32(_ v: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset <= bytes.count - 4, "patchUInt32 outside the written bytes")
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt32.self)
        }
    }
}
