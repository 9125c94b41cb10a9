// Reads the crash report the Swift runtime's backtracer (swift-backtrace) writes to a crashing
// worker's stderr, to tell where in the user's code the worker crashed. Pure text parsing: no
// process, no lock; anything it does not recognise makes it return nil or skip the line.
//
// What the report looks like (Swift 6.x on Linux, non-interactive, the "full" preset):
//
//     *** Signal 4: Backtracing from 0x55da4905ba44... done ***
//
//     *** Program crashed: Illegal instruction at 0x000055da4905ba44 ***      (or "*** Swift runtime failure: …")
//
//     Thread 0 "main":
//       0      0x00007f4028b01df2 pause + 50 in libc.so.6
//     ...
//     Thread 1 "oot.default-qos" crashed:
//       0 [inlined] [system] 0x000055da4905ba44 Swift runtime failure: … in app at //<compiler-generated>
//       1                    0x000055da4905ba44 closure #1 in … + 20 in app at /src/Jobs.swift:11:21
//       2 [ra]               0x000055da48fe7fed specialized PoolFunction.call(_:_:into:_:) + 540 in app at /…/Sources/Multiprocessing/Worker/ChunkRunner.swift:158:33
//     ...
//     Registers: …   Images (12 omitted): …   Backtrace took 0.14s
//
// The crashed thread may be any of the threads, in index order. Without debug information a frame
// has no " at file:line:column"; in a stripped binary its symbol is "<unknown>". When stdout is a
// terminal the report is coloured (ANSI escapes) and its headline starts with "💣" instead of "***".

/// A crash report of the Swift runtime, parsed from a worker's stderr.
struct CrashReport: Equatable {
    /// One line of the crashed thread's backtrace.
    struct Frame: Equatable {
        /// The attributes in brackets: `ra`, `async`, `inlined`, `system`, `thunk`.
        var attributes: [String]
        /// The demangled symbol, without its `+ offset`.
        var symbol: String
        /// The binary the code is in, e.g. `libswiftCore.so` or the executable's name.
        var image: String?
        var file: String?
        var line: Int?
        var column: Int?
    }

    /// The report's headline without its stars: `Program crashed: Illegal instruction at 0x…`
    /// or `Swift runtime failure: Unexpectedly found nil while unwrapping an Optional value`.
    var headline: String?
    /// The crashed thread's frames, innermost first.
    var crashedThread: [Frame]

