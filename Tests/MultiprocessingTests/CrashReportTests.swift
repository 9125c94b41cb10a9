// The crash-report parser and the stderr tail that feeds it, on crash reports captured from the
// test worker (Swift 6.3.1, x86_64 Linux; paths shortened to /home/dev/app, registers and images
// trimmed): where a worker crashed in the user's code, in debug and release builds, with and
// without debug information, coloured, among many threads; and partial or garbled text.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

@Suite("Crash reports", .offCooperativePool)
struct CrashReportTests {
    private static let crashFile = "/home/dev/app/Sources/MultiprocessingTestSupport/TestFunctions+Crash.swift"

    @Test("A debug build: the crashed thread's frames of the user's code, innermost first, with file:line:column")
    func debugBuild() throws {
        let report = try #require(CrashReport(parsing: CrashSamples.debugHelper))
        #expect(report.headline == "Program crashed: Illegal instruction at 0x00007f744736df7f")
        #expect(
            report.userFrames() == [
                PoolError.CrashFrame(function: "crashHelperInner(_:)", file: Self.crashFile, line: 31, column: 18),
                PoolError.CrashFrame(function: "crashHelperOuter(_:)", file: Self.crashFile, line: 36, column: 18),
                PoolError.CrashFrame(
                    function: "closure #1 in variable initialization expression of static TestFunctions.crashInHelper",
                    file: Self.crashFile, line: 17, column: 9),
            ])
        // The parser read every frame of the crashed thread, runtime and library ones too.
        #expect(report.crashedThread.count == 16)
        #expect(report.crashedThread[0].image == "libswiftCore.so")
        #expect(report.crashedThread[10].file == "/home/dev/app/Sources/Multiprocessing/Worker/WorkerLoop.swift")
        #expect(report.crashedThread[10].line == 74 && report.crashedThread[10].column == nil)
    }

    @Test("A release build: the crashed thread is the last; the inlined runtime-failure frame is skipped")
    func releaseBuild() throws {
        let report = try #require(CrashReport(parsing: CrashSamples.releaseForceUnwrap))
        #expect(report.headline == "Swift runtime failure: Unexpectedly found nil while unwrapping an Optional value")
        #expect(report.crashedThread[0].attributes == ["inlined", "system"])
        #expect(
            report.userFrames() == [
                PoolError.CrashFrame(
                    function:
                        "closure #1 in variable initialization expression of static TestFunctions.crashForceUnwrap",
                    file: Self.crashFile, line: 11, column: 21)
            ])
    }

    @Test("Without debug information: the user's functions without file or line, up to the library's frame")
    func noDebugInformation() throws {
        let report = try #require(CrashReport(parsing: CrashSamples.noDebugInfo))
        #expect(
            report.userFrames() == [
                PoolError.CrashFrame(function: "crashHelperInner(_:)"),
                PoolError.CrashFrame(
                    function: "closure #1 in variable initialization expression of static TestFunctions.crashInHelper"),
            ])
        #expect(report.userFrames()[0].description == "crashHelperInner(_:)")
    }

    @Test("A stripped executable: a report, but no frame of the user's code")
    func stripped() throws {
        let report = try #require(CrashReport(parsing: CrashSamples.stripped))
        #expect(report.crashedThread.first?.symbol == "<unknown>")
        #expect(report.userFrames().isEmpty)
    }

    @Test("A coloured report (stdout a terminal): escapes and the overwritten first line are dropped")
    func coloured() throws {
        let report = try #require(CrashReport(parsing: CrashSamples.coloured))
        #expect(report.headline == "Program crashed: Illegal instruction at 0x00007f673ad6df7f")
        #expect(
            report.userFrames() == [
                PoolError.CrashFrame(
                    function:
                        "closure #1 in variable initialization expression of static TestFunctions.crashForceUnwrap",
                    file: Self.crashFile, line: 11, column: 21)
            ])
        #expect(CrashReport.clean("a\u{1B}[91mb\u{1B}[0m\r\u{1B}[0Kc\u{1B}[39md") == "cd")
        #expect(CrashReport.clean("line\r") == "line")
    }

    @Test("Many threads: the crashed thread's block found before hundreds of others")
    func manyThreads() throws {
        let report = try #require(CrashReport(parsing: CrashSamples.manyThreads(300)))
        #expect(
            report.userFrames().map(\.function) == [
                "crashHelperInner(_:)", "crashHelperOuter(_:)", CrashSamples.closure,
            ])
        #expect(CrashSamples.manyThreads(300).utf8.count > 100 * 1024)
    }

    @Test("Stdlib frames between the user's frames are skipped; the library's frame ends the list; at most five")
    func whoseFrames() throws {
        func line(_ n: Int, _ symbol: String, _ rest: String) -> String {
            "  \(n) [ra] 0x000055a5b00c8536 \(symbol) + 1 in \(rest)"
        }
        let frames =
            [
                line(0, "swift_retain", "libswiftCore.so"),
                line(1, "user(_:)", "app at /src/App/User.swift:3:4"),
                line(2, "specialized Array.map<A>(_:)", "libswiftCore.so"),
                line(3, "closure #1 in caller()", "app at /src/App/User.swift:9:1"),
                line(4, "strlen", "libc.so.6"),
                line(5, "helper()", "libhelper.so at /src/Helper/helper.c:12:5"),
            ] + (6..<12).map { line($0, "deep\($0)()", "app at /src/App/Deep.swift:\($0):1") }
        let text = "Thread 2 crashed:\n\n" + frames.joined(separator: "\n") + "\n"
        let report = try #require(CrashReport(parsing: text))
        #expect(
            report.userFrames().map(\.function) == [
                "user(_:)", "closure #1 in caller()", "helper()", "deep6()", "deep7()",
            ])
        #expect(report.userFrames(limit: 2).count == 2)

        let stopped =
            "Thread 0 crashed:\n"
            + [
                line(0, "Swift runtime failure: arithmetic overflow", "app at //<compiler-generated>"),
                line(1, "add(_:_:)", "app at /src/App/Math.swift:2:3"),
                line(
                    2, "PoolFunction.call(_:_:into:_:)",
                    "app at /x/.build/checkouts/swift-multiprocessing/Sources/Multiprocessing/Worker/ChunkRunner.swift:158:33"
                ),
                line(3, "main", "app at /src/App/main.swift:1:1"),
            ].joined(separator: "\n")
        #expect(try #require(CrashReport(parsing: stopped)).userFrames().map(\.function) == ["add(_:_:)"])
    }

    @Test(
        "Frame lines of every shape",
        arguments: [
            (
                "  5 [async]          0x0000556 PoolFunction.runChunk(_:header:into:) in app at /a/ChunkRunner.swift:33",
                "PoolFunction.runChunk(_:header:into:)", "app", "/a/ChunkRunner.swift", 33, nil
            ),
            (
                "  3 [ra] [inlined]     0x0000562 specialized f() in app at /a/b c/File.swift",
                "specialized f()", "app", "/a/b c/File.swift", nil, nil
            ),
            (
                "  1 [ra] 0x000055a crashHelperOuter(_:) + 32 in app at C:/x.swift:36:18",
                "crashHelperOuter(_:)", "app", "C:/x.swift", 36, 18
            ),
            ("  0      0x00007f4 pause + 50 in libc.so.6", "pause", "libc.so.6", nil, nil, nil),
            (
                "12 0xdeadbeef protocol witness for P.f() in conformance S in app at //<compiler-generated>",
                "protocol witness for P.f() in conformance S", "app", "//<compiler-generated>", nil, nil
            ),
        ] as [(String, String, String?, String?, Int?, Int?)])
    func frameLines(line: String, symbol: String, image: String?, file: String?, lineNumber: Int?, column: Int?) throws
    {
        let frame = try #require(CrashReport.frame(parsing: Substring(line)))
        #expect(frame.symbol == symbol)
        #expect(frame.image == image)
        #expect(frame.file == file)
        #expect(frame.line == lineNumber)
        #expect(frame.column == column)
    }

    @Test("Garbage, partial and absent reports give nil or no frames, never a crash")
    func garbage() throws {
        #expect(CrashReport(parsing: "") == nil)
        #expect(CrashReport(parsing: "hello\nworld\n") == nil)
        #expect(CrashReport(parsing: "*** Signal 11: Backtracing from 0x1234...") == nil)
        #expect(CrashReport(parsing: "Thread 1 crashed:\n\nRegisters:\nrax 0x0 0\n") == nil)
        #expect(
            CrashReport(parsing: "Thread 1 crashed:\n  x 0x12 f in a\n  1 [ra 0x12 f\n  2 0xzz f in a\n  3 0x12\n")
                == nil)
        #expect(CrashReport.frame(parsing: "  7 [ra] 0x") == nil)
        // Every truncation of a real report, and random bytes spliced into it.
        let sample = Array(CrashSamples.debugHelper.utf8)
        for end in stride(from: 0, to: sample.count, by: 53) {
            let report = CrashReport(parsing: String(decoding: sample[..<end], as: UTF8.self))
            #expect(report == nil || report!.crashedThread.count <= 16)
        }
        var generator = SeededGenerator(state: 42)
        for _ in 0..<200 {
            var bytes = sample
            for _ in 0..<20 {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            _ = CrashReport(parsing: String(decoding: bytes, as: UTF8.self))?.userFrames()
        }
    }

    // MARK: - The stderr tail

    private func feed(_ tail: inout StderrTail, _ text: String, chunk: Int) {
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + chunk)
            bytes[start..<end].withUnsafeBytes { tail.append($0) }
            start = end
        }
    }

    @Test("A crash report longer than the kept end of stderr keeps its crashed thread and the Fatal error line")
    func longReport() throws {
        var tail = StderrTail()
        feed(&tail, String(repeating: "some output of the user's function\n", count: 3000), chunk: 16 * 1024)
        feed(&tail, "Swift/ContiguousArrayBuffer.swift:692: Fatal error: Index out of range\n\n", chunk: 16 * 1024)
        feed(&tail, CrashSamples.manyThreads(300), chunk: 16 * 1024)
        let words = tail.lastWords()
        #expect(
            words.crashFrames.map(\.function) == ["crashHelperInner(_:)", "crashHelperOuter(_:)", CrashSamples.closure])
        #expect(
            words.text == "Swift/ContiguousArrayBuffer.swift:692: Fatal error: Index out of range\n"
                + "*** Program crashed: Illegal instruction at 0x00007f744736df7f ***")
        // The end alone (what the pool kept before) has lost the crashed thread.
        #expect(CrashReport(parsing: String(decoding: tail.bytes, as: UTF8.self)) == nil)
    }

    @Test("The report's first line split across reads still starts the report")
    func splitMarker() throws {
        var tail = StderrTail(capacity: 256)
        feed(&tail, "noise\n" + CrashSamples.manyThreads(10), chunk: 5)
        #expect(tail.lastWords().crashFrames.first?.function == "crashHelperInner(_:)")
        #expect(tail.bytes.count == 256)
    }

    @Test("The kept report is bounded")
    func boundedReport() throws {
        var tail = StderrTail(capacity: 1024, reportCapacity: 8 * 1024, contextBefore: 64)
        feed(&tail, String(repeating: "x", count: 1000) + "\n" + CrashSamples.debugHelper, chunk: 700)
        feed(&tail, String(repeating: "y\n", count: 100_000), chunk: 4096)
        let report = try #require(tail.report)
        #expect(report.count == 8 * 1024)
        #expect(String(decoding: report.prefix(3), as: UTF8.self) == "***")
        #expect(tail.lastWords().crashFrames.count == 3)
    }

    @Test("Without a crash report: the last lines, no frames")
    func noReport() throws {
        var tail = StderrTail()
        feed(&tail, "one\ntwo\n\nFatal error: boom\nthree\n", chunk: 3)
        #expect(tail.lastWords().text == "Fatal error: boom")
        #expect(tail.lastWords().crashFrames.isEmpty)
        var plain = StderrTail()
        feed(&plain, "one\ntwo\n", chunk: 100)
        #expect(plain.lastWords().text == "one\ntwo")
        #expect(tail.report == nil && plain.report == nil)
    }

    @Test("Last words of a coloured report: the headline as a terminal shows it; of a release trap: its failure")
    func lastWordsHeadline() throws {
        var coloured = StderrTail()
        feed(&coloured, CrashSamples.coloured, chunk: 1000)
        #expect(coloured.lastWords().text == "💣 Program crashed: Illegal instruction at 0x00007f673ad6df7f")
        var release = StderrTail()
        feed(&release, CrashSamples.releaseForceUnwrap, chunk: 1000)
        #expect(
            release.lastWords().text
                == "*** Swift runtime failure: Unexpectedly found nil while unwrapping an Optional value ***")
    }

    // MARK: - The error

    @Test("A lost worker's error names where it crashed, innermost first, and carries the frames")
    func errorDescription() throws {
        let frames = [
            PoolError.CrashFrame(function: "inner()", file: "/src/A.swift", line: 3, column: 4),
            PoolError.CrashFrame(function: "outer()", file: "/src/B.swift", line: 5),
            PoolError.CrashFrame(function: "closure #1 in f"),
        ]
        let failure = ChunkFailure.workerLost(pid: 42, termination: .signaled(4), detail: nil)
        let error = failure.poolError(
            functionName: "f", lastWords: LastWords(text: "*** Program crashed: … ***", crashFrames: frames))
        #expect(error.crashFrames == frames)
        #expect(
            error.message == "the worker process 42 running 'f' killed by signal 4 (SIGILL); the pool replaced it. "
                + "It crashed in inner() at /src/A.swift:3:4\n    called from outer() at /src/B.swift:5\n"
                + "    called from closure #1 in f\nIts last words on stderr:\n*** Program crashed: … ***")
        // Without a report: as before.
        let plain = failure.poolError(functionName: "f", lastWords: LastWords(text: "Fatal error: x"))
        #expect(plain.crashFrames.isEmpty)
        #expect(plain.message.hasSuffix("the pool replaced it. Its last words on stderr:\nFatal error: x"))
    }
}

