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
        // The stride and bounds checked where every packed read checks them (PackedLayout.take).
        guard stride <= buffer.count, let found = try? reader.readUInt32(),
            let start = try? PackedLayout.take(count: 1, stride: Int(found), expected: stride, from: &reader)
        else { return false }
        bytes.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + start, byteCount: stride)
        }
        return true
    }
}
