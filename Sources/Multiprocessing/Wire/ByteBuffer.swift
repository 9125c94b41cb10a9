// ByteBuffer.swift
//
// `ByteWriter` and `ByteReader`: the little-endian byte buffers under the wire format
// (see WireFormat.swift) and the message framing.
//
// Hand-written because no package in reach provides a fast binary Codable coder (or its
// buffers) without Foundation. Every read is bounds-checked and throws `WireFormatError`,
// so arbitrary bytes can never crash the reader.

/// An append-only byte buffer with little-endian and LEB128 writers.
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
        bytes.append(contentsOf: _ScalarBytes(value: v))
    }

    /// Appends `v` as 8 little-endian bytes.
    @inline(__always)
    mutating func writeUInt64(_ v: UInt64) {
        bytes.append(contentsOf: _ScalarBytes(value: v))
    }

    /// Appends the byte `tag` followed by `v` in little-endian order, in one append.
    @inline(__always)
    mutating func writeTagged<T: FixedWidthInteger>(_ tag: UInt8, _ v: T) {
        bytes.append(contentsOf: _ScalarBytes(tag: tag, value: v))
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

/// A bounds-checked cursor over `bytes[offset..<end]`.
///
/// Every read checks the remaining length first and throws ``WireFormatError`` instead of
/// trapping; lengths read from the input are validated against the remaining bytes before
/// anything is allocated.
struct ByteReader {
    /// The whole underlying buffer (shared, never copied).
    let bytes: [UInt8]
    /// The current absolute position in ``bytes``.
    private(set) var offset: Int
    /// The absolute end (exclusive) of the readable range.
    let end: Int
    /// The attachments of the frame the bytes belong to (see Attachments.swift).
    var attachments: [[UInt8]] = []

    /// Creates a reader of `bytes[offset..<end]` (`end` defaults to `bytes.count`).
    ///
    /// Out-of-range arguments are clamped to the buffer rather than trapping: `end` to
    /// `0...bytes.count`, then `offset` to `0...end`.
    init(_ bytes: [UInt8], offset: Int = 0, end: Int? = nil, attachments: [[UInt8]] = []) {
        self.bytes = bytes
        self.attachments = attachments
        let e = Swift.min(Swift.max(end ?? bytes.count, 0), bytes.count)
        self.end = e
        self.offset = Swift.min(Swift.max(offset, 0), e)
    }

    /// Creates a reader without clamping; the caller guarantees
    /// `0 <= offset <= end <= bytes.count`.
    @inline(__always)
    init(unchecked bytes: [UInt8], offset: Int, end: Int) {
        self.bytes = bytes
        self.offset = offset
        self.end = end
    }

    /// The number of bytes left to read.
    @inline(__always)
    var remaining: Int { end - offset }

    /// Whether every byte has been read.
    @inline(__always)
    var isAtEnd: Bool { offset >= end }

    @inline(never)
    func truncated(_ needed: Int) -> WireFormatError {
        WireFormatError(.truncated, at: offset, "needed \(needed) byte(s), \(remaining) remain")
    }

    /// Reads one byte.
    @inline(__always)
    mutating func readUInt8() throws -> UInt8 {
        guard offset < end else { throw truncated(1) }
        let v = bytes.withUnsafeBufferPointer { $0[offset] }
        offset += 1
        return v
    }

    /// Returns the next byte without consuming it.
    @inline(__always)
    func peekUInt8() throws -> UInt8 {
        guard offset < end else { throw truncated(1) }
        return bytes.withUnsafeBufferPointer { $0[offset] }
    }

    /// Reads a little-endian fixed-width integer.
    @inline(__always)
    mutating func readLittleEndian<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard end - offset >= size else { throw truncated(size) }
        let v = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        offset += size
        return T(littleEndian: v)
    }

    /// Reads a 4-byte little-endian integer.
    @inline(__always)
    mutating func readUInt32() throws -> UInt32 {
        try readLittleEndian(UInt32.self)
    }

    /// Reads an 8-byte little-endian integer.
    @inline(__always)
    mutating func readUInt64() throws -> UInt64 {
        try readLittleEndian(UInt64.self)
    }

    /// Reads an 8-byte little-endian two's complement integer.
    @inline(__always)
    mutating func readInt64() throws -> Int64 {
        Int64(bitPattern: try readUInt64())
    }

    /// Reads an unsigned LEB128 varint; throws if it is longer than 10 bytes or overflows
    /// 64 bits.
    @inline(__always)
    mutating func readVarint() throws -> UInt64 {
        let first = try readUInt8()
        if first < 0x80 { return UInt64(first) }
        return try readVarintSlow(first)
    }

    private mutating func readVarintSlow(_ first: UInt8) throws -> UInt64 {
        let start = offset - 1
        var result = UInt64(first & 0x7F)
        var shift: UInt64 = 7
        for index in 1..<10 {
            let b = try readUInt8()
            if index == 9 && b > 1 {
                throw WireFormatError(.malformedVarint, at: start, "varint overflows 64 bits")
            }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
        throw WireFormatError(.malformedVarint, at: start, "varint longer than 10 bytes")
    }

    /// Reads a varint length and checks that at least `length * unit` bytes remain.
    @inline(__always)
    mutating func readLength(unit: Int = 1) throws -> Int {
        let at = offset
        let n = try readVarint()
        guard n <= UInt64(remaining / unit) else {
            throw WireFormatError(
                .invalidLength, at: at, "length \(n) × \(unit) exceeds the \(remaining) remaining byte(s)")
        }
        return Int(n)
    }

    /// Reads a varint byte count followed by that many bytes of UTF-8.
    ///
    /// Throws ``WireFormatError`` (`.invalidUTF8`) if the bytes are not valid UTF-8; nothing
    /// is repaired. ASCII (checked 8 bytes at a time) is always valid; other text is decoded
    /// with `String(decoding:as:)` and compared with the input, which differs exactly when
    /// decoding had to repair invalid UTF-8. (Both are much faster than
    /// `String(validating:as:)`, which instantiates generic metadata on every call.)
    mutating func readString() throws -> String {
        let n = try readLength()
        let start = offset
        let s: String? = bytes.withUnsafeBufferPointer { buf in
            let utf8 = UnsafeBufferPointer(rebasing: buf[start..<start + n])
            guard n > 0, let base = utf8.baseAddress else { return "" }
            let string = String(decoding: utf8, as: UTF8.self)
            if _isASCII(UnsafeRawPointer(base), n) { return string }
            var copy = string
            let valid = copy.withUTF8 { decoded in
                decoded.count == n && _bytesEqual(UnsafeRawPointer(decoded.baseAddress!), UnsafeRawPointer(base), n)
            }
            return valid ? string : nil
        }
        guard let s else {
            throw WireFormatError(.invalidUTF8, at: start, "string of \(n) byte(s) is not valid UTF-8")
        }
        offset += n
        return s
    }

    /// Reads `count` raw bytes and returns them as a slice of ``bytes`` (no copy; `Array(_:)`
    /// of the result copies with `memcpy`).
    mutating func readBytes(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw truncated(count) }
        let slice = bytes[offset..<offset + count]
        offset += count
        return slice
    }

    /// Advances past `count` bytes.
    @inline(__always)
    mutating func skip(_ count: Int) throws {
        guard count >= 0, count <= remaining else { throw truncated(count) }
        offset += count
    }
}