/// Crash reports as the test worker's stderr held them.
enum CrashSamples {
    static let closure = "closure #1 in variable initialization expression of static TestFunctions.crashInHelper"

    /// `debugHelper` with `threads` more threads after the crashed one, as a worker that started
    /// many threads writes it: longer than the 64 KiB the pool keeps of stderr's end.
    static func manyThreads(_ threads: Int) -> String {
        let lines = debugHelper.split(separator: "\n", omittingEmptySubsequences: false)
        let registers = lines.firstIndex { $0.hasPrefix("Registers:") }!
        let waiting = (0..<threads).map { n in
            """
            Thread \(n + 4) "waiter":

              0      0x00007f4028b01df2 pause + 50 in libc.so.6
              1 [ra] 0x000055c90003a1c4 waitForever() + 20 in multiprocessing-test-worker at /home/dev/app/Sources/MultiprocessingTestSupport/TestFunctions+Crash.swift:60:5
              2 [ra] 0x000055c90003a1f0 closure #1 in closure #1 in variable initialization expression of static TestFunctions.crashWithThreads + 9 in multiprocessing-test-worker at /home/dev/app/Sources/MultiprocessingTestSupport/TestFunctions+Crash.swift:32:52
              3 [ra] 0x00007f4028ab7134 start_thread + 755 in libc.so.6
              4 [ra] 0x00007f4028b377dc clone3 + 43 in libc.so.6

            """
        }
        return (lines[..<registers] + waiting.map { Substring($0) } + lines[registers...]).joined(separator: "\n")
    }

