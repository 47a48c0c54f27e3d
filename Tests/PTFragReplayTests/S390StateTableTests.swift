import PTFragEvents
import PTFragTestSupport
import Testing

@testable import PTFragReplay

// kernel-models.md §2.5 (variant A) and §3.5 (variant B): every cell is a test. A's table
// runs against both s390-6.1 and s390-6.6 (B must behave as A on pages pte_free_defer never
// touched); B's rows with Active (`*`) and R run against s390-6.6.

private let M: UInt64 = 0x20c0800
private let PGD: UInt64 = 0x382_0000
/// The page under test and a fresh page for allocations that do not take it.
private let P: UInt64 = 0x37b_9000
private let FRESH: UInt64 = 0x390_0000
private let LO = P
private let UP = P + 0x800

/// A start state of page P (mm M born first), as a script.
enum Start: String, CaseIterable, Sendable, CustomStringConvertible {
  case none = "(none)", AF_L = "AF L", FA_L = "FA L", AA = "AA -", AP_L = "AP L", PA_L = "PA L"
  case PF = "PF -", FP = "FP -", PP = "PP -"
  // B only
  case FA_act = "FA* -", AF_act = "AF* -", FP_act = "FP* -", PF_act = "PF* -", R = "R"

  var description: String { rawValue }

  func build(_ s: inout EventScript) {
    s.birth(M, pgd: PGD)
    switch self {
    case .none: break
    case .AF_L: s.alloc(M, LO)
    case .FA_L: build2(&s); s.freeNow(M, LO)
    case .AA: build2(&s)
    case .AP_L: build2(&s); s.freeTLB(M, UP)
    case .PA_L: build2(&s); s.freeTLB(M, LO)
    case .PF: s.alloc(M, LO); s.freeTLB(M, LO)
    case .FP: build2(&s); s.freeNow(M, LO); s.freeTLB(M, UP)
    case .PP: build2(&s); s.freeTLB(M, UP); s.freeTLB(M, LO)
    case .FA_act: build2(&s); s.deferFull(M, LO, pid: 40)
    case .AF_act: build2(&s); s.deferFull(M, UP, pid: 40)
    case .FP_act: build2(&s); s.freeTLB(M, UP); s.deferFull(M, LO, pid: 40)
    case .PF_act: build2(&s); s.freeTLB(M, LO); s.deferFull(M, UP, pid: 40)
    case .R: s.alloc(M, LO); s.deferFull(M, LO, pid: 40)
    }
  }

  private func build2(_ s: inout EventScript) {
    s.alloc(M, LO)
    s.alloc(M, UP)
  }
}

enum Op: Sendable, CustomStringConvertible {
  /// `page_table_alloc` returning what the model predicts (`FRESH` when a fresh page is due).
  case allocPredicted
  /// `page_table_alloc` returning half h of P.
  case allocHalf(Int)
  case freeNow(Int), freeTLB(Int), exec(Int), deferFull(Int)
  /// `pte_free_now` of P (the mapping calibrates on the single waiting page).
  case rcuCallback

  /// The line (from the op's first) where the kernel step that decides lies: an alloc's
  /// return; the `page_table_free` inside `pte_free_defer`.
  var decidingLine: Int {
    switch self {
    case .allocPredicted, .allocHalf, .deferFull: 1
    default: 0
    }
  }

  var description: String {
    switch self {
    case .allocPredicted: "alloc"
    case .allocHalf(let h): "alloc \(h == 0 ? "lo" : "up")"
    case .freeNow(let h): "free_now \(h == 0 ? "lo" : "up")"
    case .freeTLB(let h): "free_tlb \(h == 0 ? "lo" : "up")"
    case .exec(let h): "exec \(h == 0 ? "lo" : "up")"
    case .deferFull(let h): "defer \(h == 0 ? "lo" : "up")"
    case .rcuCallback: "rcu cb"
    }
  }

  func apply(_ s: inout EventScript, model: S390v61Model, fresh: UInt64) {
    let t = { (h: Int) in P + UInt64(h) * 0x800 }
    switch self {
    case .allocPredicted: s.alloc(M, model.simulateAlloc(mm: M, fresh: { fresh }))
    case .allocHalf(let h): s.alloc(M, t(h))
    case .freeNow(let h): s.freeNow(M, t(h))
    case .freeTLB(let h): s.freeTLB(M, t(h))
    case .exec(let h): s.exec(t(h))
    case .deferFull(let h): s.deferFull(M, t(h), pid: 41)
    case .rcuCallback: s.rcuFree(page: P)
    }
  }
}

struct Cell: Sendable, CustomStringConvertible {
  var start: Start
  var op: Op
  var outcome: Outcome
  var description: String { "\(start) –\(op)→ \(outcome)" }
}

