// A progress bar on a terminal, with the time so far; plain lines when stdout is not one.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

final class ProgressBar {
    let label: String
    let total: Int
    private let isTerminal = isatty(STDOUT_FILENO) == 1
    private var lastPrinted = -1
    private let start = ContinuousClock.now

    init(label: String, total: Int) {
        self.label = label
        self.total = total
    }

    func update(completed: Int) {
        if isTerminal {
            let width = 30
            let filled = total == 0 ? width : completed * width / total
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            let elapsed = (ContinuousClock.now - start).forPeople
            // Trailing spaces wipe what a longer line before this one left.
            print("\r\(label.padding(12)) [\(bar)] \(completed)/\(total)  \(elapsed)   ", terminator: "")
            fflush(nil)
        } else {
            // A line per quarter.
            let quarter = total == 0 ? 4 : completed * 4 / total
            if quarter > lastPrinted {
                lastPrinted = quarter
                print("\(label.padding(12)) \(completed)/\(total)")
            }
        }
    }

    func finish(elapsed: Duration) {
        if isTerminal { print("") }
        print("\(label.padding(12)) done in \(elapsed.forPeople)")
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
