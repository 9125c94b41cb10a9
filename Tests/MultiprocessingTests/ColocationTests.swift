// A caller that keeps sharing its CPU with the worker it waits for moves to another, and back
// when that was worse (Colocation.swift): the state machine's decisions, and the platform's move
// of a thread off its CPU and back, with its affinity mask as it was.

import Foundation
import Synchronization
import Testing

@testable import Multiprocessing

#if canImport(Glibc)
    import Glibc
#endif

/// Milliseconds in the state machine's nanoseconds.
private func ms(_ value: Int64) -> Int64 { value * 1_000_000 }

/// `count` lone calls of `waited` nanoseconds each on `thread`, ending at `now`; the last one's
/// action.
private func calls(
    _ count: Int, shared: Bool, waited: Int64 = 7_000, at now: Int64, on thread: ThreadIdentity = .current,
    into colocation: inout Colocation
) -> Colocation.Action {
    var last = Colocation.Action.stay
    for _ in 0..<count { last = colocation.callEnded(shared: shared, waited: waited, now: now, thread: thread) }
    return last
}

/// The calling thread's affinity mask, as its list of allowed CPUs ("0-1", "0,2-3": the
/// `Cpus_allowed_list` of /proc/thread-self/status).
private func allowedCPUs() -> String? {
    guard let file = fopen("/proc/thread-self/status", "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 512)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("Cpus_allowed_list:") {
            return text.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
    return nil
}

@Suite("A caller sharing its worker's CPU moves off it", .offCooperativePool)
struct ColocationTests {
    @Test("Only the sixteenth shared call in a row asks for a move; an unshared call starts the count over")
    func movesAfterSharedCallsInARow() {
        var colocation = Colocation()
        #expect(calls(Colocation.callsBeforeMove - 1, shared: true, at: ms(1), into: &colocation) == .stay)
        #expect(calls(1, shared: false, at: ms(1), into: &colocation) == .stay)
        #expect(calls(Colocation.callsBeforeMove - 1, shared: true, at: ms(1), into: &colocation) == .stay)
        #expect(calls(1, shared: true, at: ms(1), into: &colocation) == .moveOff)
    }

    @Test(
        "A move whose trial calls wait less than the shared calls before it holds; the next try comes after the shortest backoff"
    )
    func moveThatHolds() {
        var colocation = Colocation()
        #expect(
            calls(Colocation.callsBeforeMove, shared: true, waited: 7_000, at: ms(1), into: &colocation) == .moveOff)
        colocation.moved(.current, from: 0, at: ms(1))
        // Apart now: 2 µs a call, against 7 before.
        #expect(calls(Colocation.trialCalls, shared: false, waited: 2_000, at: ms(2), into: &colocation) == .stay)
        #expect(colocation.backoff == Colocation.shortestBackoff)
        // Together again: no try before the backoff since the move has passed.
        #expect(calls(Colocation.callsBeforeMove, shared: true, at: ms(5), into: &colocation) == .stay)
        #expect(calls(Colocation.callsBeforeMove, shared: true, at: ms(11), into: &colocation) == .moveOff)
    }

    @Test(
        "A move whose calls wait longer than the shared calls before it goes back, and the backoff doubles up to its longest"
    )
    func moveThatDoesNotHold() {
        var colocation = Colocation()
        var now = ms(1)
        var backoff = Colocation.shortestBackoff
        for _ in 0..<12 {
            #expect(
                calls(Colocation.callsBeforeMove, shared: true, waited: 7_000, at: now, into: &colocation) == .moveOff)
            colocation.moved(.current, from: 3, at: now)
            // One call that waited a slice of another thread's: longer than all 16 shared calls.
            #expect(
                colocation.callEnded(shared: false, waited: ms(3), now: now + ms(3), thread: .current)
                    == .moveBack(to: 3))
            backoff = min(backoff * 2, Colocation.longestBackoff)
            #expect(colocation.backoff == backoff)
            // Not before the backoff has passed since the move.
            #expect(calls(Colocation.callsBeforeMove, shared: true, at: now + backoff - 1, into: &colocation) == .stay)
            now += backoff
        }
        #expect(colocation.backoff == Colocation.longestBackoff)
    }

    @Test("Another thread's calls during a move's trial neither count for it nor end it")
    func otherThreadsDuringTrial() {
        var colocation = Colocation()
        #expect(calls(Colocation.callsBeforeMove, shared: true, at: ms(1), into: &colocation) == .moveOff)
        colocation.moved(.current, from: 1, at: ms(1))
        // A thread that has ended: its identity is only compared.
        let seen = Mutex<ThreadIdentity?>(nil)
        let thread = Thread { seen.withLock { $0 = .current } }
        thread.join()
        let other = seen.withLock { $0 }!
        #expect(!(other == .current))
        // The other thread's long waits do not send this one back.
        #expect(
            calls(Colocation.trialCalls * 2, shared: true, waited: ms(5), at: ms(2), on: other, into: &colocation)
                == .stay)
        // This thread's trial goes on where it was: one long wait sends it back.
        #expect(colocation.callEnded(shared: false, waited: ms(1), now: ms(3), thread: .current) == .moveBack(to: 1))
    }

    @Test("A declined move starts the count over and waits for the backoff")
    func declinedMove() {
        var colocation = Colocation()
        #expect(calls(Colocation.callsBeforeMove, shared: true, at: ms(1), into: &colocation) == .moveOff)
        colocation.declined(at: ms(1))
        #expect(calls(Colocation.callsBeforeMove, shared: true, at: ms(2), into: &colocation) == .stay)
        #expect(calls(Colocation.callsBeforeMove, shared: true, at: ms(11), into: &colocation) == .moveOff)
        #expect(colocation.backoff == Colocation.shortestBackoff)
    }

    @Test(
        "A thread moved off its CPU runs on another, moves back to a named one, and keeps its affinity mask",
        .enabled(if: availableCPUCount() > 1, "needs two CPUs the process may run on"))
    func platformMoves() {
        do {
            let mask = allowedCPUs()
            #expect(mask != nil)
            let start = currentCPU()
            #expect(moveOffCurrentCPU())
            // The kernel moves the thread before the call returns.
            let moved = currentCPU()
            #expect(moved != start)
            #expect(allowedCPUs() == mask)
            #expect(moveToCPU(start))
            #expect(currentCPU() == start)
            #expect(allowedCPUs() == mask)
            // A CPU the mask does not allow (none has this number): no move.
            #expect(!moveToCPU(4096))
            #expect(allowedCPUs() == mask)
        }
    }

    @Test("The machine's runnable threads are counted, this one among them")
    func runnableThreads() throws {
        let count = try #require(runnableThreadCount())
        #expect(count >= 1)
    }
}
