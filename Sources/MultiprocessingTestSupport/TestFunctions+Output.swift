// Pool functions that print a lot on the worker's stderr, for the tests of stderr forwarding.

public import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension TestFunctions {
    /// Writes `count` bytes of "x" (lines of 99 and a newline) to stderr, then returns `count`.
    public static let printStderr = PoolFunction("printStderr") { (count: Int) -> Int in
        var line = [UInt8](repeating: UInt8(ascii: "x"), count: 100)
        line[99] = UInt8(ascii: "\n")
        var left = count
        while left > 0 {
            let n = min(left, line.count)
            var done = 0
            while done < n {
                let r = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress! + done, n - done) }
                if r > 0 { done += r } else if errno != EINTR { return count - left }
            }
            left -= n
        }
        return count
    }

    /// The functions of this file, served by the test worker.
    public static let output: [any AnyPoolFunction] = [printStderr]
}
