// Pool functions of the statistics and metrics tests: a task that says when it started and
// runs until the test lets it end, so that a test reads the pool's statistics while workers are
// known to be busy, without guessing at timing.

public import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A task that writes its worker's pid to `marker`, waits until the file `release` exists, then
/// returns `value` (or throws for a negative one).
public struct HeldTask: Codable, Sendable {
    public var marker: String
    public var release: String
    public var value: Int
    public init(marker: String, release: String, value: Int) {
        self.marker = marker
        self.release = release
        self.value = value
    }
}

extension TestFunctions {
    /// Runs a ``HeldTask``: announces itself, waits (60 s at most) for its release, returns its
    /// value; a negative value throws ``TestFailure`` once released.
    public static let holdUntilReleased = PoolFunction("holdUntilReleased") { (task: HeldTask) throws -> Int in
        if let file = fopen(task.marker + ".tmp", "w") {
            fputs("\(getpid())", file)
            fclose(file)
            rename(task.marker + ".tmp", task.marker)
        }
        for _ in 0..<12_000 where access(task.release, F_OK) != 0 { usleep(5_000) }
        if task.value < 0 { throw TestFailure(reason: "negative", value: task.value) }
        return task.value
    }

    /// The functions of this file, served by the test worker.
    public static let statistics: [any AnyPoolFunction] = [holdUntilReleased]
}
