import PTFragEvents
import PTFragTestSupport
import XCTest

@testable import PTFragReplay

/// `simulateAlloc` is what `ptfrag synth` asks the model: the table the kernel's
/// page_table_alloc hands out now (kernel-models.md §2.3), without changing the state.
final class SimulateAllocTests: XCTestCase {
  let mm: UInt64 = 0x20c0800
  var script = EventScript(pid: 1, comm: .empty)

  func allocate(_ model: S390v61Model, _ table: UInt64) {
    model.apply(script.make(.allocBegin, mm: mm))
    model.apply(script.make(.alloc, mm: mm, table: table))
  }

  func testSimulateAllocFollowsTheHeadOfTheListAndLeavesTheStateAlone() {
    let context = ReplayContext()
    let model = S390v61Model(context: context)
    var freshPages: [UInt64] = [0x30000, 0x20000, 0x10000]
    func ask() -> UInt64 {
      var pool = freshPages
      let t = model.simulateAlloc(mm: mm) { pool.removeLast() }
      // Asking twice gives the same answer: nothing was applied.
      XCTAssertEqual(model.simulateAlloc(mm: mm) { freshPages.last! }, t)
      return t
    }
    model.apply(script.make(.mmBirth, mm: mm, table: 0x3820000))
    // Empty list: a fresh page, whose lower half is returned.
    XCTAssertEqual(ask(), 0x10000)
    allocate(model, freshPages.removeLast())
    // The fresh page is at the head with its upper half free.
    XCTAssertEqual(ask(), 0x10800)
    allocate(model, 0x10800)
    // Both halves allocated: the page left the list; a fresh page is due.
    XCTAssertEqual(ask(), 0x20000)
    // page_table_free_rcu of the lower half: pending, the page back on the list (tail) with
    // one half pending and one allocated: the head has no usable half.
    model.apply(script.make(.freeTLB, mm: mm, table: 0x10000))
    XCTAssertEqual(ask(), 0x20000)
    // __tlb_remove_table clears the pending bit: the lower half is usable again.
    model.apply(script.make(.tlbExec, table: 0x10001))
    XCTAssertEqual(ask(), 0x10000)
    allocate(model, 0x10000)
    // An mm the model has never seen gets a fresh page.
    XCTAssertEqual(model.simulateAlloc(mm: 0x9999000) { 0x50000 }, 0x50000)
    model.finish(lastLine: script.line)
    XCTAssertEqual(context.findings.count, 0, "\(context.findings.map(\.message))")
  }
}
