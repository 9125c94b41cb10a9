// The sink of `apply` and `applyAsync`: one call, one value. Unlike ListSink it is not generic:
// the value is decoded by a closure made where its type is known, and kept as the result's
// outcome. An unspecialized generic sink (the library cannot know the caller's types) looked up
// the metadata of its own state, its arrays and their optionals at run time on every call:
// about 8,000 of the parent's 53,000 instructions per `apply` round trip (callgrind).

import Synchronization

@usableFromInline
final class ApplySink: JobSink, NamedSink {
    /// Turns the one item of a delivered chunk into the call's outcome.
    @usableFromInline
    typealias Decode =
        @Sendable (_ items: ByteReader, _ header: ResultHeader, _ workerPID: Int32, _ functionName: String) ->
        Completion.Outcome

    let functionName: String
    let completion = Completion()
    private let decode: Decode
    private let callback: (@Sendable (any Sendable) -> Void)?
    private let errorCallback: (@Sendable (any Error) -> Void)?
    private let callbacks: CallbackExecutor
    private var hasCallbacks: Bool { callback != nil || errorCallback != nil }
    /// Set when the outcome is known (before its callback runs and the result completes).
    private let settled = Atomic<Bool>(false)

    private struct State {
        var outcome: Completion.Outcome?
        var done = false
        /// Whether the call's one item came back (its progress: 1 of 1).
        var delivered = false
        /// Made when somebody first asks for the progress: most calls are never watched, and a
        /// counter of their own cost an allocation and two locked updates a call.
        var progress: ProgressCounter?
    }
    private let state = Mutex(State())

    /// - Parameters:
    ///   - decode: Decodes the chunk's one item (its value, or the error the worker sent).
    ///   - callback: Runs with the value (as the caller's type) on the callback executor.
    init(
        functionName: String, decode: @escaping Decode, callback: (@Sendable (any Sendable) -> Void)?,
        errorCallback: (@Sendable (any Error) -> Void)?, callbacks: CallbackExecutor
    ) {
        self.functionName = functionName
        self.decode = decode
        self.callback = callback
        self.errorCallback = errorCallback
        self.callbacks = callbacks
        if hasCallbacks { callbacks.resultPending() }
    }

    /// The call's progress (0 or 1 of 1), made on first use from what has happened so far and
    /// kept up to date after (a step that ends the call under the lock before it is made has
    /// counted it already; one after finds it there).
    var progress: ProgressCounter {
        state.withLock { state in
            if let progress = state.progress { return progress }
            let progress = ProgressCounter(
                total: 1, completed: state.delivered ? 1 : 0, finished: state.done)
            state.progress = progress
            return progress
        }
    }

    /// Whether the outcome is known (see ``ListSink/isSettled``).
    var isSettled: Bool { settled.load(ordering: .acquiring) }

    /// The call was never submitted (the pool refused it): nothing will come.
    func abandon() {
        let first = state.withLock { state -> Bool in
            guard !state.done else { return false }
            state.done = true
            return true
        }
        if first && hasCallbacks { callbacks.resultSettled() }
    }

    func deliver(index: Int, header: ResultHeader, items: ByteReader, workerPID: Int32) {
        guard index == 0 else { return }
        let outcome = decode(items, header, workerPID, functionName)
        let progress = state.withLock { state -> ProgressCounter? in
            if state.outcome == nil { state.outcome = outcome }
            state.delivered = true
            return state.progress
        }
        progress?.add(completed: 1)
    }

    /// The call's one result, and the end of the job: decoded, then settled under one lock.
    /// The decoded outcome goes straight on to the completion: an `Outcome` kept in the state
    /// and copied out again cost its existential's witness calls twice (~500 instructions).
    func deliverLast(index: Int, header: ResultHeader, items: ByteReader, workerPID: Int32) {
        guard index == 0 else { return finish() }
        let decoded = decode(items, header, workerPID, functionName)
        enum Step {
            case settled
            case decoded(ProgressCounter?)
            /// A failure came first (not for a job of one chunk; kept for the rule "first wins").
            case earlier(Completion.Outcome, ProgressCounter?)
        }
        let step = state.withLock { state -> Step in
            guard !state.done else { return .settled }
            state.done = true
            state.delivered = true
            if let earlier = state.outcome { return .earlier(earlier, state.progress) }
            return .decoded(state.progress)
        }
        switch step {
        case .settled: return
        case .decoded(let progress): settle(decoded, progress: progress, delivered: true)
        case .earlier(let outcome, let progress): settle(outcome, progress: progress, delivered: true)
        }
    }

