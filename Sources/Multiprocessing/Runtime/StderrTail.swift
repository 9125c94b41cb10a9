// What the pool keeps of a worker's stderr to explain its death: the end of it, and the beginning
// of the Swift runtime's crash report when one starts, so that a long report (many threads) never
// loses its crashed thread. The bytes themselves are forwarded to the parent's stderr elsewhere.

/// What a dead worker left on its stderr.
struct LastWords: Sendable, CustomStringConvertible {
    /// The lines that explain the death (see ``StderrTail/lastWords(maxLines:)``).
    var text: String
    /// Where it crashed in the user's code, innermost first; empty without a crash report.
    var crashFrames: [PoolError.CrashFrame] = []

    var description: String { text }
}

/// The end of a worker's stderr, kept to explain its death.
struct StderrTail {
    /// The last `capacity` bytes.
    private(set) var bytes: [UInt8] = []
    let capacity: Int
    /// From a little before the crash report's first line (`contextBefore` bytes, to keep the
    /// runtime's "Fatal error" line) up to `reportCapacity` bytes; nil until a report starts.
    private(set) var report: [UInt8]?
    let reportCapacity: Int
    let contextBefore: Int

    /// What the runtime's crash handler writes first, in either form: `*** Signal 4: Backtracing
    /// from 0x…` or, coloured, `💣 Program crashed: Signal 4: Backtracing from 0x…`.
    static let reportMarker = Array("Backtracing from 0x".utf8)

    init(capacity: Int = 64 * 1024, reportCapacity: Int = 512 * 1024, contextBefore: Int = 8 * 1024) {
        self.capacity = capacity
        self.reportCapacity = reportCapacity
        self.contextBefore = contextBefore
    }

    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        guard !chunk.isEmpty else { return }
        if report != nil {
            let room = reportCapacity - report!.count
            if room > 0 { report!.append(contentsOf: chunk.prefix(room)) }
        }
        bytes.append(contentsOf: chunk)
        if report == nil { startReportIfMarked(searchingLast: chunk.count + Self.reportMarker.count - 1) }
        if bytes.count > capacity { bytes.removeFirst(bytes.count - capacity) }
    }

    /// Starts `report` if the last `count` bytes of `bytes` hold the marker.
    private mutating func startReportIfMarked(searchingLast count: Int) {
        let marker = Self.reportMarker
        let from = max(0, bytes.count - count)
        guard let at = bytes.offset(of: marker, from: from) else { return }
        // Back to the start of a line at most `contextBefore` bytes earlier.
        var start = max(0, at - contextBefore)
        if start > 0, let newline = bytes[start..<at].firstIndex(of: UInt8(ascii: "\n")) { start = newline + 1 }
        report = Array(bytes[start..<min(bytes.count, start + reportCapacity)])
    }

    /// What explains a death: the Swift runtime's "Fatal error: …" line and the crash
    /// reporter's headline ("Program crashed: …", "Swift runtime failure: …") when present (a
    /// backtrace that follows them can be long), else the last few non-empty lines; and, from a
    /// crash report, the innermost frames of the user's code.
    func lastWords(maxLines: Int = 12) -> LastWords {
        // The usual case (a worker that said nothing): none of the string work below, whose
        // first run instantiates the metadata of its generic types, on the way from `terminate`
        // to `join` (callgrind: ~130K instructions a worker).
        if bytes.isEmpty && report == nil { return LastWords(text: "") }
        let text = String(decoding: report ?? bytes, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(CrashReport.clean)
            .filter { !$0.isEmpty }
        let telling = lines.filter { $0.contains("Fatal error") || CrashReport.isHeadline($0) }
        let words = (telling.isEmpty ? lines : telling).suffix(maxLines).joined(separator: "\n")
        guard report != nil, let crash = CrashReport(parsing: text) else { return LastWords(text: words) }
        return LastWords(text: words, crashFrames: crash.userFrames())
    }
}

extension Array where Element == UInt8 {
    /// The index where `needle` first occurs at or after `from`.
    fileprivate func offset(of needle: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, count >= needle.count else { return nil }
        var i = Swift.max(0, from)
        while i <= count - needle.count {
            if self[i] == needle[0], self[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
