import PTFragEvents
import PTFragTestSupport
import XCTest

@testable import PTFragReplay

/// Drives a C1/C2 model through its own simulation (`ReplayContext.simulating`), one mm
/// born at the start, and builds pages in any per-half state.
final class HalfHarness {
  let ctx = ReplayContext()
  let model: S390HalfPagesModel & AllocatorModel
  var script = EventScript(comm: .fixed(Comm("t")), originNs: 1_000_000)
  let mm: UInt64 = 0x20c_0400
  var nextPage: UInt64 = 0x380_0000

  init(_ make: (ReplayContext) -> S390HalfPagesModel & AllocatorModel) {
    ctx.simulating = true
    model = make(ctx)
    send(.mmBirth, mm: mm, table: 0x3f0_0000)
  }

  func send(_ kind: Event.Kind, mm: UInt64? = nil, table: UInt64 = 0, pid: Int32 = 100) {
    model.apply(script.make(kind, mm: mm, table: table, pid: pid))
  }

  /// `page_table_alloc` as the model decides it.
  @discardableResult func alloc() -> UInt64 {
    let t = model.simulateAlloc(mm: mm) {
      nextPage += 0x1000
      return nextPage
    }
    send(.allocBegin, mm: mm)
    send(.alloc, mm: mm, table: t)
    return t
  }

  /// An alloc event returning `t`, whatever the model would choose.
  func allocReturning(_ t: UInt64) {
    send(.allocBegin, mm: mm)
    send(.alloc, mm: mm, table: t)
  }

  func tag(_ t: UInt64) -> UInt64 { t | ((t >> 11) & 1 + 1) }
  func freeNow(_ t: UInt64) { send(.freeNow, mm: mm, table: t) }
  func freeTLB(_ t: UInt64) {
    send(.freeTLB, table: t)
    send(.tlbQueue, table: tag(t))
  }
  func deferFree(_ t: UInt64) { send(.deferBegin, mm: mm, table: t, pid: 45) }
  /// `__tlb_remove_table(t | tag)`: a tlb batch entry, or a deferred half's RCU callback.
  func exec(_ t: UInt64) { send(.tlbExec, table: tag(t), pid: 0) }

  /// A page whose lower and upper halves are in the given states (F, A, P, D; not both F),
  /// reached lower half first.
  func page(_ lo: Character, _ hi: Character) -> UInt64 {
    let base = alloc()
    let upper = alloc()
    precondition(upper == base + 0x800, "fresh page's upper half expected")
    for (h, s) in [(0, lo), (1, hi)] {
      let t = base + UInt64(h) * 0x800
      switch s {
      case "A": break
      case "F": freeNow(t)
      case "P": freeTLB(t)
      case "D": deferFree(t)
      default: preconditionFailure("state \(s)")
      }
    }
    return base
  }

  func state(_ key: UInt64) -> String { model.pages[key] == nil ? "released" : model.describe(key) }
  var rules: [String] { ctx.findings.map(\.rule.id) }
  func rcuHead(_ key: UInt64) -> Int8? { model.pages[key]?.rcuHead }
}

/// kernel-models.md §4: the per-half state tables of C1 (Hugh's v2) and C2 (Gerald's
/// variant). Each legal transition is checked for every state of the other half, on both
/// halves; each ✗ with its rule id.
final class S390ProposalTableTests: XCTestCase {
  typealias Make = (ReplayContext) -> S390HalfPagesModel & AllocatorModel
  let hugh: Make = { S390HughV2Model(context: $0) }
  let gerald: Make = { S390GeraldModel(context: $0) }

  /// Page string for half h in state `hs`, the other in `os`: "AP L" style.
  func pageState(_ h: Int, _ hs: Character, _ os: Character, listed: Bool) -> String {
    (h == 0 ? "\(hs)\(os)" : "\(os)\(hs)") + (listed ? " L" : " -")
  }

  /// Builds (h = `hs`, other = `os`), applies `event` to half h, returns the harness and page.
  func run(
    _ make: Make, _ h: Int, _ hs: Character, _ os: Character,
    _ event: (HalfHarness, UInt64) -> Void
  ) -> (HalfHarness, UInt64) {
    let x = HalfHarness(make)
    let key = h == 0 ? x.page(hs, os) : x.page(os, hs)
    XCTAssertEqual(x.rules, [], "building \(hs)\(os) on half \(h)")
    event(x, key + UInt64(h) * 0x800)
    return (x, key)
  }

