// The test worker serves `TestFunctions.all`; a pool function declared in
// MultiprocessingTestSupport but left out of it would fail only the test that calls it, at run
// time, as "not registered". Swift cannot enumerate static lets, so this reads the module's
// sources instead: every `let f = PoolFunction("name") …` declared there must be in `all` or, on
// purpose, in `unserved`, each declaration once (counted by name).

import Foundation
import Multiprocessing
import MultiprocessingTestSupport
import Testing

/// The `let <property> = PoolFunction("<name>")` declarations in the Swift files of `directory`
/// (a type may be written after the property, generic arguments after `PoolFunction`), sorted by
/// name; one entry per declaration.
private func declaredPoolFunctions(in directory: String) throws -> [(name: String, property: String, file: String)] {
    let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".swift") }
    let declaration = #/let\s+(\w+)\s*(?::[^=]+)?=\s*PoolFunction\s*(?:<[^>]*>)?\(\s*"([^"\\]+)"/#
    var found: [(name: String, property: String, file: String)] = []
    for file in files {
        let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
        for match in text.matches(of: declaration) {
            found.append((String(match.2), String(match.1), file))
        }
    }
    return found.sorted { ($0.name, $0.property) < ($1.name, $1.property) }
}

@Suite("Test function registry", .offCooperativePool) struct TestFunctionRegistryTests {
    @Test("Every pool function declared for the tests is served, or listed as unserved")
    func everyDeclarationIsRegistered() throws {
        let declared = try declaredPoolFunctions(in: TestFunctions.sourceDirectory)
        // The sources were found: the square function is declared in TestFunctions.swift.
        #expect(declared.contains { $0.property == "square" && $0.file == "TestFunctions.swift" })
        // Counted, not only looked up: `squareWrongTypes` shares its name with `square`.
        var unaccounted = (TestFunctions.all + TestFunctions.unserved).map(\.name)
        var unregistered: [String] = []
        for declaration in declared {
            if let index = unaccounted.firstIndex(of: declaration.name) {
                unaccounted.remove(at: index)
            } else {
                unregistered.append("TestFunctions.\(declaration.property) (\(declaration.file))")
            }
        }
        #expect(
            unregistered.isEmpty,
            "declared but in neither TestFunctions.all nor TestFunctions.unserved: \(unregistered); add each to its file's list, and a new file's list to `all`"
        )
        #expect(unaccounted.isEmpty, "registered more often than declared: \(unaccounted)")
    }

    @Test("The test worker serves each name once")
    func servedNamesAreUnique() {
        let names = TestFunctions.all.map(\.name)
        let repeated = Dictionary(grouping: names, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
        #expect(repeated.isEmpty, "served more than once: \(repeated)")
    }
}
