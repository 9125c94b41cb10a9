// How a program tells how it was launched (ClusterLaunch.launch): a launcher's rank variable
// (Open MPI's mpiexec, srun --mpi=pmix, MPICH's hydra) makes it a rank; a task that Slurm's srun
// started among several without an MPI plugin (`--mpi=none`) has no rank and must say so and end,
// not run `main` with a local pool in every task; Slurm variables that a program merely inherited
// (a pool worker's child, a batch script's program, a one-task step) change nothing. Built with
// the `MPI` trait only; needs no Slurm: the variables are the ones srun 22.05 sets (seen there).

#if MPI
    import Foundation
    import Testing

    @testable import Multiprocessing

    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    @Suite("How a program was launched")
    struct ClusterLaunchTests {
        /// The task variables of `srun -n <tasks>` for task `task`, whose pid is `taskPID`.
        static func srunTask(_ task: Int, of tasks: Int, pid taskPID: Int32) -> [String: String] {
            [
                "SLURM_JOB_ID": "20", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "\(tasks)",
                "SLURM_STEP_NUM_TASKS": "\(tasks)", "SLURM_PROCID": "\(task)", "SLURM_TASK_PID": "\(taskPID)",
            ]
        }

        static func launch(_ environment: [String: String], pid: Int32, parent: Int32) -> ClusterLaunch.Launch {
            ClusterLaunch.launch(environment: { environment[$0] }, processID: pid, parentProcessID: parent)
        }

        @Test("A launcher's rank variable makes the process that rank, beside Slurm's variables or not")
        func launcherRanks() {
            #expect(Self.launch(["OMPI_COMM_WORLD_RANK": "2"], pid: 10, parent: 1) == .rank(2))
            #expect(Self.launch(["PMI_RANK": "1", "PMI_FD": "11"], pid: 10, parent: 1) == .rank(1))
            let pmix = Self.srunTask(1, of: 3, pid: 10).merging(["PMIX_RANK": "1"]) { $1 }
            #expect(Self.launch(pmix, pid: 10, parent: 1) == .rank(1))
            #expect(Self.launch([:], pid: 10, parent: 1) == ClusterLaunch.Launch.none)
        }

        @Test("A task of srun without an MPI plugin is told apart, as itself or a wrapper script's child")
        func srunWithoutPlugin() {
            let task = Self.srunTask(2, of: 3, pid: 10)
            #expect(Self.launch(task, pid: 10, parent: 1) == .srunWithoutMPI(task: 2, tasks: 3))
            #expect(Self.launch(task, pid: 11, parent: 10) == .srunWithoutMPI(task: 2, tasks: 3))
        }

        @Test("Slurm variables a program only inherited, or of one task, leave it a local program")
        func inheritedSlurmVariables() {
            // A pool worker's child: its parent is the worker, not the task.
            #expect(Self.launch(Self.srunTask(2, of: 3, pid: 10), pid: 12, parent: 11) == .none)
            // `srun -n 1 ./app`.
            #expect(Self.launch(Self.srunTask(0, of: 1, pid: 10), pid: 10, parent: 1) == .none)
            // A program of a batch script (`sbatch -n 3`): the batch step sets no SLURM_STEP_NUM_TASKS.
            var batch = Self.srunTask(0, of: 3, pid: 10)
            batch["SLURM_STEP_NUM_TASKS"] = nil
            batch["SLURM_STEP_ID"] = nil
            #expect(Self.launch(batch, pid: 11, parent: 10) == .none)
        }

        @Test(
            "Started as a task of srun without an MPI plugin, Pool.bootstrap ends the program, saying why",
            .timeLimit(.minutes(1)),
            .disabled(if: TestBackend.isCluster, "this process is a rank there: its child would be one too"))
        func bootstrapEndsTheTask() throws {
            // The test worker as the child of this process, which plays the srun task.
            let (process, out, err) = try startParentProgram(
                ["chatty"], environment: Self.srunTask(1, of: 3, pid: getpid()))
            waitForExit(process, within: .seconds(30))
            let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(process.terminationReason == .exit && process.terminationStatus == 1, "\(stderr)")
            #expect(stderr.contains(ClusterLaunch.srunWithoutMPIMessage(task: 1, tasks: 3)), "\(stderr)")
            #expect(!stdout.contains("results"), "main ran: \(stdout)")
        }
    }
#endif
