// ScalarBytes.swift
//
// A tag byte and a little-endian number as a `Sequence` that `Array.append(contentsOf:)` copies
// with one store: how `ByteWriter` writes fixed-width values.

/// An optional tag byte plus a little-endian scalar, as a `Sequence` that `Array.append(contentsOf:)`
/// copies with one unaligned store.
///
/// `append(contentsOf:)` reserves `underestimatedCount` elements (growing geometrically) and then
/// calls `_copyContents(initializing:)` on the spare capacity; implementing that (public,
/// ABI-stable) requirement avoids the `memmove` call and generic copying the stdlib does for a
/// raw buffer (see the performance article). Iteration yields the same bytes.
struct ScalarBytes<T: FixedWidthInteger>: Sequence {
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
        let bytes: ScalarBytes
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
