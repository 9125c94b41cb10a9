// The sink of `apply`, `map` and `starmap`: collects every chunk's results in order and
// completes an AsyncResult with the whole value, or with the first error. A callback for that
// outcome runs on the pool's callback executor, and the result completes after it; without one,
// the result completes here, on the thread that delivered the last event.

import Synchronization

final class ListSink<R: Decodable & Sendable, Value: Sendable>: JobSink, NamedSink {
    let functionName: String
    /// Items in each chunk, by chunk index.
    private let chunkSizes: [Int]
    private let makeValue: @Sendable ([R]) -> Value
    private let callback: (@Sendable (Value) -> Void)?
    private let errorCallback: (@Sendable (any Error) -> Void)?
    private let callbacks: CallbackExecutor
    private var hasCallbacks: Bool { callback != nil || errorCallback != nil }
    let completion = Completion()
    /// Set when the outcome is known (before its callback runs and the result completes).
    private let settled = Atomic<Bool>(false)
    let progress: ProgressCounter

    private struct State {
        var chunks: [[R]?]
        var error: (any Error)?
        var done = false
    }
    private let state: Mutex<State>

    init(
        functionName: String, chunkSizes: [Int], makeValue: @escaping @Sendable ([R]) -> Value,
        callback: (@Sendable (Value) -> Void)?, errorCallback: (@Sendable (any Error) -> Void)?,
        callbacks: CallbackExecutor
    ) {
        self.functionName = functionName
        self.callbacks = callbacks
        self.chunkSizes = chunkSizes
        self.makeValue = makeValue
        self.callback = callback
        self.errorCallback = errorCallback
        self.state = Mutex(State(chunks: Array(repeating: nil, count: chunkSizes.count)))
        self.progress = ProgressCounter(total: chunkSizes.reduce(0, +))
        if hasCallbacks { callbacks.resultPending() }
    }

    /// Whether the outcome is known: no more results will come for it (its callback may still
    /// have to run). What a thread reading its own result waits for.
    var isSettled: Bool { settled.load(ordering: .acquiring) }

    /// The job was never submitted (the pool refused it): nothing will come.
    func abandon() {
        let first = state.withLock { state -> Bool in
            guard !state.done else { return false }
            state.done = true
            return true
        }
        if first && hasCallbacks { callbacks.resultSettled() }
    }

    func deliver(index: Int, header: ResultHeader, items: ByteReader, workerPID: Int32) {
        guard chunkSizes.indices.contains(index) else { return }
        if let values = ResultItems.packedValues(items, header: header, expected: chunkSizes[index], as: R.self) {
            state.withLock { $0.chunks[index] = values }
            progress.add(completed: values.count)
            return
        }
        var values: [R] = []
        values.reserveCapacity(chunkSizes[index])
        var firstError: (any Error)?
        var count = 0
        ResultItems.decodeEach(
            items, header: header, expected: chunkSizes[index], as: R.self, functionName: functionName,
            workerPID: workerPID
        ) { outcome in
            count += 1
            switch outcome {
            case .success(let value):
                values.append(value)
                return true
            case .failure(let error):
                firstError = error
                return false
            }
        }
        state.withLock { state in
            if let firstError {
                if state.error == nil { state.error = firstError }
            } else {
                state.chunks[index] = values
            }
        }
        progress.add(completed: count)
    }

    func fail(index: Int, with error: PoolError) {
        state.withLock { state in
            if state.error == nil { state.error = error }
        }
    }

    func failJob(with error: PoolError) {
        state.withLock { state in
            if state.error == nil { state.error = error }
        }
        finish()
    }

    func finish() {
        let outcome: Completion.Outcome? = state.withLock { state in
            guard !state.done else { return nil }
            state.done = true
            if let error = state.error { return .failure(error) }
            var all: [R] = []
            all.reserveCapacity(chunkSizes.reduce(0, +))
            for chunk in state.chunks {
                guard let chunk else {
                    return .failure(PoolError(.workerLost, "a chunk of '\(functionName)' never came back"))
                }
                all.append(contentsOf: chunk)
            }
            state.chunks = []
            let value: Value = makeValue(all)
            return .success(value)
        }
        guard let outcome else { return }
        settle(outcome)
    }

    /// Progress shows the end, and the outcome's callback runs (once), before the result is ready.
    private func settle(_ outcome: Completion.Outcome) {
        settled.store(true, ordering: .releasing)
        progress.finish()
        switch outcome {
        case .success(let value):
            if let callback {
                let value = value as! Value
                callbacks.enqueue(.init(completion: completion, outcome: outcome) { callback(value) })
                return
            }
        case .failure(let error):
            if let errorCallback {
                callbacks.enqueue(.init(completion: completion, outcome: outcome) { errorCallback(error) })
                return
            }
        }
        completion.complete(outcome)
        if hasCallbacks { callbacks.resultSettled() }
    }

    /// Completes the result as cancelled (by the caller); the pool stops the work separately.
    func cancel(with error: any Error) {
        let first = state.withLock { state -> Bool in
            guard !state.done else { return false }
            state.done = true
            return true
        }
        guard first else { return }
        settle(.failure(error))
    }
}
