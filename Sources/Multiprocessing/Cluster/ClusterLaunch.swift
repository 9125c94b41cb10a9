// How a program finds out it runs as an MPI job, and what each rank becomes in `Pool.bootstrap`:
// rank 0 goes on with `main` as the parent (its endpoint started, so that the agents are told when
// the program ends), every other rank a node agent that never returns.

#if MPI
    import Synchronization

    enum ClusterLaunch {
        /// The environment variables an MPI launcher sets for a rank, by prefix (Open MPI, PMIx,
        /// PMI-1/2). A worker process inherits none of them: it would take itself for a rank.
        static let rankEnvironmentPrefixes = ["OMPI_", "PMIX_", "PMI_"]

        /// The variables a cluster pool's worker finds its agent's rank and node in.
        static let rankVariable = "MULTIPROCESSING_CLUSTER_RANK"
        static let nodeVariable = "MULTIPROCESSING_CLUSTER_NODE"

        /// This process's rank, when an MPI launcher (`mpiexec`, `srun`) started it.
        static var launchedRank: Int? {
            for name in ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"] {
                if let value = environmentValue(name), let rank = Int(value) { return rank }
            }
            return nil
        }

        /// Called by `Pool.bootstrap` in a process that is not a pool worker: under an MPI launcher,
        /// ranks other than 0 become node agents here (and never return); rank 0 starts its end of
        /// the job.
        static func bootstrap() {
            guard launchedRank != nil else { return }
            let endpoint: ClusterEndpoint
            do {
                endpoint = try ClusterEndpoint.start()
            } catch {
                fatalError("Pool.bootstrap(serving:): MPI could not be initialized: \(error)")
            }
            if endpoint.rank != 0 {
                NodeAgent.serve(endpoint: endpoint)
            }
            ClusterParent.install(ClusterParent(endpoint: endpoint))
        }
    }
#endif
