// When a caller's thread and the worker it waits for keep sharing a CPU while lone calls go back
// and forth, the caller tries another CPU, and comes back if that was worse.
//
// A fresh pool's worker starts on its parent's CPU (or is woken onto it), and a loop of lone
// calls (`apply` after `apply`) then keeps the two there: each spins for the other and yields
// its CPU to it (CPUNotes.swift), so neither sleeps, no wake-up places either anew, and the
// kernel's load balancer leaves threads that ran a moment ago where they are. In `pool-workloads
// lone-rounds` (3 rounds of 2,000 lone calls on a fresh pool) 8 of 24 pools ran their second round
// that way, at a median of 5.5–7.2 µs a call, the other CPU idle; the others at 1.5–3.4 µs. With
// the moves below: 1 of 24 (see "Latency" in PerformanceAndChunksize.md).
//
// So the caller's side counts the lone calls in a row whose worker it found on its own CPU, and
// after ``callsBeforeMove`` of them moves its thread to another CPU (its affinity mask without
// this CPU, then the mask as it was; a thread allowed one CPU never moves). Where the other CPUs
// are busy, a move is worse than sharing one with the worker (the caller waits for the other
// CPU's work, milliseconds at a time): the calls after the move are on trial, and once they have
// waited longer than the shared calls before it did, the thread goes back to the CPU it left and
// the next try waits twice as long (``shortestBackoff`` up to ``longestBackoff``). A move whose
// ``trialCalls`` calls waited less holds. Before it moves, the caller looks whether another CPU
// is idle at all (no thread runnable but itself and the worker, in one of three looks at
// `/proc/loadavg`); when none is, it stays, and looks again after the backoff. No move while the
// pool's workers start either: a starting worker (loading the program, milliseconds of CPU) holds
// the other CPU then.

/// The record of lone calls whose worker shared the caller's CPU, and of the caller's moves: a
/// pure state machine, kept by the transport under a lock (``LocalTransport/colocation``).
struct Colocation: Sendable {
    /// Lone calls in a row with the worker on the caller's CPU before the caller moves.
    static let callsBeforeMove = 16
    /// The calls after a move that decide whether it holds.
    static let trialCalls = 16
    /// The shortest time between two tries (after a move that held), in nanoseconds.
    static let shortestBackoff: Int64 = 10_000_000
    /// The longest time between two tries (after moves that did not hold).
    static let longestBackoff: Int64 = 1_000_000_000

    /// What the caller does after a call.
    enum Action: Equatable {
        case stay
        /// Move off the CPU it runs on; then ``moved(_:from:at:)`` or ``declined(at:)``.
        case moveOff
        /// Go back to this CPU: the move made its calls wait longer.
        case moveBack(to: Int32)
    }

    private enum Phase {
        /// Counting the shared calls in a row, and how long they waited (nanoseconds).
        case watching(sharedInARow: Int, waited: Int64)
        /// Thread `mover` moved off CPU `from`; its calls since, how long they waited, against
        /// how long the shared calls before the move did.
        case trying(mover: ThreadIdentity, from: Int32, calls: Int, waited: Int64, before: Int64)
    }

    private var phase = Phase.watching(sharedInARow: 0, waited: 0)
    /// When the caller last moved, or last found it should not.
    private var lastTry: Int64?
    /// How long after a try the next may come.
    private(set) var backoff = Colocation.shortestBackoff

    /// Whether a call that did not share its CPU changes nothing: no shared calls counted, no
    /// move on trial (the caller then skips ``callEnded(shared:waited:now:thread:)``).
    var isIdle: Bool {
        if case .watching(0, _) = phase { return true }
        return false
    }

    /// A lone call's wait ended at `now` (monotonic nanoseconds) after `waited` nanoseconds, on
    /// `thread`; `shared`: its worker was seen on the caller's CPU meanwhile.
    mutating func callEnded(shared: Bool, waited: Int64, now: Int64, thread: ThreadIdentity) -> Action {
        switch phase {
        case .watching(let inARow, let total):
            guard shared else {
                phase = .watching(sharedInARow: 0, waited: 0)
                return .stay
            }
            phase = .watching(sharedInARow: inARow + 1, waited: total + waited)
            guard inARow + 1 >= Colocation.callsBeforeMove else { return .stay }
            if let lastTry, now - lastTry < backoff { return .stay }
            return .moveOff
        case .trying(let mover, let from, let calls, let total, let before):
            // Another thread's calls say nothing of this move.
            guard thread == mover else { return .stay }
            if total + waited > before {
                phase = .watching(sharedInARow: 0, waited: 0)
                backoff = min(backoff * 2, Colocation.longestBackoff)
                return .moveBack(to: from)
            }
            if calls + 1 >= Colocation.trialCalls {
                phase = .watching(sharedInARow: 0, waited: 0)
                backoff = Colocation.shortestBackoff
            } else {
                phase = .trying(mover: mover, from: from, calls: calls + 1, waited: total + waited, before: before)
            }
            return .stay
        }
    }

    /// `thread` moved off CPU `cpu` at `now` (after ``Action/moveOff``): its next calls are on trial.
    mutating func moved(_ thread: ThreadIdentity, from cpu: Int32, at now: Int64) {
        guard case .watching(_, let waited) = phase else { return }
        lastTry = now
        phase = .trying(mover: thread, from: cpu, calls: 0, waited: 0, before: waited)
    }

    /// The caller did not move after ``Action/moveOff`` at `now` (it could not, or should not
    /// yet): the count starts over, and the next try waits for the backoff.
    mutating func declined(at now: Int64) {
        lastTry = now
        phase = .watching(sharedInARow: 0, waited: 0)
    }
}