    func fail(index: Int, with error: PoolError) {
        state.withLock { state in
            if state.outcome == nil { state.outcome = .failure(error) }
        }
    }

    func failJob(with error: PoolError) {
        fail(index: 0, with: error)
        finish()
    }

    func finish() {
        let settling = state.withLock { finishLocked(&$0) }
        if let (outcome, progress) = settling { settle(outcome, progress: progress, delivered: false) }
    }

    private func finishLocked(_ state: inout State) -> (Completion.Outcome, ProgressCounter?)? {
        guard !state.done else { return nil }
        state.done = true
        let outcome =
            state.outcome ?? .failure(PoolError(.workerLost, "the call of '\(functionName)' never came back"))
        return (outcome, state.progress)
    }

    /// - Parameter delivered: The item came back in the same step (its progress not counted yet).
    private func settle(_ outcome: Completion.Outcome, progress: ProgressCounter?, delivered: Bool) {
        settled.store(true, ordering: .releasing)
        if let progress {
            if delivered { progress.add(completed: 1) }
            progress.finish()
        }
        callbacks.settle(
            completion, with: outcome, onSuccess: callback, onFailure: errorCallback, counted: hasCallbacks)
    }

    /// Completes the result as cancelled (by the caller); the pool stops the work separately.
    func cancel(with error: any Error) {
        let settling = state.withLock { state -> ProgressCounter?? in
            guard !state.done else { return nil }
            state.done = true
            return .some(state.progress)
        }
        if let progress = settling { settle(.failure(error), progress: progress, delivered: false) }
    }
}

extension ApplySink {
    /// Decodes a call's one result item as `R`: its value, or the error the worker sent.
    ///
    /// Inlinable, so that the caller's module (which knows `R`) compiles the closure for `R`:
    /// made in the library, where `R` is known only at run time, loading a packed number cost
    /// ~850 instructions of metadata and witness calls a call, now a copy and a load. The closure
    /// captures nothing (the function's name comes as an argument): a context for it was one more
    /// object made and freed for every call.
    @inlinable
    static func decoder<R: Decodable & Sendable>(for _: R.Type) -> Decode {
        guard PackedLayout.isPlain(R.self) else {
            return { items, header, workerPID, functionName in
                decodeItem(items, header: header, as: R.self, functionName: functionName, workerPID: workerPID)
            }
        }
        return { items, header, workerPID, functionName in
            // A plain number comes back packed (its stride, then its bytes): copied out of the
            // frame (every plain number fits 16 bytes) and loaded as R.
            if header.packed, header.itemCount == 1 {
                var storage: (UInt64, UInt64) = (0, 0)
                let copied = withUnsafeMutableBytes(of: &storage) {
                    items.copyLonePacked(stride: MemoryLayout<R>.stride, into: $0)
                }
                if copied { return .success(withUnsafeBytes(of: &storage) { $0.loadUnaligned(as: R.self) }) }
            }
            // Not what a packed result looks like: decoded the general way, which says why.
            return decodeItem(items, header: header, as: R.self, functionName: functionName, workerPID: workerPID)
        }
    }

    /// The general way: the item's value (decoded), or the error it carries.
    @usableFromInline
    static func decodeItem<R: Decodable & Sendable>(
        _ items: ByteReader, header: ResultHeader, as _: R.Type, functionName: String, workerPID: Int32
    ) -> Completion.Outcome {
        var outcome: Completion.Outcome = .failure(
            PoolError(.encodingFailed, "the call of '\(functionName)' came back without a result"))
        ResultItems.decodeEach(
            items, header: header, expected: 1, as: R.self, functionName: functionName, workerPID: workerPID
        ) { result in
            switch result {
            case .success(let value): outcome = .success(value)
            case .failure(let error): outcome = .failure(error)
            }
            return false
        }
        return outcome
    }
}
