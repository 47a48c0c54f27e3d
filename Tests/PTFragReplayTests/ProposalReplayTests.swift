import PTFragEvents
import PTFragTestSupport
import PTFragReport
import XCTest

@testable import PTFragReplay

/// C3a (s390-ppc-style): E's table with NR = 2 in s390's event vocabulary; and all three
/// proposals replaying real s390 captures (variant A's choices) with the checks that apply.
final class ProposalReplayTests: XCTestCase {
  /// Drives s390-ppc-style through its own simulation, one mm born at the start.
  final class PpcStyle {
    let ctx = ReplayContext()
    let model: S390PpcStyleModel
    var script = EventScript(comm: .fixed(Comm("t")), originNs: 1_000_000)
    let mm: UInt64 = 0x20c_0400
    var nextPage: UInt64 = 0x380_0000

    init() {
      ctx.simulating = true
      model = S390PpcStyleModel(context: ctx)
      send(.mmBirth, mm: mm, table: 0x3f0_0000)
    }
    func send(_ kind: Event.Kind, mm: UInt64? = nil, table: UInt64 = 0, pid: Int32 = 100) {
      model.apply(script.make(kind, mm: mm, table: table, pid: pid))
    }
    func fresh() -> UInt64 {
      nextPage += 0x1000
      return nextPage
    }
    @discardableResult func alloc(_ mm: UInt64? = nil) -> UInt64 {
      let t = model.simulateAlloc(mm: mm ?? self.mm, fresh: fresh)
      send(.alloc, mm: mm ?? self.mm, table: t)
      return t
    }
    func tag(_ t: UInt64) -> UInt64 { t | ((t >> 11) & 1 + 1) }
    func state(_ key: UInt64) -> String { model.frag.pages[key] == nil ? "released" : model.frag.describe(key) }
    var rules: [String] { ctx.findings.map(\.rule.id) }
  }

  func testPpcStyleCursorHandsLowerThenUpperThenFresh() {
    let x = PpcStyle()
    let p = x.alloc()
    XCTAssertEqual(p & 0xfff, 0)
    XCTAssertEqual(x.state(p), "ref 2/2 · H 1 U 1 · cursor @1")
    XCTAssertEqual(x.alloc(), p + 0x800)
    XCTAssertEqual(x.state(p), "ref 2/2 · H 2")
    let q = x.alloc()
    XCTAssertEqual(q, p + 0x1000, "cursor NULL: a fresh page")
    XCTAssertEqual(x.rules, [])
  }

  func testPpcStyleNeverReusesAFreedHalf() {
    let x = PpcStyle()
    let p = x.alloc()
    x.alloc()
    x.send(.freeNow, mm: x.mm, table: p + 0x800)
    XCTAssertEqual(x.state(p), "ref 1/2 · H 1 X 1")
    XCTAssertEqual(x.model.occupancy.stranded, 1, "a freed half is stranded until its page goes")
    let q = x.alloc()
    XCTAssertNotEqual(q & ~0xfff, p, "the freed upper half is not handed out again")
    x.send(.alloc, mm: x.mm, table: p + 0x800)
    XCTAssertEqual(x.rules, ["reuse-before-release"])
    // The lower half (fragment 0) back as a fresh page while the upper half counts.
    let y = PpcStyle()
    let r = y.alloc()
    y.alloc()
    y.send(.freeNow, mm: y.mm, table: r)
    y.send(.alloc, mm: y.mm, table: r)
    XCTAssertEqual(y.rules, ["release-with-refs"])
  }

  func testPpcStyleTLBPathAndTags() {
    let x = PpcStyle()
    let p = x.alloc()
    let u = x.alloc()
    x.send(.freeTLB, table: u)
    x.send(.tlbQueue, table: x.tag(u))
    XCTAssertEqual(x.state(p), "ref 2/2 · H 1 Q 1")
    x.send(.tlbExec, table: u | 1)  // tag 1 names the lower half
    x.send(.tlbExec, table: x.tag(p))  // lower is handed, not queued
    x.send(.tlbQueue, table: x.tag(p))  // not freed by page_table_free_rcu
    XCTAssertEqual(x.rules, ["exec-tag-mismatch", "exec-without-pending", "queue-without-pending"])
    x.send(.tlbExec, table: x.tag(u))
    x.send(.freeNow, mm: x.mm, table: p)
    XCTAssertEqual(x.state(p), "released")
    x.send(.freeNow, mm: x.mm, table: p)  // the page is gone: this mm never had it again
    XCTAssertEqual(x.rules.last, "free-unknown")
  }

