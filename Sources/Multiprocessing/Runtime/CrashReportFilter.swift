// Keeps the Swift runtime's crash report out of what a worker's stderr forwards to the parent's
// stderr, when the pool's configuration asks for it (`crashReports: .suppress`): everything from
// the report's first line on is dropped, everything before it passes unchanged. The pool still
// reads the report from the worker's stderr tail (StderrTail.swift), so the error keeps where it
// crashed. Pure: bytes in, the bytes to forward out, one worker's stderr per filter.
//
// The report's first line is the backtracer's `*** Signal 4: Backtracing from 0x…` or, coloured,
// `💣 …Program crashed: Signal 4: Backtracing from 0x…` (see CrashReport.swift). A line that
// starts as one of them may be the report, so it is held back until it is either (it holds
// "Backtracing from 0x": dropped, and so is the rest of the stream, which is the report and the
// dying worker's last bytes) or plainly not (it ends, it stops matching, it grows long: then
// forwarded). Every other byte is forwarded as it comes, partial lines included.

/// Passes one worker's stderr on, without the runtime's crash report when suppressing.
struct CrashReportFilter {
    /// Whether crash reports are dropped; false passes every byte on unchanged.
    let suppressing: Bool
    /// The start of the current line, held back: it may be the report's first line.
    private var held: [UInt8] = []
    /// Where the stream is in its current line.
    private var position = LinePosition.start
    /// A crash report started: nothing more is forwarded.
    private(set) var inReport = false

    private enum LinePosition {
        /// At the start of a line.
        case start
        /// In a line that began like the report's first line; its bytes so far are `held`.
        case holding
        /// In a line that cannot be the report's first line: forwarded as it comes.
        case passing
    }

    /// How the report's first line begins, in its two forms.
    static let lineStarts = [Array("*** Signal ".utf8), Array("💣 ".utf8)]
    /// What the report's first line holds (StderrTail's marker).
    static let marker = StderrTail.reportMarker
    /// A held line longer than this is not the report's first line (that is under 100 bytes).
    static let maxHeld = 512

    init(suppressing: Bool) {
        self.suppressing = suppressing
    }

    /// Passes `chunk` on: `forward` is called with the bytes to forward (none, one or two
    /// pieces). Returns the last change `forward` asked for other than `.none`.
    mutating func pass(
        _ chunk: UnsafeRawBufferPointer, forward: (UnsafeRawBufferPointer) -> StderrForwarder.Change
    ) -> StderrForwarder.Change {
        guard suppressing else { return forward(chunk) }
        var change = StderrForwarder.Change.none
        func emit(_ bytes: UnsafeRawBufferPointer) {
            guard !bytes.isEmpty else { return }
            let step = forward(bytes)
            if step != .none { change = step }
        }
        var rest = chunk[...]
        while !rest.isEmpty && !inReport {
            switch position {
            case .passing:
                // Up to and with the end of this line, as it comes.
                if let newline = rest.firstIndex(of: UInt8(ascii: "\n")) {
                    emit(UnsafeRawBufferPointer(rebasing: rest[...newline]))
                    rest = rest[(newline + 1)...]
                    position = .start
                } else {
                    emit(UnsafeRawBufferPointer(rebasing: rest))
                    rest = rest[rest.endIndex...]
                }
            case .start, .holding:
                let newline = rest.firstIndex(of: UInt8(ascii: "\n"))
                let end = newline.map { $0 + 1 } ?? rest.endIndex
                held.append(contentsOf: rest[..<end])
                rest = rest[end...]
                switch classifyHeld(ended: newline != nil) {
                case .report:
                    held = []
                    inReport = true
                case .undecided:
                    position = .holding
                case .notReport:
                    held.withUnsafeBytes { emit($0) }
                    held.removeAll(keepingCapacity: true)
                    position = newline != nil ? .start : .passing
                }
            }
        }
        return change
    }

    /// The worker's stderr ended: a line still held was not a report, so it goes on.
    mutating func finish(forward: (UnsafeRawBufferPointer) -> StderrForwarder.Change) {
        guard !held.isEmpty, !inReport else { return }
        held.withUnsafeBytes { _ = forward($0) }
        held = []
    }

    private enum Verdict { case report, notReport, undecided }

    /// Whether the held line is the report's first line, cannot be, or may still become it.
    private func classifyHeld(ended: Bool) -> Verdict {
        let startsLikeReport = Self.lineStarts.contains { start in
            held.count >= start.count ? held.starts(with: start) : start.starts(with: held)
        }
        guard startsLikeReport else { return .notReport }
        if contains(Self.marker) { return .report }
        return ended || held.count > Self.maxHeld ? .notReport : .undecided
    }

    private func contains(_ needle: [UInt8]) -> Bool {
        guard held.count >= needle.count else { return false }
        for start in 0...(held.count - needle.count) where held[start] == needle[0] {
            if held[start..<(start + needle.count)].elementsEqual(needle) { return true }
        }
        return false
    }
}