/// A bad `page_table_free_rcu` is two kernel steps and two lines: the free (a
/// `double-free`), then its `tlb_remove_table` of the same table by the same task, which is
/// part of the same double free and is not reported again.
private func tlbDoubleFree(halfWasPending: Bool) -> Outcome {
  .rules(["double-free"])
}
private let dfF = tlbDoubleFree(halfWasPending: false)
private let dfP = tlbDoubleFree(halfWasPending: true)

private func cells(_ start: Start, _ list: [(Op, Outcome)]) -> [Cell] {
  list.map { Cell(start: start, op: $0.0, outcome: $0.1) }
}

/// kernel-models.md §2.5, row by row (alloc = "page is head" column; "(not listed)" and
/// "both busy" mean a fresh page, leaving P as it was). §2.6 adds the alloc ✗ cells.
let tableA: [Cell] =
  cells(
    .none,
    [
      (.allocPredicted, .state("AF L")), (.freeNow(0), .rule("free-unknown")),
      (.freeNow(1), .rule("free-unknown")), (.freeTLB(0), .rule("free-unknown")),
      (.freeTLB(1), .rule("free-unknown")), (.exec(0), .untracked), (.exec(1), .untracked),
    ])
  + cells(
    .AF_L,
    [
      (.allocPredicted, .state("AA -")), (.freeNow(0), .released), (.freeNow(1), .rule("double-free")),
      (.freeTLB(0), .state("PF -")), (.freeTLB(1), dfF),
      (.exec(0), .rule("exec-without-pending")), (.exec(1), .rule("exec-without-pending")),
      (.allocHalf(0), .rule("alloc-busy-half")),
    ])
  + cells(
    .FA_L,
    [
      (.allocPredicted, .state("AA -")), (.freeNow(0), .rule("double-free")), (.freeNow(1), .released),
      (.freeTLB(0), dfF), (.freeTLB(1), .state("FP -")),
      (.exec(0), .rule("exec-without-pending")), (.exec(1), .rule("exec-without-pending")),
      (.allocHalf(1), .rule("alloc-busy-half")),
    ])
  + cells(
    .AA,
    [
      (.allocPredicted, .state("AA -")), (.freeNow(0), .state("FA L")), (.freeNow(1), .state("AF L")),
      (.freeTLB(0), .state("PA L")), (.freeTLB(1), .state("AP L")),
      (.exec(0), .rule("exec-without-pending")), (.exec(1), .rule("exec-without-pending")),
      (.allocHalf(0), .rule("alloc-busy-half")),
    ])
  + cells(
    .AP_L,
    [
      (.allocPredicted, .state("AP L")), (.freeNow(0), .state("FP -")), (.freeNow(1), .rule("double-free")),
      (.freeTLB(0), .state("PP -")), (.freeTLB(1), dfP),
      (.exec(0), .rule("exec-without-pending")), (.exec(1), .state("AF L")),
      (.allocHalf(1), .rule("reuse-before-grace")),
    ])
  + cells(
    .PA_L,
    [
      (.allocPredicted, .state("PA L")), (.freeNow(0), .rule("double-free")), (.freeNow(1), .state("PF -")),
      (.freeTLB(0), dfP), (.freeTLB(1), .state("PP -")),
      (.exec(0), .state("FA L")), (.exec(1), .rule("exec-without-pending")),
      (.allocHalf(0), .rule("reuse-before-grace")),
    ])
  + cells(
    .PF,
    [
      (.allocPredicted, .state("PF -")), (.freeNow(0), .rule("double-free")), (.freeNow(1), .rule("double-free")),
      (.freeTLB(0), dfP), (.freeTLB(1), dfF),
      (.exec(0), .released), (.exec(1), .rule("exec-without-pending")),
    ])
  + cells(
    .FP,
    [
      (.allocPredicted, .state("FP -")), (.freeNow(0), .rule("double-free")), (.freeNow(1), .rule("double-free")),
      (.freeTLB(0), dfF), (.freeTLB(1), dfP),
      (.exec(0), .rule("exec-without-pending")), (.exec(1), .released),
    ])
  + cells(
    .PP,
    [
      (.allocPredicted, .state("PP -")), (.freeNow(0), .rule("double-free")), (.freeNow(1), .rule("double-free")),
      (.freeTLB(0), dfP), (.freeTLB(1), dfP),
      (.exec(0), .state("FP -")), (.exec(1), .state("PF -")),
    ])

