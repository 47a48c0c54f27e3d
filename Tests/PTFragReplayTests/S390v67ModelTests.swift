import PTFragEvents
import PTFragTestSupport
import Testing

@testable import PTFragReplay

// kernel-models.md §5 (variant D): "Live –free_now→ released; Live –tlb queue→ Q –exec→
// released; Live –defer→ R –rcu cb→ released. Any other event is ✗." Every cell is a test;
// then the rules §5 names and the CRST, 6.7–6.10 and pte_free_now cases.

private let M: UInt64 = 0x2b6_aa00
private let M2: UInt64 = 0x2ef_3f00
private let PGD: UInt64 = 0x291_0000
private let P: UInt64 = 0x351_9000
/// A page queued and executed in every setup, so that the capture visibly probes
/// tlb_remove_table (the exec-without-queue rule needs to know).
private let Z: UInt64 = 0x352_0000

enum DStart: String, CaseIterable, Sendable, CustomStringConvertible {
  case none = "(none)", live = "Live", queued = "Q", queuedByFreeTLB = "Q (page_table_free_rcu)"
  case rcu = "R"
  var description: String { rawValue }
  /// The model's name for the state.
  var state: String? {
    switch self {
    case .none: nil
    case .live: "Live"
    case .queued, .queuedByFreeTLB: "Q"
    case .rcu: "R"
    }
  }

  func build(_ s: inout EventScript) {
    s.birth(M, pgd: PGD)
    s.alloc(M, Z)
    s.queue(Z)
    s.execRaw(Z)
    switch self {
    case .none: break
    case .live: s.alloc(M, P)
    case .queued: s.alloc(M, P); s.queue(P)
    case .queuedByFreeTLB: s.alloc(M, P); s.add(.freeTLB, mm: M, table: P); s.queue(P)
    case .rcu: s.alloc(M, P); s.deferBegin(M, P)
    }
  }
}

enum DOp: Sendable, CustomStringConvertible {
  case alloc, freeNow, freeTLB, queue, exec, deferCall, rcuCallback
  var description: String {
    switch self {
    case .alloc: "alloc"
    case .freeNow: "free_now"
    case .freeTLB: "free_tlb (page_table_free_rcu + its tlb_remove_table)"
    case .queue: "tlb queue"
    case .exec: "exec"
    case .deferCall: "defer"
    case .rcuCallback: "rcu cb"
    }
  }
  func apply(_ s: inout EventScript) {
    switch self {
    case .alloc: s.alloc(M, P)
    case .freeNow: s.freeNow(M, P)
    case .freeTLB: s.add(.freeTLB, mm: M, table: P); s.queue(P)
    case .queue: s.queue(P)
    case .exec: s.execRaw(P)
    case .deferCall: s.deferBegin(M, P)
    case .rcuCallback: s.rcuFree(page: P)
    }
  }
  var decidingLine: Int { self == .alloc ? 1 : 0 }
}

struct DCell: Sendable, CustomStringConvertible {
  var start: DStart
  var op: DOp
  var outcome: Outcome
  var description: String { "\(start) –\(op)→ \(outcome)" }
}

private func row(_ start: DStart, _ list: [(DOp, Outcome)]) -> [DCell] {
  list.map { DCell(start: start, op: $0.0, outcome: $0.1) }
}

/// A `page_table_free_rcu` of a table already freed, then its own `tlb_remove_table`
/// queueing it once more: two kernel steps, two lines, each a double free.
private let twoDoubleFrees = Outcome.rules(["double-free", "double-free"])

let tableD: [DCell] =
  row(
    .none,
    [
      (.alloc, .state("Live")), (.freeNow, .rule("free-unknown")), (.freeTLB, .rule("free-unknown")),
      (.queue, .untracked), (.exec, .untracked), (.deferCall, .rule("free-unknown")),
      (.rcuCallback, .state("(none)")),
    ])
  + row(
    .live,
    [
      (.alloc, .rule("reuse-before-release")), (.freeNow, .released), (.freeTLB, .state("Q")),
      (.queue, .state("Q")), (.exec, .rule("exec-without-queue")), (.deferCall, .state("R")),
    ])
  + row(
    .queued,
    [
      (.alloc, .rule("reuse-before-release")), (.freeNow, .rule("double-free")),
      (.freeTLB, twoDoubleFrees), (.queue, .rule("double-free")), (.exec, .released),
      (.deferCall, .rule("double-free")),
    ])
  + row(
    .queuedByFreeTLB,
    [
      (.alloc, .rule("reuse-before-release")), (.freeNow, .rule("double-free")),
      (.queue, .rule("double-free")), (.exec, .released), (.deferCall, .rule("double-free")),
    ])
  + row(
    .rcu,
    [
      // Back from the buddy allocator: the callback ran (not probed, or not yet mappable).
      (.alloc, .state("Live")),
      (.freeNow, .rule("double-free")), (.freeTLB, twoDoubleFrees), (.queue, .rule("double-free")),
      (.exec, .rule("double-free")), (.deferCall, .rule("double-free")), (.rcuCallback, .released),
    ])

