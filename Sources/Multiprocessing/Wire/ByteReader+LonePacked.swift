// Packed values of a result copied out without generics: the typed side (`ApplySink.decoder`,
// `Pool.packedChunkReader(for:)`, inlined into the caller's module and so specialized for its
// type) loads them from the copy.

extension ByteReader {
    /// Copies a lone packed value (`u32 stride | stride bytes`, the reader at the stride) into
    /// `buffer`, when its stride is `stride` and it fits both the frame and `buffer`.
    /// - Returns: false, copying nothing, when the bytes are not such a value.
    @usableFromInline
    func copyLonePacked(stride: Int, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        copyPacked(count: 1, stride: stride, into: buffer)
    }

    /// Copies `count` packed values (`u32 stride | count × stride bytes`, the reader at the
    /// stride) into `buffer`, when their stride is `stride` and they fit both the frame and
    /// `buffer`.
    /// - Returns: false, copying nothing, when the bytes are not such values.
    @usableFromInline
    func copyPacked(count: Int, stride: Int, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        var reader = self
        // The stride and bounds checked where every packed read checks them (PackedLayout.take).
        let (length, overflow) = count.multipliedReportingOverflow(by: stride)
        guard !overflow, length <= buffer.count, let found = try? reader.readUInt32(),
            let start = try? PackedLayout.take(count: count, stride: Int(found), expected: stride, from: &reader)
        else { return false }
        guard length > 0 else { return true }
        bytes.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + start, byteCount: length)
        }
        return true
    }
}
