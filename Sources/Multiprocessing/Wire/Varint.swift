// The multi-byte form of the wire's varints (LEB128, at most 10 bytes, 64 bits), decoded in one
// place for every reader of them: `ByteReader` and `WireScanner` take the one-byte form inline and
// hand the rest here.

enum Varint {
    /// Decodes a varint from the bytes `next` hands out, one per call; `start` is where its first
    /// byte is, for errors.
    /// - Throws: `WireFormatError` `.malformedVarint` past 64 bits or 10 bytes; what `next` throws
    ///   (the end of the input).
    static func decode(at start: Int, _ next: () throws -> UInt8) throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        for index in 0..<10 {
            let b = try next()
            if index == 9 && b > 1 {
                throw WireFormatError(.malformedVarint, at: start, "varint overflows 64 bits")
            }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
        throw WireFormatError(.malformedVarint, at: start, "varint longer than 10 bytes")
    }
}