  /// Expected outcome of a legal transition: the page's state after it, or "released".
  func checkLegal(
    _ make: Make, _ name: String, event: (HalfHarness, UInt64) -> Void,
    from hs: Character, _ expect: [Character: (Character, Bool)?],
    file: StaticString = #filePath, line: UInt = #line
  ) {
    for h in 0..<2 {
      for (os, result) in expect.sorted(by: { $0.key < $1.key }) {
        let (x, key) = run(make, h, hs, os, event)
        let want = result.map { pageState(h, $0.0, os, listed: $0.1) } ?? "released"
        XCTAssertEqual(x.state(key), want, "\(name) on \(hs) half \(h), other \(os)", file: file, line: line)
        XCTAssertEqual(x.rules, [], "\(name) on \(hs) half \(h), other \(os)", file: file, line: line)
        XCTAssertEqual(x.model.invariantViolations(), [], "\(name) half \(h) other \(os)", file: file, line: line)
      }
    }
  }

  /// An illegal transition reports `rule` (and only it).
  func checkIllegal(
    _ make: Make, _ name: String, event: (HalfHarness, UInt64) -> Void,
    on states: [(Character, Character)], rule: String, file: StaticString = #filePath, line: UInt = #line
  ) {
    for h in 0..<2 {
      for (hs, os) in states {
        let (x, _) = run(make, h, hs, os, event)
        XCTAssertEqual(x.rules, [rule], "\(name) on \(hs) half \(h), other \(os)", file: file, line: line)
      }
    }
  }

  let freeNow: (HalfHarness, UInt64) -> Void = { $0.freeNow($1) }
  let freeTLB: (HalfHarness, UInt64) -> Void = { $0.freeTLB($1) }
  /// `page_table_free_rcu` alone (its `tlb_remove_table` would add a second finding).
  let freeTLBOnly: (HalfHarness, UInt64) -> Void = { $0.send(.freeTLB, table: $1) }
  let deferFree: (HalfHarness, UInt64) -> Void = { $0.deferFree($1) }
  let exec: (HalfHarness, UInt64) -> Void = { $0.exec($1) }
  let allocIt: (HalfHarness, UInt64) -> Void = { $0.allocReturning($1) }

  // MARK: C1 — Hugh's v2

  func testHughFreeNow() {
    // other A → push_front; other F → remove (and byte 0: release); other P/D → none.
    checkLegal(hugh, "free_now", event: freeNow, from: "A", [
      "F": nil, "A": ("F", true), "P": ("F", false), "D": ("F", false),
    ])
  }

  func testHughFreeTLB() {
    // other F → remove; else none (a full page or one with a pending half is unlisted).
    checkLegal(hugh, "free_tlb", event: freeTLB, from: "A", [
      "F": ("P", false), "A": ("P", false), "P": ("P", false), "D": ("P", false),
    ])
  }

  func testHughDeferQueuesCallbackUnlessOtherIsDeferred() {
    checkLegal(hugh, "defer", event: deferFree, from: "A", [
      "F": ("D", false), "A": ("D", false), "P": ("D", false), "D": ("D", false),
    ])
    for h in 0..<2 {
      for os: Character in ["F", "A", "P"] {
        let (x, key) = run(hugh, h, "A", os, deferFree)
        XCTAssertEqual(x.rcuHead(key), Int8(h), "call_rcu(pte_free_now\(h)) with other \(os)")
      }
      // Other half D: its callback holds the rcu_head; this one waits to be chained.
      let (x, key) = run(hugh, h, "A", "D", deferFree)
      XCTAssertEqual(x.rcuHead(key), Int8(1 - h))
    }
  }

  func testHughExecRelinksWhenOtherAllocated() {
    checkLegal(hugh, "exec", event: exec, from: "P", [
      "F": nil, "A": ("F", true), "P": ("F", false), "D": ("F", false),
    ])
  }

  /// As posted (`if (mask & 0x0CU)` on the unshifted _refcount), the callback never queues
  /// the other half's: with both halves D, the second stays D and the page is never freed.
  func testHughRCUCallbackExecsAndDoesNotChainAsPosted() {
    // The callback of a queued D half: H off, then __tlb_remove_table as exec.
    checkLegal(hugh, "rcu cb", event: exec, from: "D", [
      "F": nil, "A": ("F", true), "P": ("F", false),
    ])
    for h in 0..<2 {
      // Both halves D: build lower then upper, so the lower's callback holds the rcu_head.
      let x = HalfHarness(hugh)
      let key = x.page("D", "D")
      XCTAssertEqual(x.rcuHead(key), 0)
      XCTAssertEqual(x.model.dueRCUCallbacks.map(\.table), [key | 1])
      let first = h == 0 ? key : key + 0x800
      x.exec(first)
      if h == 0 {
        XCTAssertEqual(x.rules, [])
        XCTAssertEqual(x.state(key), "FD -")
        XCTAssertEqual(x.rcuHead(key), -1, "pte_free_half as posted does not chain call_rcu(pte_free_now1)")
        XCTAssertEqual(x.model.dueRCUCallbacks.map(\.table), [])
        XCTAssertEqual(x.model.strandedPages, 1)
        XCTAssertEqual(x.model.invariantViolations(), [])
      } else {
        // The upper half's callback was never queued: the halves share page->rcu_head.
        XCTAssertEqual(x.rules, ["rcu-callback-not-queued"])
      }
    }
  }