@Suite("s390-6.7 (variant D)")
struct S390v67ModelTests {
  @Test("§5 state table", arguments: tableD)
  func stateTable(_ cell: DCell) {
    var s = EventScript()
    cell.start.build(&s)
    let setup = s.events
    let opLine = s.nextLine
    cell.op.apply(&s)
    checkOutcome(
      "\(cell)", S390v67Model.self, setup: setup, full: s.events, opLine: opLine,
      decidingLine: opLine + cell.op.decidingLine, outcome: cell.outcome,
      startState: cell.start.state,
      describe: { ($0 as! S390v67Model).describe(P) },
      recount: { ($0 as! S390v67Model).occupancyMatchesRecount() })
  }

  /// Replays `s` and returns `rule@line` of its findings.
  func findings(_ s: EventScript) -> [String] { replay(S390v67Model.self, s.events).result.ruleLines }

  @Test("alloc-not-page-aligned: a 2 KiB fragment from page_table_alloc")
  func notPageAligned() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    let l = s.alloc(M, P + 0x800)
    #expect(findings(s) == ["alloc-not-page-aligned@\(l)"])
  }

  @Test("free-unknown: a tagged tlb value (a pre-6.7 kernel) and a ptdesc pointer (6.14+)")
  func taggedAndPtdesc() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    s.alloc(M, P)
    let tagged = s.queue(P | 1)
    let ptdesc = s.queue(0x3d0_8000_d640)
    #expect(findings(s) == ["free-unknown@\(tagged)", "free-unknown@\(ptdesc)"])
  }

  @Test("CRST tables on the tlb path are not PTE tables")
  func crstThroughTLB() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    let crst: UInt64 = 0x7ff_2c000
    s.add(.crstAlloc, mm: M, table: crst)
    s.alloc(M, P)
    s.queue(crst)
    s.queue(P)
    s.execRaw(crst)
    s.execRaw(P)
    let r = replay(S390v67Model.self, s.events)
    #expect(r.result.ruleLines.isEmpty)
    let m = r.model as! S390v67Model
    #expect(m.crst[crst] == nil && m.pages.isEmpty)
    #expect(r.result.stats.execsUntracked == 0)
  }

  @Test("a 16 KiB-aligned queue the capture never saw allocated may be a CRST: no finding")
  func unknownAlignedQueue() {
    var s = EventScript()
    s.queue(0x293_0000)
    s.execRaw(0x293_0000)
    let r = replay(S390v67Model.self, s.events)
    #expect(r.result.ruleLines.isEmpty)
    #expect((r.model as! S390v67Model).occupancy.pagesHeld == 0)
  }

  @Test("reuse-before-release: page_table_alloc inside a live CRST table")
  func allocInsideCrst() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    let crst: UInt64 = 0x7ff_2c000
    s.add(.crstAlloc, mm: M, table: crst)
    let l = s.alloc(M, crst + 0x2000)
    #expect(findings(s) == ["reuse-before-release@\(l)"])
  }

  @Test("free-unknown: crst_table_free of a PTE table, page_table_free of a CRST table")
  func crstPteConfusion() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    let crst: UInt64 = 0x7ff_2c000
    s.add(.crstAlloc, mm: M, table: crst)
    s.alloc(M, P)
    let a = s.add(.crstFree, mm: M, table: P)
    let b = s.freeNow(M, crst)
    #expect(findings(s) == ["free-unknown@\(a)", "free-unknown@\(b)"])
  }

  @Test("leak: the pgd goes while a table is live; none once it is queued")
  func leak() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    s.alloc(M, P)
    s.alloc(M, Z)
    s.queue(Z)
    let d = s.death(M, pgd: PGD)
    #expect(findings(s) == ["leak@\(d)"])
  }

  @Test("cross-mm is a warning: D's free paths ignore the mm")
  func crossMM() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    s.birth(M2, pgd: PGD + 0x4000)
    s.alloc(M, P)
    let l = s.freeNow(M2, P)
    let r = replay(S390v67Model.self, s.events).result
    #expect(r.ruleLines == ["cross-mm@\(l)"])
    #expect(r.findings.first?.rule.severity == .warning)
  }

  @Test("pte_free_now: the mapping learns the bias, then releases R pages and flags a live one")
  func rcuMapping() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    let pages: [UInt64] = [0x351_9000, 0x351_a000, 0x351_b000, 0x351_c000]
    for p in pages { s.alloc(M, p) }
    s.deferBegin(M, pages[0])
    s.rcuFree(page: pages[0])  // the only waiting page: calibrates
    s.deferBegin(M, pages[1])
    s.deferBegin(M, pages[2])
    s.rcuFree(page: pages[2])  // two waiting: the bias picks the right one (confirms)
    let bad = s.rcuFree(page: pages[3])  // live
    let r = replay(S390v67Model.self, s.events)
    let m = r.model as! S390v67Model
    #expect(r.result.ruleLines == ["rcu-free-not-pending@\(bad)"])
    #expect(m.describe(pages[0]) == "(none)" && m.describe(pages[2]) == "(none)")
    #expect(m.describe(pages[1]) == "R")
    #expect(m.heads.trusted)
  }

  @Test("pte_free_now heads seen while several pages wait are kept, then resolved by the bias that fits most")
  func rcuDeferredResolution() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    // Neighbouring pfns: a bias shifted by one page fits some heads too.
    let pages: [UInt64] = [0x351_9000, 0x351_a000, 0x351_b000]
    for p in pages { s.alloc(M, p) }
    for p in pages { s.deferBegin(M, p) }
    s.rcuFree(page: pages[1])  // three waiting, one head: kept
    s.rcuFree(page: pages[0])  // two heads: the true bias and a shifted one fit both: a tie
    let two = replay(S390v67Model.self, s.events).model as! S390v67Model
    #expect(two.rcuPages.count == 3 && two.heads.unresolved.count == 2 && two.heads.bias == nil)
    s.rcuFree(page: pages[2])  // three heads: only the true bias fits all three
    let r = replay(S390v67Model.self, s.events)
    let m = r.model as! S390v67Model
    #expect(r.result.ruleLines.isEmpty)
    #expect(m.rcuPages.isEmpty)
    #expect(m.heads.bias == testVmemmapBias)
    #expect(m.heads.trusted && m.heads.unresolved.isEmpty)
  }

  @Test("with a trusted mapping, an R page back as a fresh table is a probable missed pte_free_now")
  func rcuReuseTrusted() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    let pages: [UInt64] = [0x351_9000, 0x351_a000, 0x351_b000]
    for p in pages { s.alloc(M, p) }
    s.deferBegin(M, pages[0])
    s.rcuFree(page: pages[0])  // calibrates
    s.deferBegin(M, pages[1])
    s.deferBegin(M, pages[2])
    s.rcuFree(page: pages[1])  // confirms
    let l = s.alloc(M, pages[2])
    // The profile shows pte_free_now missed nothing: a finding.
    #expect(findings(s) == ["reuse-before-release@\(l)"])
    // Without a profile it stays open.
    let open = replay(S390v67Model.self, s.events, settleMisses: false).result
    #expect(open.findings.isEmpty && open.unexplained.map(\.reason) == [.missedProbe])
  }

  @Test("6.7 … 6.10: page_table_free_rcu then its own tlb_remove_table is one free")
  func trivialFreeRCU() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    s.alloc(M, P)
    s.add(.freeTLB, mm: M, table: P)
    s.queue(P)
    s.execRaw(P)
    let r = replay(S390v67Model.self, s.events)
    #expect(r.result.ruleLines.isEmpty)
    #expect((r.model as! S390v67Model).pages.isEmpty)
  }

  @Test("occupancy: 2 KiB slots, one stranded per held page")
  func occupancyUnits() {
    var s = EventScript()
    s.birth(M, pgd: PGD)
    s.alloc(M, P)
    s.alloc(M, Z)
    s.queue(Z)
    let m = S390v67Model(context: ReplayContext())
    for e in s.events { m.apply(e) }
    let o = m.occupancy
    #expect(o.pagesHeld == 2 && o.slotsPerPage == 2 && o.slotsHeld == 4)
    #expect(o.live == 1 && o.pending == 1 && o.stranded == 2 && o.waste == 2)
    #expect(o.reusableNow == 0 && o.reusableLater == 0)
  }
}
