// Where the server listens and how many workers it runs: command-line options first, then
// environment variables, then defaults (loopback only; port 0 picks a free port, and the server
// prints the one it got).

import Foundation

/// The server's settings.
struct Settings {
    /// The address to bind, `127.0.0.1` unless told otherwise.
    var host = "127.0.0.1"
    /// The port to bind; 0 lets the system pick a free one.
    var port = 8080
    /// The pool's worker count; nil: the CPUs this process may use.
    var processes: Int? = nil
    /// How long a graceful shutdown lets the pool finish its work before terminating it.
    var shutdownTimeout: Duration = .seconds(30)

    static let usage = """
        usage: http-server [--host ADDRESS] [--port PORT] [--processes N] [--shutdown-timeout SECONDS]
          environment: HTTP_SERVER_HOST, HTTP_SERVER_PORT, HTTP_SERVER_PROCESSES, HTTP_SERVER_SHUTDOWN_TIMEOUT
        """

    /// Reads `arguments` (without the program's name) over `environment`.
    /// - Throws: ``SettingsError`` for an unknown option or a value that does not parse.
    init(arguments: [String], environment: [String: String]) throws {
        var values: [String: String] = [:]
        for (name, variable) in Self.options {
            if let value = environment[variable] { values[name] = value }
        }
        var remaining = arguments[...]
        while let option = remaining.popFirst() {
            guard Self.options[option] != nil, let value = remaining.popFirst() else {
                throw SettingsError(message: "unknown option or missing value: \(option)\n\(Self.usage)")
            }
            values[option] = value
        }
        if let host = values["--host"] { self.host = host }
        if let port = values["--port"] { self.port = try Self.number(port, of: "--port", in: 0...65535) }
        if let processes = values["--processes"] {
            self.processes = try Self.number(processes, of: "--processes", in: 1...1024)
        }
        if let seconds = values["--shutdown-timeout"] {
            shutdownTimeout = .seconds(try Self.number(seconds, of: "--shutdown-timeout", in: 0...86_400))
        }
    }

    /// Each option and the environment variable that sets it too.
    private static let options = [
        "--host": "HTTP_SERVER_HOST", "--port": "HTTP_SERVER_PORT", "--processes": "HTTP_SERVER_PROCESSES",
        "--shutdown-timeout": "HTTP_SERVER_SHUTDOWN_TIMEOUT",
    ]

    private static func number(_ text: String, of option: String, in range: ClosedRange<Int>) throws -> Int {
        guard let value = Int(text), range.contains(value) else {
            throw SettingsError(message: "\(option) needs a whole number in \(range), not \(text)")
        }
        return value
    }
}

/// A command line or environment the server cannot run with.
struct SettingsError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
