import Multiprocessing
import MultiprocessingTestSupport
import Testing

@Suite("Smoke", .offCooperativePool) struct SmokeTests {
    @Test(.timeLimit(.minutes(1))) func applyAndMap() throws {
        let pool = try TestPools.make()
        defer { pool.stop() }
        #expect(try pool.apply(F.square, 7) == 49)
        #expect(try pool.apply(F.mul, 6, 7) == 42)
        #expect(try pool.apply(F.ping) == "pong")
        #expect(try pool.map(F.square, 0..<100) == (0..<100).map { $0 * $0 })
    }
}
