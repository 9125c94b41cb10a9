// How a program finds out it runs as an MPI job, and what each rank becomes in `Pool.bootstrap`:
// rank 0 goes on with `main` as the parent (its endpoint started, so that the agents are told when
// the program ends), every other rank a node agent that never returns. A program that Slurm's
// `srun` started as one of several tasks with no MPI plugin (`--mpi=none`, often the site default)
// has no rank and no way to reach the others: it ends at once, saying so, instead of running
// `main` with a local pool in every task.

#if MPI
    import Synchronization

    enum ClusterLaunch {
        /// The environment variables an MPI launcher sets for a rank, by prefix (Open MPI, PMIx,
        /// PMI-1/2), and Slurm's `SLURM_NODELIST`. A node agent's worker inherits none of them: it
        /// would take itself for a rank, and with `SLURM_NODELIST` (and no PMIx server) Open MPI
        /// 4.1's `MPI_Init` takes a process for a task of `srun` and aborts instead of running it
        /// as a singleton. Slurm's other variables (the job's id, its nodes) stay.
        static let rankEnvironmentPrefixes = ["OMPI_", "PMIX_", "PMI_", "SLURM_NODELIST="]

        /// The variables a cluster pool's worker finds its agent's rank and node in.
        static let rankVariable = "MULTIPROCESSING_CLUSTER_RANK"
        static let nodeVariable = "MULTIPROCESSING_CLUSTER_NODE"

        /// How this process was started.
        enum Launch: Equatable {
            /// By no MPI launcher: the program runs its pools locally.
            case none
            /// As rank `rank` of an MPI job (`mpiexec`, `srun --mpi=pmix`, MPICH's hydra).
            case rank(Int)
            /// By `srun` as task `task` of `tasks` without an MPI plugin: no rank, no job to join.
            case srunWithoutMPI(task: Int, tasks: Int)
        }

        /// How a process with this environment, id and parent id was started. A launcher's rank
        /// variable wins; without one, Slurm's task variables of a step of several tasks
        /// (`SLURM_STEP_NUM_TASKS`, `SLURM_PROCID`) count only for the task itself or its direct
        /// child (`SLURM_TASK_PID`, which `srun` sets to the task's pid: a wrapper script's child
        /// is the program), not for a program further down that inherited them (a pool worker's
        /// child) nor for a batch script's programs (a batch step sets no `SLURM_STEP_NUM_TASKS`).
        static func launch(
            environment: (String) -> String?, processID: Int32, parentProcessID: Int32
        ) -> Launch {
            for name in ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"] {
                if let value = environment(name), let rank = Int(value) { return .rank(rank) }
            }
            guard let tasks = environment("SLURM_STEP_NUM_TASKS").flatMap({ Int($0) }), tasks > 1,
                let task = environment("SLURM_PROCID").flatMap({ Int($0) }),
                let taskPID = environment("SLURM_TASK_PID").flatMap({ Int32($0) }),
                taskPID == processID || taskPID == parentProcessID
            else { return .none }
            return .srunWithoutMPI(task: task, tasks: tasks)
        }

        /// How this process was started (see `launch(environment:processID:parentProcessID:)`).
        static var currentLaunch: Launch {
            launch(environment: environmentValue, processID: currentProcessID(), parentProcessID: parentProcessID())
        }

        /// This process's rank, when an MPI launcher (`mpiexec`, `srun`) started it.
        static var launchedRank: Int? {
            if case .rank(let rank) = currentLaunch { return rank }
            return nil
        }

        /// What a task that `srun` started without an MPI plugin says before it ends.
        static func srunWithoutMPIMessage(task: Int, tasks: Int) -> String {
            "Pool.bootstrap(serving:): srun started this program as task \(task) of \(tasks) without an MPI "
                + "plugin, so it has no rank in an MPI job: run it with srun --mpi=pmix (srun --mpi=list shows "
                + "the plugins; Open MPI needs pmix), or with srun -n 1 to run its pools on this node alone"
        }

        /// Called by `Pool.bootstrap` in a process that is not a pool worker: under an MPI launcher,
        /// ranks other than 0 become node agents here (and never return); rank 0 starts its end of
        /// the job. A task of `srun` without an MPI plugin ends here with a message.
        static func bootstrap() {
            switch currentLaunch {
            case .none:
                return
            case .srunWithoutMPI(let task, let tasks):
                exitWithMessage(srunWithoutMPIMessage(task: task, tasks: tasks))
            case .rank:
                break
            }
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
