// The cursor lock's bias (CursorLock.swift): the thread that takes owned turns (a stream read with
// `next(timeout:)`) becomes the lock's owner and takes them without the lock's word; another
// thread's turn revokes the bias for good (membarrier) and waits for the owner's turn to end, so
// the two still exclude each other; from then on every turn takes the word.

import Synchronization
import Testing

@testable import Multiprocessing

@Suite("Cursor lock bias", .offCooperativePool)
struct CursorLockBiasTests {
    @Test("A thread's word is its own: the same on one thread, another on another")
    func threadWords() {
        let mine = currentThreadWord()
        #expect(mine != 0 && mine == currentThreadWord())
        let other = Mutex<UInt>(0)
        Thread { other.withLock { $0 = currentThreadWord() } }.join()
        let theirs = other.withLock { $0 }
        #expect(theirs != 0 && theirs != mine)
    }

    @Test(
        "The first thread to take an owned turn becomes the owner; its turns then leave the word alone",
        .enabled(if: ProcessBarrier.isAvailable, "membarrier is not available here: the lock is never biased"))
    func ownerTakesTurnsWithoutTheWord() {
        let lock = CursorLock(0)
        #expect(!lock.bias.isBiased)
        lock.withOwnedLock { $0 += 1 }
        let owner = lock.bias.owner.load(ordering: .relaxed)
        #expect(owner == currentThreadWord())
        // An owned turn: the word stays free, the owner says it is in a turn.
        let seen = lock.withOwnedLock { value -> (word: UInt32, inTurn: Bool) in
            value += 1
            return (lock.word.load(ordering: .relaxed), lock.bias.inTurn.load(ordering: .relaxed))
        }
        #expect(seen.word == 0 && seen.inTurn)
        let inTurnAfter = lock.bias.inTurn.load(ordering: .relaxed)
        #expect(!inTurnAfter)
        // The owner's ordinary turns keep the bias.
        lock.withLock { $0 += 1 }
        #expect(lock.bias.isBiased)
        #expect(lock.withOwnedLock { $0 } == 3)
    }

    @Test(
        "Another thread's turn revokes the bias for good, in the middle of the owner's turns, and the two threads' turns still exclude each other",
        .enabled(if: ProcessBarrier.isAvailable, "membarrier is not available here: the lock is never biased"))
    func revocationExcludes() {
        // Many fresh locks: each revocation lands while the owner takes turns as fast as it can.
        for _ in 0..<20 {
            let lock = CursorLock(0)
            let plain = PlainCounter()
            let otherTurns = 100_000
            let owned = Atomic<Bool>(false)
            let otherDone = Atomic<Bool>(false)
            let ownerTurns = Atomic<Int>(0)
            let owner = Thread {
                var mine = 0
                // Goes on until the other thread has taken all its turns: the two overlap.
                while !otherDone.load(ordering: .acquiring) {
                    lock.withOwnedLock { count in
                        count += 1
                        plain.value += 1
                    }
                    mine += 1
                    if mine == 1 { owned.store(true, ordering: .releasing) }
                }
                ownerTurns.store(mine, ordering: .releasing)
            }
            // The other thread starts once the first owns the lock, and takes ordinary turns
            // (a cancel, a second reader) while the owner goes on with its own.
            while !owned.load(ordering: .acquiring) { yieldProcessor() }
            let other = Thread {
                for _ in 0..<otherTurns {
                    lock.withLock { count in
                        count += 1
                        plain.value += 1
                    }
                }
                otherDone.store(true, ordering: .releasing)
            }
            owner.join()
            other.join()
            let expected = ownerTurns.load(ordering: .acquiring) + otherTurns
            #expect(lock.withLock { $0 } == expected)
            #expect(plain.value == expected)
            #expect(!lock.bias.isBiased)
            let inTurnAfter = lock.bias.inTurn.load(ordering: .relaxed)
            #expect(!inTurnAfter)
            // Revoked for good: an owned turn is an ordinary one now, and makes no new owner.
            lock.withOwnedLock { $0 += 1 }
            #expect(!lock.bias.isBiased)
            let word = lock.word.load(ordering: .relaxed)
            #expect(word == 0)
        }
    }

    @Test("Two threads taking owned turns at once: one owns, the other revokes, and every turn is kept")
    func twoOwnedReaders() {
        let lock = CursorLock(0)
        let plain = PlainCounter()
        let turns = 300_000
        let threads = (0..<2).map { _ in
            Thread {
                for _ in 0..<turns {
                    lock.withOwnedLock { count in
                        count += 1
                        plain.value += 1
                    }
                }
            }
        }
        for thread in threads { thread.join() }
        #expect(lock.withLock { $0 } == 2 * turns)
        #expect(plain.value == 2 * turns)
    }
}
