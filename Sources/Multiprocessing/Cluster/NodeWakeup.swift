// How the ranks of one node wake each other: every rank has a word in memory the node's ranks
// share (an MPI shared-memory window, see the CMPI shim). A rank's MPI thread about to sleep marks
// its word and sleeps on it (a futex); whoever gives it something to do (another rank of the node
// after sending it a message, a thread of its own after filling its outbox) looks at the word and
// wakes it when it sleeps. A message from a rank on another node comes with no wake-up: a rank
// that can hear from such a rank sleeps in short steps (see ClusterEndpoint.swift).

#if MPI
    import CMPI

    struct NodeWakeup: @unchecked Sendable {
        /// Each world rank's word, when that rank shares this node.
        private let words: [UnsafeMutablePointer<UInt32>?]
        /// This rank's word: its own memory when MPI gives no shared window.
        let own: UnsafeMutablePointer<UInt32>

        /// Maps the node's words. Collective: every rank calls it once, on its MPI thread.
        init(rank: Int, size: Int) {
            var words = [UnsafeMutablePointer<UInt32>?](repeating: nil, count: size)
            if words.withUnsafeMutableBufferPointer({ cmp_mpi_node_wake_words($0.baseAddress) }) != 0 {
                words = Array(repeating: nil, count: size)
            }
            if let own = words[rank] {
                self.own = own
            } else {
                // Only this process's threads wake it then (never freed: it lives as long as MPI).
                let own = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
                own.initialize(to: 0)
                self.own = own
            }
            self.words = words
        }

        /// Whether rank `rank` shares this node's words (and so wakes this rank, and is woken).
        func sharesNode(_ rank: Int) -> Bool { words.indices.contains(rank) && words[rank] != nil }

        /// Wakes rank `rank` if it shares this node and sleeps.
        func poke(_ rank: Int) {
            guard words.indices.contains(rank), let word = words[rank] else { return }
            _ = cmp_wake_word_poke(word)
        }

        /// Wakes this rank's MPI thread if it sleeps.
        func pokeOwn() { _ = cmp_wake_word_poke(own) }

        /// Marks this rank as going to sleep: after this, the caller takes a last look for work,
        /// then ``sleep(for:)``.
        func prepareToSleep() { cmp_wake_word_sleeping(own) }

        /// Sleeps until woken or for `duration`, unless woken since ``prepareToSleep()``; then
        /// marks this rank awake. Returns whether it was woken.
        func sleep(for duration: Duration) -> Bool {
            let (seconds, attoseconds) = duration.components
            let microseconds = max(1, seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
            let woken = cmp_wake_word_wait(own, Int(microseconds)) != 0
            cmp_wake_word_awake(own)
            return woken
        }

        /// Marks this rank as polled by a borrower of its MPI role: its senders need not wake it,
        /// and its MPI thread parks.
        func markPolled() { cmp_wake_word_polled(own) }

        /// Whether this rank's word says a borrower polls for it.
        var isPolled: Bool { cmp_wake_word_is_polled(own) != 0 }

        /// Sleeps while a borrower of the MPI role polls in this thread's place (the word says so
        /// until the borrower marks the rank asleep, handing the role back), or until woken, or
        /// for `duration`.
        func park(for duration: Duration) {
            let (seconds, attoseconds) = duration.components
            let microseconds = max(1, seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
            cmp_wake_word_park(own, Int(microseconds))
        }

        /// Marks this rank awake without sleeping (the last look found work).
        func cancelSleep() { cmp_wake_word_awake(own) }
    }
#endif
