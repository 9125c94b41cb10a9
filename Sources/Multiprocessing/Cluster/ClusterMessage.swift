// The messages between the parent (rank 0) and the node agents (every other rank): rank 0's
// transport effects on the way out, the agents' transport events on the way back. A message is a
// head (this encoding) and the arrays that travel after a frame (see ClusterEndpoint.swift).
// Pure encoding, built without the MPI trait too (its tests run in every build).

/// One message between rank 0 and a node agent.
enum ClusterMessage {
    /// How one pool's workers start on an agent.
    struct PoolSetup {
        var startFrame: [UInt8]
        var workerMemoryLimit: Int?
        var maxMemoryPerChild: Int?
        /// The program workers run, when the parent's configuration names one; nil runs the
        /// agent's own program again.
        var executable: String?
        /// The workers' arguments, when the parent's configuration names them; nil gives them the
        /// agent's own.
        var arguments: [String]?
        /// Whether the runtime's crash reports go on to the agent's stderr (and so to `mpiexec`'s).
        var crashReports: Pool.Configuration.CrashReports = .forward
    }

    // Agent to rank 0.
    /// An agent is up: its node, its CPUs, the ranks on its node, its pid.
    case hello(host: String, cpus: Int, ranksOnNode: Int, pid: Int32)
    case spawned(pool: UInt32, worker: WorkerID, pid: Int32)
    case spawnFailed(pool: UInt32, worker: WorkerID, detail: String)
    case ready(pool: UInt32, worker: WorkerID)
    case overMemory(pool: UInt32, worker: WorkerID)
    /// A chunk's results: the result frame as the agent read it is the message's second part, its
    /// items at `items` in it (after the header); the frame's attachments are the parts after it.
    case result(pool: UInt32, worker: WorkerID, pid: Int32, header: ResultHeader, items: Range<Int>)
    case misbehaved(pool: UInt32, worker: WorkerID, detail: String)
    case exited(pool: UInt32, worker: WorkerID, exit: WorkerExit)
    case poolStopped(pool: UInt32)
    case transportFailed(pool: UInt32, detail: String)

    // Rank 0 to an agent.
    case openPool(pool: UInt32, setup: PoolSetup)
    case spawn(pool: UInt32, worker: WorkerID)
    /// A frame for a worker: the frame is the message's second part, its attachments the parts
    /// after it (sent from where they are, never copied into the head).
    case send(pool: UInt32, worker: WorkerID, sequence: UInt64)
    case closeInput(pool: UInt32, worker: WorkerID, sequence: UInt64)
    case kill(pool: UInt32, worker: WorkerID)
    case stopPool(pool: UInt32)
    /// Rank 0 is ending: the agent stops its workers and exits.
    case shutdown

    // MARK: - Encoding

