import Testing
import PTFragEvents

@testable import PTFragReplay

/// Builds normalized event sequences for model tests: one event per line, lines from 1,
/// timestamps 1 µs apart, in the order the calls are made.
struct EventScript {
  private(set) var events: [Event] = []
  var line = 0
  var pid: Int32 = 100
  var cpu: Int32 = 0

  /// The line the next event gets.
  var nextLine: Int { line + 1 }

  @discardableResult
  mutating func add(
    _ kind: Event.Kind, mm: UInt64? = nil, table: UInt64 = 0, pid: Int32? = nil,
    cpu: Int32? = nil, beginLine: Int? = nil, count: UInt64 = 0
  ) -> Int {
    line += 1
    events.append(
      Event(
        kind: kind, line: line, timestampNs: UInt64(line) * 1000, cpu: cpu ?? self.cpu,
        pid: pid ?? self.pid, comm: Comm("t\(pid ?? self.pid)"), mm: mm, table: table,
        beginLine: beginLine, beginNs: beginLine.map { UInt64($0) * 1000 }, count: count))
    return line
  }

  /// `crst_table_alloc` returning `pgd` into `mm_init`.
  @discardableResult
  mutating func birth(_ mm: UInt64, pgd: UInt64) -> Int { add(.mmBirth, mm: mm, table: pgd) }
  @discardableResult
  mutating func death(_ mm: UInt64, pgd: UInt64) -> Int { add(.mmDeath, mm: mm, table: pgd) }

  /// `page_table_alloc` entry and return; returns the return's line.
  @discardableResult
  mutating func alloc(_ mm: UInt64, _ table: UInt64, pid: Int32? = nil) -> Int {
    let b = add(.allocBegin, mm: mm, pid: pid)
    return add(.alloc, mm: mm, table: table, pid: pid, beginLine: b)
  }

  @discardableResult
  mutating func freeNow(_ mm: UInt64, _ table: UInt64, pid: Int32? = nil) -> Int {
    add(.freeNow, mm: mm, table: table, pid: pid)
  }

  /// `page_table_free_rcu` and its tagged `tlb_remove_table` (≤ 6.6); returns the first line.
  @discardableResult
  mutating func freeTLB(_ mm: UInt64, _ table: UInt64) -> Int {
    let l = add(.freeTLB, mm: mm, table: table)
    add(.tlbQueue, table: table | (table & 0x800 != 0 ? 2 : 1))
    return l
  }

  /// `__tlb_remove_table` of a tagged (≤ 6.6) half.
  @discardableResult
  mutating func exec(_ table: UInt64) -> Int {
    add(.tlbExec, table: table | (table & 0x800 != 0 ? 2 : 1))
  }

  @discardableResult
  mutating func queue(_ table: UInt64) -> Int { add(.tlbQueue, table: table) }
  @discardableResult
  mutating func execRaw(_ table: UInt64) -> Int { add(.tlbExec, table: table) }

  @discardableResult
  mutating func deferBegin(_ mm: UInt64, _ table: UInt64, pid: Int32? = nil) -> Int {
    add(.deferBegin, mm: mm, table: table, pid: pid)
  }
  @discardableResult
  mutating func deferEnd(pid: Int32? = nil) -> Int { add(.deferEnd, pid: pid) }

  /// `pte_free_defer` with its inner `page_table_free` and its return (6.6, fully probed).
  @discardableResult
  mutating func deferFull(_ mm: UInt64, _ table: UInt64, pid: Int32? = nil) -> Int {
    let l = deferBegin(mm, table, pid: pid)
    freeNow(mm, table, pid: pid)
    deferEnd(pid: pid)
    return l
  }

  /// `pte_free_now(head)` for `page` with a vmemmap bias.
  @discardableResult
  mutating func rcuFree(page: UInt64, bias: UInt64 = testVmemmapBias, cpu: Int32? = nil) -> Int {
    add(.rcuFree, table: rcuHead(page, bias: bias), pid: 0, cpu: cpu)
  }
}

/// A vmemmap-like bias for synthetic `pte_free_now` heads.
let testVmemmapBias: UInt64 = 0x3d0_8000_0000

/// `&page->rcu_head` for a table page: bias + pfn × 64 + 8.
func rcuHead(_ page: UInt64, bias: UInt64 = testVmemmapBias) -> UInt64 {
  bias + (page >> 12) * 64 + 8
}