    /// The last crash report in `text`, or nil when it holds none with a crashed thread's frames.
    init?(parsing text: String) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(Self.clean)
        guard let header = lines.lastIndex(where: Self.isCrashedThreadHeader) else { return nil }
        var frames: [Frame] = []
        for line in lines[(header + 1)...] {
            let trimmed = line.drop { $0 == " " }
            if Self.endsThreadBlock(trimmed) { break }
            if let frame = Self.frame(parsing: trimmed) { frames.append(frame) }
        }
        guard !frames.isEmpty else { return nil }
        self.crashedThread = frames
        self.headline = lines[..<header].last(where: Self.isHeadline).map(Self.headlineText)
    }

    /// The innermost frames of the user's code: frames of the Swift runtime and standard library,
    /// of system libraries, thunks and unknown symbols are skipped; the first frame of this
    /// library after a user's frame (the library calling the user's function) ends the list.
    func userFrames(limit: Int = 5) -> [PoolError.CrashFrame] {
        var result: [PoolError.CrashFrame] = []
        for frame in crashedThread where result.count < limit {
            switch Self.owner(of: frame) {
            case .runtime:
                continue
            case .library:
                if !result.isEmpty { return result }
            case .user:
                result.append(
                    PoolError.CrashFrame(
                        function: frame.symbol, file: frame.file, line: frame.line, column: frame.column))
            }
        }
        return result
    }

    // MARK: - Lines

    /// A line as a terminal would show it: without ANSI escape sequences, and only what follows
    /// the last carriage return (the coloured report overwrites its first line that way).
    static func clean(_ line: Substring) -> String {
        var scalars = String.UnicodeScalarView()
        var iterator = line.unicodeScalars.makeIterator()
        var pieceStart = true
        while let scalar = iterator.next() {
            switch scalar {
            case "\u{1B}":
                // CSI: ESC [ parameters… final byte in @…~. Other escapes: drop the next scalar.
                guard let next = iterator.next(), next == "[" else { continue }
                while let byte = iterator.next(), !(0x40...0x7E).contains(byte.value) {}
            case "\r":
                pieceStart = true
            default:
                if pieceStart {
                    scalars.removeAll(keepingCapacity: true)
                    pieceStart = false
                }
                scalars.append(scalar)
            }
        }
        return String(scalars)
    }

    /// `Thread 1 "worker" crashed:` or `Thread 1 crashed:`.
    static func isCrashedThreadHeader(_ line: String) -> Bool {
        line.hasPrefix("Thread ") && line.hasSuffix(" crashed:")
    }

    /// `*** Program crashed: … ***`, `*** Swift runtime failure: … ***`, or the coloured forms
    /// starting with "💣".
    static func isHeadline(_ line: String) -> Bool {
        guard line.hasPrefix("***") || line.hasPrefix("💣") else { return false }
        let text = headlineText(line)
        return text.hasPrefix("Program crashed:") || text.hasPrefix("Swift runtime failure:")
    }

    private static func headlineText(_ line: String) -> String {
        var text = Substring(line)
        for marker in ["***", "💣"] where text.hasPrefix(marker) {
            text = text.dropFirst(marker.count)
            if marker == "***", text.hasSuffix("***") { text = text.dropLast(3) }
        }
        return String(text.trimmingSpaces())
    }

    private static func endsThreadBlock(_ line: Substring) -> Bool {
        line.hasPrefix("Thread ") || line.hasPrefix("Registers:") || line.hasPrefix("Images")
            || line.hasPrefix("Backtrace took") || line.hasPrefix("***") || line.hasPrefix("💣")
    }

    /// `  3 [ra] [inlined] 0x00005614bc1f42b0 symbol + 12 in image at /path/File.swift:80:17`.
    static func frame(parsing line: Substring) -> Frame? {
        var rest = line.trimmingSpaces()
        // The frame's number.
        let number = rest.prefix { $0.isASCII && $0.isNumber }
        guard !number.isEmpty else { return nil }
        rest = rest.dropFirst(number.count).trimmingSpaces()
        // Its attributes.
        var attributes: [String] = []
        while rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            attributes.append(String(rest[rest.index(after: rest.startIndex)..<close]))
            rest = rest[rest.index(after: close)...].trimmingSpaces()
        }
        // Its address.
        guard rest.hasPrefix("0x") else { return nil }
        let address = rest.prefix { !$0.isWhitespace }
        guard address.count > 2, address.dropFirst(2).allSatisfy(\.isHexDigit) else { return nil }
        rest = rest.dropFirst(address.count).trimmingSpaces()
        guard !rest.isEmpty else { return nil }
        // " at location", then " in image", then "symbol + offset".
        var file: String?
        var lineNumber: Int?
        var column: Int?
        if let at = rest.ranges(of: " at ").last {
            (file, lineNumber, column) = location(rest[at.upperBound...])
            rest = rest[..<at.lowerBound]
        }
        var image: String?
        if let inRange = rest.ranges(of: " in ").last {
            image = String(rest[inRange.upperBound...])
            rest = rest[..<inRange.lowerBound]
        }
        if let plus = rest.ranges(of: " + ").last, rest[plus.upperBound...].allSatisfy(\.isNumber) {
            rest = rest[..<plus.lowerBound]
        }
        let symbol = rest.trimmingSpaces()
        guard !symbol.isEmpty else { return nil }
        return Frame(
            attributes: attributes, symbol: String(symbol), image: image, file: file, line: lineNumber,
            column: column)
    }

    /// `/path/File.swift:80:17`, `/path/File.swift:33`, `/path/File.swift`.
    private static func location(_ text: Substring) -> (String, Int?, Int?) {
        var parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var numbers: [Int] = []
        while parts.count > 1, numbers.count < 2, let number = Int(parts.last!) {
            numbers.insert(number, at: 0)
            parts.removeLast()
        }
        let file = parts.joined(separator: ":")
        return (file, numbers.first, numbers.count == 2 ? numbers[1] : nil)
    }

    // MARK: - Whose frame

    enum Owner {
        /// The Swift runtime, the standard library, a system library, a thunk, an unknown symbol.
        case runtime
        /// This package.
        case library
        case user
    }

    static func owner(of frame: Frame) -> Owner {
        if frame.attributes.contains("system") || frame.attributes.contains("thunk") { return .runtime }
        if frame.symbol == "<unknown>" || frame.symbol.hasPrefix("Swift runtime failure") { return .runtime }
        if let image = frame.image, runtimeImagePrefixes.contains(where: image.hasPrefix) { return .runtime }
        if runtimeSymbolPrefixes.contains(where: frame.symbol.hasPrefix)
            || runtimeSymbolParts.contains(where: frame.symbol.contains)
        {
            return .runtime
        }
        if let file = frame.file {
            if file.hasSuffix("<compiler-generated>") || file.hasPrefix("Swift/") || file.contains("/stdlib/public/") {
                return .runtime
            }
            return file.contains("/Sources/Multiprocessing/") ? .library : .user
        }
        // No debug information: only the symbol tells.
        return isLibrarySymbol(frame.symbol) ? .library : .user
    }

    /// The Swift runtime, Foundation, Dispatch, the C and C++ runtimes, the dynamic loader.
    private static let runtimeImagePrefixes = [
        "libswift", "libdispatch", "libBlocksRuntime", "libFoundation", "lib_Foundation", "libXCTest",
        "libc.so", "libc-", "libm.so", "libpthread", "libdl.so", "librt.so", "libstdc++", "libc++", "libgcc_s",
        "ld-linux", "ld64.so", "linux-vdso",
    ]
    private static let runtimeSymbolPrefixes = ["swift_", "swift::", "_swift", "__swift", "Swift.", "$ss"]
    private static let runtimeSymbolParts = [
        "_assertionFailure(", "_fatalErrorMessage(", "_preconditionFailure(", "_unimplementedInitializer(",
    ]

    /// This package's types that run on a worker's path to the user's function (the symbol of a
    /// frame without debug information names no module), or a mangled symbol of the module.
    private static func isLibrarySymbol(_ symbol: String) -> Bool {
        if symbol.contains("16Multiprocessing") { return true }
        var name = Substring(symbol)
        var stripped = true
        while stripped {
            stripped = false
            for prefix in [
                "specialized ", "static ", "partial apply for ", "protocol witness for ", "merged ",
                "reabstraction thunk helper for ", "thunk for ", "implicit closure #", "closure #",
            ] where name.hasPrefix(prefix) {
                name = name.dropFirst(prefix.count)
                if prefix.hasSuffix("#") {
                    // "closure #2 in …"
                    name = name.drop { $0.isNumber }
                    if name.hasPrefix(" in ") { name = name.dropFirst(4) }
                }
                stripped = true
            }
        }
        return libraryTypes.contains { type in
            name.hasPrefix(type + ".") || name.hasPrefix(type + "<") || name.hasPrefix(type + "(")
        }
    }

    private static let libraryTypes = [
        "Pool", "PoolFunction", "AnyPoolFunction", "ChunkRunner", "WorkerLoop", "Outcomes", "WireEncoder",
        "WireDecoder", "WireCoding", "ByteWriter", "ByteReader", "PackedLayout", "Attachments",
        "ResultFrameBuilder", "TaskFrameBuilder", "ErrorRecord",
    ]
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        let isSpace = { (c: Character) in c == " " || c == "\t" }
        let start = drop(while: isSpace)
        guard let last = start.lastIndex(where: { !isSpace($0) }) else { return start[start.endIndex...] }
        return start[...last]
    }
}
