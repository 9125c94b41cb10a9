// The local transport's side of Colocation.swift: after each lone call's wait, the caller's
// thread reports whether its worker shared its CPU, and moves (or moves back) as the state
// machine says.

import Synchronization

extension LocalTransport {
    /// Whether callers move off a CPU they keep sharing with their worker (Colocation.swift):
    /// `MULTIPROCESSING_MOVE_OFF_SHARED_CPU=0` turns it off (read once, at start).
    static let movesOffSharedCPU = environmentValue(moveOffSharedCPUVariable) != "0"
    static let moveOffSharedCPUVariable = "MULTIPROCESSING_MOVE_OFF_SHARED_CPU"

    /// After a lone call's wait (which began at `start`; `shared`: the worker was seen on this
    /// thread's CPU meanwhile): moves this thread to another CPU, or back, as ``Colocation``
    /// decides, and notes where it went (`notes`, the call's channel's).
    func colocationCheck(shared: Bool, since start: MonotonicInstant, notes: CPUNotes) {
        // Most calls: not shared, nothing counted.
        guard LocalTransport.movesOffSharedCPU, shared || colocationActive.load(ordering: .relaxed) else { return }
        let now = MonotonicInstant.now.nanoseconds
        let thread = ThreadIdentity.current
        let action = updateColocation {
            $0.callEnded(shared: shared, waited: now - start.nanoseconds, now: now, thread: thread)
        }
        switch action {
        case .stay:
            return
        case .moveBack(let cpu):
            if moveToCPU(cpu) { notes.note() }
        case .moveOff:
            let cpu = currentCPU()
            if mayMoveOffSharedCPU() && moveOffCurrentCPU() {
                notes.note()
                updateColocation { $0.moved(thread, from: cpu, at: now) }
            } else {
                updateColocation { $0.declined(at: now) }
            }
        }
    }

    /// Whether a move may help: no worker starts (a starting worker takes the other CPU, loading
    /// the program), and another CPU is idle, as far as a look can tell: no thread of the machine
    /// runnable but this one and the worker, in one of three looks (a kernel thread may be
    /// runnable for a moment).
    private func mayMoveOffSharedCPU() -> Bool {
        guard channels.withLock({ $0.spawnsPending == 0 }),
            loopLock.withLockIfAvailable({ _ in loop.readers.allSatisfy { $0.value.ready } }) == true
        else { return false }
        return (0..<3).contains { _ in (runnableThreadCount() ?? .max) <= 2 }
    }

    /// Changes the state machine under its lock, and keeps ``colocationActive`` in step.
    private func updateColocation<R>(_ change: (inout Colocation) -> R) -> R {
        colocation.withLock { colocation in
            defer { colocationActive.store(!colocation.isIdle, ordering: .relaxed) }
            return change(&colocation)
        }
    }
}
