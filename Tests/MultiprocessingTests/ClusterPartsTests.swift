// The pure parts of the cluster transport, in every build (the transport itself needs the MPI
// trait and runs under mpiexec: Scripts/test-cluster): its messages survive their encoding, and
// workers are placed on node agents by quota, a replacement where the worker it replaces was.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

@Suite("Cluster parts", .offCooperativePool)
struct ClusterPartsTests {
    private func roundTrip(_ message: ClusterMessage) throws -> ClusterMessage {
        try ClusterMessage.decode(message.encoded())
    }

    @Test("rank 0's messages decode to what was encoded")
    func effects() throws {
        let worker = WorkerID(rawValue: 77)
        let setup = ClusterMessage.PoolSetup(
            startFrame: [1, 2, 3, 250], workerMemoryLimit: 1 << 30, maxMemoryPerChild: nil, executable: "/bin/app",
            arguments: ["--size", "", "ünïcode"], crashReports: .suppress)
        guard case .openPool(9, let decoded) = try roundTrip(.openPool(pool: 9, setup: setup)) else {
            Issue.record("not an openPool")
            return
        }
        #expect(decoded.startFrame == setup.startFrame)
        #expect(decoded.workerMemoryLimit == 1 << 30 && decoded.maxMemoryPerChild == nil)
        #expect(decoded.executable == "/bin/app" && decoded.arguments == setup.arguments)
        #expect(decoded.crashReports == .suppress)
        let bare = ClusterMessage.PoolSetup(
            startFrame: [], workerMemoryLimit: nil, maxMemoryPerChild: 0, executable: nil, arguments: nil)
        guard case .openPool(_, let none) = try roundTrip(.openPool(pool: 1, setup: bare)) else {
            Issue.record("not an openPool")
            return
        }
        #expect(none.maxMemoryPerChild == 0 && none.executable == nil && none.arguments == nil)
        #expect(none.crashReports == .forward)

        guard case .send(3, worker, 12) = try roundTrip(.send(pool: 3, worker: worker, sequence: 12)) else {
            Issue.record("not a send")
            return
        }
        guard case .closeInput(3, worker, 13) = try roundTrip(.closeInput(pool: 3, worker: worker, sequence: 13)) else {
            Issue.record("not a closeInput")
            return
        }
        guard case .kill(3, worker) = try roundTrip(.kill(pool: 3, worker: worker)),
            case .spawn(3, worker) = try roundTrip(.spawn(pool: 3, worker: worker)),
            case .stopPool(3) = try roundTrip(.stopPool(pool: 3)),
            case .shutdown = try roundTrip(.shutdown)
        else {
            Issue.record("a small message did not survive")
            return
        }
    }

    @Test("an agent's reports decode to what was encoded, results with where their items are")
    func events() throws {
        let worker = WorkerID(rawValue: 5)
        guard
            case .hello("node-7", 64, 2, 4242) = try roundTrip(
                .hello(host: "node-7", cpus: 64, ranksOnNode: 2, pid: 4242)),
            case .spawned(1, worker, 99) = try roundTrip(.spawned(pool: 1, worker: worker, pid: 99)),
            case .spawnFailed(1, worker, "no such file") = try roundTrip(
                .spawnFailed(pool: 1, worker: worker, detail: "no such file")),
            case .ready(1, worker) = try roundTrip(.ready(pool: 1, worker: worker)),
            case .overMemory(1, worker) = try roundTrip(.overMemory(pool: 1, worker: worker)),
            case .misbehaved(1, worker, "garbage") = try roundTrip(
                .misbehaved(pool: 1, worker: worker, detail: "garbage")),
            case .poolStopped(1) = try roundTrip(.poolStopped(pool: 1)),
            case .transportFailed(1, "epoll") = try roundTrip(.transportFailed(pool: 1, detail: "epoll"))
        else {
            Issue.record("a small report did not survive")
            return
        }
        let header = ResultHeader(
            job: 1 << 40, chunkIndex: 3, itemCount: 2, anyFailed: true, packed: true, runNanoseconds: 1_234_567)
        guard
            case .result(2, worker, 7, let decodedHeader, let items) = try roundTrip(
                .result(pool: 2, worker: worker, pid: 7, header: header, items: 17..<4096))
        else {
            Issue.record("not a result")
            return
        }
        #expect(decodedHeader == header)
        #expect(items == 17..<4096)
        // Items that end before they start are refused.
        var encoded = ClusterMessage.result(pool: 2, worker: worker, pid: 7, header: header, items: 5..<5).encoded()
        encoded.replaceSubrange((encoded.count - 16)..<(encoded.count - 8), with: [9, 0, 0, 0, 0, 0, 0, 0])
        #expect(throws: (any Error).self) { try ClusterMessage.decode(encoded) }
    }

