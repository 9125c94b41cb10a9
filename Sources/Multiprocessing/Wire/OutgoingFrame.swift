// A finished frame on its way to the pipe, with the arrays that follow it (see Attachments.swift),
// each written from where it is, part by part.

/// A finished frame and the arrays that follow it on the pipe.
struct OutgoingFrame: Sendable {
    var bytes: [UInt8]
    var attachments: [OutgoingAttachment] = []
    /// A task frame whose packed items a worker may run where they lie in its ring
    /// (WorkerLoop.swift): a ring that cannot take it whole, in one piece, now gets none of it
    /// until it can (a frame begun behind the chunk the worker runs would wrap around the ring's
    /// end, and go the slow way).
    var keepsWhole = false

    /// Every byte that goes on the pipe.
    var count: Int { attachments.reduce(bytes.count) { $0 + $1.count } }

    /// Calls `body` with what is left of the part (the frame, or one attachment) in which the
    /// byte at `offset` lies; `offset` is below ``count``.
    func withUnwritten<R>(after offset: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        var start = offset
        if start < bytes.count {
            return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start...])) }
        }
        start -= bytes.count
        for attachment in attachments {
            if start < attachment.count {
                return try attachment.withBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start...])) }
            }
            start -= attachment.count
        }
        preconditionFailure("offset \(offset) is past the frame's \(count) bytes")
    }
}

/// An array that goes on the pipe after its frame, written from where it is: a `[UInt8]` value,
/// or the packed items of a chunk (a slice of the caller's array of plain numbers).
///
/// `@unchecked Sendable`: it holds an array of plain values (its own copy of the caller's, which
/// copy on write keeps from changing) and only reads it.
struct OutgoingAttachment: @unchecked Sendable {
    /// Its length in bytes.
    let count: Int
    private let access: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void

    init(_ bytes: [UInt8]) {
        count = bytes.count
        access = { body in try bytes.withUnsafeBytes(body) }
    }

    /// The raw bytes of `items` (plain values, see ``PackedLayout``), padding included.
    init<T>(packed items: ArraySlice<T>) {
        count = items.count * MemoryLayout<T>.stride
        access = { body in try items.withUnsafeBytes(body) }
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        var result: R?
        try access { result = try body($0) }
        return result!
    }
}