  func testHughIllegalTransitions() {
    checkIllegal(hugh, "free_now", event: freeNow, on: [("F", "A"), ("P", "A"), ("D", "A"), ("P", "P")], rule: "double-free")
    checkIllegal(hugh, "free_tlb", event: freeTLBOnly, on: [("F", "A"), ("P", "F"), ("D", "A")], rule: "double-free")
    checkIllegal(hugh, "defer", event: deferFree, on: [("F", "A"), ("P", "A"), ("D", "P")], rule: "double-free")
    checkIllegal(hugh, "exec", event: exec, on: [("F", "A"), ("A", "A"), ("A", "P"), ("F", "D")], rule: "exec-without-pending")
    checkIllegal(hugh, "alloc", event: allocIt, on: [("A", "A"), ("A", "F"), ("A", "D")], rule: "alloc-busy-half")
    checkIllegal(hugh, "alloc", event: allocIt, on: [("P", "A"), ("D", "A"), ("P", "F"), ("D", "D")], rule: "reuse-before-grace")
    // A free half of an unlisted page (its other half pending): a fresh page was due.
    checkIllegal(hugh, "alloc", event: allocIt, on: [("F", "P"), ("F", "D")], rule: "alloc-divergence")
  }

  func testHughAllocTakesTheHeadsFreeHalf() {
    for h in 0..<2 {
      let (x, key) = run(hugh, h, "F", "A", allocIt)
      XCTAssertEqual(x.rules, [])
      XCTAssertEqual(x.state(key), "AA -")
    }
    // A fresh page while the head has a free half.
    let x = HalfHarness(hugh)
    _ = x.page("A", "F")
    x.allocReturning(0x900_0000)
    XCTAssertEqual(x.rules, ["alloc-fresh-while-head-usable"])
    // A listed page behind the head.
    let y = HalfHarness(hugh)
    let p1 = y.alloc()
    y.alloc()
    let p2 = y.alloc()  // fresh: P2 AF L
    y.freeNow(p1 + 0x800)  // P1 AF L, pushed in front of P2
    y.allocReturning(p2 + 0x800)
    XCTAssertEqual(y.rules, ["alloc-not-head"])
  }

  // MARK: C2 — Gerald's variant

  func testGeraldFreeNow() {
    checkLegal(gerald, "free_now", event: freeNow, from: "A", [
      "F": nil, "A": ("F", true), "P": ("F", false), "D": ("F", false),
    ])
  }

  func testGeraldFreeTLBAddsToTail() {
    // other A → push_back, flag 1; else if flag → remove.
    checkLegal(gerald, "free_tlb", event: freeTLB, from: "A", [
      "F": ("P", false), "A": ("P", true), "P": ("P", false), "D": ("P", false),
    ])
  }

  func testGeraldDeferNeverRelists() {
    checkLegal(gerald, "defer", event: deferFree, from: "A", [
      "F": ("D", false), "A": ("D", false), "P": ("D", false), "D": ("D", false),
    ])
    for h in 0..<2 {
      let (x, key) = run(gerald, h, "A", "A", deferFree)
      XCTAssertEqual(x.rcuHead(key), Int8(h))
      // The sibling's later free does not re-list the page either.
      x.freeNow(key + UInt64(1 - h) * 0x800)
      XCTAssertEqual(x.state(key), pageState(h, "D", "F", listed: false))
      XCTAssertFalse(x.model.pages[key]!.onlist)
    }
  }

  func testGeraldExecIsVariantA() {
    // P half of a listed (P,A) page: cleared in place, the page stays listed.
    checkLegal(gerald, "exec", event: exec, from: "P", [
      "F": nil, "A": ("F", true), "P": ("F", false), "D": ("F", false),
    ])
  }