    /// A debug build: `crashInHelper` indexing out of range two calls deep.
    static let debugHelper = """
        *** Signal 4: Backtracing from 0x7f744736df7f... done ***

        *** Program crashed: Illegal instruction at 0x00007f744736df7f ***

        Platform: x86_64 Linux (Debian GNU/Linux 12 (bookworm))

        Thread 0 "multiprocessing":

          0      0x00007f7446db1df2 pause + 50 in libc.so.6
          1 [ra] 0x000055a5b00dfe94 multiprocessing_test_worker_main + 1571 in multiprocessing-test-worker at /home/dev/app/Sources/multiprocessing-test-worker/main.swift:31:6
        ...

        Thread 1 "oot.default-qos" crashed:

          0                  0x00007f744736df7f closure #1 in closure #1 in _assertionFailure(_:_:file:line:flags:) + 623 in libswiftCore.so
          1 [ra]             0x00007f74474f961f _assertionFailure(_:_:file:line:flags:) + 302 in libswiftCore.so
          2 [ra]             0x00007f7447a3ff65 specialized Array.subscript.getter + 84 in libswiftSwiftOnoneSupport.so
          3 [ra]             0x000055a5b00c8536 crashHelperInner(_:) + 165 in multiprocessing-test-worker at /home/dev/app/Sources/MultiprocessingTestSupport/TestFunctions+Crash.swift:31:18
          4 [ra]             0x000055a5b00c81f1 crashHelperOuter(_:) + 32 in multiprocessing-test-worker at /home/dev/app/Sources/MultiprocessingTestSupport/TestFunctions+Crash.swift:36:18
          5 [ra]             0x000055a5b00c7e77 closure #1 in variable initialization expression of static TestFunctions.crashInHelper + 38 in multiprocessing-test-worker at /home/dev/app/Sources/MultiprocessingTestSupport/TestFunctions+Crash.swift:17:9
          6 [ra]             0x000055a5afff4b15 PoolFunction.call(_:_:into:_:) + 1060 in multiprocessing-test-worker at /home/dev/app/Sources/Multiprocessing/Worker/ChunkRunner.swift:158:33
          7 [ra]             0x000055a5afff04d3 PoolFunction.runItems(_:header:into:_:) + 6498 in multiprocessing-test-worker at /home/dev/app/Sources/Multiprocessing/Worker/ChunkRunner.swift:80:17
          8 [async]          0x000055a5affed920 PoolFunction.runChunk(_:header:into:) in multiprocessing-test-worker at /home/dev/app/Sources/Multiprocessing/Worker/ChunkRunner.swift:33
          9 [async] [thunk]  0x000055a5afff7120 protocol witness for ChunkRunner.runChunk(_:header:into:) in conformance PoolFunction<Pack{repeat A}, B> in multiprocessing-test-worker at //<compiler-generated>
         10 [async]          0x000055a5b00c1ec0 static WorkerLoop.serve(functions:parentPID:) in multiprocessing-test-worker at /home/dev/app/Sources/Multiprocessing/Worker/WorkerLoop.swift:74
         11 [async]          0x000055a5b001e960 closure #1 in static Pool.bootstrap(serving:errorTypes:) in multiprocessing-test-worker at /home/dev/app/Sources/Multiprocessing/Pool+Bootstrap.swift:60
         12 [async] [thunk]  0x000055a5b001ea90 partial apply for closure #1 in static Pool.bootstrap(serving:errorTypes:) in multiprocessing-test-worker at //<compiler-generated>
         13 [async] [thunk]  0x000055a5b001f4a0 thunk for @escaping @isolated(any) @callee_guaranteed @async () -> (@out A) in multiprocessing-test-worker at //<compiler-generated>
         14 [async] [thunk]  0x000055a5b001f5d0 partial apply for thunk for @escaping @isolated(any) @callee_guaranteed @async () -> (@out A) in multiprocessing-test-worker at //<compiler-generated>
         15 [async] [system] 0x00007f74479e4310 completeTaskWithClosure(swift::AsyncContext*, swift::SwiftError*) in libswift_Concurrency.so
        ...

        Thread 2 "-qos.overcommit":

          0      0x00007f7446de6f36 epoll_wait + 86 in libc.so.6
          1 [ra] 0x00007f7447003ff2 _dispatch_mgr_invoke + 129 in libdispatch.so
          2 [ra] 0x00007f7447003f5d _dispatch_mgr_thread + 108 in libdispatch.so
          3 [ra] 0x00007f7447007195 _dispatch_worker_thread + 676 in libdispatch.so
        ...

        Thread 3 "oot.default-qos":

          0  0x00007f7446d63f16 __futex_abstimed_wait_common + 198 in libc.so.6
        ...


        Registers:

        rax 0x0000000000000000  0
        rdx 0x00000000000002b4  692
        rip 0x00007f744736df7f  0f 0b 48 83 ec 08 48 8d 05 64 50 49 00 48 8d 3d  ··H·ì·H··dPI·H·=




        Images (11 omitted):

        0x000055a5afee7000–0x000055a5b013f1c8 fdb9787a66b9c44c9043f17eaf5d8b9aa1963056 multiprocessing-test-worker  /home/dev/app/.build/x86_64-unknown-linux-gnu/debug/multiprocessing-test-worker
        0x00007f7446cde000–0x00007f7446e590fc 93ac61ec5a8eb1396f9fbd350e3169a558528a40 libc.so.6                    /usr/lib/x86_64-linux-gnu/libc.so.6

        Backtrace took 0.10s
        """