/// Whether `count` bytes at `a` and `b` are equal (8 at a time).
@inline(__always)
func _bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
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
func _isASCII(_ p: UnsafeRawPointer, _ count: Int) -> Bool {
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

/// An optional tag byte plus a little-endian scalar, as a `Sequence` that `Array.append(contentsOf:)`
/// copies with one unaligned store.
///
/// `append(contentsOf:)` reserves `underestimatedCount` elements (growing geometrically) and then
/// calls `_copyContents(initializing:)` on the spare capacity; implementing that (public,
/// ABI-stable) requirement avoids the `memmove` call and generic copying the stdlib does for a
/// raw buffer, which makes `writeUInt64` about 3× faster. Iteration yields the same bytes.
struct _ScalarBytes<T: FixedWidthInteger>: Sequence {
    let tag: UInt8
    let hasTag: Bool
    let value: T

    @inline(__always)
    init(value: T) {
        self.tag = 0
        self.hasTag = false
        self.value = value
    }

    @inline(__always)
    init(tag: UInt8, value: T) {
        self.tag = tag
        self.hasTag = true
        self.value = value
    }

    @inline(__always)
    var underestimatedCount: Int { (hasTag ? 1 : 0) + MemoryLayout<T>.size }

    struct Iterator: IteratorProtocol {
        let bytes: _ScalarBytes
        var index: Int

        mutating func next() -> UInt8? {
            guard index < bytes.underestimatedCount else { return nil }
            defer { index += 1 }
            if bytes.hasTag {
                if index == 0 { return bytes.tag }
                return UInt8(truncatingIfNeeded: bytes.value >> (8 * (index - 1)))
            }
            return UInt8(truncatingIfNeeded: bytes.value >> (8 * index))
        }
    }

    func makeIterator() -> Iterator { Iterator(bytes: self, index: 0) }

    @inline(__always)
    func _copyContents(initializing buffer: UnsafeMutableBufferPointer<UInt8>) -> (Iterator, Int) {
        let count = underestimatedCount
        guard buffer.count >= count, let base = buffer.baseAddress else {
            // Too small a buffer (never the case from Array.append): copy what fits.
            var iterator = makeIterator()
            var written = 0
            while written < buffer.count, let byte = iterator.next() {
                buffer[written] = byte
                written += 1
            }
            return (iterator, written)
        }
        let raw = UnsafeMutableRawPointer(base)
        if hasTag {
            raw.storeBytes(of: tag, as: UInt8.self)
            raw.storeBytes(of: value.littleEndian, toByteOffset: 1, as: T.self)
        } else {
            raw.storeBytes(of: value.littleEndian, as: T.self)
        }
        return (Iterator(bytes: self, index: count), count)
    }
}