    @Test("a worker's exit keeps its termination, last words, crash frames, detail and initializer error")
    func exit() throws {
        Pool.registerErrorType(TestFailure.self)
        let frames = [
            PoolError.CrashFrame(function: "parse(_:)", file: "/src/a.swift", line: 12, column: 0),
            PoolError.CrashFrame(function: "main", file: nil, line: nil, column: nil),
        ]
        let exit = WorkerExit(
            pid: 31, termination: .signaled(9), lastWords: LastWords(text: "Fatal error: boom", crashFrames: frames),
            initializerError: TestFailure(reason: "no database", value: 3), detail: "on node n1 (rank 2)")
        guard
            case .exited(4, WorkerID(rawValue: 8), let decoded) = try roundTrip(
                .exited(pool: 4, worker: WorkerID(rawValue: 8), exit: exit))
        else {
            Issue.record("not an exit")
            return
        }
        #expect(decoded.pid == 31 && decoded.termination == .signaled(9))
        #expect(decoded.lastWords.text == "Fatal error: boom" && decoded.lastWords.crashFrames == frames)
        #expect(decoded.detail == "on node n1 (rank 2)")
        #expect(decoded.initializerError as? TestFailure == TestFailure(reason: "no database", value: 3))

        let plain = WorkerExit(pid: 1, termination: .exited(0), lastWords: LastWords(text: ""), initializerError: nil)
        guard case .exited(_, _, let none) = try roundTrip(.exited(pool: 1, worker: WorkerID(rawValue: 1), exit: plain))
        else {
            Issue.record("not an exit")
            return
        }
        #expect(none.termination == .exited(0) && none.initializerError == nil && none.detail == nil)
    }

    @Test("a truncated or unknown message throws instead of decoding garbage")
    func corrupt() {
        let encoded = ClusterMessage.spawned(pool: 1, worker: WorkerID(rawValue: 2), pid: 3).encoded()
        #expect(throws: (any Error).self) { try ClusterMessage.decode(Array(encoded.dropLast())) }
        #expect(throws: (any Error).self) { try ClusterMessage.decode([200, 0, 0, 0, 0]) }
        #expect(throws: (any Error).self) { try ClusterMessage.decode([]) }
    }

    @Test("workers go where most room is left; a replacement takes the place of the worker it replaces")
    func placement() {
        var placement = WorkerPlacement(quota: [1: 2, 2: 1])
        let ids = (0..<3).map { WorkerID(rawValue: $0) }
        #expect(ids.map { placement.place($0) }.sorted() == [1, 1, 2])
        // Worker 2 (on rank 2, or whichever agent it went to) is retired: its replacement starts there.
        let rank = placement.rankOf[ids[2]]!
        #expect(placement.leave(ids[2]) == rank)
        #expect(placement.place(WorkerID(rawValue: 10)) == rank)
        // The retired one exits later: nothing moves.
        placement.remove(ids[2])
        #expect(placement.staying.values.map(\.count).reduce(0, +) == 3)
        #expect(placement.leave(WorkerID(rawValue: 99)) == nil)
    }

    @Test("quotas: processes spread evenly, else per rank, else one per shared node and the CPUs of a lone one")
    func quota() {
        let agents: [WorkerPlacement.AgentShape] = [
            .init(rank: 1, ranksOnNode: 2, cpus: 8), .init(rank: 2, ranksOnNode: 1, cpus: 16),
            .init(rank: 3, ranksOnNode: 1, cpus: 0),
        ]
        #expect(WorkerPlacement.quota(for: agents, workersPerRank: nil, processes: nil) == [1: 1, 2: 16, 3: 1])
        #expect(WorkerPlacement.quota(for: agents, workersPerRank: 3, processes: nil) == [1: 3, 2: 3, 3: 3])
        #expect(WorkerPlacement.quota(for: agents, workersPerRank: 3, processes: 7) == [1: 3, 2: 2, 3: 2])
        #expect(WorkerPlacement.quota(for: agents, workersPerRank: nil, processes: 2) == [1: 1, 2: 1])
    }
}
