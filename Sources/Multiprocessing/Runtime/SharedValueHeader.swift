// The header at the start of every shared value's range of the pool's memory file: what a
// worker checks before it maps a value a handle names, and how it learns that a value it keeps
// mapped was freed (the parent's free makes a hole of the range, whose header then reads zeros).
//
// Layout (64 bytes, native byte order: parent and workers run on one machine):
// u64 magic | u64 id | u64 count | u64 stride | u64 type fingerprint | 24 bytes zero; the
// elements follow at byte 64 (every element of an alignment up to 64 is aligned there, as the
// range starts on a page).

struct SharedValueHeader: Equatable {
    /// The header's size, where the elements start.
    static let size = 64
    /// "SWMPSHR1": a range that does not start with it holds no live value.
    static let magic: UInt64 = 0x5357_4d50_5348_5231
    /// The largest element alignment a shared value supports.
    static let maxAlignment = 64

    /// The value's process-wide number in the parent (never 0).
    var id: UInt64
    var count: UInt64
    var stride: UInt64
    var typeFingerprint: UInt64

    /// The bytes of a value's range: the header and `count` elements of `stride` bytes, rounded
    /// up to whole pages; nil when that does not fit in an `Int`.
    static func rangeLength(count: Int, stride: Int, pageSize: Int) -> Int? {
        let (data, overflow) = count.multipliedReportingOverflow(by: stride)
        guard !overflow, count >= 0 else { return nil }
        let (total, overflow2) = data.addingReportingOverflow(size + pageSize - 1)
        guard !overflow2 else { return nil }
        return total / pageSize * pageSize
    }

    /// The fingerprint of an element type: its name, stride and alignment (a handle decoded as
    /// another element type than it was made with fails instead of reading other bytes).
    static func typeFingerprint<Element>(of _: Element.Type) -> UInt64 {
        fingerprint(
            "\(String(reflecting: Element.self)) \(MemoryLayout<Element>.stride) \(MemoryLayout<Element>.alignment)")
    }

    /// Writes the header (the elements must be in place first: a worker that finds the magic
    /// finds them too).
    func write(to base: UnsafeMutableRawPointer) {
        let words = [id, count, stride, typeFingerprint]
        for (index, word) in words.enumerated() {
            base.storeBytes(of: word, toByteOffset: 8 * (index + 1), as: UInt64.self)
        }
        base.storeBytes(of: Self.magic, toByteOffset: 0, as: UInt64.self)
    }

    /// Reads a header from the first 40 bytes of `raw`; nil when they do not start with the
    /// magic (a freed range, or one that never held a value).
    init?(reading raw: UnsafeRawBufferPointer) {
        guard raw.count >= 40, raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self) == Self.magic else { return nil }
        id = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        count = raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        stride = raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
        typeFingerprint = raw.loadUnaligned(fromByteOffset: 32, as: UInt64.self)
    }

    init(id: UInt64, count: UInt64, stride: UInt64, typeFingerprint: UInt64) {
        self.id = id
        self.count = count
        self.stride = stride
        self.typeFingerprint = typeFingerprint
    }
}
