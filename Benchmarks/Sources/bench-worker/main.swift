// bench-worker: the worker program of the PoolMicro micro-benchmarks. package-benchmark writes the
// benchmark executable's `main` itself, so that program cannot call `Pool.bootstrap` first thing;
// its pools start this one instead (`Pool(processes:executable:)`), which the benchmark finds
// beside its own executable. It measures nothing itself: run by hand, it prints what it is for.

import Multiprocessing
import PoolMicroFunctions

Pool.bootstrap(serving: MicroFunctions.all)

print("bench-worker: the worker of the PoolMicro benchmarks; it serves tasks only as a pool worker.")
