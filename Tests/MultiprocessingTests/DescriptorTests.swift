// Descriptors with an owner in the type: an OwnedDescriptor closes once (a second close cannot be
// written: it is ~Copyable and its close is consuming), a SharedDescriptor closes once after its
// last holder or at an explicit close, and pools whose callers wait on their worker's pipe leave
// no descriptor behind. System failures reach the caller as a PoolError whose underlying error is
// the SystemError of the call that failed. The counts of process-wide descriptors run in a parent
// program of their own, where the tests running in parallel here cannot disturb them.

import Foundation
import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Whether the read end `fd` of a pipe sees end of file (every write end is closed) within
/// `milliseconds`: false while a write end is open and nothing was written. It waits because a
/// process another test spawns meanwhile holds a copy of every descriptor (close-on-exec ones too)
/// until its `exec`, and so the write end, for a moment; checks that no end of file is seen pass 0.
private func seesEndOfFile(_ fd: Int32, within milliseconds: Int32 = 2_000) -> Bool {
    guard pollReadable(fd, or: -1, timeoutMilliseconds: milliseconds).ready else { return false }
    var byte: UInt8 = 0
    return read(fd, &byte, 1) == 0
}

/// Whether `fd` names an open descriptor of this process.
private func isOpen(_ fd: Int32) -> Bool {
    fcntl(fd, F_GETFD) != -1
}

@Suite("Descriptors", .offCooperativePool)
struct DescriptorTests {
    @Test("An owned descriptor closes when closed, and when dropped")
    func ownedDescriptorCloses() throws {
        let (readEnd, writeEnd) = try PipePair.make().release()
        defer { closeDescriptor(readEnd) }
        let writer = OwnedDescriptor(taking: writeEnd)
        #expect(!seesEndOfFile(readEnd, within: 0))
        writer.close()
        #expect(seesEndOfFile(readEnd))

        // A pipe's ends close with the pair when it is dropped without a close.
        let pair = try PipePair.make()
        let (readCopy, writeCopy) = (fcntl(pair.readEnd.rawValue, F_DUPFD_CLOEXEC, 0), pair.writeEnd.rawValue)
        defer { closeDescriptor(readCopy) }
        #expect(!seesEndOfFile(readCopy, within: 0))
        _ = consume pair
        #expect(seesEndOfFile(readCopy), "the write end \(writeCopy) was left open")
    }

    @Test("A shared descriptor stays open while any holder has it, and closes with the last")
    func sharedDescriptorClosesAfterTheLastHolder() throws {
        let (readEnd, writeEnd) = try PipePair.make().release()
        defer { closeDescriptor(readEnd) }
        // As the reader, the task channel and a waiting thread each hold a worker's pidfd.
        var holders = [SharedDescriptor(OwnedDescriptor(taking: writeEnd))]
        holders.append(holders[0])
        holders.append(holders[0])
        while holders.count > 1 {
            holders.removeLast()
            #expect(!seesEndOfFile(readEnd, within: 0), "closed with \(holders.count) holders left")
        }
        #expect(!holders[0].isClosed)
        holders.removeAll()
        #expect(seesEndOfFile(readEnd))
    }

    @Test("A shared descriptor closed explicitly (twice) closes once: the last release closes nothing")
    func sharedDescriptorClosesOnce() throws {
        // A number far above what the tests running in parallel open, so that the test can put
        // another descriptor there and see whether a second close would hit it.
        let (firstRead, firstWrite) = try PipePair.make().release()
        defer { closeDescriptor(firstRead) }
        let number = fcntl(firstWrite, F_DUPFD_CLOEXEC, 900)
        try #require(number >= 900)
        closeDescriptor(firstWrite)
        var holders = [SharedDescriptor(OwnedDescriptor(taking: number))]
        holders.append(holders[0])
        holders[0].close()
        holders[1].close()
        #expect(holders[0].isClosed)
        #expect(seesEndOfFile(firstRead))
        #expect(!isOpen(number))

        // The kernel may give the number to someone else now: here, another pipe's write end.
        let (secondRead, secondWrite) = try PipePair.make().release()
        defer { closeDescriptor(secondRead) }
        try #require(dup2(secondWrite, number) == number)
        closeDescriptor(secondWrite)
        holders.removeAll()
        #expect(isOpen(number), "releasing a closed shared descriptor closed the number again")
        #expect(!seesEndOfFile(secondRead, within: 0))
        closeDescriptor(number)
        #expect(seesEndOfFile(secondRead))
    }