    /// A release build (`-c release`, debug information kept): `crashForceUnwrap`; the crashed
    /// thread is the last one, and the trap is an inlined "Swift runtime failure" frame.
    static let releaseForceUnwrap = """
        *** Signal 4: Backtracing from 0x562339e65134... done ***

        *** Swift runtime failure: Unexpectedly found nil while unwrapping an Optional value ***

        Platform: x86_64 Linux (Debian GNU/Linux 12 (bookworm))

        Thread 0 "multiprocessing":

          0      0x00007f4d11010df2 pause + 50 in libc.so.6
          1 [ra] 0x0000562339e7a79f multiprocessing_test_worker_main + 174 in multiprocessing-test-worker at /home/dev/app/Sources/multiprocessing-test-worker/main.swift:31:6
        ...

        Thread 1 "oot.default-qos":

          0  0x00007f4d10fc2f16 __futex_abstimed_wait_common + 198 in libc.so.6
        ...

        Thread 2 "-qos.overcommit":

          0      0x00007f4d11045f36 epoll_wait + 86 in libc.so.6
          1 [ra] 0x00007f4d11b63ff2 _dispatch_mgr_invoke + 129 in libdispatch.so
          2 [ra] 0x00007f4d11b63f5d _dispatch_mgr_thread + 108 in libdispatch.so
          3 [ra] 0x00007f4d11b67195 _dispatch_worker_thread + 676 in libdispatch.so
        ...

        Thread 3 "oot.default-qos" crashed:

          0 [inlined] [system] 0x0000562339e65134 Swift runtime failure: Unexpectedly found nil while unwrapping an Optional value in multiprocessing-test-worker at //<compiler-generated>
          1                    0x0000562339e65134 closure #1 in variable initialization expression of static TestFunctions.crashForceUnwrap + 20 in multiprocessing-test-worker at /home/dev/app/Sources/MultiprocessingTestSupport/TestFunctions+Crash.swift:11:21
          2 [ra]               0x0000562339de916d specialized PoolFunction.call(_:_:into:_:) + 540 in multiprocessing-test-worker at /home/dev/app/Sources/Multiprocessing/Worker/ChunkRunner.swift:158:33
          3 [ra] [inlined]     0x0000562339de6410 specialized PoolFunction.call(_:_:into:_:) in multiprocessing-test-worker at /home/dev/app/Sources/Multiprocessing/Worker/ChunkRunner.swift
          4 [ra]               0x0000562339de6410 PoolFunction.runItems(_:header:into:_:) + 1263 in multiprocessing-test-worker at /home/dev/app/Sources/Multiprocessing/Worker/ChunkRunner.swift:80:17
          5 [async]            0x0000562339de5660 PoolFunction.runChunk(_:header:into:) in multiprocessing-test-worker at /home/dev/app/Sources/Multiprocessing/Worker/ChunkRunner.swift:33
          6 [async] [thunk]    0x0000562339de8b10 protocol witness for ChunkRunner.runChunk(_:header:into:) in conformance PoolFunction<Pack{repeat A}, B> in multiprocessing-test-worker at //<compiler-generated>
          7 [async]            0x0000562339e62310 specialized static WorkerLoop.serve(functions:parentPID:) in multiprocessing-test-worker at /home/dev/app/Sources/Multiprocessing/Worker/WorkerLoop.swift:74
          8 [async]            0x0000562339dfb380 closure #1 in static Pool.bootstrap(serving:errorTypes:) in multiprocessing-test-worker at /home/dev/app/Sources/Multiprocessing/Pool+Bootstrap.swift:59
          9 [async] [thunk]    0x0000562339e00480 partial apply for closure #1 in static Pool.bootstrap(serving:errorTypes:) in multiprocessing-test-worker at //<compiler-generated>
         10 [async]            0x0000562339e00d90 specialized thunk for @escaping @isolated(any) @callee_guaranteed @async () -> (@out A) in multiprocessing-test-worker
         11 [async] [thunk]    0x0000562339e00db0 partial apply for specialized thunk for @escaping @isolated(any) @callee_guaranteed @async () -> (@out A) in multiprocessing-test-worker
         12 [async] [system]   0x00007f4d11c2f310 completeTaskWithClosure(swift::AsyncContext*, swift::SwiftError*) in libswift_Concurrency.so
        ...


        Registers:

        rax 0x00007f4d0b7fda50  d0 da 7f 0b 4d 7f 00 00 39 e2 e3 39 23 56 00 00  ÐÚ··M···9âã9#V··
        rdx 0x00007f4d119da6c8  00 02 00 00 00 00 00 00 10 38 a2 11 4d 7f 00 00  ·········8¢·M···
        rip 0x0000562339e65134  0f 0b 66 2e 0f 1f 84 00 00 00 00 00 55 48 89 e5  ··f.········UH·å




        Images (12 omitted):

        0x0000562339d82000–0x0000562339ebdd08 9d3b8d1f68e3423752ec8e6c71eff48470d6ab97 multiprocessing-test-worker /home/dev/app/.build/x86_64-unknown-linux-gnu/release/multiprocessing-test-worker
        0x00007f4d10f3d000–0x00007f4d110b80fc 93ac61ec5a8eb1396f9fbd350e3169a558528a40 libc.so.6                   /usr/lib/x86_64-linux-gnu/libc.so.6

        Backtrace took 0.28s
        """

