// One owner for a descriptor that several holders use: a reference-counted box around an
// `OwnedDescriptor` that closes it in one place.

import Synchronization

/// A descriptor shared by several holders (a worker's result pipe: the I/O thread's reader and a
/// thread waiting for its own result; its pidfd: the reader, the task channel and that thread).
///
/// It is closed exactly once: when the last holder lets go of it (the object is released), or
/// earlier by ``close()``, after which releasing it closes nothing. No holder decides who closes:
/// each keeps its reference while it may still use ``rawValue``, so the number cannot be closed
/// and reused under a thread that polls it. ``close()`` is for a holder that knows no other uses
/// the number (the task pipe, closed under the transport's channel lock and rung through ``ifOpen(_:)``).
final class SharedDescriptor: Sendable {
    /// The descriptor's number, for system calls made while holding this object (and before an
    /// explicit ``close()``).
    let rawValue: Int32
    private let owner: Mutex<OwnedDescriptor?>

    /// Takes ownership of `descriptor`.
    init(_ descriptor: consuming OwnedDescriptor) {
        rawValue = descriptor.rawValue
        owner = Mutex(Optional(descriptor))
    }

    /// Takes ownership of `descriptor`, if there is one.
    static func sharing(_ descriptor: consuming OwnedDescriptor?) -> SharedDescriptor? {
        switch consume descriptor {
        case .some(let owned): return SharedDescriptor(owned)
        case .none: return nil
        }
    }

    /// Closes the descriptor now, if it is still open; later calls, and the release of the last
    /// reference, close nothing.
    func close() {
        let taken = owner.withLock { owner -> OwnedDescriptor? in owner.take() }
        switch consume taken {
        case .some(let descriptor): descriptor.close()
        case .none: break
        }
    }

    /// Runs `body` with the descriptor's number if it is still open; a ``close()`` meanwhile
    /// waits until `body` returns, so the number cannot be closed and reused under it.
    /// - Returns: what `body` returned, or nil when the descriptor was closed.
    func ifOpen<R>(_ body: (Int32) -> R) -> R? {
        owner.withLock { owner in owner == nil ? nil : body(rawValue) }
    }

    /// Whether ``close()`` was called.
    var isClosed: Bool {
        owner.withLock { $0 == nil }
    }
}
