// The `environment` scenario: what a node agent's workers inherit. None of the variables that make
// a process a rank (Open MPI's OMPI_*, PMIx's PMIX_*, PMI's PMI_*), nor Slurm's SLURM_NODELIST:
// with it Open MPI 4.1's MPI_Init in a worker (a pool function using an MPI library on its own)
// refuses to run as a singleton ("direct launched using srun" and an abort), which it does under
// mpiexec. What else the job set stays: under srun, the job's id (SLURM_JOB_ID).

#if MPI
    import Multiprocessing
    import MultiprocessingTestSupport

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    extension ClusterChecks {
        func environment() {
            guard let pool = scenarioPool() else { return }
            defer { pool.stop() }
            let dropped = ["OMPI_", "PMIX_", "PMI_", "SLURM_NODELIST="]
            let kept = ["SLURM_JOB_ID=", "MULTIPROCESSING_CLUSTER_RANK="]
            check("an agent's workers carry no launcher variables (OMPI_, PMIX_, PMI_, SLURM_NODELIST)") {
                let seen = try pool.map(TestFunctions.environmentMatching, Array(repeating: dropped, count: 16))
                let found = Set(seen.joined())
                try expect(found.isEmpty, "workers have \(found.sorted().prefix(5).joined(separator: " "))")
            }
            check("an agent's workers keep the job's other variables and are told their agent's rank") {
                let seen = try pool.map(TestFunctions.environmentMatching, Array(repeating: kept, count: 16))
                let underSlurm = getenv("SLURM_JOB_ID") != nil
                for variables in seen {
                    try expect(
                        variables.contains { $0.hasPrefix("MULTIPROCESSING_CLUSTER_RANK=") },
                        "a worker has no MULTIPROCESSING_CLUSTER_RANK: \(variables)")
                    try expect(
                        !underSlurm || variables.contains { $0.hasPrefix("SLURM_JOB_ID=") },
                        "a worker under srun lost SLURM_JOB_ID: \(variables)")
                }
            }
        }
    }
#endif
