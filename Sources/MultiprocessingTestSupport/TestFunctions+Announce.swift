// `announceThenSleep` with one argument, for `map` (which takes one-argument functions): a test
// learns when and on which worker the task started.

public import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A marker file to write the worker's pid to, and how long to sleep after.
public struct MarkedSleep: Codable, Sendable {
    public var marker: String
    public var ms: Int
    public init(marker: String, ms: Int) {
        self.marker = marker
        self.ms = ms
    }
}

extension TestFunctions {
    /// `announceThenSleep(task.marker, task.ms)` as a one-argument function.
    public static let announceThenSleepOne = PoolFunction("announceThenSleepOne") { (task: MarkedSleep) -> Int32 in
        let pid = getpid()
        if let file = fopen(task.marker + ".tmp", "w") {
            fputs("\(pid)", file)
            fclose(file)
            rename(task.marker + ".tmp", task.marker)
        }
        usleep(UInt32(task.ms) * 1000)
        return pid
    }

    /// The functions of this file, served by the test worker.
    public static let announce: [any AnyPoolFunction] = [announceThenSleepOne]
}
