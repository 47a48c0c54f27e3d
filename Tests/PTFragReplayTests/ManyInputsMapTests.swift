import PTFragKit
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// `ManyInputs.map`: every index once, results in index order, whatever the thread count.
final class ManyInputsMapTests: XCTestCase {
  func testResultsComeBackInInputOrder() {
    for count in [0, 1, 2, 7, 40] {
      for jobs in [1, 2, 3, 8, 64] {
        let r = ManyInputs.map(count: count, jobs: jobs) { i -> Int in
          // Later indexes finish first: the order must not follow completion.
          usleep(UInt32((count - i) * 200))
          return i * i
        }
        XCTAssertEqual(r, (0..<count).map { $0 * $0 }, "count \(count), jobs \(jobs)")
      }
    }
  }

  func testConcurrencyAndPipelining() {
    XCTAssertEqual(ManyInputs.concurrency(inputs: 10, jobs: 4), 4)
    XCTAssertEqual(ManyInputs.concurrency(inputs: 3, jobs: 8), 3)
    XCTAssertEqual(ManyInputs.concurrency(inputs: 0, jobs: 8), 1)
    // One input keeps its two-thread pipeline; inputs that fill the CPUs run one thread each.
    XCTAssertTrue(ManyInputs.pipelined(inputs: 1, jobs: 8, cpus: 2))
    XCTAssertTrue(ManyInputs.pipelined(inputs: 5, jobs: 1, cpus: 2))
    XCTAssertFalse(ManyInputs.pipelined(inputs: 8, jobs: 2, cpus: 2))
    XCTAssertTrue(ManyInputs.pipelined(inputs: 2, jobs: 8, cpus: 8))
    XCTAssertFalse(ManyInputs.pipelined(inputs: 8, jobs: 8, cpus: 8))
  }
}