  func testPpcStyleDeferFreesThroughRCUAndDestroyAtDeath() {
    let x = PpcStyle()
    let p = x.alloc()
    let u = x.alloc()
    x.send(.deferBegin, mm: x.mm, table: u, pid: 45)
    x.send(.freeNow, mm: x.mm, table: p)
    XCTAssertEqual(x.state(p), "R (call_rcu(pte_free_now) pending)")
    XCTAssertEqual(x.model.dueRCUCallbacks.map(\.table), [p])
    x.send(.rcuFree, table: 0x3_7fff_0008, pid: 0)
    XCTAssertEqual(x.state(p), "released")
    // The cursor page of a dying mm whose one handed half was deferred: destroy frees it
    // (PG_active cleared, as fda4d71651f7 does).
    let q = x.alloc()
    x.send(.deferBegin, mm: x.mm, table: q, pid: 45)
    XCTAssertEqual(x.state(q), "ref 1/2 · X 1 U 1 · cursor @1 · active")
    x.send(.mmDeath, mm: x.mm, table: 0x3f0_0000)
    XCTAssertEqual(x.state(q), "released")
    XCTAssertEqual(x.rules, [])
  }

  func testPpcStyleChoiceRules() {
    let x = PpcStyle()
    let other: UInt64 = 0x20c_0800
    x.send(.mmBirth, mm: other, table: 0x3f1_0000)
    let p = x.alloc()
    x.send(.alloc, mm: other, table: p + 0x800)  // mm `other` has no cursor there
    x.send(.alloc, mm: x.mm, table: 0x900_0000)  // mm's cursor was taken: a fresh page is right
    x.send(.alloc, mm: x.mm, table: 0x910_0000)  // but now the cursor is 0x9000800
    XCTAssertEqual(x.rules, ["alloc-not-cursor", "alloc-fresh-while-cursor"])
    x.send(.mmDeath, mm: other, table: 0x3f1_0000)
    XCTAssertEqual(x.rules.last, "leak")
    XCTAssertEqual(x.model.invariantViolations(), [])
  }

  func testPpcStyleInfersPgsteFromTag3() {
    // A capture (not a simulation): a KVM mm whose tables are whole pages.
    let ctx = ReplayContext()
    let m = S390PpcStyleModel(context: ctx)
    var s = EventScript(comm: .fixed(Comm("t")), originNs: 1_000_000)
    m.apply(s.make(.mmBirth, mm: 0x20c_0400, table: 0x3f0_0000))
    m.apply(s.make(.alloc, mm: 0x20c_0400, table: 0x381_0000))
    m.apply(s.make(.alloc, mm: 0x20c_0400, table: 0x382_0000))
    m.apply(s.make(.freeTLB, table: 0x381_0000))
    m.apply(s.make(.tlbQueue, table: 0x381_0003))
    m.apply(s.make(.tlbExec, table: 0x381_0003, pid: 0))
    m.apply(s.make(.freeNow, mm: 0x20c_0400, table: 0x382_0000))
    XCTAssertEqual(ctx.findings.map(\.rule.id), ["pgste-inferred"])
    XCTAssertEqual(m.occupancy.pagesHeld, 0)
    XCTAssertEqual(m.invariantViolations(), [])
  }

  // MARK: Replaying real captures

  static var proposals: [any AllocatorModel.Type] {
    [S390HughV2Model.self, S390GeraldModel.self, S390PpcStyleModel.self]
  }

