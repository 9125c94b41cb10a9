// What the transport reports, fed to the scheduler: each event is one transition.

import Logging
import Synchronization

extension PoolCore: TransportEvents {
    func workerSpawned(_ id: WorkerID, pid: Int32) {
        transition { $0.scheduler.workerSpawned(id, pid: pid, now: .now) }
    }

    func workerSpawnFailed(_ id: WorkerID, detail: String) {
        transition { state in
            state.sequences[id] = nil
            return state.scheduler.workerSpawnFailed(id, detail: detail, now: .now)
        }
    }

    func workerReady(_ id: WorkerID) {
        // A transition, so that a task deadline starting now reaches the transport's clock.
        transition { state -> [Scheduler.Action] in
            state.scheduler.workerReady(id, now: .now)
            return []
        }
    }

    func workerOverMemory(_ id: WorkerID) {
        transition { $0.scheduler.workerOverMemory(id, now: .now) }
    }

    var directResultsSerial: UInt64 { serial }

    func chunkCompleted(_ id: WorkerID, header: ResultHeader, items: ByteReader, pid: Int32) {
        if header.deliveredDirectly { directChunks.add(1, ordering: .relaxed) }
        // Counted before the lock (a scan only when some item failed), for the statistics.
        let failedItems = ResultItems.failedCount(items, header: header)
        if completeAtOnce(id, header: header, items: items, pid: pid, failedItems: failedItems) { return }
        transition(ActionContext(result: (header, items, pid))) { state in
            state.scheduler.chunkCompleted(
                worker: id, job: JobID(rawValue: header.job), index: Int(header.chunkIndex),
                failed: header.anyFailed, answeredItems: header.itemCount, failedItems: failedItems, now: .now)
        }
    }

    func workerMisbehaved(_ id: WorkerID, detail: String) {
        transition { $0.scheduler.workerMisbehaved(id, detail: detail, now: .now) }
    }

    func workerExited(_ id: WorkerID, exit: WorkerExit) {
        // Nothing said, nothing to pass on: no dictionary (the first one of its type costs a
        // scan of every loaded library's conformances, on the way from `terminate` to `join`).
        let said = !exit.lastWords.text.isEmpty || !exit.lastWords.crashFrames.isEmpty
        let phase = transition(ActionContext(lastWords: said ? [id: exit.lastWords] : [:])) { state in
            let phase = state.scheduler.worker(id)?.phase
            state.sequences[id] = nil
            if let error = exit.initializerError { state.initializerError = error }
            let actions = state.scheduler.workerExited(
                id, termination: exit.termination, initializerError: exit.initializerError.map { "\($0)" },
                lostDetail: exit.detail, lastWords: exit.lastWords.text, now: .now)
            return (actions, phase)
        }
        // Made only for a logger that logs the level (the log calls take it as an autoclosure).
        var metadata: Logger.Metadata { ["pid": "\(exit.pid)", "worker": "\(id)", "exit": "\(exit.termination)"] }
        switch phase {
        case .inputClosed?:
            logger.debug("worker exited", metadata: metadata)
        case .killed(.timedOut)?:
            logger.warning("worker killed: task timed out", metadata: metadata)
        case .killed(.startTimedOut)?:
            logger.warning("worker killed: not ready within its start timeout", metadata: metadata)
        case .killed(.cancelled)?:
            logger.info("worker killed: its task was cancelled", metadata: metadata)
        case .killed(.terminated)?:
            logger.debug("worker killed: pool terminated", metadata: metadata)
        default:
            logger.warning(
                "worker lost", metadata: metadata.merging(["lastWords": "\(exit.lastWords)"]) { a, _ in a })
        }
    }

    var nextDeadline: MonotonicInstant? {
        state.withLock { $0.scheduler.nextDeadline }
    }

    func deadlinesDue(now: MonotonicInstant) {
        transition { $0.scheduler.timeoutsExpired(now: now) }
    }

    func transportFailed(detail: String) {
        logger.critical("the pool's transport failed", metadata: ["detail": "\(detail)"])
        terminate()
    }

    func transportStopped() {
        workersStopped()
        stopped.complete(.success(()))
    }
}
