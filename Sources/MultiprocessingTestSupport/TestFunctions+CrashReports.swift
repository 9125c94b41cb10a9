// A pool function that prints a line to stderr and then traps, for the tests of keeping the
// runtime's crash report out of the parent's stderr (`Pool.Configuration.crashReports`).

public import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension TestFunctions {
    /// What ``printThenTrap`` prints on stderr before it traps.
    public static let printThenTrapLine = "printThenTrap: a line of the task before it traps"

    /// Prints ``printThenTrapLine`` on stderr, then force-unwraps nil.
    public static let printThenTrap = PoolFunction("printThenTrap") { (x: Int) -> Int in
        let line = printThenTrapLine + "\n"
        _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        let value: Int? = x < 0 ? x : nil
        return value!  // printThenTrap traps here
    }

    /// This file's path: the tests find the line marked "traps here" in it.
    public static let crashReportsSourcePath = #filePath

    /// The functions of this file, served by the test worker.
    public static let crashReports: [any AnyPoolFunction] = [printThenTrap]
}