  /// The real 6.1 capture (variant A's choices): every per-table check applies and holds;
  /// the two halves whose __tlb_remove_table the kprobe_profile says were missed are
  /// explained, as variant A's own model explains them.
  func testProposalsReplayThe61Capture() throws {
    let misses: [KernelFunction: UInt64] = [.tlbRemoveTableExec: 7]
    let a = try Fixture.replay(
      "Fixtures/samples/s390x-6.1-fork-exec.trace", model: S390v61Model.self, profileMisses: misses)
    for model in Self.proposals {
      let d = model.descriptor
      XCTAssertTrue(d.simulationOnly)
      XCTAssertTrue(d.canReplay(captureOf: "s390-6.1"))
      let r = try Fixture.replay(
        "Fixtures/samples/s390x-6.1-fork-exec.trace", model: model, profileMisses: misses)
      XCTAssertEqual(r.findings.map(\.rule.id), [], d.id)
      // The proposals see the two pending halves handed out again at line 250; variant A's
      // model also places the other five misses by batch order (its own tlb semantics).
      XCTAssertEqual(r.inconclusive.map(\.line), [250, 250], d.id)
      XCTAssertTrue(Set(r.inconclusive.map(\.line)).isSubset(of: a.inconclusive.map(\.line)), d.id)
      XCTAssertEqual(r.inconclusive.map(\.wouldBeRule), ["reuse-before-grace", "reuse-before-grace"], d.id)
      XCTAssertTrue(r.inconclusive.allSatisfy { $0.explainedBy != nil }, d.id)
      XCTAssertEqual(Judgement(result: r, gate: Gate(failOn: .error)).verdict, .clean, d.id)
      XCTAssertEqual(r.stats.allocationsPredicted, 0, "\(d.id): no kernel ran its choices")
      XCTAssertEqual(r.stats.allocationsUnverified, 95)
      XCTAssertEqual(r.stats.tablesLiveAtEnd, 0)
      // Which checks do not apply to this capture: the allocator's own choices.
      let off = Set(d.checksNotApplicable(toCaptureOf: "s390-6.1").flatMap(\.rules))
      XCTAssertTrue(off.contains("alloc-fresh-while-head-usable") || off.contains("alloc-not-cursor"), d.id)
      XCTAssertFalse(off.contains("double-free"), d.id)
      // With a profile showing no misses, the missed-exec items become the finding.
      let strict = try Fixture.replay(
        "Fixtures/samples/s390x-6.1-fork-exec.trace", model: model,
        profileMisses: [.tlbRemoveTableExec: 0])
      XCTAssertEqual(strict.findings.map { "\($0.line) \($0.rule.id)" }, ["250 reuse-before-grace"], d.id)
    }
  }

  /// Lines 1–4 of a capture: mm 0x20c0800 born, one table 0x37b9000 allocated.
  static let birthAndOneAlloc = """
                init-1       [001] .....   10.000010: crst_table_alloc: (crst_table_alloc+0x0/0x70) mm=0x20c0800
                init-1       [001] .....   10.000020: crst_table_alloc_ret: (mm_init+0x166/0x3a8 <- crst_table_alloc) table=0x3820000
                init-1       [001] .....   10.000100: page_table_alloc: (page_table_alloc+0x0/0x2c8) mm=0x20c0800
                init-1       [001] .....   10.000110: page_table_alloc_ret: (__pte_alloc+0x3a/0x1a0 <- page_table_alloc) table=0x37b9000

    """

  /// A v6.6 capture: pte_free_defer sets PG_active and calls page_table_free (a nested hit
  /// of the same task). The proposals replay the captured kernel's protocol: no double free.
  func testProposalsReplayAv66DeferWithItsNestedFree() throws {
    let text = Self.birthAndOneAlloc + """
                init-1       [001] .....   10.000200: page_table_alloc: (page_table_alloc+0x0/0x2c8) mm=0x20c0800
                init-1       [001] .....   10.000210: page_table_alloc_ret: (__pte_alloc+0x3a/0x1a0 <- page_table_alloc) table=0x37b9800
          khugepaged-40      [000] .....   10.100000: pte_free_defer: (pte_free_defer+0x0/0x120) mm=0x20c0800 table=0x37b9800
          khugepaged-40      [000] .....   10.100004: page_table_free: (page_table_free+0x0/0x1e8) mm=0x20c0800 table=0x37b9800
                init-1       [001] .....   10.200000: page_table_free: (page_table_free+0x0/0x1e8) mm=0x20c0800 table=0x37b9000
                init-1       [001] .....   10.300000: crst_table_free: (crst_table_free+0x0/0x40) mm=0x20c0800 table=0x3820000

    """
    for model in Self.proposals {
      let r = try Fixture.replay(text: text, model: model)
      XCTAssertEqual(r.findings.map { "\($0.line) \($0.rule.id)" }, [], model.descriptor.id)
      XCTAssertEqual(r.inconclusive.count, 0, model.descriptor.id)
    }
  }

  /// Per-table checks fire on a capture too: a double free of a half.
  func testProposalsReportPerTableErrorsOnACapture() throws {
    let text = Self.birthAndOneAlloc + """
                init-1       [001] .....   10.000200: page_table_free_rcu: (page_table_free_rcu+0x0/0x188) tlb=0x37ffffd79f0 table=0x37b9000 vmaddr=0x1000000
                init-1       [001] .....   10.000210: page_table_free_rcu: (page_table_free_rcu+0x0/0x188) tlb=0x37ffffd79f0 table=0x37b9000 vmaddr=0x1000000

    """
    for model in Self.proposals {
      let r = try Fixture.replay(text: text, model: model)
      XCTAssertEqual(r.findings.map { "\($0.line) \($0.rule.id)" }, ["6 double-free"], model.descriptor.id)
    }
  }
}