    func encoded() -> [UInt8] {
        var w = ByteWriter(reservingCapacity: 64)
        switch self {
        case .hello(let host, let cpus, let ranksOnNode, let pid):
            w.writeUInt8(1)
            w.writeString(host)
            w.writeVarint(UInt64(cpus))
            w.writeVarint(UInt64(ranksOnNode))
            w.writeUInt32(UInt32(bitPattern: pid))
        case .spawned(let pool, let worker, let pid):
            w.head(2, pool, worker)
            w.writeUInt32(UInt32(bitPattern: pid))
        case .spawnFailed(let pool, let worker, let detail):
            w.head(3, pool, worker)
            w.writeString(detail)
        case .ready(let pool, let worker):
            w.head(4, pool, worker)
        case .overMemory(let pool, let worker):
            w.head(5, pool, worker)
        case .result(let pool, let worker, let pid, let header, let items):
            w.head(6, pool, worker)
            w.writeUInt32(UInt32(bitPattern: pid))
            w.writeUInt64(header.job)
            w.writeUInt64(header.chunkIndex)
            w.writeUInt32(UInt32(header.itemCount))
            w.writeUInt8((header.anyFailed ? 1 : 0) | (header.packed ? 2 : 0))
            w.writeUInt64(header.runNanoseconds)
            w.writeUInt64(UInt64(items.lowerBound))
            w.writeUInt64(UInt64(items.upperBound))
        case .misbehaved(let pool, let worker, let detail):
            w.head(7, pool, worker)
            w.writeString(detail)
        case .exited(let pool, let worker, let exit):
            w.head(8, pool, worker)
            w.writeUInt32(UInt32(bitPattern: exit.pid))
            switch exit.termination {
            case .exited(let status):
                w.writeUInt8(0)
                w.writeUInt32(UInt32(bitPattern: status))
            case .signaled(let signal):
                w.writeUInt8(1)
                w.writeUInt32(UInt32(bitPattern: signal))
            case .unknown:
                w.writeUInt8(2)
                w.writeUInt32(0)
            }
            w.writeString(exit.lastWords.text)
            w.writeVarint(UInt64(exit.lastWords.crashFrames.count))
            for frame in exit.lastWords.crashFrames {
                w.writeString(frame.function)
                w.writeOptionalString(frame.file)
                w.writeVarint(UInt64(frame.line.map { $0 + 1 } ?? 0))
                w.writeVarint(UInt64(frame.column.map { $0 + 1 } ?? 0))
            }
            if let error = exit.initializerError {
                w.writeUInt8(1)
                ErrorRecord.write(error, into: &w)
            } else {
                w.writeUInt8(0)
            }
            w.writeOptionalString(exit.detail)
        case .poolStopped(let pool):
            w.writeUInt8(9)
            w.writeUInt32(pool)
        case .transportFailed(let pool, let detail):
            w.writeUInt8(10)
            w.writeUInt32(pool)
            w.writeString(detail)
        case .openPool(let pool, let setup):
            w.writeUInt8(20)
            w.writeUInt32(pool)
            w.writeVarint(UInt64(setup.startFrame.count))
            w.writeBytes(setup.startFrame)
            w.writeVarint(UInt64(setup.workerMemoryLimit.map { $0 + 1 } ?? 0))
            w.writeVarint(UInt64(setup.maxMemoryPerChild.map { $0 + 1 } ?? 0))
            w.writeOptionalString(setup.executable)
            if let arguments = setup.arguments {
                w.writeVarint(UInt64(arguments.count + 1))
                for argument in arguments { w.writeString(argument) }
            } else {
                w.writeVarint(0)
            }
            w.writeUInt8(setup.crashReports == .suppress ? 1 : 0)
        case .spawn(let pool, let worker):
            w.head(21, pool, worker)
        case .send(let pool, let worker, let sequence):
            w.head(22, pool, worker)
            w.writeUInt64(sequence)
        case .closeInput(let pool, let worker, let sequence):
            w.head(23, pool, worker)
            w.writeUInt64(sequence)
        case .kill(let pool, let worker):
            w.head(24, pool, worker)
        case .stopPool(let pool):
            w.writeUInt8(25)
            w.writeUInt32(pool)
        case .shutdown:
            w.writeUInt8(26)
        }
        return w.bytes
    }

    // MARK: - Decoding

