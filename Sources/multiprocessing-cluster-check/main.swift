// The cluster pool's checks, run under a real `mpiexec` (the package's `MPI` trait):
//
//   mpiexec -n 3 multiprocessing-cluster-check behaviour
//
// Rank 0 runs the pool behaviour checks against a cluster pool whose workers live under the
// other ranks (node agents), printing "ok <check>" or "FAIL <check>: <why>" for each and
// "passed <n>" / "failed <n>" at the end (exit status 1 if any failed). Scenarios:
//   behaviour     the Pool API on the cluster: apply, map, starmap, imap, the async forms,
//                 callbacks, an initializer in every worker, registered errors, large payloads,
//                 maxTasksPerChild, workers named by node
//   faults        a worker SIGKILLed mid-map, a trap, a task timeout, a cancelled task: each fails
//                 only its task, the worker is replaced on its node, the pool goes on
//   idle          an idle cluster pool for 3 s: every process's CPU time grows by under 0.15 s
//   start-failures
//                 pools the agents cannot start (an agent out of descriptors, a missing worker
//                 program) fail Pool(...) with spawnFailed at once, naming the agent; the agents
//                 serve the next pool
//   kill-agent    kills the last agent rank during a map: the job must end (mpiexec's exit),
//                 never hang; prints "killing <pid>" first
//   exit-with-pool
//                 rank 0 exits with a pool it never terminated: the job must end at once, its
//                 workers gone
//   exit-while-starting
//                 rank 0 exits right after creating a pool whose agents are still starting its
//                 workers: the job must end at once, every worker gone
//   local         run without mpiexec: the same cluster pool runs its workers on this machine
//   wakeup        (with MULTIPROCESSING_MPI_MAX_SLEEP_US=200000) five calls, each after 0.7 s of
//                 idleness: each answered within 60 ms (a sleeping agent is woken, not polled)
//   environment   an agent's workers carry no launcher variables (OMPI_*, PMIX_*, PMI_*,
//                 SLURM_NODELIST) and keep the job's others (SLURM_JOB_ID under srun)

import Multiprocessing
import MultiprocessingTestSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

Pool.bootstrap(serving: TestFunctions.all, errorTypes: [TestFailure.self])

#if MPI
    let scenario = CommandLine.arguments.dropFirst().first ?? "behaviour"
    let checks = ClusterChecks()
    switch scenario {
    case "behaviour": await checks.behaviour()
    case "faults": await checks.faults()
    case "idle": checks.idle()
    case "start-failures": checks.startFailures()
    case "kill-agent": checks.killAgent()
    case "local": checks.local()
    case "wakeup": checks.wakeup()
    case "environment": checks.environment()
    case "exit-with-pool": checks.exitWithPool()
    case "exit-while-starting": checks.exitWhileStarting()
    default:
        print("unknown scenario \(scenario)")
        exit(2)
    }
    let status = checks.finish()
    fflush(nil)
    exit(status)
#else
    print("multiprocessing-cluster-check: built without the MPI trait (swift build --traits MPI)")
    exit(2)
#endif
