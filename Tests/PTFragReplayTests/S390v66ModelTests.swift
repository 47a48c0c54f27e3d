import PTFragEvents
import PTFragTestSupport
import Testing

@testable import PTFragReplay

// s390-6.6 beyond its state table: the pte_free_defer window (§3.3) with every probe set a
// capture may have, the trace-order variant of the race, closing R through pte_free_now,
// pgste pages.

private let M: UInt64 = 0x20c_0800
private let PGD: UInt64 = 0x382_0000
private let P: UInt64 = 0x37b_9000
private let LO = P
private let UP = P + 0x800

@Suite("s390-6.6 (variant B)")
struct S390v66ModelTests {
  func run(_ s: EventScript) -> (model: S390v66Model, result: ReplayResult) {
    let r = replay(S390v66Model.self, s.events)
    return (r.model as! S390v66Model, r.result)
  }

  /// AA, then `pte_free_defer(lower)` by pid 40; `probes` says which of its own
  /// `page_table_free` and return the capture shows. Returns the script and the defer line.
  func deferred(innerProbe: Bool, returnProbe: Bool) -> EventScript {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    s.alloc(M, LO, pid: 1)
    s.alloc(M, UP, pid: 1)
    s.deferBegin(M, LO, pid: 40)
    if innerProbe { s.freeNow(M, LO, pid: 40) }
    if returnProbe { s.deferEnd(pid: 40) }
    return s
  }

  @Test(
    "pte_free_defer ends in FA* whichever of its page_table_free and return are probed",
    arguments: [(true, true), (true, false), (false, true), (false, false)])
  func probeSets(inner: Bool, ret: Bool) {
    var s = deferred(innerProbe: inner, returnProbe: ret)
    s.alloc(M, 0x400_0000, pid: 40)  // the deferring task's next call closes the window
    let (m, r) = run(s)
    #expect(r.ruleLines.isEmpty)
    #expect(m.describe(P) == "FA* -")
    #expect(m.occupancyMatchesRecount())
  }

  @Test("without page_table_free or return probes, the window stays open until the task's next call")
  func windowWithoutProbes() {
    // Inside the window: another task's alloc of the other half (after a third task's free
    // of it) is the §3.3 race, legal.
    var s = deferred(innerProbe: false, returnProbe: false)
    s.freeNow(M, UP, pid: 60)
    let inside = s.alloc(M, UP, pid: 61)
    let r1 = run(s)
    #expect(r1.result.ruleLines.isEmpty)
    #expect(r1.result.inconclusive.map(\.line) == [inside])
    #expect(r1.result.unexplained.isEmpty)
    // After the task's next call the window is closed: the same alloc is alloc-from-active.
    var t = deferred(innerProbe: false, returnProbe: false)
    t.alloc(M, 0x400_0000, pid: 40)
    t.freeNow(M, UP, pid: 60)
    #expect(run(t).model.describe(P) == "R")
    var u = deferred(innerProbe: false, returnProbe: false)
    u.alloc(M, 0x400_0000, pid: 40)
    u.freeTLB(M, UP)
    u.exec(UP)
    #expect(run(u).model.describe(P) == "R")
    var v = deferred(innerProbe: true, returnProbe: true)
    let outside = v.alloc(M, LO, pid: 61)
    #expect(run(v).result.ruleLines == ["alloc-from-active@\(outside)"])
  }

