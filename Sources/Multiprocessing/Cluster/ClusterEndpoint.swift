// This process's end of the MPI job: the MPI thread, which makes the MPI calls, with an outbox
// other threads fill. One thread at a time makes them (`MPI_THREAD_SERIALIZED`), the holder of the
// *MPI role*: the MPI thread takes it for each turn of its loop; a thread with a message to send
// takes it, when it is free, to start the send itself; a lone call's caller on rank 0 borrows it
// while it waits for its result, and so sends its task and receives its result on its own thread
// (two hand-overs between threads fewer a round trip). No thread ever waits for the role: one
// that finds it taken leaves the work to the holder (the outbox). While a borrower polls, the MPI
// thread parks, and the rank's wake-up word says "polled", so that its senders do not wake it;
// the borrower, handing the role back, marks the word "asleep", takes a last look and wakes the
// MPI thread for what is left (see `endBorrow`).
//
// A logical message is a list of byte buffers (a message head, then the arrays that travel after a
// frame). On the wire, every message of the job has one tag, so MPI keeps each sender's messages in
// order: an envelope (the buffers' lengths, and the buffers themselves when they are small), then,
// for a large message, each buffer in parts of at most `MPI.maxMessageBytes`, received straight
// into its own array.
//
// The thread polls (`MPI_Improbe`, `MPI_Test`): it spins, yielding the processor, for a short
// while after any activity, then sleeps, so that an idle rank costs almost nothing. A message put
// in the outbox wakes it at once, and so does a message from a rank of the same node (that rank
// wakes it after the send, see NodeWakeup.swift): a rank whose every sender shares its node sleeps
// up to `wokenSleep` (or to its handler's next deadline). A rank that may hear from a rank on
// another node, which cannot wake it, sleeps in growing steps instead (from 10 µs up to
// `maxSleep`; after a second of idleness, `longIdleSleep`), so that such a message waits little
// more than the time the rank has been idle.
//
// The threads that relay (this one, `relaySlice`; on an agent, its local transport's I/O thread
// too, which asks for its own, `LocalTransport.ioSlice`, as every pool's does) ask the kernel for
// a short time slice: woken while the node's workers compute on every
// core, such a thread preempts one at once instead of queueing behind it for up to its slice,
// which made every task of a CPU-bound map wait milliseconds for the next.