    /// The release build after `strip --strip-debug`: functions, no file:line.
    static let noDebugInfo = """
        *** Signal 4: Backtracing from 0x55b29e3e4488... done ***

        *** Program crashed: Illegal instruction at 0x000055b29e3e4488 ***

        Platform: x86_64 Linux (Debian GNU/Linux 12 (bookworm))

        Thread 0 "nodebug":

          0      0x00007f4e0f969df2 pause + 50 in libc.so.6
          1 [ra] 0x000055b29e3f979f multiprocessing_test_worker_main + 174 in nodebug
        ...

        Thread 1 "oot.default-qos":

          0  0x00007f4e0f91bf16 __futex_abstimed_wait_common + 198 in libc.so.6
        ...

        Thread 2 "-qos.overcommit":

          0      0x00007f4e0f99ef36 epoll_wait + 86 in libc.so.6
          1 [ra] 0x00007f4e10557ff2 _dispatch_mgr_invoke + 129 in libdispatch.so
          2 [ra] 0x00007f4e10557f5d _dispatch_mgr_thread + 108 in libdispatch.so
          3 [ra] 0x00007f4e1055b195 _dispatch_worker_thread + 676 in libdispatch.so
        ...

        Thread 3 "oot.default-qos" crashed:

          0                  0x000055b29e3e4488 crashHelperInner(_:) + 24 in nodebug
          1 [ra]             0x000055b29e3e424e closure #1 in variable initialization expression of static TestFunctions.crashInHelper + 29 in nodebug
          2 [ra]             0x000055b29e36816d specialized PoolFunction.call(_:_:into:_:) + 540 in nodebug
          3 [ra]             0x000055b29e365410 PoolFunction.runItems(_:header:into:_:) + 1263 in nodebug
          4 [async]          0x000055b29e364660 PoolFunction.runChunk(_:header:into:) in nodebug
          5 [async] [thunk]  0x000055b29e367b10 protocol witness for ChunkRunner.runChunk(_:header:into:) in conformance PoolFunction<Pack{repeat A}, B> in nodebug
          6 [async]          0x000055b29e3e1310 specialized static WorkerLoop.serve(functions:parentPID:) in nodebug
          7 [async]          0x000055b29e37a380 closure #1 in static Pool.bootstrap(serving:errorTypes:) in nodebug
          8 [async] [thunk]  0x000055b29e37f480 partial apply for closure #1 in static Pool.bootstrap(serving:errorTypes:) in nodebug
          9 [async]          0x000055b29e37fd90 specialized thunk for @escaping @isolated(any) @callee_guaranteed @async () -> (@out A) in nodebug
         10 [async] [thunk]  0x000055b29e37fdb0 partial apply for specialized thunk for @escaping @isolated(any) @callee_guaranteed @async () -> (@out A) in nodebug
         11 [async] [system] 0x00007f4e0fdcf310 completeTaskWithClosure(swift::AsyncContext*, swift::SwiftError*) in libswift_Concurrency.so
        ...


        Registers:

        rax 0x0000000000000003  3
        rdx 0x0000000000000000  0
        rip 0x000055b29e3e4488  0f 0b 0f 0b 0f 1f 40 00 48 8b 07 48 85 c0 78 01  ······@·H··H·Àx·




        Images (12 omitted):

        0x000055b29e301000–0x000055b29e43cd08 9d3b8d1f68e3423752ec8e6c71eff48470d6ab97 nodebug                 /tmp/probe-bin/nodebug
        0x00007f4e0f896000–0x00007f4e0fa110fc 93ac61ec5a8eb1396f9fbd350e3169a558528a40 libc.so.6               /usr/lib/x86_64-linux-gnu/libc.so.6

        Backtrace took 0.01s
        """

