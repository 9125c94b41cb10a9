// A node agent: what every rank but 0 of an MPI job becomes in `Pool.bootstrap`. It schedules
// nothing; it runs rank 0's transport effects on a local transport of its own (worker processes on
// its node, started and watched as a local pool's are) and sends the local transport's events back
// to rank 0. It ends when rank 0 says so (or dies with the job).

#if MPI
    import Logging
    import Synchronization

    final class NodeAgent: ClusterEndpoint.Handler {
        let endpoint: ClusterEndpoint
        private let pools = Mutex<[UInt32: LocalTransport]>([:])
        /// The workers each pool has on this node, alive or starting (to kill at the job's end).
        private let workers = Mutex<[UInt32: Set<WorkerID>]>([:])

        /// One worker of one pool.
        struct PoolWorker: Hashable {
            var pool: UInt32
            var worker: WorkerID
        }

        /// Task frames sent to each worker whose results have not come back.
        private let inFlight = Mutex<[PoolWorker: Int]>([:])
        /// When each worker's lone task went out, and how long the last one took to come back (a
        /// task of the same function tends to take as long as the one before).
        private let loneTasks = Mutex<[PoolWorker: LoneTask]>([:])

        struct LoneTask {
            var sent: MonotonicInstant?
            var last: Duration?
        }

        /// How long the agent waits for its pools to stop once rank 0 says the job is over.
        static let shutdownGrace: Duration = .seconds(5)

        /// When rank 0 said the job is over.
        private let shutdownSince = Mutex<MonotonicInstant?>(nil)

        /// How long this thread reads a worker's result pipe itself after sending it the only task
        /// in flight on this node, instead of waiting for the local transport's I/O thread to read
        /// it and hand it over (a thread wake-up and a hand-over less per round trip). It spins
        /// (the local transport's direct wait polls without sleeping for that long), and MPI waits
        /// meanwhile: only when nothing else is in flight here.
        static let directWait: Duration = LocalTransport.directWaitSpin
        /// A worker whose last lone task took longer than this is not waited for directly: its
        /// next one will likely take as long, and a spin that cannot catch the result only takes
        /// a core from the workers (16 tasks of 25 ms on 2 workers and 2 cores). Far above the
        /// direct wait itself, so that a short task read by the I/O thread once, late (a busy
        /// machine), is still waited for the next time.
        static let directWaitUpTo: Duration = .milliseconds(1)
        private let done = Completion()
        private let logger: Logger

        init(endpoint: ClusterEndpoint, logger: Logger) {
            self.endpoint = endpoint
            self.logger = logger
        }

        /// Serves rank 0 until it says the job is over; then ends the process.
        static func serve(endpoint: ClusterEndpoint) -> Never {
            // The node's ranks and their workers share its cores (3 ranks and 2 workers on 2 cores
            // in the benchmark): a thread spinning for a worker's answer must give its core up at
            // once, or the worker it waits for (or the rank it relays to) cannot run on it.
            // Rank 0's round trip: 51-80 µs spinning 15 µs before yielding, 35-46 µs yielding at once.
            LocalTransport.spinWithoutYieldNanoseconds.store(0, ordering: .relaxed)
            let logger = makeLogger(endpoint: endpoint)
            let agent = NodeAgent(endpoint: endpoint, logger: logger)
            endpoint.setHandler(agent)
            endpoint.send(
                to: 0,
                ClusterMessage.hello(
                    host: endpoint.host, cpus: availableCPUCount(), ranksOnNode: endpoint.ranksOnNode,
                    pid: currentProcessID()
                ).encoded())
            // Until rank 0 says the job is over and every pool here has stopped; a pool that does not
            // stop within `shutdownGrace` of that is left behind: its workers die with this process
            // (their parent-death signal, see worker_start.c).
            while agent.done.wait(until: .now + .milliseconds(250)) == nil {
                if let since = agent.shutdownSince.withLock({ $0 }), since.duration(to: .now) > shutdownGrace { break }
            }
            endpoint.stop(timeout: .seconds(5))
            exitImmediately(0)
        }

        func turn() -> Bool { false }

        /// Deadlines are rank 0's.
        var nextDeadline: MonotonicInstant? { nil }

        func received(from source: Int, _ parts: [[UInt8]]) {
            let message: ClusterMessage
            do {
                message = try ClusterMessage.decode(parts[0])
            } catch {
                fatalError("swift-multiprocessing's node agent: an unreadable message from rank \(source): \(error)")
            }
            switch message {
            case .openPool(let pool, let setup):
                open(pool, setup)
            case .spawn(let pool, let worker):
                guard let transport = transport(pool) else {
                    // The pool could not be opened here (its failure was reported): rank 0 must
                    // still hear of every worker it asked for, or it waits for them forever.
                    endpoint.send(
                        to: 0,
                        ClusterMessage.spawnFailed(
                            pool: pool, worker: worker,
                            detail: "on node \(endpoint.host): the node agent could not set up the pool"
                        ).encoded())
                    return
                }
                _ = workers.withLock { $0[pool, default: []].insert(worker) }
                transport.perform([.spawn(worker)])
            case .send(let pool, let worker, let sequence):
                guard parts.count >= 2 else {
                    fatalError("swift-multiprocessing's node agent: a task without its frame from rank \(source)")
                }
                let frame = parts[1]
                let attachments = parts.dropFirst(2).map { OutgoingAttachment($0) }
                guard let transport = transport(pool) else { return }
                let key = PoolWorker(pool: pool, worker: worker)
                // A task for a worker already gone is dropped by the transport: it is not counted.
                let known = workers.withLock { $0[pool]?.contains(worker) ?? false }
                let alone =
                    known
                    && inFlight.withLock { inFlight in
                        inFlight[key, default: 0] += 1
                        return inFlight.count == 1 && inFlight[key] == 1
                    }
                transport.perform([
                    .send(OutgoingFrame(bytes: frame, attachments: Array(attachments)), to: worker, sequence: sequence)
                ])
                if alone {
                    let now = MonotonicInstant.now
                    let last = loneTasks.withLock { tasks in
                        tasks[key, default: LoneTask()].sent = now
                        return tasks[key]?.last
                    }
                    if last.map({ $0 <= Self.directWaitUpTo }) ?? true {
                        transport.waitDirect(worker: worker, deadline: now + Self.directWait) {
                            inFlight.withLock { $0[key] == nil }
                        }
                    }
                }
            case .closeInput(let pool, let worker, let sequence):
                transport(pool)?.perform([.closeInput(worker, sequence: sequence)])
            case .kill(let pool, let worker):
                transport(pool)?.perform([.kill(worker)])
            case .stopPool(let pool):
                if let transport = transport(pool) {
                    transport.perform([.stop])
                } else {
                    endpoint.send(to: 0, ClusterMessage.poolStopped(pool: pool).encoded())
                }
            case .shutdown:
                // Rank 0 is ending, maybe with pools it never terminated: their workers go now
                // (those still being started go as they start, see `Relay.workerSpawned`).
                shutdownSince.withLock { $0 = .now }
                shuttingDown.store(true, ordering: .relaxed)
                let open = pools.withLock { $0 }
                if open.isEmpty { _ = done.complete(.success(())) }
                for (pool, transport) in open {
                    let alive = workers.withLock { $0[pool] ?? [] }
                    transport.perform(alive.sorted().map { .kill($0) } + [.stop])
                }
            default:
                break
            }
        }

        private let shuttingDown = Atomic<Bool>(false)
        fileprivate var isShuttingDown: Bool { shuttingDown.load(ordering: .relaxed) }

        fileprivate func transport(_ pool: UInt32) -> LocalTransport? {
            pools.withLock { $0[pool] }
        }

        private func open(_ pool: UInt32, _ setup: ClusterMessage.PoolSetup) {
            let executable = setup.executable ?? currentExecutablePath()
            let arguments = setup.arguments ?? Array(CommandLine.arguments.dropFirst())
            do {
                let transport = try LocalTransport(
                    options: LocalTransport.Options(
                        executable: executable, arguments: arguments, startFrame: setup.startFrame, logger: logger,
                        workerMemoryLimit: setup.workerMemoryLimit, maxMemoryPerChild: setup.maxMemoryPerChild,
                        crashReports: setup.crashReports, droppedEnvironment: ClusterLaunch.rankEnvironmentPrefixes,
                        // What a worker can tell of where it runs (its MPI variables are dropped).
                        addedEnvironment: [
                            "\(ClusterLaunch.rankVariable)=\(endpoint.rank)",
                            "\(ClusterLaunch.nodeVariable)=\(endpoint.host)",
                            // Its workers spin as this process does (see `serve`).
                            "\(LocalTransport.spinWithoutYieldVariable)=0",
                        ]))
                pools.withLock { $0[pool] = transport }
                do {
                    try transport.start(events: Relay(pool: pool, agent: self))
                } catch {
                    _ = pools.withLock { $0.removeValue(forKey: pool) }
                    throw error
                }
            } catch {
                // Said here too: rank 0's caller gets it as its error, the job's stderr as a line.
                logger.error("the pool could not be set up on this node", metadata: ["error": "\(error)"])
                endpoint.send(to: 0, ClusterMessage.transportFailed(pool: pool, detail: "\(error)").encoded())
            }
        }

        fileprivate func workerGone(_ pool: UInt32, _ worker: WorkerID) {
            _ = workers.withLock { $0[pool]?.remove(worker) }
            _ = inFlight.withLock { $0.removeValue(forKey: PoolWorker(pool: pool, worker: worker)) }
            _ = loneTasks.withLock { $0.removeValue(forKey: PoolWorker(pool: pool, worker: worker)) }
        }

        fileprivate func resultCame(_ pool: UInt32, _ worker: WorkerID) {
            let key = PoolWorker(pool: pool, worker: worker)
            inFlight.withLock { inFlight in
                guard let count = inFlight[key] else { return }
                inFlight[key] = count > 1 ? count - 1 : nil
            }
            loneTasks.withLock { tasks in
                guard let sent = tasks[key]?.sent else { return }
                tasks[key] = LoneTask(sent: nil, last: sent.duration(to: .now))
            }
        }

        fileprivate func poolStopped(_ pool: UInt32) {
            _ = workers.withLock { $0.removeValue(forKey: pool) }
            let empty = pools.withLock { pools in
                pools[pool] = nil
                return pools.isEmpty
            }
            endpoint.send(to: 0, ClusterMessage.poolStopped(pool: pool).encoded())
            if empty && shuttingDown.load(ordering: .relaxed) { _ = done.complete(.success(())) }
        }

        /// One pool's local transport events, sent to rank 0. Called on the local transport's I/O
        /// thread.
        private final class Relay: TransportEvents {
            let pool: UInt32
            let agent: NodeAgent
            var endpoint: ClusterEndpoint { agent.endpoint }

            init(pool: UInt32, agent: NodeAgent) {
                self.pool = pool
                self.agent = agent
            }

            private func send(_ message: ClusterMessage, attachments: [OutgoingAttachment] = []) {
                endpoint.send(to: 0, message.encoded(), attachments: attachments)
            }

            func workerSpawned(_ id: WorkerID, pid: Int32) {
                send(.spawned(pool: pool, worker: id, pid: pid))
                // A worker queued before the job ended starts after its kill was dropped: it goes now.
                if agent.isShuttingDown { agent.transport(pool)?.perform([.kill(id)]) }
            }
            func workerSpawnFailed(_ id: WorkerID, detail: String) {
                agent.workerGone(pool, id)
                send(.spawnFailed(pool: pool, worker: id, detail: "on node \(endpoint.host): \(detail)"))
            }
            func workerReady(_ id: WorkerID) { send(.ready(pool: pool, worker: id)) }
            func workerOverMemory(_ id: WorkerID) { send(.overMemory(pool: pool, worker: id)) }
            func chunkCompleted(_ id: WorkerID, header: ResultHeader, items: ByteReader, pid: Int32) {
                agent.resultCame(pool, id)
                // The frame as read, up to its items' end, goes as it is: no copy into the head.
                send(
                    .result(pool: pool, worker: id, pid: pid, header: header, items: items.offset..<items.end),
                    attachments: [OutgoingAttachment(packed: items.bytes[..<items.end])]
                        + items.attachments.map { OutgoingAttachment($0) })
            }
            func workerMisbehaved(_ id: WorkerID, detail: String) {
                send(.misbehaved(pool: pool, worker: id, detail: detail))
            }
            func workerExited(_ id: WorkerID, exit: WorkerExit) {
                var exit = exit
                let place = "on node \(endpoint.host) (rank \(endpoint.rank))"
                exit.detail = exit.detail.map { "\($0), \(place)" } ?? place
                agent.workerGone(pool, id)
                send(.exited(pool: pool, worker: id, exit: exit))
            }
            // Deadlines are rank 0's: it decides, and sends a kill.
            var nextDeadline: MonotonicInstant? { nil }
            func deadlinesDue(now: MonotonicInstant) {}
            func transportFailed(detail: String) { send(.transportFailed(pool: pool, detail: detail)) }
            func transportStopped() { agent.poolStopped(pool) }
        }
    }
#endif