/// Replays events through a fresh model; the profile says no probe missed anything, so
/// items that hinge on silent misses settle as findings.
func replay(
  _ type: any AllocatorModel.Type, _ events: [Event], settleMisses: Bool = true
) -> (model: any AllocatorModel, result: ReplayResult) {
  let r = Replayer(model: type)
  for e in events { r.apply(e) }
  let zero = Dictionary(uniqueKeysWithValues: KernelFunction.allCases.map { ($0, UInt64(0)) })
  let result = r.finish(profileMisses: settleMisses ? zero : nil)
  return (r.model, result)
}

extension ReplayResult {
  /// `rule@line` of every finding, sorted by line.
  var ruleLines: [String] { findings.map { "\($0.rule.id)@\($0.line)" } }
  var unexplained: [Inconclusive] { inconclusive.filter { $0.explainedBy == nil } }
}

/// What one state-table cell expects of the page under test.
enum Outcome: Sendable, Equatable, CustomStringConvertible {
  /// P ends in this state (kernel-models.md notation), no finding.
  case state(String)
  /// P went back to the buddy allocator, no finding.
  case released
  /// The model cannot tie the event to a page it knows: counted as untracked, no finding.
  case untracked
  /// Exactly this finding, at the op's deciding line (an alloc's return; the\n  /// `page_table_free` inside `pte_free_defer`; else the op's first line).
  case rule(String)
  /// Exactly this finding, at this line of the op.
  case ruleAt(String, Int)
  /// Exactly these findings, in line order, at the op's lines (page_table_free_rcu and the
  /// tlb_remove_table it makes are two lines; a bad one is reported at each).
  case rules([String])

  var description: String {
    switch self {
    case .state(let s): "→ \(s)"
    case .released: "→ release"
    case .untracked: "untracked"
    case .rule(let r), .ruleAt(let r, _): "✗ \(r)"
    case .rules(let r): "✗ \(r.joined(separator: " + "))"
    }
  }
}

/// Checks one state-table cell: replaying `setup` alone is clean and reaches `startState`;
/// replaying `full` (setup + the op from `opLine`) gives exactly `outcome`, explains every
/// inconclusive item, and keeps the occupancy equal to a recount.
func checkOutcome(
  _ name: String, _ type: any AllocatorModel.Type, setup: [Event], full: [Event], opLine: Int,
  decidingLine: Int, outcome: Outcome, startState: String?,
  describe: (any AllocatorModel) -> String, recount: (any AllocatorModel) -> Bool
) {
  let before = replay(type, setup)
  #expect(before.result.findings.isEmpty, "setup of \(name): \(before.result.ruleLines)")
  if let startState {
    #expect(describe(before.model) == startState, "setup of \(name) reaches \(describe(before.model))")
  }
  let run = replay(type, full)
  let found = run.result.findings.filter { $0.line >= opLine }
  let lines = run.result.ruleLines
  switch outcome {
  case .rule(let id):
    #expect(found.map(\.rule.id) == [id], "\(name): \(lines)")
    #expect(found.map(\.line) == [decidingLine], "\(name): \(lines)")
  case .ruleAt(let id, let offset):
    #expect(found.map(\.rule.id) == [id], "\(name): \(lines)")
    #expect(found.map(\.line) == [opLine + offset], "\(name): \(lines)")
  case .rules(let ids):
    #expect(found.map(\.rule.id) == ids, "\(name): \(lines)")
    #expect(found.map(\.line) == Array(opLine..<(opLine + ids.count)), "\(name): one finding per line of the op")
  case .state(let st):
    #expect(found.isEmpty, "\(name): \(lines)")
    #expect(describe(run.model) == st, "\(name): the page is \(describe(run.model))")
  case .released:
    #expect(found.isEmpty, "\(name): \(lines)")
    #expect(describe(run.model) == "(none)", "\(name): the page is \(describe(run.model))")
  case .untracked:
    #expect(found.isEmpty, "\(name): \(lines)")
    #expect(run.result.stats.execsUntracked + run.result.stats.freesUntracked == 1)
  }
  #expect(run.result.unexplained.isEmpty, "\(name): \(run.result.unexplained.map(\.message))")
  #expect(recount(run.model), "\(name): occupancy equals a recount")
}
