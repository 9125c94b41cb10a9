// The MPI calls the cluster transport makes, wrapped: every one returns or throws `MPIError`
// (the world communicator returns errors instead of aborting, see `initialize`). One thread at a
// time calls these (`MPI_THREAD_SERIALIZED`), the holder of the MPI role: see ClusterEndpoint.swift.

#if MPI
    import CMPI

    /// An MPI call that failed.
    struct MPIError: Error, CustomStringConvertible {
        var call: String
        var code: Int32
        var description: String { "\(call) failed with MPI error \(code)" }
    }

    /// The MPI library, as this process uses it: one communicator (the world), bytes only.
    enum MPI {
        /// Messages are at most this long (Open MPI 4.1 counts in `Int32`): longer buffers are sent
        /// in parts. `MULTIPROCESSING_MPI_MAX_MESSAGE_BYTES` lowers it (the tests split 4 MiB
        /// payloads this way).
        static let maxMessageBytes: Int = {
            if let value = environmentValue("MULTIPROCESSING_MPI_MAX_MESSAGE_BYTES"), let bytes = Int(value),
                bytes > 0, bytes <= 1 << 30
            {
                return bytes
            }
            return 1 << 30
        }()

        /// `MULTIPROCESSING_MPI_BORROW=0` keeps every MPI call on the MPI thread (no caller makes
        /// its own, see `ClusterEndpoint.borrowRole`): for comparisons.
        static let borrowVariable = "MULTIPROCESSING_MPI_BORROW"

        static func check(_ code: Int32, _ call: @autoclosure () -> String) throws(MPIError) {
            if code != cmp_mpi_success() { throw MPIError(call: call(), code: code) }
        }

        /// Initializes MPI for calls from one thread at a time (`MPI_THREAD_SERIALIZED`), with
        /// errors returned rather than fatal. Collective: every rank calls it.
        /// - Returns: this process's rank, the world's size, how many ranks share this node, and
        ///   whether MPI allows calls from another thread than this one (one at a time); if not,
        ///   only this thread makes them.
        static func initialize() throws(MPIError) -> (rank: Int, size: Int, ranksOnNode: Int, serialized: Bool) {
            var provided: Int32 = 0
            try check(MPI_Init_thread(nil, nil, cmp_mpi_thread_serialized(), &provided), "MPI_Init_thread")
            try check(MPI_Comm_set_errhandler(cmp_mpi_comm_world(), cmp_mpi_errors_return()), "MPI_Comm_set_errhandler")
            var rank: Int32 = 0
            var size: Int32 = 0
            try check(MPI_Comm_rank(cmp_mpi_comm_world(), &rank), "MPI_Comm_rank")
            try check(MPI_Comm_size(cmp_mpi_comm_world(), &size), "MPI_Comm_size")
            let serialized = provided >= cmp_mpi_thread_serialized() && environmentValue(borrowVariable) != "0"
            return (Int(rank), Int(size), max(1, Int(cmp_mpi_ranks_on_node())), serialized)
        }

        /// The name of the node this process runs on, as MPI reports it.
        static func processorName() -> String {
            var buffer = [CChar](repeating: 0, count: Int(cmp_mpi_max_processor_name()) + 1)
            var length: Int32 = 0
            guard MPI_Get_processor_name(&buffer, &length) == cmp_mpi_success() else { return "?" }
            return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }

        static func finalize() {
            _ = MPI_Finalize()
        }

        /// Ends the whole job (every rank), as `mpiexec` does when a rank fails.
        static func abort(code: Int32) -> Never {
            _ = MPI_Abort(cmp_mpi_comm_world(), code)
            fatalError("MPI_Abort returned")
        }

        /// A send in progress: the bytes must stay alive until it completes.
        struct Send {
            var request: MPI_Request?
            let buffer: SendBuffer
        }

        /// Bytes of a send, kept alive while MPI reads them.
        enum SendBuffer {
            case bytes([UInt8])
            case attachment(OutgoingAttachment)
        }

        /// Starts sending `count` bytes at `base` (which must stay valid until ``test(_:)`` says done).
        static func isend(
            _ base: UnsafeRawPointer?, count: Int, to rank: Int, tag: Int32, keeping buffer: SendBuffer
        ) throws(MPIError) -> Send {
            var request: MPI_Request? = cmp_mpi_request_null()
            try check(
                MPI_Isend(base, Int32(count), cmp_mpi_byte(), Int32(rank), tag, cmp_mpi_comm_world(), &request),
                "MPI_Isend")
            return Send(request: request, buffer: buffer)
        }

        /// Whether the send completed (its buffer may then go).
        static func test(_ send: inout Send) throws(MPIError) -> Bool {
            var flag: Int32 = 0
            try check(MPI_Test(&send.request, &flag, cmp_mpi_status_ignore()), "MPI_Test")
            return flag != 0
        }

        /// A message matched by ``probe(tag:)``, to be received with ``receive(_:)``.
        struct Matched {
            var message: MPI_Message?
            var source: Int
            var count: Int
        }

        /// Matches the next message with `tag` from any rank, if one has arrived.
        static func probe(tag: Int32) throws(MPIError) -> Matched? {
            var flag: Int32 = 0
            var message: MPI_Message? = cmp_mpi_message_null()
            var status = MPI_Status()
            try check(
                MPI_Improbe(cmp_mpi_any_source(), tag, cmp_mpi_comm_world(), &flag, &message, &status), "MPI_Improbe")
            guard flag != 0 else { return nil }
            var count: Int32 = 0
            try check(MPI_Get_count(&status, cmp_mpi_byte(), &count), "MPI_Get_count")
            return Matched(message: message, source: Int(cmp_mpi_status_source(&status)), count: Int(count))
        }

        /// Whether a message with `tag` from any rank has arrived, without matching it.
        ///
        /// Asks twice when the first answer is no: Open MPI's probe looks at the messages it has
        /// taken in *before* it drives progress, which takes in what arrived since (over shared
        /// memory, from the sender's queue). A message sent before the first call is seen by the
        /// second. (Asked once, a rank about to sleep missed a message sent 44 µs before, and slept
        /// its whole sleep: see NodeWakeup.swift.)
        static func hasMessage(tag: Int32) throws(MPIError) -> Bool {
            for _ in 0..<2 {
                let flag = cmp_mpi_iprobe(tag)
                if flag < 0 { throw MPIError(call: "MPI_Iprobe", code: flag) }
                if flag != 0 { return true }
            }
            return false
        }

        /// Receives a matched message into `base` (room for `matched.count` bytes).
        static func receive(_ matched: inout Matched, into base: UnsafeMutableRawPointer?) throws(MPIError) {
            try check(
                MPI_Mrecv(base, Int32(matched.count), cmp_mpi_byte(), &matched.message, cmp_mpi_status_ignore()),
                "MPI_Mrecv")
        }
    }
#endif