    /// Decodes a message head.
    /// - Throws: `FrameError` for a head that is not a message.
    static func decode(_ bytes: [UInt8]) throws -> ClusterMessage {
        var r = ByteReader(bytes)
        let kind = try r.readUInt8()
        switch kind {
        case 1:
            let host = try r.readString()
            let cpus = Int(try r.readVarint())
            let ranksOnNode = Int(try r.readVarint())
            return .hello(
                host: host, cpus: cpus, ranksOnNode: ranksOnNode, pid: Int32(bitPattern: try r.readUInt32()))
        case 9: return .poolStopped(pool: try r.readUInt32())
        case 10: return .transportFailed(pool: try r.readUInt32(), detail: try r.readString())
        case 20:
            let pool = try r.readUInt32()
            let startFrame = Array(try r.readBytes(Int(try r.readVarint())))
            let limit = try r.readVarint()
            let maxMemory = try r.readVarint()
            let executable = try r.readOptionalString()
            let argumentCount = Int(try r.readVarint())
            var arguments: [String]?
            if argumentCount > 0 {
                arguments = []
                for _ in 0..<argumentCount - 1 { arguments!.append(try r.readString()) }
            }
            let crashReports: Pool.Configuration.CrashReports = try r.readUInt8() == 1 ? .suppress : .forward
            return .openPool(
                pool: pool,
                setup: PoolSetup(
                    startFrame: startFrame, workerMemoryLimit: limit == 0 ? nil : Int(limit - 1),
                    maxMemoryPerChild: maxMemory == 0 ? nil : Int(maxMemory - 1), executable: executable,
                    arguments: arguments, crashReports: crashReports))
        case 25: return .stopPool(pool: try r.readUInt32())
        case 26: return .shutdown
        default: break
        }
        let pool = try r.readUInt32()
        let worker = WorkerID(rawValue: Int(try r.readUInt64()))
        switch kind {
        case 2: return .spawned(pool: pool, worker: worker, pid: Int32(bitPattern: try r.readUInt32()))
        case 3: return .spawnFailed(pool: pool, worker: worker, detail: try r.readString())
        case 4: return .ready(pool: pool, worker: worker)
        case 5: return .overMemory(pool: pool, worker: worker)
        case 6:
            let pid = Int32(bitPattern: try r.readUInt32())
            let job = try r.readUInt64()
            let chunkIndex = try r.readUInt64()
            let count = Int(try r.readUInt32())
            let flags = try r.readUInt8()
            let runNanoseconds = try r.readUInt64()
            let header = ResultHeader(
                job: job, chunkIndex: chunkIndex, itemCount: count, anyFailed: flags & 1 != 0,
                packed: flags & 2 != 0, runNanoseconds: runNanoseconds)
            let start = Int(try r.readUInt64())
            let end = Int(try r.readUInt64())
            guard start <= end else { throw FrameError(description: "a result's items end before they start") }
            return .result(pool: pool, worker: worker, pid: pid, header: header, items: start..<end)
        case 7: return .misbehaved(pool: pool, worker: worker, detail: try r.readString())
        case 8:
            let pid = Int32(bitPattern: try r.readUInt32())
            let how = try r.readUInt8()
            let value = Int32(bitPattern: try r.readUInt32())
            let termination: ProcessTermination =
                how == 0 ? .exited(value) : how == 1 ? .signaled(value) : .unknown
            let text = try r.readString()
            var frames: [PoolError.CrashFrame] = []
            for _ in 0..<Int(try r.readVarint()) {
                let function = try r.readString()
                let file = try r.readOptionalString()
                let line = Int(try r.readVarint())
                let column = Int(try r.readVarint())
                frames.append(
                    PoolError.CrashFrame(
                        function: function, file: file, line: line == 0 ? nil : line - 1,
                        column: column == 0 ? nil : column - 1))
            }
            var initializerError: (any Error & Sendable)?
            if try r.readUInt8() == 1 {
                initializerError = try ErrorRecord.read(from: &r, functionName: "initializer", workerPID: pid)
            }
            let detail = try r.readOptionalString()
            return .exited(
                pool: pool, worker: worker,
                exit: WorkerExit(
                    pid: pid, termination: termination, lastWords: LastWords(text: text, crashFrames: frames),
                    initializerError: initializerError, detail: detail))
        case 21: return .spawn(pool: pool, worker: worker)
        case 22:
            return .send(pool: pool, worker: worker, sequence: try r.readUInt64())
        case 23: return .closeInput(pool: pool, worker: worker, sequence: try r.readUInt64())
        case 24: return .kill(pool: pool, worker: worker)
        default:
            throw FrameError(description: "an unknown cluster message of kind \(kind)")
        }
    }
}

extension ByteWriter {
    fileprivate mutating func head(_ kind: UInt8, _ pool: UInt32, _ worker: WorkerID) {
        writeUInt8(kind)
        writeUInt32(pool)
        writeUInt64(UInt64(worker.rawValue))
    }

    fileprivate mutating func writeOptionalString(_ string: String?) {
        if let string {
            writeUInt8(1)
            writeString(string)
        } else {
            writeUInt8(0)
        }
    }
}

extension ByteReader {
    fileprivate mutating func readOptionalString() throws -> String? {
        try readUInt8() == 1 ? try readString() : nil
    }
}
