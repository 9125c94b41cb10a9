// Where a worker crashed: the frames of your code in the crashed thread of the Swift runtime's
// crash report, as `PoolError.crashFrames` carries them.

extension PoolError {
    /// One frame of your code in the crashed thread of a worker that died: a function and, when
    /// the worker executable has debug information, the source position it had reached.
    ///
    /// ``PoolError/crashFrames`` lists them innermost first, so the first one is the line of your
    /// code that crashed (or that called into the standard library, where the trap fired):
    ///
    /// ```swift
    /// catch let error as PoolError where error.code == .workerLost {
    ///     if let frame = error.crashFrames.first {
    ///         print("crashed at \(frame.file ?? "?"):\(frame.line ?? 0)")  // …/Parse.swift:42
    ///     }
    /// }
    /// ```
    public struct CrashFrame: Sendable, Hashable, CustomStringConvertible {
        /// The function, demangled as the crash report names it, e.g.
        /// `closure #1 in variable initialization expression of static Jobs.parse` or
        /// `parseLine(_:)`.
        public var function: String
        /// The source file's path as the debug information records it, or nil when the
        /// executable has none.
        public var file: String?
        /// The line in ``file``, or nil when unknown.
        public var line: Int?
        /// The column in ``line``, or nil when unknown (the report gives none for some async
        /// frames).
        public var column: Int?

        /// Creates a frame.
        /// - Parameters:
        ///   - function: the function's name.
        ///   - file: the source file's path, if known.
        ///   - line: the line, if known.
        ///   - column: the column, if known.
        public init(function: String, file: String? = nil, line: Int? = nil, column: Int? = nil) {
            self.function = function
            self.file = file
            self.line = line
            self.column = column
        }

        /// The function and its position: `parseLine(_:) at /src/Parse.swift:42:17`.
        public var description: String {
            guard let file else { return function }
            var text = "\(function) at \(file)"
            if let line {
                text += ":\(line)"
                if let column { text += ":\(column)" }
            }
            return text
        }
    }
}
