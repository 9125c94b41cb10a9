// The files tests share with workers and parent programs (pid markers, release files, scripts)
// live in one folder per test process, made by mkdtemp and removed when the process exits: no
// fixed /tmp paths that two runs at once (or two users) could share, nothing left behind.

import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

enum TestFolder {
    /// This test process's folder (in `$TMPDIR`, else /tmp): made on first use, removed at exit.
    static let path: String = {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((base + "/multiprocessing-tests.XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else {
            fatalError("cannot make a temporary folder in \(base): errno \(errno)")
        }
        atexit { try? FileManager.default.removeItem(atPath: TestFolder.path) }
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    private static let count = Atomic<Int>(0)

    /// A path in the folder where nothing is yet: `<folder>/<name>-<n>`, n unique in this process.
    static func uniquePath(_ name: String) -> String {
        "\(path)/\(name)-\(count.add(1, ordering: .relaxed).newValue)"
    }
}
