// The sink of `apply`, `map` and `starmap`: collects every chunk's results in order and
// completes an AsyncResult with the whole value, or with the first error.

import Synchronization

final class ListSink<R: Decodable & Sendable, Value: Sendable>: JobSink, NamedSink {
    let functionName: String
    /// Items in each chunk, by chunk index.
    private let chunkSizes: [Int]
    private let makeValue: @Sendable ([R]) -> Value
    private let callback: (@Sendable (Value) -> Void)?
    private let errorCallback: (@Sendable (any Error) -> Void)?
    let completion = Completion()
    let progress: ProgressCounter

    private struct State {
        var chunks: [[R]?]
        var error: (any Error)?
        var done = false
    }
    private let state: Mutex<State>

    init(
        functionName: String, chunkSizes: [Int], makeValue: @escaping @Sendable ([R]) -> Value,
        callback: (@Sendable (Value) -> Void)?, errorCallback: (@Sendable (any Error) -> Void)?
    ) {
        self.functionName = functionName
        self.chunkSizes = chunkSizes
        self.makeValue = makeValue
        self.callback = callback
        self.errorCallback = errorCallback
        self.state = Mutex(State(chunks: Array(repeating: nil, count: chunkSizes.count)))
        self.progress = ProgressCounter(total: chunkSizes.reduce(0, +))
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
        // Progress shows the end, and callbacks run (once), before the result is ready.
        progress.finish()
        switch outcome {
        case .success(let value): callback?(value as! Value)
        case .failure(let error): errorCallback?(error)
        }
        completion.complete(outcome)
    }

    /// Completes the result as cancelled (by the caller); the pool stops the work separately.
    func cancel(with error: any Error) {
        let first = state.withLock { state -> Bool in
            guard !state.done else { return false }
            state.done = true
            return true
        }
        guard first else { return }
        progress.finish()
        errorCallback?(error)
        completion.complete(.failure(error))
    }
}
