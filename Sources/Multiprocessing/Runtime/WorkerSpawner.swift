// The local transport's spawner: a thread of its own that starts the workers the scheduler asks
// for, so that the I/O thread never waits in `posix_spawn`.
//
// `posix_spawn` returns only once its child has exec'd, and then its caller must get a core
// again: on a machine whose cores are busy (workers starting up, 5 ms of CPU each) that took
// 6–8 ms, during which an I/O thread that spawns reads no result of any other worker. The spawner
// does the waiting instead. What it starts goes to the I/O thread (`Channels.spawned`), which
// registers it (its pipes in the epoll set, its reader and task channel) and reports it.
//
// A worker's parent-death signal follows the thread that spawned it: the spawner lives until the
// I/O thread has seen every worker gone (it ends after the event loop, never before).

import Dispatch
import Synchronization

extension LocalTransport {
    /// A worker the spawner started, with the parent's ends of its channels, each owned by the
    /// holders that share it from here on.
    struct SpawnedHandles: Sendable {
        var pid: Int32
        var pidFD: SharedDescriptor?
        var resultFD: SharedDescriptor
        var stderrFD: SharedDescriptor
        var taskFD: SharedDescriptor
        var shared: SharedChannel
    }

    /// What became of one spawn request.
    struct SpawnOutcome: Sendable {
        var id: WorkerID
        var result: Result<SpawnedHandles, PoolError>
    }

    /// Starts the spawner's thread.
    /// - Throws: ``SystemError`` from `pthread_create`.
    func startSpawner() throws {
        try startDetachedThread(name: "multiprocessing") { [self] in runSpawner() }
    }

    /// Wakes the spawner: a request is queued, or the event loop has ended.
    func wakeSpawner() {
        spawnerWake.signal()
    }

    private func runSpawner() {
        // Its children get the default slice again (see `requestTimeSlice`).
        requestTimeSlice(LocalTransport.ioSlice)
        while true {
            spawnerWake.wait()
            let (ids, ended) = channels.withLock { channels in
                defer { channels.spawnQueue.removeAll() }
                return (channels.spawnQueue, channels.loopEnded)
            }
            if ended { return }
            for id in ids {
                let outcome = SpawnOutcome(id: id, result: spawnOne())
                channels.withLock { $0.spawned.append(outcome) }
                wakeLoop()
            }
        }
    }

    /// Starts one worker: its shared memory, its pipes, the process.
    /// - Parameter again: whether this is the second try, after the fork server gave no clear
    ///   answer (`ForkServer.abandonedCall`): new channels, spawned.
    private func spawnOne(again: Bool = false) -> Result<SpawnedHandles, PoolError> {
        do {
            // The worker's data plane: the worker gets its memory file as fd 5, closed here once
            // passed (the mapping stays).
            let shared = try SharedChannel.create()
            defer { shared.file?.close() }
            let worker = try spawnWorker(
                executable: options.executable, arguments: options.arguments,
                droppingEnvironment: options.droppedEnvironment, adding: options.addedEnvironment,
                passing: [shared.file!.rawValue] + options.passedDescriptors,
                forkServer: ForkServer.serves(executable: options.executable, arguments: options.arguments)
                    ? options.logger : nil)
            return .success(
                SpawnedHandles(
                    pid: worker.pid, pidFD: SharedDescriptor.sharing(worker.pidFD),
                    resultFD: SharedDescriptor(worker.resultFD), stderrFD: SharedDescriptor(worker.stderrFD),
                    taskFD: SharedDescriptor(worker.taskFD), shared: shared))
        } catch let error where error.call == ForkServer.abandonedCall && !again {
            return spawnOne(again: true)
        } catch {
            let detail = "cannot start '\(options.executable)': \(error)"
            return .failure(PoolError(.spawnFailed, detail, underlying: error))
        }
    }
}
