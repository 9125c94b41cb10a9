// ByteReader.swift
//
// The bounds-checked little-endian cursor that wire-format values (see WireFormat.swift) and
// message frames are read from. Every read is bounds-checked and throws `WireFormatError`, so
// arbitrary bytes can never crash the reader.

/// A bounds-checked cursor over `bytes[offset..<end]`.
///
/// Every read checks the remaining length first and throws ``WireFormatError`` instead of
/// trapping; lengths read from the input are validated against the remaining bytes before
/// anything is allocated.
@usableFromInline
struct ByteReader: Sendable {
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
        var pending: UInt8? = first
        return try Varint.decode(at: offset - 1) {
            if let byte = pending {
                pending = nil
                return byte
            }
            return try readUInt8()
        }
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
            if isAllASCII(UnsafeRawPointer(base), n) { return string }
            var copy = string
            let valid = copy.withUTF8 { decoded in
                decoded.count == n && bytesEqual(UnsafeRawPointer(decoded.baseAddress!), UnsafeRawPointer(base), n)
            }
            return valid ? string : nil
        }
        guard let s else {
            throw WireFormatError(.invalidUTF8, at: start, "string of \(n) byte(s) is not valid UTF-8")
        }
        offset += n
        return s
    }

    /// Reads a string as ``readString()`` does, but returns `known` itself, without making or
    /// checking a new one, when the bytes are exactly its UTF-8 (the worker's function name,
    /// the same task after task: making it cost ~300 instructions a task).
    mutating func readString(reusing known: String?) throws -> String {
        guard let known else { return try readString() }
        let at = offset
        let n = try readLength()
        let same: Bool? = known.utf8.withContiguousStorageIfAvailable { utf8 in
            guard utf8.count == n else { return false }
            guard n > 0 else { return true }
            return bytes.withUnsafeBufferPointer { buffer in
                bytesEqual(UnsafeRawPointer(buffer.baseAddress! + offset), UnsafeRawPointer(utf8.baseAddress!), n)
            }
        }
        if same == true {
            offset += n
            return known
        }
        offset = at
        return try readString()
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
