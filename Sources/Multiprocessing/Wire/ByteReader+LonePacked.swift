// The one packed value of a lone call's result, copied out without generics: the typed side
// (`ApplySink.decoder`, inlined into the caller's module and so specialized for its type)
// loads it from the copy.

extension ByteReader {
    /// Copies a lone packed value (`u32 stride | stride bytes`, the reader at the stride) into
    /// `buffer`, when its stride is `stride` and it fits both the frame and `buffer`.
    /// - Returns: false, copying nothing, when the bytes are not such a value.
    @usableFromInline
    func copyLonePacked(stride: Int, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        var reader = self
        guard let found = try? reader.readUInt32(), Int(found) == stride, stride > 0, stride <= buffer.count,
            reader.remaining >= stride
        else { return false }
        let start = reader.offset
        bytes.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + start, byteCount: stride)
        }
        return true
    }
}
