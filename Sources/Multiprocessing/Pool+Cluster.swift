// `Pool.Cluster`: running a pool's workers on the ranks of an MPI job (the `MPI` trait). Under an
// MPI launcher, `Pool.bootstrap` makes every rank but 0 a node agent; a pool created on rank 0 with
// a cluster runs its workers under those agents, on their nodes. Without a launcher the same pool
// runs its workers on this machine.

#if MPI
    import Synchronization

    extension Pool {
        /// Where a pool's workers run when the program is an MPI job: under the job's node agents
        /// (every rank but 0), on their nodes.
        ///
        /// Launch the program with `mpiexec -n N ./app` (or `srun`, or a hostfile); make
        /// ``Pool/bootstrap(serving:errorTypes:)`` the first line of `main`, as always; create the
        /// pool on rank 0 (where `main` goes on) with a cluster:
        ///
        /// ```swift
        /// var configuration = Pool.Configuration()
        /// configuration.cluster = .mpi
        /// let pool = try Pool(configuration)
        /// ```
        ///
        /// Each agent runs its workers as a local pool does (spawned, watched and killed on its
        /// node) and relays frames between MPI and their pipes; rank 0's scheduler decides for every
        /// worker on every node. Run without an MPI launcher (or with one rank), the same pool runs
        /// its workers on this machine. See <doc:RunningOnACluster>.
        public struct Cluster: Sendable, Hashable {
            /// How many workers each agent runs; nil: one when the agent shares its node with other
            /// ranks of the job (a "rank per core" launch), else the node's CPUs (a "rank per node"
            /// launch). MPI says which ranks share a node (`MPI_COMM_TYPE_SHARED`). An agent's CPUs are
            /// those it may run on: a launcher that binds ranks to cores binds their workers too
            /// (launch a rank per node with `--bind-to none` to give its workers the whole node).
            /// ``Configuration/processes``, when set, is the total instead, spread evenly over the
            /// agents.
            public var workersPerRank: Int?

            /// A cluster over the MPI job's ranks.
            /// - Parameter workersPerRank: How many workers each agent runs; nil: see
            ///   ``workersPerRank``.
            public static func mpi(workersPerRank: Int? = nil) -> Cluster {
                Cluster(workersPerRank: workersPerRank)
            }

            /// A cluster over the MPI job's ranks, with the default number of workers per agent.
            public static var mpi: Cluster { .mpi() }

            /// How many workers each agent runs, by rank.
            func quota(for agents: [ClusterParent.Agent], processes: Int?) -> [Int: Int] {
                WorkerPlacement.quota(
                    for: agents.map { .init(rank: $0.rank, ranksOnNode: $0.ranksOnNode, cpus: $0.cpus) },
                    workersPerRank: workersPerRank, processes: processes)
            }
        }

        /// A node agent of the MPI job this program runs as: one rank other than 0.
        public struct ClusterAgent: Sendable, Hashable {
            /// Its rank in the job.
            public var rank: Int
            /// The node it runs on, as MPI names it.
            public var host: String
            /// Its process id, on its node.
            public var pid: Int32
            /// How many ranks of the job run on its node (rank 0's included, when it shares it).
            public var ranksOnNode: Int
            /// The CPUs it may run on (its binding, if the launcher bound it: its workers inherit it).
            public var cpus: Int
            /// How many workers it runs for a cluster pool of default size.
            public var defaultWorkers: Int
        }

        /// The node agents of the MPI job this program runs as, in rank order, when it does and
        /// this is rank 0 (waiting up to a minute for every rank to report); empty without an MPI
        /// launcher.
        public static var clusterAgents: [ClusterAgent] {
            guard let parent = ClusterParent.current, let agents = parent.agents(timeout: .seconds(60)) else {
                return []
            }
            let quota = Cluster.mpi.quota(for: agents, processes: nil)
            return agents.map {
                ClusterAgent(
                    rank: $0.rank, host: $0.host, pid: $0.pid, ranksOnNode: $0.ranksOnNode, cpus: $0.cpus,
                    defaultWorkers: quota[$0.rank] ?? 0)
            }
        }

        /// The transport of a cluster pool on rank 0 of an MPI job, or nil when the pool runs its
        /// workers on this machine (no launcher, or no other rank).
        static func clusterTransport(
            _ cluster: Cluster, configuration: Configuration, startFrame: [UInt8]
        ) throws(PoolError) -> (ClusterTransport, processes: Int)? {
            guard let parent = ClusterParent.current else {
                if ClusterLaunch.launchedRank != nil {
                    throw PoolError(
                        .invalidArgument,
                        "a cluster pool under an MPI launcher needs Pool.bootstrap(serving:) on the first line "
                            + "of main: it makes every rank but 0 a node agent")
                }
                return nil
            }
            guard parent.endpoint.size > 1 else { return nil }
            let wait = configuration.startTimeout ?? Pool.defaultStartTimeout
            guard let agents = parent.agents(timeout: wait) else {
                throw PoolError(
                    .spawnFailed,
                    "the MPI job's \(parent.endpoint.size - 1) node agents did not all report within \(wait): "
                        + "every rank must run the same program, with Pool.bootstrap(serving:) first in main")
            }
            let quota = cluster.quota(for: agents, processes: configuration.processes)
            let setup = ClusterMessage.PoolSetup(
                startFrame: startFrame, workerMemoryLimit: configuration.workerMemoryLimit,
                maxMemoryPerChild: configuration.maxMemoryPerChild,
                executable: configuration.executable ?? Pool.defaultExecutable.withLock { $0 },
                arguments: configuration.arguments, crashReports: configuration.crashReports)
            let transport = ClusterTransport(
                parent: parent, agents: agents.filter { quota[$0.rank] != nil }, quota: quota, setup: setup,
                startWait: wait, logger: Pool.logger(configuration))
            return (transport, quota.values.reduce(0, +))
        }
    }
#endif
