// Where the CPU goes across a stretch of the benchmark: each thread's run time and run-queue wait
// (Linux `/proc/<pid>/task/<tid>/schedstat`: ns on a CPU, ns waiting for one, timeslices) of the
// processes on this node (rank 0, the agents, the workers), read before and after. For the
// benchmark's `cpustat` argument (`cpu_breakdown` in its JSON): the CPU-bound row's speedup loses
// whatever rank 0 and the agents spend on a core while the workers compute.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One thread's counters at one moment.
struct ThreadCPU {
    var name: String
    var runNanoseconds: Int
    var waitNanoseconds: Int
    var slices: Int
}

/// The counters of every thread of each process, by pid then tid.
struct CPUSnapshot {
    var threads: [Int32: [Int32: ThreadCPU]] = [:]

    /// Every thread's run time, summed (ns).
    var totalRunNanoseconds: Int {
        threads.values.reduce(0) { sum, threads in sum + threads.values.reduce(0) { $0 + $1.runNanoseconds } }
    }

    /// Reads every thread of `pids` now (a process or thread that is gone is left out).
    static func take(_ pids: [Int32]) -> CPUSnapshot {
        var snapshot = CPUSnapshot()
        for pid in pids {
            var threads: [Int32: ThreadCPU] = [:]
            for tid in taskIDs(pid) {
                let base = "/proc/\(pid)/task/\(tid)/"
                guard let stat = readText(base + "schedstat") else { continue }
                let fields = stat.split(separator: " ").compactMap { Int($0.trimmingCharacters()) }
                guard fields.count >= 3 else { continue }
                let name = readText(base + "comm")?.trimmingCharacters() ?? "?"
                threads[tid] = ThreadCPU(
                    name: name, runNanoseconds: fields[0], waitNanoseconds: fields[1], slices: fields[2])
            }
            snapshot.threads[pid] = threads
        }
        return snapshot
    }

    /// What each process (named by `roles`) did from `before` to this snapshot, as JSON: per
    /// process its run and wait in ms and its busiest threads.
    func json(since before: CPUSnapshot, roles: [(Int32, String)], wall: Double) -> String {
        var rows: [String] = []
        for (pid, role) in roles {
            let now = threads[pid] ?? [:]
            let then = before.threads[pid] ?? [:]
            var run = 0
            var wait = 0
            var slices = 0
            var perThread: [(String, Int, Int, Int)] = []
            for (tid, thread) in now {
                let old = then[tid] ?? ThreadCPU(name: thread.name, runNanoseconds: 0, waitNanoseconds: 0, slices: 0)
                let r = thread.runNanoseconds - old.runNanoseconds
                let w = thread.waitNanoseconds - old.waitNanoseconds
                let s = thread.slices - old.slices
                run += r
                wait += w
                slices += s
                if r > 100_000 || s > 20 { perThread.append(("\(thread.name)#\(tid)", r, w, s)) }
            }
            perThread.sort { $0.1 > $1.1 }
            let threadText = perThread.prefix(4).map {
                "\"\($0.0)\": [\(ms($0.1)), \(ms($0.2)), \($0.3)]"
            }.joined(separator: ", ")
            rows.append(
                "\"\(role) \(pid)\": {\"run_ms\": \(ms(run)), \"wait_ms\": \(ms(wait)), \"slices\": \(slices), "
                    + "\"run_share\": \(Double(run) / 1e9 / wall), \"threads\": {\(threadText)}}")
        }
        return "{" + rows.joined(separator: ", ") + "}"
    }

    private func ms(_ nanoseconds: Int) -> String {
        "\(Double(nanoseconds / 1000) / 1000)"
    }
}

/// The parent of process `pid` (field 4 of `/proc/<pid>/stat`).
func parentPID(_ pid: Int32) -> Int32? {
    guard let stat = readText("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    return fields.count > 1 ? Int32(fields[1]) : nil
}

private func taskIDs(_ pid: Int32) -> [Int32] {
    numericEntries(of: "/proc/\(pid)/task")
}

/// The entries of `path` whose names are numbers (pids, thread ids), as numbers.
private func numericEntries(of path: String) -> [Int32] {
    guard let directory = opendir(path) else { return [] }
    defer { closedir(directory) }
    var ids: [Int32] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if let id = Int32(name) { ids.append(id) }
    }
    return ids
}

private func readText(_ path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count > 0 else { return nil }
    return String(decoding: buffer[..<count], as: UTF8.self)
}

extension StringProtocol {
    fileprivate func trimmingCharacters() -> String {
        String(self.drop { $0 == " " || $0 == "\n" }.reversed().drop { $0 == " " || $0 == "\n" }.reversed())
    }
}

/// Where the parallel part's wall time went, from each task's start and end on its worker
/// (`[count, start, end, pid]`, CLOCK_MONOTONIC ns) and the part's own start and end: per worker its
/// tasks, the time to its first start, the gaps between its tasks, its compute and the time from its
/// last end to the part's end (all ms).
func timelineJSON(_ tasks: [[Int]], start: Int, end: Int) -> String {
    let byWorker = Dictionary(grouping: tasks, by: { $0[3] })
    func ms(_ ns: Int) -> String { "\(Double(ns / 1000) / 1000)" }
    var rows: [String] = []
    for (pid, own) in byWorker.sorted(by: { $0.key < $1.key }) {
        let sorted = own.sorted { $0[1] < $1[1] }
        var gaps: [Int] = []
        for i in 1..<max(1, sorted.count) { gaps.append(sorted[i][1] - sorted[i - 1][2]) }
        let compute = sorted.map { $0[2] - $0[1] }
        rows.append(
            "\"\(pid)\": {\"tasks\": \(sorted.count), \"first_ms\": \(ms(sorted[0][1] - start)), "
                + "\"gaps_ms\": [\(gaps.map(ms).joined(separator: ", "))], "
                + "\"compute_ms\": [\(compute.map(ms).joined(separator: ", "))], "
                + "\"tail_ms\": \(ms(end - sorted.last![2]))}")
    }
    return "{" + rows.joined(separator: ", ") + "}"
}

/// Every thread's run time on this machine, summed (ns): with the node's own processes' taken
/// off, what other programs ran meanwhile (a busy machine takes cores from the workers).
func machineRunNanoseconds() -> Int {
    CPUSnapshot.take(numericEntries(of: "/proc")).totalRunNanoseconds
}
