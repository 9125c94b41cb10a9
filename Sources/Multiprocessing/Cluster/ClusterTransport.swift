// Rank 0's transport for one cluster pool: the pool's workers live on the node agents (the other
// ranks of the MPI job). Each effect the storage decides becomes a message to the agent that runs
// the worker; each agent's report comes back as the event the local transport would have reported.
// Rank 0 keeps the deadlines (task and start timeouts): the MPI thread checks them every turn, and
// an expired one becomes a kill sent to the worker's agent. `start` returns once the agents have
// answered for the pool's first workers, as the local transport's does once it has spawned them:
// a pool whose agents cannot open it, or cannot start its program, fails `Pool(...)` with
// `.spawnFailed`, as a local pool does. What the local transport logs of its workers (started,
// could not start, the pool stopped) this one logs with the pool's logger, naming the agent.

#if MPI
    import Logging
    import Synchronization

    final class ClusterTransport: WorkerTransport {
        struct State {
            var placement: WorkerPlacement
            var events: (any TransportEvents)?
            /// Effects performed before `start`: sent once the agents know the pool.
            var early: [TransportEffect] = []
            /// Agents that have not reported this pool stopped yet, once it is stopping.
            var stopping: Set<Int>?
            /// The storage's next deadline, as last read.
            var deadline: MonotonicInstant?
            /// The first workers `start` waits for, until their agents answer.
            var startup: Startup?
        }

        /// What `start` waits for: the agents' answers for the workers asked for before it.
        struct Startup {
            var waiting: Set<WorkerID>
            /// Why the pool cannot start (the first failure an agent reported).
            var failure: String?

            /// Takes one agent's answer.
            /// - Returns: whether `start` has heard enough (every answer, or a failure).
            mutating func answer(_ worker: WorkerID?, failure: String? = nil) -> Bool {
                if let worker { waiting.remove(worker) }
                if let failure, self.failure == nil { self.failure = failure }
                return waiting.isEmpty || self.failure != nil
            }
        }

        let parent: ClusterParent
        let setup: ClusterMessage.PoolSetup
        let pool: UInt32
        private let state: Mutex<State>
        /// Set when the storage's next deadline may have moved (see `refreshDeadline`).
        private let deadlineChanged = Atomic<Bool>(false)
        /// Completed when `start` has heard enough of the agents (see `Startup`).
        private let startupAnswered = Completion()
        /// Agents by rank (host names for messages).
        let agents: [Int: ClusterParent.Agent]
        /// How long `start` waits for the agents to answer for the first workers.
        let startWait: Duration
        /// The pool's logger.
        let logger: Logger

        /// - Parameters:
        ///   - quota: How many workers each agent (by rank) runs.
        ///   - startWait: How long `start` waits for the agents to answer for the first workers.
        ///   - logger: The pool's logger, for what the local transport would log of its workers.
        init(
            parent: ClusterParent, agents: [ClusterParent.Agent], quota: [Int: Int], setup: ClusterMessage.PoolSetup,
            startWait: Duration = Pool.defaultStartTimeout,
            logger: Logger = Logger(label: "swift-multiprocessing", factory: { _ in SwiftLogNoOpLogHandler() })
        ) {
            self.parent = parent
            self.setup = setup
            self.startWait = startWait
            self.logger = logger
            self.agents = Dictionary(uniqueKeysWithValues: agents.map { ($0.rank, $0) })
            self.state = Mutex(State(placement: WorkerPlacement(quota: quota)))
            self.pool = parent.newPoolID()
        }

        private var endpoint: ClusterEndpoint { parent.endpoint }

        /// How long a lone call's caller looks for its result before it goes to sleep: a short
        /// task's result is back within tens of microseconds, and a sleeping thread takes about
        /// as long again to be woken.
        static let directWaitSpin: Duration = .microseconds(100)

        /// A lone call's caller waits for its result briefly, making the MPI calls itself when no
        /// other thread is making them (it borrows the MPI role, see
        /// `ClusterEndpoint.borrowRole`): its task went out on this thread already, and the result
        /// comes in on it, with no hand-over to and from the MPI thread. While another thread
        /// holds the role, it spins (yielding the processor) and tries again.
        func waitDirect(worker id: WorkerID, deadline: MonotonicInstant?, until isDone: () -> Bool) {
            var end = MonotonicInstant.now + Self.directWaitSpin
            if let deadline, deadline < end { end = deadline }
            while !isDone() && MonotonicInstant.now < end {
                if endpoint.borrowRole(until: end, while: { !isDone() }) { continue }
                yieldProcessor()
            }
        }

        /// Opens the pool on every agent and starts the workers asked for so far; returns once
        /// their agents have answered for each (started, or could not start it).
        /// - Throws: `PoolError.spawnFailed` when an agent cannot open the pool or start a first
        ///   worker (its program is missing, say), or the agents do not answer within `startWait`.
        func start(events: any TransportEvents) throws(PoolError) {
            let early = state.withLock { state in
                state.events = events
                defer { state.early = [] }
                var spawns: Set<WorkerID> = []
                for case .spawn(let id) in state.early { spawns.insert(id) }
                state.startup = Startup(waiting: spawns)
                return state.early
            }
            parent.register(self)
            for rank in agents.keys.sorted() {
                endpoint.send(to: rank, ClusterMessage.openPool(pool: pool, setup: setup).encoded())
            }
            perform(early)
            startupAnswer(nil)  // no first worker: nothing to wait for
            let outcome = startupAnswered.wait(until: .now + startWait)
            let failure = state.withLock { state -> String? in
                defer { state.startup = nil }
                if outcome == nil {
                    return "the node agents did not answer for the pool's first workers within \(startWait)"
                }
                return state.startup?.failure
            }
            if let failure { throw PoolError(.spawnFailed, failure) }
        }

        /// Takes an agent's answer for a first worker (or its failure) while `start` waits.
        private func startupAnswer(_ worker: WorkerID?, failure: String? = nil) {
            let heard = state.withLock { $0.startup?.answer(worker, failure: failure) ?? false }
            if heard { _ = startupAnswered.complete(.success(())) }
        }

        func perform(_ effects: [TransportEffect]) {
            let started = state.withLock { state in
                if state.events == nil { state.early += effects }
                return state.events != nil
            }
            guard started else { return }
            for effect in effects {
                switch effect {
                case .spawn(let id):
                    let rank = state.withLock { $0.placement.place(id) }
                    endpoint.send(to: rank, ClusterMessage.spawn(pool: pool, worker: id).encoded())
                case .send(let frame, let id, let sequence):
                    guard let rank = rank(of: id) else { continue }
                    endpoint.send(
                        to: rank, ClusterMessage.send(pool: pool, worker: id, sequence: sequence).encoded(),
                        attachments: [OutgoingAttachment(frame.bytes)] + frame.attachments)
                case .closeInput(let id, let sequence):
                    guard let rank = leaving(id) else { continue }
                    endpoint.send(
                        to: rank, ClusterMessage.closeInput(pool: pool, worker: id, sequence: sequence).encoded())
                case .kill(let id):
                    guard let rank = leaving(id) else { continue }
                    endpoint.send(to: rank, ClusterMessage.kill(pool: pool, worker: id).encoded())
                case .deadlineChanged:
                    refreshDeadline()
                    // It came closer: the MPI thread, maybe asleep to a later one or to none,
                    // reads it at its next turn.
                    endpoint.wakeThread()
                case .stop:
                    let ranks = state.withLock { state -> [Int] in
                        state.stopping = Set(agents.keys)
                        return agents.keys.sorted()
                    }
                    for rank in ranks { endpoint.send(to: rank, ClusterMessage.stopPool(pool: pool).encoded()) }
                    if ranks.isEmpty { stopped() }
                }
            }
        }

        private func rank(of id: WorkerID) -> Int? {
            state.withLock { $0.placement.rankOf[id] }
        }

        /// The worker is closed or killed: its place on its agent is free for a replacement.
        private func leaving(_ id: WorkerID) -> Int? {
            state.withLock { $0.placement.leave(id) }
        }

        private var events: (any TransportEvents)? { state.withLock { $0.events } }

        /// The storage's next deadline, as the MPI thread last read it.
        var deadline: MonotonicInstant? { state.withLock { $0.deadline } }

        /// The storage's deadline may have changed: the MPI thread reads it again at its next turn.
        /// (Only that thread stores it: a value read on two threads could be stored in the wrong
        /// order, a stale one last, and a task's timeout be lost.)
        private func refreshDeadline() {
            deadlineChanged.store(true, ordering: .releasing)
        }

        /// Tells the storage its deadline is due, if it is; on the MPI thread, every turn.
        /// - Returns: whether a deadline was due.
        func fireDeadlines(now: MonotonicInstant) -> Bool {
            if deadlineChanged.exchange(false, ordering: .acquiringAndReleasing), let events {
                let deadline = events.nextDeadline
                state.withLock { $0.deadline = deadline }
            }
            // One look under the lock a turn, the common case (no deadline due).
            let due: (any TransportEvents)? = state.withLock { state in
                guard let deadline = state.deadline, deadline <= now, let events = state.events else { return nil }
                state.deadline = nil
                return events
            }
            guard let due else { return false }
            due.deadlinesDue(now: now)
            refreshDeadline()
            return true
        }

        private func stopped() {
            logger.debug("pool stopped")
            parent.unregister(pool)
            events?.transportStopped()
            state.withLock { $0.events = nil }
        }

        /// `metadata` with the agent of rank `rank` (its rank and host).
        private func place(_ rank: Int, _ metadata: Logger.Metadata) -> Logger.Metadata {
            metadata.merging(["rank": "\(rank)", "host": "\(agents[rank]?.host ?? "?")"]) { $1 }
        }

        // MARK: - Agents' reports (on the MPI thread)

        func handle(_ message: ClusterMessage, from source: Int, parts: [[UInt8]]) {
            guard let events else { return }
            switch message {
            case .spawned(_, let worker, let pid):
                events.workerSpawned(worker, pid: pid)
                logger.debug("worker started", metadata: place(source, ["pid": "\(pid)", "worker": "\(worker)"]))
                startupAnswer(worker)
            case .spawnFailed(_, let worker, let detail):
                state.withLock { $0.placement.remove(worker) }
                events.workerSpawnFailed(worker, detail: detail)
                logger.error("worker could not be started", metadata: place(source, ["error": "\(detail)"]))
                startupAnswer(worker, failure: "the node agent of rank \(source) could not start a worker \(detail)")
            case .ready(_, let worker):
                events.workerReady(worker)
            case .overMemory(_, let worker):
                events.workerOverMemory(worker)
            case .result(_, let worker, let pid, let header, let items):
                guard parts.count >= 2, items.upperBound <= parts[1].count else {
                    events.workerMisbehaved(worker, detail: "its agent (rank \(source)) sent a malformed result")
                    break
                }
                let reader = ByteReader(
                    parts[1], offset: items.lowerBound, end: items.upperBound, attachments: Array(parts.dropFirst(2)))
                events.chunkCompleted(worker, header: header, items: reader, pid: pid)
            case .misbehaved(_, let worker, let detail):
                events.workerMisbehaved(worker, detail: detail)
            case .exited(_, let worker, let exit):
                state.withLock { $0.placement.remove(worker) }
                events.workerExited(worker, exit: exit)
            case .poolStopped:
                let last = state.withLock { state -> Bool in
                    state.stopping?.remove(source)
                    return state.stopping?.isEmpty == true
                }
                if last { stopped() }
                return
            case .transportFailed(_, let detail):
                let agent = "the node agent of rank \(source) on \(agents[source]?.host ?? "?")"
                let starting = state.withLock { $0.startup != nil }
                if starting {
                    // It could not open the pool: `start` throws, and the storage then terminates it.
                    startupAnswer(nil, failure: "\(agent) could not set up the pool: \(detail)")
                } else {
                    events.transportFailed(detail: "\(agent): \(detail)")
                }
            default:
                return
            }
            refreshDeadline()
        }
    }
#endif
