// The sink of `apply`, `map` and `starmap`: collects every chunk's results in order and
// completes an AsyncResult with the whole value, or with the first error. A callback for that
// outcome runs on the pool's callback executor, and the result completes after it; without one,
// the result completes here, on the thread that delivered the last event.
//
// Results that are plain numbers (see PackedLayout.swift) go straight into the caller's array:
// it is made once, at its full size, and each chunk's packed bytes are copied from the frame to
// their place in it (one copy per result; measured on `starmap` of 1e6 pairs, this saves a copy
// of every result into an array per chunk, and another when those were joined at the end).
//
// A large such list has its pages made present in one system call (``ListSink/prepare()``), by
// the thread that submitted the job, once its first chunks are on their way: the workers start
// meanwhile (made present before the submission, 8 MiB took 1–2 ms in which no worker had
// anything to do). While it does, the list's memory is pinned: an outcome that would hand the list
// to the caller waits for the pin to go (the pinning thread then finishes the job), and one that
// drops it (a failure, a cancellation) leaves it to the pinning thread to drop.
//
// Large chunks of such results are copied by the pool's I/O thread straight from the worker's
// result ring into their place (``takeDirectly(index:count:stride:_:)``, see DirectResults.swift):
// the sink registers for that when it is made, and lets go once its outcome is known.

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

    /// The results are plain numbers, filled into `State.values` in place.
    private let inPlace: Bool
    /// Where each chunk's results start in the whole list, by chunk index.
    private let offsets: [Int]
    /// The pool (its core's ``PoolCore/serial``) and job whose results this sink takes straight
    /// from the rings, if it does.
    private let direct: (pool: UInt64, job: UInt64)?

    private struct State {
        /// Each chunk's results, when they are not filled in place.
        var chunks: [[R]?]
        /// The whole list, when its values are filled in place (uninitialized until each
        /// chunk's `arrived`).
        var values: [R] = []
        var arrived: [Bool] = []
        var error: (any Error)?
        var done = false
        /// ``prepare()`` is making `values`' pages present, outside the lock: they must stay
        /// where they are until it is over.
        var pinned = false
        /// ``finish()`` came while `values` was pinned: the pinning thread finishes.
        var finishPending = false
    }
    private let state: Mutex<State>

    init(
        functionName: String, chunkSizes: [Int], makeValue: @escaping @Sendable ([R]) -> Value,
        callback: (@Sendable (Value) -> Void)?, errorCallback: (@Sendable (any Error) -> Void)?,
        callbacks: CallbackExecutor, directFrom pool: UInt64? = nil, job: JobID? = nil
    ) {
        self.functionName = functionName
        self.callbacks = callbacks
        self.chunkSizes = chunkSizes
        self.makeValue = makeValue
        self.callback = callback
        self.errorCallback = errorCallback
        let total = chunkSizes.reduce(0, +)
        var offsets: [Int] = []
        offsets.reserveCapacity(chunkSizes.count)
        var offset = 0
        for size in chunkSizes {
            offsets.append(offset)
            offset += size
        }
        self.offsets = offsets
        inPlace = PackedLayout.isPlain(R.self)
        if inPlace {
            var state = State(chunks: [])
            // Plain values: every byte pattern is one, and each is written before it is read.
            state.values = [R](unsafeUninitializedCapacity: total) { buffer, initialized in
                // Huge pages from the first touch on, whichever thread touches first: the I/O
                // thread may copy the first results in before ``prepare()`` gets there.
                if let start = buffer.baseAddress, total * MemoryLayout<R>.stride >= ListSink.populatedSize {
                    adviseHugePages(start, count: total * MemoryLayout<R>.stride)
                }
                initialized = total
            }
            state.arrived = Array(repeating: false, count: chunkSizes.count)
            self.state = Mutex(state)
        } else {
            self.state = Mutex(State(chunks: Array(repeating: nil, count: chunkSizes.count)))
        }
        self.progress = ProgressCounter(total: total)
        if inPlace, let pool, let job {
            direct = (pool, job.rawValue)
        } else {
            direct = nil
        }
        if hasCallbacks { callbacks.resultPending() }
        if let direct { DirectResults.register(self, pool: direct.pool, job: direct.job) }
    }

    deinit { stopTakingDirectly() }

    /// The outcome is known: nothing more is taken from the rings.
    private func stopTakingDirectly() {
        if let direct { DirectResults.unregister(pool: direct.pool, job: direct.job) }
    }

    /// From this size on, a list filled in place has its pages made present at once (see
    /// Populate+Linux.swift), rather than faulted in one by one as the results are copied in.
    static var populatedSize: Int { 1 << 20 }

    /// Makes the pages of a large list filled in place present (with huge pages where the kernel
    /// has them), in one system call. Called by the submitting thread once the job is submitted
    /// (see the file's header); results that come meanwhile are copied in as usual (a page they
    /// reach first is faulted in by their copy).
    func prepare() {
        guard inPlace, offsets.count > 0 else { return }
        let bytes = chunkSizes.reduce(0, +) * MemoryLayout<R>.stride
        guard bytes >= ListSink.populatedSize else { return }
        let region = state.withLock { state -> UnsafeMutableRawPointer? in
            guard !state.done, !state.finishPending else { return nil }
            state.pinned = true
            // Uniquely referenced: no copy, and the storage stays put while pinned.
            return state.values.withUnsafeMutableBytes { $0.baseAddress }
        }
        guard let region else { return }
        populateForWriting(region, count: bytes)
        let finishNow = state.withLock { state -> Bool in
            state.pinned = false
            // Dropped while pinned (a failure, a cancellation): let go of it now.
            if state.done { state.values = [] }
            return state.finishPending
        }
        if finishNow { finish() }
    }

    /// Whether the outcome is known: no more results will come for it (its callback may still
    /// have to run). What a thread reading its own result waits for.
    var isSettled: Bool { settled.load(ordering: .acquiring) }

    /// The job was never submitted (the pool refused it): nothing will come.
    func abandon() {
        let first = state.withLock { state -> Bool in
            guard !state.done else { return false }
            state.done = true
            if !state.pinned { state.values = [] }
            return true
        }
        if first { stopTakingDirectly() }
        if first && hasCallbacks { callbacks.resultSettled() }
    }

    /// Copies a chunk's values to their place in the whole list (in-place mode).
    /// - Parameter fill: Writes the chunk's values into the buffer it is given, of exactly their
    ///   size; returns false when it could not (nothing is marked as arrived then).
    private enum Fill {
        /// Filled: the chunk's values are in place.
        case filled
        /// A duplicate, or a chunk that arrived after the outcome: nothing kept.
        case ignored
        /// `fill` could not write them.
        case failed
    }

    private func fillInPlace(index: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Bool) -> Fill {
        let stride = MemoryLayout<R>.stride
        let start = offsets[index] * stride
        let end = start + chunkSizes[index] * stride
        return state.withLock { state in
            // A duplicate, or a chunk that arrives after the outcome: nothing to keep.
            guard !state.done, !state.arrived[index] else { return .ignored }
            let filled = state.values.withUnsafeMutableBytes {
                fill(UnsafeMutableRawBufferPointer(rebasing: $0[start..<end]))
            }
            if filled { state.arrived[index] = true }
            return filled ? .filled : .failed
        }
    }

    func deliver(index: Int, header: ResultHeader, items: ByteReader, workerPID: Int32) {
        guard chunkSizes.indices.contains(index) else { return }
        // Already in place (or dropped as a duplicate): ``takeDirectly(index:count:stride:_:)``.
        if header.deliveredDirectly { return }
        if inPlace {
            let expected = chunkSizes[index]
            switch fillInPlace(
                index: index,
                { ResultItems.copyPacked(items, header: header, expected: expected, as: R.self, into: $0) })
            {
            case .filled:
                progress.add(completed: expected)
                return
            case .ignored: return
            case .failed: break
            }
        } else if let values = ResultItems.packedValues(
            items, header: header, expected: chunkSizes[index], as: R.self)
        {
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
        if firstError == nil && inPlace {
            // Values that came one by one (a chunk not sent packed), copied to their place.
            let filled = fillInPlace(index: index) { destination in
                guard values.count == chunkSizes[index] else { return false }
                values.withUnsafeBytes { destination.copyMemory(from: $0) }
                return true
            }
            if filled == .filled { progress.add(completed: count) }
            return
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
            if state.pinned {
                // The pinning thread finishes, once the list's memory is no longer in its hands.
                state.finishPending = true
                return nil
            }
            state.finishPending = false
            state.done = true
            if let error = state.error {
                state.values = []
                return .failure(error)
            }
            if inPlace {
                guard !state.arrived.contains(false) else {
                    state.values = []
                    return .failure(PoolError(.workerLost, "a chunk of '\(functionName)' never came back"))
                }
                let all = state.values
                state.values = []
                return .success(makeValue(all))
            }
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
        stopTakingDirectly()
        settle(outcome)
    }

    /// Progress shows the end, and the outcome's callback runs (once), before the result is ready.
    private func settle(_ outcome: Completion.Outcome) {
        settled.store(true, ordering: .releasing)
        progress.finish()
        var onSuccess: (@Sendable (any Sendable) -> Void)?
        if let callback { onSuccess = { @Sendable value in callback(value as! Value) } }
        callbacks.settle(
            completion, with: outcome, onSuccess: onSuccess, onFailure: errorCallback, counted: hasCallbacks)
    }

    /// Completes the result as cancelled (by the caller); the pool stops the work separately.
    func cancel(with error: any Error) {
        let first = state.withLock { state -> Bool in
            guard !state.done else { return false }
            state.done = true
            if !state.pinned { state.values = [] }
            return true
        }
        guard first else { return }
        stopTakingDirectly()
        settle(.failure(error))
    }
}

extension ListSink {
    /// Marks chunk `index` as not arrived, so that it can be delivered again (for the
    /// benchmarks, which deliver one chunk over and over).
    func forgetChunk(_ index: Int) {
        state.withLock { state in
            if state.arrived.indices.contains(index) { state.arrived[index] = false }
        }
    }
}

extension ListSink: DirectResultTarget {
    func takeDirectly(index: Int, count: Int, stride: Int, _ copy: (UnsafeMutableRawPointer) -> Void) -> Bool {
        guard inPlace, chunkSizes.indices.contains(index), count == chunkSizes[index], count > 0,
            stride == MemoryLayout<R>.stride
        else { return false }
        let filled = fillInPlace(index: index) { destination in
            copy(destination.baseAddress!)
            return true
        }
        switch filled {
        case .filled:
            progress.add(completed: count)
            return true
        case .ignored:
            return true
        case .failed:
            return false
        }
    }
}
