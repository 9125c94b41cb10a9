// CrashReportOptionTests.swift
//
// `Pool.Configuration.crashReports`: with `.suppress` the Swift runtime's crash report of a
// trapping worker does not reach the parent's stderr, while what the task printed before still
// does and the error still names where it crashed. The filter (Runtime/CrashReportFilter.swift)
// is driven with the sample reports of CrashReportTests.swift cut at many chunk sizes; the whole
// path runs in a parent program (`crash-reports`, see ParentProgram.swift), whose stderr the
// test reads.

import Foundation
import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

/// Passes `text` through a filter `chunk` bytes at a time and returns what it forwards.
private func filtered(_ text: String, chunk: Int, suppressing: Bool = true) -> String {
    var filter = CrashReportFilter(suppressing: suppressing)
    var output: [UInt8] = []
    let bytes = Array(text.utf8)
    var start = 0
    while start < bytes.count {
        let end = min(bytes.count, start + chunk)
        bytes[start..<end].withUnsafeBytes { raw in
            _ = filter.pass(raw) { part in
                output.append(contentsOf: part)
                return .none
            }
        }
        start = end
    }
    filter.finish { part in
        output.append(contentsOf: part)
        return .none
    }
    return String(decoding: output, as: UTF8.self)
}

/// Lines that only a crash report has.
private func reportLines(in text: String) -> [Substring] {
    text.split(separator: "\n").filter { line in
        ["Backtracing from", "Program crashed", "Thread ", "Registers", "Backtrace took", "Images", " in libc.so"]
            .contains { line.contains($0) }
    }
}

@Suite("Keeping crash reports out of the parent's stderr", .offCooperativePool)
struct CrashReportOptionTests {
    static let before = "line one of the task\nSwift/x.swift:1: Fatal error: Index out of range\n\n"

    @Test(
        "The filter drops the report and all after it, and passes what came before, however it is cut",
        arguments: [1, 2, 3, 7, 64, 100_000])
    func filterCuts(chunk: Int) {
        for sample in [CrashSamples.debugHelper, CrashSamples.releaseForceUnwrap, CrashSamples.coloured] {
            let text = Self.before + sample + "\nafter the report\n"
            #expect(filtered(text, chunk: chunk) == Self.before)
            #expect(filtered(text, chunk: chunk, suppressing: false) == text)
        }
    }

    @Test("Lines that only begin like a report's first line pass whole, partial lines too")
    func lookalikes() {
        let text = "*** Signal handlers installed\n💣 boom\n*** Sig\n**\nplain partial"
        for chunk in [1, 4, 1000] { #expect(filtered(text, chunk: chunk) == text) }
        // A partial line that is plainly not a report is forwarded at once, not held back.
        var filter = CrashReportFilter(suppressing: true)
        var output: [UInt8] = []
        Array("progress: 10%".utf8).withUnsafeBytes { raw in
            _ = filter.pass(raw) { part in
                output.append(contentsOf: part)
                return .none
            }
        }
        #expect(String(decoding: output, as: UTF8.self) == "progress: 10%")
    }

    @Test("The default is forward")
    func defaultForwards() {
        #expect(Pool.Configuration().crashReports == .forward)
        #expect("\(Pool.Configuration.CrashReports.suppress)" == "suppress")
    }

    @Test(
        "With crashReports: .suppress the parent's stderr has the task's line but no report; the error keeps the location",
        .timeLimit(.minutes(2)), .disabled(if: TestBackend.isCluster, TestBackend.parentProgram))
    func suppressedInAParent() throws {
        let trapLine =
            try String(contentsOfFile: TestFunctions.crashReportsSourcePath, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex { $0.contains("printThenTrap traps here") }.map { $0 + 1 }
        let location = "at \(TestFunctions.crashReportsSourcePath):\(try #require(trapLine))"

        let suppressed = try runParentProgram(["crash-reports", "suppress"])
        #expect(suppressed.stdout.contains("frames "))
        #expect(!suppressed.stdout.contains("frames 0"), "\(suppressed.stdout)")
        #expect(suppressed.stdout.contains(location), "\(suppressed.stdout)")
        #expect(suppressed.stdout.contains("joined"))
        #expect(suppressed.stderr.contains(TestFunctions.printThenTrapLine), "\(suppressed.stderr)")
        #expect(reportLines(in: suppressed.stderr).isEmpty, "\(suppressed.stderr)")

        // The default passes the report on: what the option keeps out is there.
        let forwarded = try runParentProgram(["crash-reports", "forward"])
        #expect(forwarded.stdout.contains(location), "\(forwarded.stdout)")
        #expect(forwarded.stderr.contains(TestFunctions.printThenTrapLine))
        #expect(reportLines(in: forwarded.stderr).count > 5, "\(forwarded.stderr)")
    }
}
