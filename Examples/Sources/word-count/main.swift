// word-count: counts the words of many files in worker processes with `imapUnordered`, merging
// the per-file counts as they arrive.
//
//     swift run --package-path Examples word-count [directory]   (default: the current one)

import Foundation
import Multiprocessing

/// The words of one file and how often each occurs (nil for a file that is not UTF-8 text).
let countWords = PoolFunction("countWords") { (path: String) -> [String: Int]? in
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
    else { return nil }
    var counts: [String: Int] = [:]
    for word in text.split(whereSeparator: { !$0.isLetter }) {
        counts[word.lowercased(), default: 0] += 1
    }
    return counts
}

Pool.bootstrap(serving: [countWords])

let root = CommandLine.arguments.dropFirst().first ?? FileManager.default.currentDirectoryPath
var files: [String] = []
if let walker = FileManager.default.enumerator(atPath: root) {
    for case let relative as String in walker where !relative.contains(".build") {
        var isDirectory: ObjCBool = false
        let path = (root as NSString).appendingPathComponent(relative)
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            files.append(path)
        }
    }
}

let pool = try Pool()
var total: [String: Int] = [:]
var read = 0
// Files are read lazily, a few chunks ahead; results come in the order they finish.
for try await counts in try pool.imapUnordered(countWords, files, chunksize: 8) {
    guard let counts else { continue }
    read += 1
    total.merge(counts, uniquingKeysWith: +)
}
pool.close()
try pool.join()

print(
    "\(read) text files of \(files.count) under \(root); \(total.values.reduce(0, +)) words, \(total.count) distinct.")
for (word, count) in total.sorted(by: { $0.value > $1.value }).prefix(10) {
    print("  \(word): \(count)")
}