  @Test("§3.3 in trace order: the deferring free's entry precedes the racing alloc's return")
  func raceInTraceOrder() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    s.alloc(M, LO, pid: 1)
    s.alloc(M, UP, pid: 1)
    s.deferBegin(M, LO, pid: 40)  // Active
    s.freeNow(M, UP, pid: 60)  // tested Active before it was set: listed the page (kernel)
    let b = s.add(.allocBegin, mm: M, pid: 61)  // takes the upper half under the lock…
    s.freeNow(M, LO, pid: 40)  // …before this free's lock section; trace order says empty: R
    let ret = s.add(.alloc, mm: M, table: UP, pid: 61, beginLine: b)
    s.deferEnd(pid: 40)
    let (m, r) = run(s)
    #expect(r.ruleLines.isEmpty)
    #expect(r.inconclusive.map(\.line) == [ret] && r.unexplained.isEmpty)
    #expect(m.describe(P) == "FA* -")
    #expect(m.occupancyMatchesRecount())
  }

  @Test("R ends at pte_free_now; a direct (non-RCU) pte_free_now is not a finding")
  func rcuAndDirectCalls() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    let q: UInt64 = 0x37c_0000
    s.alloc(M, q, pid: 1)
    s.cpu = 1
    s.freeNow(M, q, pid: 1)  // direct release of q…
    s.rcuFree(page: q, cpu: 1)  // …and the out-of-line pte_free_now it calls: calibrates
    s.cpu = 0
    s.alloc(M, LO, pid: 1)
    s.deferFull(M, LO, pid: 40)
    let (m1, r1) = run(s)
    #expect(r1.ruleLines.isEmpty && m1.describe(P) == "R")
    #expect(m1.occupancy.pending == 2 && m1.occupancy.pagesHeld == 1)
    s.rcuFree(page: P)
    let (m2, r2) = run(s)
    #expect(r2.ruleLines.isEmpty && m2.describe(P) == "(none)")
    #expect(m2.heads.trusted && m2.occupancy.pagesHeld == 0)
    // With a trusted mapping, pte_free_now of a page that holds a table is I11.
    s.alloc(M, LO, pid: 1)
    let bad = s.rcuFree(page: P)
    #expect(run(s).result.ruleLines == ["rcu-free-not-pending@\(bad)"])
  }

  @Test("an R page back as a fresh page: legal without pte_free_now evidence, a probable miss with it")
  func rcuReuse() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    s.alloc(M, LO, pid: 1)
    s.deferFull(M, LO, pid: 40)
    s.alloc(M, LO, pid: 2)
    #expect(run(s).result.ruleLines.isEmpty)
    // Calibrate and confirm the mapping on two other pages, then reuse P while in R.
    var t = EventScript()
    t.birth(M, pgd: PGD)
    for q: UInt64 in [0x37c_0000, 0x37d_0000] {
      t.alloc(M, q, pid: 1)
      t.deferFull(M, q, pid: 40)
      t.rcuFree(page: q)
    }
    t.alloc(M, LO, pid: 1)
    t.deferFull(M, LO, pid: 40)
    let l = t.alloc(M, LO, pid: 2)
    #expect(run(t).result.ruleLines == ["reuse-before-rcu@\(l)"])
    let open = replay(S390v66Model.self, t.events, settleMisses: false).result
    #expect(open.findings.isEmpty && open.unexplained.map(\.line) == [l])
  }

  @Test("mm death closes a defer still in flight on that mm (no false leak)")
  func deathClosesDefer() {
    var s = deferred(innerProbe: false, returnProbe: false)
    s.freeTLB(M, UP)
    s.death(M, pgd: PGD)
    let (m, r) = run(s)
    #expect(r.ruleLines.isEmpty)
    #expect(m.describe(P) == "FP* -")
  }

  @Test("pte_free_defer on a pgste page: the 6.6 WARN (info), then R")
  func pgste() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    s.alloc(M, LO, pid: 1)
    let inferred = s.alloc(M, 0x37c_0000, pid: 1)  // a fresh page although the upper half was free
    let d = s.deferFull(M, 0x37c_0000, pid: 40)
    let r = replay(S390v66Model.self, s.events)
    #expect(r.result.ruleLines == ["pgste-inferred@\(inferred)", "defer-on-pgste@\(d)"])
    #expect((r.model as! S390v66Model).describe(0x37c_0000) == "R")
  }

  @Test("descriptor and rules: s390-6.6 adds B's rules to A's")
  func descriptor() {
    let ids = Set(S390v66Model.descriptor.rules.map(\.id))
    #expect(S390v66Model.descriptor.id == "s390-6.6")
    #expect(ids.isSuperset(of: S390v61Model.descriptor.rules.map(\.id)))
    #expect(ids.isSuperset(of: ["alloc-from-active", "use-while-rcu-pending", "reuse-before-rcu", "rcu-free-not-pending"]))
    #expect(S390v61Model.descriptor.id == "s390-6.1")
    #expect(Array(ModelRegistry.ids.prefix(3)) == ["s390-6.1", "s390-6.6", "s390-6.7"])
  }
}
