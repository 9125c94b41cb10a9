// Rank 0's end of the MPI job: the node agents it heard from, and the cluster pools that use them.
// It routes each agent's message to the pool it is about, checks the pools' deadlines on the MPI
// thread, and tells every agent to end when the program exits.

#if MPI
    import Synchronization

    final class ClusterParent: ClusterEndpoint.Handler {
        /// A node agent: one rank of the job other than 0.
        struct Agent: Sendable {
            var rank: Int
            var host: String
            var cpus: Int
            /// Ranks of the job on its node (rank 0's included, when it shares it).
            var ranksOnNode: Int
            var pid: Int32
        }

        struct State {
            var agents: [Int: Agent] = [:]
            var pools: [UInt32: ClusterTransport] = [:]
            var nextPool: UInt32 = 1
            var shutDown = false
        }

        let endpoint: ClusterEndpoint
        private let state = Mutex(State())
        private let allAgents = Completion()

        init(endpoint: ClusterEndpoint) {
            self.endpoint = endpoint
            if endpoint.size == 1 { _ = allAgents.complete(.success(())) }
        }

        private static let shared = Mutex<ClusterParent?>(nil)

        /// This process's parent end, once `Pool.bootstrap` started it under an MPI launcher.
        static var current: ClusterParent? { shared.withLock { $0 } }

        static func install(_ parent: ClusterParent) {
            shared.withLock { $0 = parent }
            parent.endpoint.setHandler(parent)
            runAtExit { ClusterParent.current?.shutDown() }
        }

        /// The agents, once every rank of the job has reported (at most `timeout`).
        func agents(timeout: Duration) -> [Agent]? {
            guard allAgents.wait(until: .now + timeout) != nil else { return nil }
            return state.withLock { $0.agents.values.sorted { $0.rank < $1.rank } }
        }

        func newPoolID() -> UInt32 {
            state.withLock { state in
                defer { state.nextPool += 1 }
                return state.nextPool
            }
        }

        /// Routes the agents' reports about `transport`'s pool to it from now on.
        func register(_ transport: ClusterTransport) {
            state.withLock { $0.pools[transport.pool] = transport }
        }

        func unregister(_ pool: UInt32) {
            _ = state.withLock { $0.pools.removeValue(forKey: pool) }
        }

        /// Tells every agent the job is over, and finalizes MPI (at exit).
        func shutDown() {
            let agents = state.withLock { state -> [Int] in
                guard !state.shutDown else { return [] }
                state.shutDown = true
                return Array(1..<endpoint.size)
            }
            guard !agents.isEmpty || endpoint.size == 1 else { return }
            for rank in agents { endpoint.send(to: rank, ClusterMessage.shutdown.encoded()) }
            endpoint.stop(timeout: .seconds(5))
        }

        // MARK: - On the MPI thread

        func received(from source: Int, _ parts: [[UInt8]]) {
            let message: ClusterMessage
            do {
                message = try ClusterMessage.decode(parts[0])
            } catch {
                fatalError("swift-multiprocessing: an unreadable message from rank \(source): \(error)")
            }
            switch message {
            case .hello(let host, let cpus, let ranksOnNode, let pid):
                let complete = state.withLock { state in
                    state.agents[source] = Agent(
                        rank: source, host: host, cpus: cpus, ranksOnNode: ranksOnNode, pid: pid)
                    return state.agents.count == endpoint.size - 1
                }
                if complete { _ = allAgents.complete(.success(())) }
            case .spawned(let pool, _, _), .spawnFailed(let pool, _, _), .ready(let pool, _), .overMemory(let pool, _),
                .result(let pool, _, _, _, _), .misbehaved(let pool, _, _), .exited(let pool, _, _),
                .poolStopped(let pool), .transportFailed(let pool, _):
                let transport = state.withLock { $0.pools[pool] }
                transport?.handle(message, from: source, parts: parts)
            default:
                break
            }
        }

        func turn() -> Bool {
            let pools = state.withLock { $0.pools.values }
            var active = false
            let now = MonotonicInstant.now
            for pool in pools where pool.fireDeadlines(now: now) { active = true }
            return active
        }

        /// The pools' next deadline, as their last turn read it.
        var nextDeadline: MonotonicInstant? {
            state.withLock { $0.pools.values }.compactMap(\.deadline).min()
        }
    }
#endif
