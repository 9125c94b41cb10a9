// The worker executable of the test suite: `swift test` runs the tests inside a test runner
// whose `main` is not ours, so pools in tests start this program instead (Pool(executable:)).

import Multiprocessing
import MultiprocessingTestSupport

Pool.bootstrap(serving: TestFunctions.all, errorTypes: [TestFailure.self])
print("multiprocessing-test-worker: run by the test suite's pools; it serves tasks only as a pool worker.")
