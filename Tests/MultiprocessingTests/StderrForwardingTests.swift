// Forwarding workers' stderr to the parent's stderr must never stop the pool: a parent whose
// stderr nobody reads still gets its results and can terminate and join; a stderr read late
// still gets every byte. End to end through a parent program (the test worker in a parent role)
// whose stderr is a pipe this test controls; the buffer's rules unit-tested on a pipe.

import Foundation
import Testing

@testable import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("Stderr forwarding", .offCooperativePool)
struct StderrForwardingTests {
    @Test(
        "A stderr nobody reads stops neither results nor terminate and join", .timeLimit(.minutes(2)),
        .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func unreadStderr() async throws {
        let (process, out, err) = try startParentProgram(["stderr-stall"])
        // Never read `err`, but keep it open: the parent's stderr is a full pipe.
        let exited = await eventuallyAsync(timeout: .seconds(60)) { !process.isRunning }
        if !exited { kill(process.processIdentifier, SIGKILL) }
        #expect(exited, "the parent program did not finish with its stderr unread")
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(output.contains("applied 39800"))
        #expect(output.contains("joined true"))
        withExtendedLifetime(err) {}
    }

    @Test(
        "A stderr read late and slowly gets every byte a worker printed", .timeLimit(.minutes(2)),
        .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func lateReaderLosesNothing() async throws {
        let count = 3_000_000
        let (process, out, err) = try startParentProgram(["stderr-slow", "\(count)"])
        // Let the pipe, the pool's buffer and the worker's pipe fill up first.
        try await Task.sleep(for: .seconds(1))
        var received = 0
        var other = 0
        let handle = err.fileHandleForReading
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let data = handle.availableData  // blocks until some bytes or end of file
            if data.isEmpty { break }
            for byte in data {
                if byte == UInt8(ascii: "x") || byte == UInt8(ascii: "\n") { received += 1 } else { other += 1 }
            }
            try await Task.sleep(for: .milliseconds(1))
        }
        waitForExit(process, within: .seconds(30))
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(output.contains("printed \(count)"))
        #expect(received == count, "bytes of the worker's stderr that arrived")
        #expect(other == 0)
    }

    @Test("The forwarder keeps what a full pipe does not take, pauses at its limit, resumes below half")
    func forwarderBuffersAndPauses() throws {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        growPipeBuffer(fds[1], to: 4096)
        let output = try #require(NonBlockingOutput.opening(fds[1]))
        #expect(output.kind == .nonBlocking)
        var forwarder = StderrForwarder(output: output, limit: 64 * 1024)
        let chunk = [UInt8](repeating: 7, count: 16 * 1024)
        var changes: [StderrForwarder.Change] = []
        for _ in 0..<5 {
            changes.append(chunk.withUnsafeBytes { forwarder.forward($0) })
        }
        // 80 KiB offered: 4 KiB in the pipe, the rest kept; the limit (64 KiB) reached once.
        #expect(changes == [.none, .none, .none, .none, .pause])
        #expect(forwarder.paused && forwarder.pendingCount == 80 * 1024 - 4096)
        #expect(forwarder.wantsWritable)
        // The reader drains; the forwarder writes more each time, resuming below half the limit.
        var drained = 0
        var buffer = [UInt8](repeating: 0, count: 8192)
        var resumedAt: Int?
        while drained < 80 * 1024 {
            let n = read(fds[0], &buffer, buffer.count)
            #expect(n > 0)
            #expect(buffer[0..<n].allSatisfy { $0 == 7 })
            drained += n
            if forwarder.flush() == .resume { resumedAt = forwarder.pendingCount }
        }
        #expect(resumedAt.map { $0 < 32 * 1024 } == true)
        #expect(forwarder.pendingCount == 0 && !forwarder.wantsWritable && !forwarder.paused)
        #expect(forwarder.finish() == 0)
    }

    @Test("A forwarder whose reader is gone drops and counts, and stops pausing")
    func forwarderOutputGone() throws {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        growPipeBuffer(fds[1], to: 4096)
        let output = try #require(NonBlockingOutput.opening(fds[1]))
        close(fds[1])
        var forwarder = StderrForwarder(output: output, limit: 6000)
        let chunk = [UInt8](repeating: 1, count: 6000)
        // 4096 bytes fill the pipe; 1904, then 7904 wait: past the limit.
        #expect(chunk.withUnsafeBytes { forwarder.forward($0) } == .none)
        #expect(chunk.withUnsafeBytes { forwarder.forward($0) } == .pause)
        close(fds[0])
        // EPIPE (SIGPIPE blocked, as the I/O thread does): forwarding ends, reading resumes.
        var change = StderrForwarder.Change.none
        withSIGPIPEBlocked {
            change = forwarder.flush()
            return true
        }
        #expect(change == .resume)
        #expect(forwarder.failed && !forwarder.wantsWritable)
        #expect(chunk.withUnsafeBytes { forwarder.forward($0) } == .none)
        #expect(forwarder.finish() == 7904 + 6000)
    }
}