#if MPI
    import CMPI
    import Dispatch
    import Synchronization

    final class ClusterEndpoint: Sendable {
        /// The tag of every message of the job.
        static let tag: Int32 = 0x6d70
        /// Messages received in one turn of the loop at most, before it looks at its handler and
        /// its sends again (a burst of results must not hold off a deadline).
        static let messagesPerTurn = 256
        /// Buffers up to this size in all travel inside their envelope (one MPI message).
        static let inlineLimit = 64 * 1024
        /// How long the thread spins after activity before it starts sleeping;
        /// `MULTIPROCESSING_MPI_SPIN_US` sets it (microseconds).
        static let spin: Duration = tuning("MULTIPROCESSING_MPI_SPIN_US", default: .microseconds(300))
        /// The longest sleep of a thread idle for less than `longIdle` (the latency of a message
        /// arriving from another rank then).
        /// `MULTIPROCESSING_MPI_MAX_SLEEP_US` sets it (microseconds; `longIdleSleep` is twice it).
        static let maxSleep: Duration = tuning("MULTIPROCESSING_MPI_MAX_SLEEP_US", default: .milliseconds(1))
        /// After this long without a message, sleeps grow to `longIdleSleep`: every wake-up costs a
        /// timer and two context switches (tens of microseconds on a virtual machine), and an idle
        /// rank must cost almost nothing.
        static let longIdle: Duration = .seconds(1)
        static let longIdleSleep: Duration = maxSleep * 2
        /// The time slice the MPI thread asks for (an agent's local I/O thread asks for
        /// `LocalTransport.ioSlice`); zero for the system's. On Linux 6.12+
        /// a woken thread with a shorter slice than the running one preempts it: the thread that
        /// relays a worker's result, or its next task, runs at once instead of waiting up to a
        /// slice (1.4 ms here) behind a worker computing on its core, or the other worker.
        /// `MULTIPROCESSING_MPI_SLICE_US` sets it (microseconds; the kernel keeps it within
        /// 100 µs–100 ms).
        static let relaySlice: Duration = tuning("MULTIPROCESSING_MPI_SLICE_US", default: .microseconds(100))

        /// Asks for ``relaySlice`` for the calling thread, once (see `requestTimeSlice`: what it
        /// creates gets the default again).
        static func requestRelaySlice() {
            requestTimeSlice(relaySlice)
        }

        /// The longest sleep of a thread whose every sender shares its node, and so wakes it: no
        /// message waits for it to end, so it bounds only the wake-ups of an idle thread (each one
        /// takes a core from a worker for a moment), and what nothing wakes the thread for: the
        /// handler's deadlines cut it short (``Handler/nextDeadline``).
        /// `MULTIPROCESSING_MPI_WOKEN_SLEEP_US` sets it (microseconds).
        static let wokenSleep: Duration = tuning("MULTIPROCESSING_MPI_WOKEN_SLEEP_US", default: .milliseconds(10))

        /// A duration in microseconds from the environment variable `name`, if it holds one.
        private static func tuning(_ name: String, default value: Duration) -> Duration {
            guard let text = environmentValue(name), let microseconds = Int(text), microseconds >= 0,
                microseconds <= 1_000_000
            else { return value }
            return .microseconds(microseconds)
        }

        /// What the role (parent or node agent) does with the job's messages, on the MPI thread.
        protocol Handler: AnyObject, Sendable {
            /// A whole logical message arrived from rank `source`.
            func received(from source: Int, _ parts: [[UInt8]])
            /// Called every turn of the loop (cheap checks, such as a due deadline); returns whether
            /// it did something (the loop then keeps spinning).
            func turn() -> Bool
            /// When the next ``turn()`` has something to do (a deadline), as of the last turn: the
            /// thread sleeps no longer. Whoever moves it closer wakes the thread
            /// (``ClusterEndpoint/wakeThread()``).
            var nextDeadline: MonotonicInstant? { get }
        }

        struct Outgoing {
            var rank: Int
            var parts: [MPI.SendBuffer]
        }

        /// A send in progress, and the rank it goes to.
        struct Sending {
            var rank: Int
            var send: MPI.Send
        }

        struct Shared {
            var outbox: [Outgoing] = []
            var handler: (any Handler)?
            var stopRequested = false
        }

        let rank: Int
        let size: Int
        /// The node this process runs on.
        let host: String
        /// How many ranks of the job share this node (MPI's shared-memory domain).
        let ranksOnNode: Int
        private let shared = Mutex(Shared())
        private let wakeup: NodeWakeup
        /// Whether every rank that sends this one messages shares its node (and so wakes it):
        /// sleeps need not be short then.
        private let everySenderWakes: Bool
        private let finished = DispatchSemaphore(value: 0)
        /// Which thread makes MPI calls now: the MPI thread, for each of its turns, or a thread
        /// that borrowed the role (see ``borrowRole(until:while:)``).
        private let role = MPIRole()
        /// What the role's holder works on.
        private let work = MPIWork()
        /// Whether a thread other than the MPI thread may make MPI calls (MPI gave
        /// `MPI_THREAD_SERIALIZED`).
        private let canBorrow: Bool

        private init(rank: Int, size: Int, host: String, ranksOnNode: Int, wakeup: NodeWakeup, canBorrow: Bool) {
            self.rank = rank
            self.canBorrow = canBorrow
            self.size = size
            self.host = host
            self.ranksOnNode = ranksOnNode
            self.wakeup = wakeup
            // Agents hear from rank 0 only; rank 0 from every agent.
            self.everySenderWakes = rank == 0 ? (0..<size).allSatisfy { wakeup.sharesNode($0) } : wakeup.sharesNode(0)
        }

        /// Starts the MPI thread and initializes MPI on it.
        /// - Throws: `MPIError` when MPI cannot be initialized; `PoolError` when the thread cannot start.
        static func start() throws -> ClusterEndpoint {
            let started = Mutex<Result<ClusterEndpoint, any Error>?>(nil)
            let ready = DispatchSemaphore(value: 0)
            try startDetachedThread(name: "multiprocessing-mpi") {
                requestRelaySlice()
                let endpoint: ClusterEndpoint
                do {
                    let (rank, size, ranksOnNode, serialized) = try MPI.initialize()
                    endpoint = ClusterEndpoint(
                        rank: rank, size: size, host: MPI.processorName(), ranksOnNode: ranksOnNode,
                        wakeup: NodeWakeup(rank: rank, size: size), canBorrow: serialized)
                    started.withLock { $0 = .success(endpoint) }
                } catch {
                    started.withLock { $0 = .failure(error) }
                    ready.signal()
                    return
                }
                ready.signal()
                endpoint.run()
            }
            ready.wait()
            return try started.withLock { $0! }.get()
        }

        /// Sets what receives the job's messages. Messages that arrive before are kept.
        func setHandler(_ handler: any Handler) {
            shared.withLock { $0.handler = handler }
            wake()
        }

        /// Queues a logical message to rank `rank`: `head`, then `attachments`.
        func send(to rank: Int, _ head: [UInt8], attachments: [OutgoingAttachment] = []) {
            var parts: [MPI.SendBuffer] = [.bytes(head)]
            for attachment in attachments { parts.append(.attachment(attachment)) }
            shared.withLock { $0.outbox.append(Outgoing(rank: rank, parts: parts)) }
            if !sendNow() { wake() }
        }

        /// Sends what is queued, then finalizes MPI and ends the thread; returns when it has, or
        /// after `timeout`.
        func stop(timeout: Duration) {
            shared.withLock { $0.stopRequested = true }
            wake()
            _ = finished.wait(until: .now + timeout)
        }

        private func wake() {
            wakeup.pokeOwn()
        }

        /// Wakes the MPI thread if it sleeps (a deadline came closer: it sleeps to the new one).
        func wakeThread() { wake() }

        // MARK: - The MPI thread

        /// The state of the MPI work (sends in progress, messages being assembled, messages that
        /// came before the handler): touched only by the holder of the MPI role, which is what
        /// makes the `@unchecked Sendable` sound.
        private final class MPIWork: @unchecked Sendable {
            var sends: [Sending] = []
            var assemblies: [Int: Assembly] = [:]
            var early: [(Int, [[UInt8]])] = []
        }

        /// The right to make MPI calls: one thread holds it at a time, and none waits for it
        /// (a thread that finds it taken leaves the work to its holder).
        private final class MPIRole: Sendable {
            /// The holder's thread (`cmp_thread_id`), or 0.
            private let holder = Atomic<UInt>(0)

            /// Takes the role if it is free; what its last holder did happens before.
            func take() -> Bool {
                holder.compareExchange(expected: 0, desired: cmp_thread_id(), ordering: .acquiring).exchanged
            }

            /// Gives the role up.
            func give() { holder.store(0, ordering: .releasing) }

            /// Whether the calling thread holds the role (it is sending from the handler, say).
            var isHeldHere: Bool { holder.load(ordering: .relaxed) == cmp_thread_id() }
        }

        /// A logical message being received from one rank.
        fileprivate struct Assembly {
            var lengths: [Int]
            var parts: [[UInt8]] = []
            /// The buffer being filled in parts (a buffer above `MPI.maxMessageBytes`).
            var current: [UInt8]?
            var filled = 0
        }

        /// One turn of MPI work: starts what the outbox holds, completes sends, receives up to
        /// ``messagesPerTurn`` messages and hands them (with the handler's turn) to the handler.
        /// Only the holder of the MPI role calls it.
        /// - Returns: whether it did something (sent, received, or the handler acted).
        private func step(_ work: MPIWork) -> Bool {
            var active = false
            let (outbox, handler) = shared.withLock { shared in
                defer { shared.outbox.removeAll(keepingCapacity: true) }
                return (shared.outbox, shared.handler)
            }
            do {
                for message in outbox {
                    try start(message, into: &work.sends)
                    active = true
                }
                // The receivers of this node that sleep are woken: what was sent is there.
                for message in outbox { wakeup.poke(message.rank) }
                try completeSends(work)
                // At most so many a turn: the handler's turn (deadlines, kills) and the sends
                // come between, however many messages keep coming.
                var received = 0
                while received < Self.messagesPerTurn, var matched = try MPI.probe(tag: Self.tag) {
                    received += 1
                    active = true
                    if let message = try receive(&matched, &work.assemblies) {
                        work.early.append((matched.source, message))
                    }
                }
            } catch {
                // The job is broken (a rank is gone, the network failed): nothing can be
                // trusted to arrive; end the job rather than leave a rank waiting.
                fatalError("swift-multiprocessing's cluster transport: \(error)")
            }
            if let handler {
                let early = work.early
                work.early.removeAll()
                for (source, message) in early { handler.received(from: source, message) }
                if handler.turn() { active = true }
            }
            return active
        }

        /// Tests the sends in progress; forgets those that completed.
        private func completeSends(_ work: MPIWork) throws(MPIError) {
            var i = 0
            while i < work.sends.count {
                if try MPI.test(&work.sends[i].send) {
                    // A send that waited for room (or a large one's part) is there now.
                    wakeup.poke(work.sends[i].rank)
                    work.sends.swapAt(i, work.sends.count - 1)
                    work.sends.removeLast()
                } else {
                    i += 1
                }
            }
        }

        private func run() {
            var lastActivity = MonotonicInstant.now
            var sleep: Duration = .zero
            while true {
                guard role.take() else {
                    // A caller borrowed the role (see `borrowRole`): this thread waits until it
                    // hands it back with work left, a message comes, or `maxSleep`.
                    if wakeup.isPolled {
                        wakeup.park(for: Self.maxSleep)
                    } else {
                        // The borrower is handing it back (its last look): a moment.
                        yieldProcessor()
                    }
                    continue
                }
                // This thread polls now: a rank of the node that sends it a message need not
                // wake it (the last borrower left the word saying nobody polls).
                wakeup.cancelSleep()
                let active = step(work)
                let stopRequested = shared.withLock { $0.stopRequested && $0.outbox.isEmpty }
                let sending = !work.sends.isEmpty
                if stopRequested && !sending && !active {
                    // Kept: no caller borrows it from here on.
                    break
                }
                role.give()
                let now = MonotonicInstant.now
                if active {
                    lastActivity = now
                    sleep = .zero
                    continue
                }
                if lastActivity.duration(to: now) < Self.spin || sending {
                    yieldProcessor()
                    continue
                }
                if everySenderWakes {
                    sleep = Self.wokenSleep
                } else {
                    let longest = lastActivity.duration(to: now) < Self.longIdle ? Self.maxSleep : Self.longIdleSleep
                    sleep = min(max(sleep * 2, .microseconds(10)), longest)
                }
                // Marked asleep first, then a last look: a message sent or queued after the look
                // wakes this thread (its sender sees the mark).
                wakeup.prepareToSleep()
                guard role.take() else {
                    // Borrowed meanwhile: the borrower polls.
                    wakeup.cancelSleep()
                    continue
                }
                let (queued, handler) = shared.withLock { (!$0.outbox.isEmpty || $0.stopRequested, $0.handler) }
                let waiting = queued || (try? MPI.hasMessage(tag: Self.tag)) ?? true
                role.give()
                if waiting {
                    wakeup.cancelSleep()
                    continue
                }
                if let deadline = handler?.nextDeadline {
                    // Slept to it, not past it (it is due at the first turn after).
                    sleep = min(sleep, max(.microseconds(1), MonotonicInstant.now.duration(to: deadline)))
                }
                if wakeup.sleep(for: sleep) {
                    // Woken for something: it may take a moment to arrive (a TCP send completes in
                    // parts); the thread spins meanwhile.
                    lastActivity = .now
                    sleep = .zero
                }
            }
            MPI.finalize()
            finished.signal()
        }

        // MARK: - Borrowing the MPI role

        /// Makes the calling thread the one that makes MPI calls, if no other thread is making
        /// them now (the MPI thread between turns, or asleep), and runs turns of MPI work on it
        /// until `isDone()` or `end`: a lone call's caller on rank 0 sends its task and receives
        /// its result itself, saving two hand-overs between threads (and a wake-up of the MPI
        /// thread). MPI was initialized `MPI_THREAD_SERIALIZED`: one thread at a time, whichever.
        /// - Returns: false, at once, when the role was taken (the MPI thread does the work).
        func borrowRole(until end: MonotonicInstant, while isWaiting: () -> Bool) -> Bool {
            guard beginBorrow() else { return false }
            while isWaiting() {
                let active = step(work)
                if !isWaiting() || MonotonicInstant.now >= end { break }
                if !active { yieldProcessor() }
            }
            endBorrow()
            return true
        }

        /// Takes the role for this thread, if it is free and may be borrowed.
        private func beginBorrow() -> Bool {
            guard canBorrow, role.take() else { return false }
            // This thread polls: ranks of the node sending here need not wake the MPI thread.
            wakeup.markPolled()
            return true
        }

        /// Hands the role back: marks this rank as polled by nobody (its senders wake the MPI
        /// thread from here on), then takes a last look for work the borrower leaves behind (a
        /// send still in progress, a message that came, something queued) and wakes the MPI
        /// thread for it.
        private func endBorrow() {
            wakeup.prepareToSleep()
            let queued = shared.withLock { !$0.outbox.isEmpty || $0.stopRequested }
            let left = queued || !work.sends.isEmpty || (try? MPI.hasMessage(tag: Self.tag)) ?? true
            role.give()
            if left { wakeup.pokeOwn() }
        }

        /// Starts what the outbox holds on this thread, if the role is free or this thread holds
        /// it: the message goes without waiting for the MPI thread (nor waking it). Returns
        /// whether it did.
        private func sendNow() -> Bool {
            if role.isHeldHere {
                // From the handler, on the role's holder: no need to wait for its next turn.
                startOutbox()
                return true
            }
            guard beginBorrow() else { return false }
            startOutbox()
            endBorrow()
            return true
        }

        /// Starts every message of the outbox, in order. Only the role's holder calls it.
        private func startOutbox() {
            let outbox = shared.withLock { shared in
                defer { shared.outbox.removeAll(keepingCapacity: true) }
                return shared.outbox
            }
            do {
                for message in outbox { try start(message, into: &work.sends) }
                for message in outbox { wakeup.poke(message.rank) }
                try completeSends(work)
            } catch {
                fatalError("swift-multiprocessing's cluster transport: \(error)")
            }
        }

        /// Starts sending one logical message.
        private func start(_ message: Outgoing, into sends: inout [Sending]) throws(MPIError) {
            let lengths = message.parts.map { part -> Int in
                switch part {
                case .bytes(let bytes): bytes.count
                case .attachment(let attachment): attachment.count
                }
            }
            let total = lengths.reduce(0, +)
            let inline = total <= Self.inlineLimit
            var envelope = ByteWriter(reservingCapacity: 16 + 8 * lengths.count + (inline ? total : 0))
            envelope.writeUInt8(inline ? 1 : 0)
            envelope.writeUInt32(UInt32(lengths.count))
            for length in lengths { envelope.writeUInt64(UInt64(length)) }
            if inline {
                for part in message.parts {
                    switch part {
                    case .bytes(let bytes): envelope.writeBytes(bytes)
                    case .attachment(let attachment):
                        try? attachment.withBytes { envelope.writeRaw($0) }
                    }
                }
            }
            let envelopeBytes = envelope.bytes
            try withBytes(of: .bytes(envelopeBytes)) { raw throws(MPIError) in
                sends.append(
                    Sending(
                        rank: message.rank,
                        send: try MPI.isend(
                            raw.baseAddress, count: raw.count, to: message.rank, tag: Self.tag,
                            keeping: .bytes(envelopeBytes))))
            }
            guard !inline else { return }
            for part in message.parts {
                try withBytes(of: part) { raw throws(MPIError) in
                    var offset = 0
                    while offset < raw.count {
                        let count = min(MPI.maxMessageBytes, raw.count - offset)
                        sends.append(
                            Sending(
                                rank: message.rank,
                                send: try MPI.isend(
                                    raw.baseAddress! + offset, count: count, to: message.rank, tag: Self.tag,
                                    keeping: part)))
                        offset += count
                    }
                }
            }
        }

        /// Calls `body` with the bytes of `part`. MPI reads them after `body` returns, until the
        /// send completes: the `Send` keeps `part` alive, and neither kind moves its bytes while
        /// it lives (both are arrays nothing mutates).
        private func withBytes(
            of part: MPI.SendBuffer, _ body: (UnsafeRawBufferPointer) throws(MPIError) -> Void
        ) throws(MPIError) {
            var failure: MPIError?
            switch part {
            case .bytes(let bytes):
                bytes.withUnsafeBytes { raw in
                    do throws(MPIError) { try body(raw) } catch { failure = error }
                }
            case .attachment(let attachment):
                try? attachment.withBytes { raw in
                    do throws(MPIError) { try body(raw) } catch { failure = error }
                }
            }
            if let failure { throw failure }
        }

        /// Receives one matched MPI message; returns a logical message when it completes one.
        private func receive(
            _ matched: inout MPI.Matched, _ assemblies: inout [Int: Assembly]
        ) throws(MPIError)
            -> [[UInt8]]?
        {
            let source = matched.source
            guard var assembly = assemblies.removeValue(forKey: source) else {
                // An envelope.
                let envelope = try receiveArray(&matched)
                var reader = ByteReader(envelope)
                do {
                    let inline = try reader.readUInt8() == 1
                    let count = Int(try reader.readUInt32())
                    var lengths: [Int] = []
                    for _ in 0..<count { lengths.append(Int(try reader.readUInt64())) }
                    if inline {
                        var parts: [[UInt8]] = []
                        var offset = reader.offset
                        for length in lengths {
                            parts.append(Array(envelope[offset..<offset + length]))
                            offset += length
                        }
                        return parts
                    }
                    var assembly = Assembly(lengths: lengths)
                    if let parts = complete(&assembly) { return parts }
                    assemblies[source] = assembly
                    return nil
                } catch {
                    fatalError("swift-multiprocessing's cluster transport: a corrupt envelope from rank \(source)")
                }
            }
            let length = assembly.lengths[assembly.parts.count]
            if assembly.current == nil && matched.count == length {
                assembly.parts.append(try receiveArray(&matched))
            } else {
                if assembly.current == nil {
                    // Not zeroed: its parts fill it whole before anyone reads it.
                    assembly.current = [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
                        Self.prepareReceiveBuffer(buffer.baseAddress!, count: length)
                        initialized = length
                    }
                }
                let offset = assembly.filled
                // A part that does not fit its buffer means the two ends disagree on the message:
                // stop rather than write past the buffer.
                precondition(
                    offset + matched.count <= length,
                    "swift-multiprocessing's cluster transport: a part of \(matched.count) bytes from rank \(source) "
                        + "overflows its buffer (\(offset) of \(length) filled)")
                var failure: MPIError?
                assembly.current!.withUnsafeMutableBytes { raw in
                    do throws(MPIError) {
                        try MPI.receive(&matched, into: raw.baseAddress! + offset)
                    } catch {
                        failure = error
                    }
                }
                if let failure { throw failure }
                assembly.filled += matched.count
                if assembly.filled == length {
                    assembly.parts.append(assembly.current!)
                    assembly.current = nil
                    assembly.filled = 0
                }
            }
            if let parts = complete(&assembly) { return parts }
            assemblies[source] = assembly
            return nil
        }

        /// The assembly's parts when every one is in (empty buffers take no message).
        private func complete(_ assembly: inout Assembly) -> [[UInt8]]? {
            while assembly.parts.count < assembly.lengths.count && assembly.lengths[assembly.parts.count] == 0 {
                assembly.parts.append([])
            }
            return assembly.parts.count == assembly.lengths.count ? assembly.parts : nil
        }

        /// Buffers at least this large are made present before a message is received into them.
        static let populatedReceiveSize = 1 << 20

        /// Makes a fresh receive buffer of `count` bytes present in one system call when it is
        /// large (``populatedReceiveSize``): Open MPI copies a large message from the sender's
        /// memory into it (`process_vm_readv`), and each first touch of a page there is a page
        /// fault (16 × 4 MiB echoed: 16,400 of rank 0's faults, 40 % of the job's, happened in
        /// that copy). No huge pages, as in `uninitializedBytes` (FrameAccumulator.swift).
        static func prepareReceiveBuffer(_ start: UnsafeMutableRawPointer, count: Int) {
            guard count >= populatedReceiveSize else { return }
            populateForWriting(start, count: count)
        }

        private func receiveArray(_ matched: inout MPI.Matched) throws(MPIError) -> [UInt8] {
            var failure: MPIError?
            let array = [UInt8](unsafeUninitializedCapacity: max(matched.count, 1)) { buffer, initialized in
                Self.prepareReceiveBuffer(buffer.baseAddress!, count: matched.count)
                do throws(MPIError) {
                    try MPI.receive(&matched, into: buffer.baseAddress)
                    initialized = matched.count
                } catch {
                    failure = error
                    initialized = 0
                }
            }
            if let failure { throw failure }
            return array
        }
    }
#endif