  func testGeraldRCUCallbackNeverRelists() {
    // Unlike C1, a page whose deferred half came back stays off the list (waste).
    checkLegal(gerald, "rcu cb", event: exec, from: "D", [
      "F": nil, "A": ("F", false), "P": ("F", false),
    ])
    // Both halves D: the lower's callback, as posted, never queues the upper's.
    let x = HalfHarness(gerald)
    let key = x.page("D", "D")
    x.exec(key)
    XCTAssertEqual(x.rcuHead(key), -1)
    XCTAssertEqual(x.state(key), "FD -")
    XCTAssertEqual(x.model.strandedPages, 1)
    XCTAssertEqual(x.rules, [])
  }

  func testGeraldIllegalTransitions() {
    checkIllegal(gerald, "free_now", event: freeNow, on: [("F", "A"), ("P", "A"), ("D", "A")], rule: "double-free")
    checkIllegal(gerald, "free_tlb", event: freeTLBOnly, on: [("F", "A"), ("P", "P"), ("D", "F")], rule: "double-free")
    checkIllegal(gerald, "defer", event: deferFree, on: [("F", "A"), ("P", "A"), ("D", "A")], rule: "double-free")
    checkIllegal(gerald, "exec", event: exec, on: [("F", "A"), ("A", "F"), ("A", "D")], rule: "exec-without-pending")
    checkIllegal(gerald, "alloc", event: allocIt, on: [("A", "A"), ("A", "P")], rule: "alloc-busy-half")
    checkIllegal(gerald, "alloc", event: allocIt, on: [("P", "A"), ("D", "A"), ("D", "F")], rule: "reuse-before-grace")
    let x = HalfHarness(gerald)
    let key = x.page("D", "D")
    x.exec(key + 0x800)
    XCTAssertEqual(x.rules, ["rcu-callback-not-queued"])
  }

  func testGeraldBusyHeadBlocksTheListBehindIt() {
    // §2.3: a head page with (A, P) makes alloc take a fresh page; a usable page behind it
    // is not reachable.
    let x = HalfHarness(gerald)
    let p1 = x.alloc()
    x.alloc()
    let p2 = x.alloc()
    x.alloc()
    x.freeTLB(p1 + 0x800)  // P1 AP L
    x.freeTLB(p2 + 0x800)  // [P1, P2 AP L]
    x.exec(p2 + 0x800)  // P2 AF L, still behind P1
    XCTAssertEqual(x.state(p1), "AP L")
    XCTAssertEqual(x.state(p2), "AF L")
    XCTAssertEqual(x.model.occupancy.reusableNow, 0)
    XCTAssertEqual(x.model.occupancy.reusableLater, 1)
    x.allocReturning(p2 + 0x800)
    XCTAssertEqual(x.rules, ["alloc-listed-while-fresh"])
  }

  // MARK: Both: rules outside the per-half tables

  func testTagsQueueCrossMMAndLeak() {
    for make in [hugh, gerald] {
      let x = HalfHarness(make)
      let key = x.page("P", "A")
      x.send(.tlbExec, table: key | 2, pid: 0)  // tag 2 names the upper half
      x.send(.tlbQueue, table: (key + 0x800) | 2)  // the upper half is allocated
      x.send(.freeNow, mm: 0x20c_0800, table: key + 0x800)  // another mm's name
      XCTAssertEqual(x.rules, ["exec-tag-mismatch", "queue-without-pending", "cross-mm"])
      let y = HalfHarness(make)
      _ = y.page("A", "P")
      y.send(.freeNow, mm: y.mm, table: 0x777_7000)
      y.send(.mmDeath, mm: y.mm, table: 0x3f0_0000)
      XCTAssertEqual(y.rules, ["free-unknown", "leak"])
    }
  }

  /// Occupancy (§8) of a small mixed state, against a hand count.
  func testOccupancyBuckets() {
    let x = HalfHarness(hugh)
    // Built so that each starts from an empty list (a listed page would take the next alloc).
    _ = x.page("D", "F")  // deferred half; its free sibling is stranded
    _ = x.page("A", "P")  // pending half; unlisted
    _ = x.page("A", "F")  // head: its free half is reusable now
    let o = x.model.occupancy
    XCTAssertEqual(o.pagesHeld, 3)
    XCTAssertEqual(o.live, 2)
    XCTAssertEqual(o.pending, 2)
    XCTAssertEqual(o.reusableNow, 1)
    XCTAssertEqual(o.reusableLater, 0)
    XCTAssertEqual(o.stranded, 1)
    XCTAssertTrue(x.model.occupancyMatchesRecount())
  }
}