    /// The release build after `strip`: no symbols.
    static let stripped = """
        *** Signal 4: Backtracing from 0x55b1e9ca8134... done ***

        *** Program crashed: Illegal instruction at 0x000055b1e9ca8134 ***

        Platform: x86_64 Linux (Debian GNU/Linux 12 (bookworm))

        Thread 0 "stripped":

          0      0x00007fa49b2595f1 sem_post@@GLIBC_2.34 + 49 in libc.so.6
          1 [ra] 0x00007fa49b4c09d2 _dispatch_semaphore_signal_slow + 17 in libdispatch.so
          2 [ra] 0x00007fa49b4bd0c8 _dispatch_root_queue_poke_slow + 55 in libdispatch.so
          3 [ra] 0x00007fa49be89985 swift_task_enqueueGlobalImpl + 68 in libswift_Concurrency.so
          4 [ra] 0x00007fa49bea8c0a swift::AsyncTask::flagAsAndEnqueueOnExecutor(swift::SerialExecutorRef) + 297 in libswift_Concurrency.so
          5 [ra] 0x00007fa49beaa74f swift_task_create_common + 1646 in libswift_Concurrency.so
          6 [ra] 0x000055b1e9c3e5d8 <unknown> in stripped
          7 [ra] 0x000055b1e9c44652 <unknown> in stripped
          8 [ra] 0x000055b1e9cbd79f <unknown> in stripped
        ...

        Thread 1 "oot.default-qos" crashed:

          0      0x000055b1e9ca8134 <unknown> in stripped
          1 [ra] 0x000055b1e9c2c16d <unknown> in stripped
          2 [ra] 0x000055b1e9c29410 <unknown> in stripped
          3 [ra] 0x00007fa49bea6e60 swift::runJobInEstablishedExecutorContext(swift::Job*) + 367 in libswift_Concurrency.so
          4 [ra] 0x00007fa49bea7b15 swift_job_run + 148 in libswift_Concurrency.so
          5 [ra] 0x00007fa49b4b7088 _dispatch_continuation_pop + 279 in libdispatch.so
          6 [ra] 0x00007fa49b4b6eb4 _dispatch_async_redirect_invoke + 195 in libdispatch.so
          7 [ra] 0x00007fa49b4c0195 _dispatch_worker_thread + 676 in libdispatch.so
        ...

        Thread 2 "-qos.overcommit":

          0      0x00007fa49b2d1f36 epoll_wait + 86 in libc.so.6
          1 [ra] 0x00007fa49b4bcff2 _dispatch_mgr_invoke + 129 in libdispatch.so
          2 [ra] 0x00007fa49b4bcf5d _dispatch_mgr_thread + 108 in libdispatch.so
          3 [ra] 0x00007fa49b4c0195 _dispatch_worker_thread + 676 in libdispatch.so
        ...


        Registers:

        rax 0x00007fa49adfea50  d0 ea df 9a a4 7f 00 00 39 12 c8 e9 b1 55 00 00  Ðêß·¤···9·Èé±U··
        rdx 0x00007fa49bbda6c8  00 02 00 00 00 00 00 00 10 38 c2 9b a4 7f 00 00  ·········8Â·¤···
        rip 0x000055b1e9ca8134  0f 0b 66 2e 0f 1f 84 00 00 00 00 00 55 48 89 e5  ··f.········UH·å




        Images (12 omitted):

        0x000055b1e9bc5000–0x000055b1e9d00d08 9d3b8d1f68e3423752ec8e6c71eff48470d6ab97 stripped                /tmp/probe-bin/stripped
        0x00007fa49b1c9000–0x00007fa49b3440fc 93ac61ec5a8eb1396f9fbd350e3169a558528a40 libc.so.6               /usr/lib/x86_64-linux-gnu/libc.so.6

        Backtrace took 0.01s
        """

