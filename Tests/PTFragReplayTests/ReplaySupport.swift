// What the model tests share beyond `EventScript` (PTFragTestSupport): replaying events
// through a fresh model, and checking one state-table cell.
import PTFragEvents
import PTFragTestSupport
import Testing

@testable import PTFragReplay

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
