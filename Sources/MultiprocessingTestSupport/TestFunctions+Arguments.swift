// Pool functions of the worker-arguments tests: what command line a worker was started with.

public import Multiprocessing

extension TestFunctions {
    /// The worker's command-line arguments after its path (`CommandLine.arguments.dropFirst()`).
    public static let commandLineArguments = PoolFunction("commandLineArguments") { () -> [String] in
        Array(CommandLine.arguments.dropFirst())
    }

    /// The functions of this file.
    public static let arguments: [any AnyPoolFunction] = [commandLineArguments]
}