    @Test(
        "Pools whose callers wait on their worker's results leave no descriptors, shared memory or zombies",
        .timeLimit(.minutes(2)), .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func directWaitsLeaveNothingBehind() async throws {
        let (output, _) = try await onThread { try runParentProgram(["descriptor-churn", "10"]) }.get()
        var figures: [String: [Int]] = [:]
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            figures[String(fields[0])] = fields.dropFirst().compactMap { Int($0) }
        }
        let fds = try #require(figures["fds"], "\(output)")
        #expect(fds.count == 2 && fds[0] == fds[1], "descriptors before and after")
        #expect(figures["mappings"] == [0, 0], "the workers' channels are unmapped once their pools are gone")
        #expect(figures["zombies"] == [0])
    }

    @Test(
        "Out of descriptors, a pool fails with .spawnFailed, its underlying error the SystemError of the call",
        .timeLimit(.minutes(1)), .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func outOfDescriptors() async throws {
        let (output, _) = try await onThread { try runParentProgram(["descriptor-limit"]) }.get()
        let lines = output.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        let failures = lines.filter { Int($0.first ?? "") != nil }
        // With no descriptor free the poller cannot be made; with a few, a pipe cannot.
        #expect(failures.count >= 3, "\(output)")
        for failure in failures {
            #expect(failure.count == 4, "\(failure)")
            #expect(failure[1] == "spawnFailed", "\(failure)")
            #expect(failure.count > 3 && failure[3] == "\(EMFILE)", "no SystemError with EMFILE: \(failure)")
        }
        let calls = Set(failures.compactMap { $0.count > 2 ? $0[2] : nil })
        #expect(calls.contains("epoll_create1"), "\(calls)")
        #expect(calls.contains("pipe2"), "\(calls)")
        #expect(lines.contains { $0.first == "started" }, "\(output)")
        let fds = lines.first { $0.first == "fds" }.map { $0.dropFirst().compactMap { Int($0) } }
        #expect(fds?.count == 2 && fds?[0] == fds?[1], "descriptors before and after: \(output)")
    }

    @Test("A worker executable that is not there: .spawnFailed, underlying posix_spawn's ENOENT")
    func missingExecutable() throws {
        let error = #expect(throws: PoolError.self) {
            _ = try Pool(processes: 1, executable: "/nonexistent/multiprocessing-worker")
        }
        #expect(error?.code == .spawnFailed)
        let system = error?.underlying as? SystemError
        #expect(system?.errno == ENOENT)
        #expect(system?.call.hasPrefix("posix_spawn") == true, "\(String(describing: system))")
    }

    @Test("Errors the pool makes keep every field it gives them (built whole, never changed afterwards)")
    func poolErrorFields() {
        let frame = PoolError.CrashFrame(function: "f", file: "a.swift", line: 3, column: 1)
        let error = PoolError(
            .workerLost, "gone", functionName: "f", workerPID: 42, underlying: SystemError(call: "read", errno: EIO),
            crashFrames: [frame])
        #expect(error.code == .workerLost && error.message == "gone")
        #expect(error.functionName == "f" && error.workerPID == 42)
        #expect(error.underlying as? SystemError == SystemError(call: "read", errno: EIO))
        #expect(error.crashFrames == [frame])
        #expect(error.description.contains("read failed"))
    }
}