    /// The debug build with stdout a terminal: ANSI colours, and the handler's first line
    /// overwritten after a carriage return.
    static let coloured = """
        💣 \u{1B}[91mProgram crashed: Signal 4: Backtracing from 0x7f673ad6df7f...\u{1B}[0m\r\u{1B}[0K💣 \u{1B}[91mProgram crashed: Illegal instruction at 0x00007f673ad6df7f\u{1B}[39m

        Platform: \u{1B}[37mx86_64\u{1B}[39m \u{1B}[37mLinux (Debian GNU/Linux 12 (bookworm))\u{1B}[39m

        Thread 1 "oot.default-qos" crashed:

          \u{1B}[90m0\u{1B}[39m                  \u{1B}[32m0x00007f673ad6df7f\u{1B}[39m \u{1B}[96mclosure #1 in closure #1 in _assertionFailure(_:_:file:line:flags:)\u{1B}[39m\u{1B}[37m + 623\u{1B}[39m in \u{1B}[36mlibswiftCore.so\u{1B}[39m
          \u{1B}[90m1\u{1B}[39m \u{1B}[34m[ra]\u{1B}[39m             \u{1B}[32m0x00007f673aef961f\u{1B}[39m \u{1B}[96m_assertionFailure(_:_:file:line:flags:)\u{1B}[39m\u{1B}[37m + 302\u{1B}[39m in \u{1B}[36mlibswiftCore.so\u{1B}[39m
          \u{1B}[90m2\u{1B}[39m \u{1B}[34m[ra]\u{1B}[39m             \u{1B}[32m0x000055af23591fc1\u{1B}[39m \u{1B}[96mclosure #1 in variable initialization expression of static TestFunctions.crashForceUnwrap\u{1B}[39m\u{1B}[37m + 224\u{1B}[39m in \u{1B}[36mmultiprocessing-test-worker\u{1B}[39m at \u{1B}[33m/home/dev/app/Sources/MultiprocessingTestSupport/TestFunctions+Crash.swift:11:21\u{1B}[39m
          \u{1B}[90m3\u{1B}[39m \u{1B}[34m[ra]\u{1B}[39m             \u{1B}[32m0x000055af234cf285\u{1B}[39m \u{1B}[96mPoolFunction.call(_:_:into:_:)\u{1B}[39m\u{1B}[37m + 1060\u{1B}[39m in \u{1B}[36mmultiprocessing-test-worker\u{1B}[39m at \u{1B}[33m/home/dev/app/Sources/Multiprocessing/Worker/ChunkRunner.swift:158:33\u{1B}[39m
          \u{1B}[90m4\u{1B}[39m \u{1B}[34m[ra]\u{1B}[39m             \u{1B}[32m0x000055af234cac50\u{1B}[39m \u{1B}[96mPoolFunction.runItems(_:header:into:_:)\u{1B}[39m\u{1B}[37m + 6495\u{1B}[39m in \u{1B}[36mmultiprocessing-test-worker\u{1B}[39m at \u{1B}[33m/home/dev/app/Sources/Multiprocessing/Worker/ChunkRunner.swift:80:17\u{1B}[39m
          \u{1B}[90m5\u{1B}[39m \u{1B}[34m[async]\u{1B}[39m          \u{1B}[32m0x000055af234c80a0\u{1B}[39m \u{1B}[96mPoolFunction.runChunk(_:header:into:)\u{1B}[39m in \u{1B}[36mmultiprocessing-test-worker\u{1B}[39m at \u{1B}[33m/home/dev/app/Sources/Multiprocessing/Worker/ChunkRunner.swift:33\u{1B}[39m
          \u{1B}[90m6\u{1B}[39m \u{1B}[34m[async]\u{1B}[39m \u{1B}[34m[thunk]\u{1B}[39m  \u{1B}[32m0x000055af234d1860\u{1B}[39m \u{1B}[96mprotocol witness for ChunkRunner.runChunk(_:header:into:) in conformance PoolFunction<Pack{repeat A}, B>\u{1B}[39m in \u{1B}[36mmultiprocessing-test-worker\u{1B}[39m at \u{1B}[33m//<compiler-generated>\u{1B}[39m
        \u{1B}[90m...\u{1B}[39m

        Backtrace took 0.10s
        """
}
