// The fork server (`Pool.StartMethod.forkServer`), process-wide: started once by
// `Pool.bootstrap`, asked for workers by every pool's spawner, given up for good (pools spawn
// from then on) once it stops answering.
//
// Who is a forked worker's parent: the pool's process, as for a spawned worker. The zygote clones
// each worker with CLONE_PARENT (fork_server.c), so the pool reaps it with waitpid, reads its
// exit status and crash as today, and the worker dies with the pool's process
// (PR_SET_PDEATHSIG, set by the worker for its own parent), not with the zygote: a zygote that
// dies takes no running worker with it. (The other way, workers as the zygote's children, would
// need their statuses relayed; a double fork under PR_SET_CHILD_SUBREAPER would make every
// orphan of every descendant of the user's program its zombie.)

import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

enum ForkServer {
    enum State {
        /// `Pool.bootstrap` did not ask for one (or has not run).
        case notRequested
        case running(socket: Int32, pid: pid_t)
        /// Asked for and unavailable, or gone: why (logged once, at debug, by the first pool
        /// that would have used it).
        case unavailable(String, logged: Bool)
    }

    /// The environment variable that chooses the start method, over `bootstrap`'s argument.
    static let environmentKey = "MULTIPROCESSING_START_METHOD"

    /// Held for the whole of a request: one at a time on the socket.
    static let state = Mutex(State.notRequested)

    /// The start method `requested`, or the one the environment names.
    static func method(requested: Pool.StartMethod) -> Pool.StartMethod {
        guard let raw = getenv(environmentKey) else { return requested }
        switch String(cString: raw).lowercased() {
        case "forkserver", "fork-server", "fork_server": return .forkServer
        case "spawn": return .spawn
        default: return requested
        }
    }

    /// Starts the zygote when `method` asks for it. In the pool's process it returns false; in a
    /// new worker (a copy of the zygote) true, with the worker's environment set: the caller goes
    /// on as a spawned worker does in `Pool.bootstrap`.
    /// Touches no lock before the fork: a worker's main thread is a copy of this one.
    static func start(_ method: Pool.StartMethod) -> Bool {
        guard method == .forkServer else { return false }
        let outcome = startForkServerProcess()
        switch outcome {
        case .worker:
            return true
        case .started(let socket, let pid):
            state.withLock { $0 = .running(socket: socket, pid: pid) }
        case .unavailable(let reason):
            state.withLock { $0 = .unavailable(reason, logged: false) }
        }
        return false
    }

    /// Whether a pool whose workers run `executable` with `arguments` may be served by the
    /// zygote: the program itself, with its own arguments (what a copy of it has).
    static func serves(executable: String, arguments: [String]) -> Bool {
        guard case .running = state.withLock({ $0 }) else { return false }
        return arguments == Array(CommandLine.arguments.dropFirst()) && isCurrentExecutable(executable)
    }

    /// What asking the zygote for a worker came to.
    enum ForkOutcome {
        /// The worker runs: its pid, a child of this process.
        case forked(pid_t)
        /// No worker was made: spawn one with the same channels.
        case spawn
        /// The zygote got the request and gave no clear answer (it timed out, or died on it): a
        /// worker it cloned may hold the channels, so the caller makes new ones to spawn with.
        /// The zygote is given up.
        case abandoned(SystemError)
    }

    /// The `call` of the error ``forkWorker(environment:stderr:tasks:results:passing:logger:)``'s
    /// `.abandoned` outcome makes `spawnWorker` throw, for its caller to start over with new
    /// channels.
    static let abandonedCall = "fork server request (abandoned: its channels may be held)"

    /// A worker from the zygote, or what to do instead. A zygote that does not answer, is gone
    /// or cannot clone (ENOSYS: a seccomp filter, say) is given up: killed, reaped and never
    /// asked again; a worker it cloned for a request that gave up waiting, if its reply is there
    /// by then, is killed and reaped too.
    static func forkWorker(
        environment: [String], stderr: Int32, tasks: Int32, results: Int32, passing passed: [Int32],
        logger: Logger
    ) -> ForkOutcome {
        state.withLock { state -> ForkOutcome in
            switch state {
            case .notRequested:
                return .spawn
            case .unavailable(let reason, let logged):
                if !logged {
                    logger.debug("workers are spawned: no fork server", metadata: ["reason": "\(reason)"])
                    state = .unavailable(reason, logged: true)
                }
                return .spawn
            case .running(let socket, let zygote):
                let failure: ForkRequestFailure
                switch requestForkedWorker(
                    socket: socket, environment: environment, stderr: stderr, tasks: tasks, results: results,
                    passing: passed)
                {
                case .success(let pid): return .forked(pid)
                case .failure(let f): failure = f
                }
                let gone = [EPIPE, ECONNRESET, ENOTCONN, ECONNREFUSED, ETIMEDOUT, ENOSYS].contains(failure.error.errno)
                guard gone || failure.mayHaveCloned else {
                    // The zygote's own passing failure (EAGAIN: a process limit, say): this
                    // worker is spawned, the next asked for again.
                    logger.debug(
                        "the fork server could not fork a worker: it is spawned",
                        metadata: ["error": "\(failure.error)"])
                    return .spawn
                }
                kill(zygote, SIGKILL)
                var status: Int32 = 0
                _ = waitpid(zygote, &status, 0)
                if failure.mayHaveCloned, let late = lateForkedWorker(socket: socket) {
                    kill(late, SIGKILL)
                    _ = waitpid(late, &status, 0)
                }
                close(socket)
                logger.debug(
                    "the fork server is given up: workers are spawned from now on",
                    metadata: ["pid": "\(zygote)", "error": "\(failure.error)"])
                state = .unavailable("the fork server (pid \(zygote)) was given up: \(failure.error)", logged: true)
                return failure.mayHaveCloned
                    ? .abandoned(SystemError(call: abandonedCall, errno: failure.error.errno)) : .spawn
            }
        }
    }
}