/// kernel-models.md §3.5: the defer column on A's states, the `*` rows (A's transitions with
/// "L" → "–" and "release" → "R"; alloc ✗), and R.
let tableB: [Cell] =
  cells(.AA, [(.deferFull(0), .state("FA* -")), (.deferFull(1), .state("AF* -"))])
  + cells(.AF_L, [(.deferFull(0), .state("R")), (.deferFull(1), .rule("double-free"))])
  + cells(.AP_L, [(.deferFull(0), .state("FP* -")), (.deferFull(1), .rule("double-free"))])
  + cells(.PA_L, [(.deferFull(1), .state("PF* -")), (.deferFull(0), .rule("double-free"))])
  + cells(
    .FA_act,
    [
      (.allocPredicted, .state("FA* -")), (.allocHalf(0), .rule("alloc-from-active")),
      (.allocHalf(1), .rule("alloc-busy-half")),
      (.freeNow(0), .rule("double-free")), (.freeNow(1), .state("R")),
      (.freeTLB(0), dfF), (.freeTLB(1), .state("FP* -")),
      (.exec(0), .rule("exec-without-pending")), (.exec(1), .rule("exec-without-pending")),
      (.deferFull(1), .state("R")), (.deferFull(0), .rule("double-free")),
    ])
  + cells(
    .AF_act,
    [
      (.allocPredicted, .state("AF* -")), (.allocHalf(1), .rule("alloc-from-active")),
      (.freeNow(0), .state("R")), (.freeNow(1), .rule("double-free")),
      (.freeTLB(0), .state("PF* -")), (.freeTLB(1), dfF),
      (.exec(0), .rule("exec-without-pending")), (.exec(1), .rule("exec-without-pending")),
      (.deferFull(0), .state("R")),
    ])
  + cells(
    .FP_act,
    [
      (.allocPredicted, .state("FP* -")), (.allocHalf(0), .rule("alloc-from-active")),
      (.allocHalf(1), .rule("reuse-before-grace")),
      (.freeNow(0), .rule("double-free")), (.freeNow(1), .rule("double-free")),
      (.freeTLB(0), dfF), (.freeTLB(1), dfP),
      (.exec(0), .rule("exec-without-pending")), (.exec(1), .state("R")),
    ])
  + cells(
    .PF_act,
    [
      (.allocPredicted, .state("PF* -")), (.allocHalf(1), .rule("alloc-from-active")),
      (.freeNow(0), .rule("double-free")), (.freeNow(1), .rule("double-free")),
      (.exec(0), .state("R")), (.exec(1), .rule("exec-without-pending")),
    ])
  + cells(
    .R,
    [
      (.freeNow(0), .rule("use-while-rcu-pending")), (.freeNow(1), .rule("use-while-rcu-pending")),
      (.freeTLB(0), .rule("use-while-rcu-pending")), (.freeTLB(1), .rule("use-while-rcu-pending")),
      (.exec(0), .rule("use-while-rcu-pending")), (.exec(1), .rule("use-while-rcu-pending")),
      (.deferFull(0), .ruleAt("use-while-rcu-pending", 0)),  // the call itself, at its entry
      (.allocHalf(1), .rule("reuse-before-rcu")),
      (.allocHalf(0), .state("AF L")),  // back from the buddy allocator: the callback ran
      (.rcuCallback, .released),
    ])

/// Runs one cell: the start script must be clean; the op must give exactly the outcome.
func check(_ cell: Cell, _ type: S390v61Model.Type) {
  var s = EventScript()
  cell.start.build(&s)
  let setup = s.events
  // The prediction an alloc op needs comes from the model in the start state.
  let probe = type.init(context: ReplayContext())
  for e in setup { probe.apply(e) }
  let opLine = s.nextLine
  cell.op.apply(&s, model: probe, fresh: cell.start == .none ? P : FRESH)
  checkOutcome(
    "\(cell)", type, setup: setup, full: s.events, opLine: opLine,
    decidingLine: opLine + cell.op.decidingLine, outcome: cell.outcome,
    startState: cell.start == .none ? nil : cell.start.rawValue,
    describe: { ($0 as! S390v61Model).describe(P) },
    recount: { ($0 as! S390v61Model).occupancyMatchesRecount() })
}

@Suite("State tables (kernel-models.md §2.5, §3.5)")
struct StateTableTests {
  @Test("§2.5 under s390-6.1", arguments: tableA)
  func tableAUnderA(_ cell: Cell) { check(cell, S390v61Model.self) }

  @Test("§2.5 under s390-6.6", arguments: tableA)
  func tableAUnderB(_ cell: Cell) { check(cell, S390v66Model.self) }

  @Test("§3.5 under s390-6.6", arguments: tableB)
  func tableBUnderB(_ cell: Cell) { check(cell, S390v66Model.self) }
}
