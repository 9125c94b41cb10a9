// What the cold start's changes promise: a `PoolFunction`'s type requires nothing of its types
// at run time (its `Codable` requirements are on the initializers and the pool's methods, so that
// making its metadata from its mangled name checks no conformances), a generic wrapper that
// states them itself passes a function on to the pool, and a worker finds each function's runner
// through `AnyPoolFunction` rather than a cast.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

/// Neither `Encodable` nor `Decodable`.
private struct NotCodable: Sendable {}

/// The documented pattern: a generic function over pool functions states the requirements itself.
private func applyThrough<A, R>(_ pool: Pool, _ function: PoolFunction<A, R>, _ argument: A) async throws -> R
where A: Codable, R: Codable {
    try await pool.apply(function, argument)
}

@Suite("Cold start", .offCooperativePool)
struct ColdStartTests {
    @Test("A PoolFunction's type requires no Codable of its types (no conformance check when its metadata is made)")
    func typeHasNoCodableRequirement() {
        // Before: `PoolFunction<NotCodable, NotCodable>` did not compile ('NotCodable' does not
        // conform to 'Decodable'): the struct's generic parameters required Codable.
        let type: Any.Type = PoolFunction<NotCodable, NotCodable>.self
        #expect(_typeName(type, qualified: false) == "PoolFunction<Pack{NotCodable}, NotCodable>")
    }

    @Test(
        "A generic wrapper that states the Codable requirements passes a function to the pool", .timeLimit(.minutes(1)))
    func genericWrapper() async throws {
        let pool = try TestPools.make()
        defer {
            pool.terminate()
            try? pool.join()
        }
        #expect(try await applyThrough(pool, TestFunctions.square, 12) == 144)
    }

    @Test("Each function reaches the worker as its own runner, without a cast")
    func servedRunnerIsTheFunction() {
        let functions: [any AnyPoolFunction] = [TestFunctions.square, TestFunctions.squareWrongTypes]
        for function in functions {
            let runner = function._served.runner
            #expect(runner.name == function.name)
            #expect(runner.signature == function.signature)
        }
        #expect(
            (TestFunctions.square as any AnyPoolFunction)._served.runner.signatureFingerprint
                == TestFunctions.square.signatureFingerprint)
    }
}
