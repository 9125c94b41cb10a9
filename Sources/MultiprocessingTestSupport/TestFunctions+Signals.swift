// Pool functions of the signal-policy tests: what a worker sees of its signals, and a task that
// runs until the test lets it end.

public import Multiprocessing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension TestFunctions {
    /// The worker process's signal sets, from /proc/self/status, as bit masks (bit n - 1 is
    /// signal n): `SigIgn` (ignored), `ShdPnd` (pending for the process), and `SigBlk` of its
    /// main thread, which process-directed signals go to. (The threads of Swift's concurrency
    /// pool block nearly every signal: libdispatch's worker threads do.)
    public static let signalMasks = PoolFunction("signalMasks") { () -> [String: UInt64] in
        var masks: [String: UInt64] = [:]
        guard let file = fopen("/proc/self/status", "r") else { return masks }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 256)
        while fgets(&buffer, 256, file) != nil {
            let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = line.split(whereSeparator: { $0 == ":" || $0 == "\t" || $0 == " " || $0 == "\n" })
            if fields.count == 2, ["SigBlk", "SigIgn", "ShdPnd"].contains(fields[0]) {
                masks[String(fields[0])] = UInt64(fields[1], radix: 16)
            }
        }
        return masks
    }

    /// Waits (up to 60 s) until the file at `path` exists, then returns `value`: a task that runs
    /// until the test lets it end.
    public static let awaitFile = PoolFunction("awaitFile") { (path: String, value: Int) -> Int in
        for _ in 0..<12_000 where access(path, F_OK) != 0 { usleep(5_000) }
        return value
    }

    /// The functions above, served by the test worker.
    public static let signals: [any AnyPoolFunction] = [signalMasks, awaitFile]
}
