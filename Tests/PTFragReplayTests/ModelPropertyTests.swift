import PTFragEvents
import Testing

@testable import PTFragReplay

/// Property tests over random legal operation sequences (`ModelDriver`), 30 seeds × 500
/// operations per property: the models keep their invariants and an exact occupancy, never
/// report anything on a sequence they generated themselves, and s390-6.1 and s390-6.6 agree
/// wherever pte_free_defer is not used.
@Suite("Model properties on generated sequences")
struct ModelPropertyTests {
  static let seeds: [UInt64] = (1...30).map { UInt64($0) &* 0x9E37_79B9 }
  static let steps = 500

  /// Drives `models` with `seed`; returns the driver (its events) after checking every event.
  func drive(
    _ variant: ModelDriver.Variant, defer allowDefer: Bool, _ models: [any AllocatorModel],
    seed: UInt64, extra: @escaping (Int) -> Void = { _ in }
  ) -> ModelDriver {
    var d = ModelDriver(variant, allowDefer: allowDefer, models: models, seed: seed)
    d.check = { i in
      for m in models { checkInvariants(m, "seed \(seed) event \(i)") }
      extra(i)
    }
    for _ in 0..<Self.steps { d.step() }
    return d
  }

  /// The findings and open items of replaying `events` through a fresh `type`.
  func verdict(_ type: any AllocatorModel.Type, _ events: [Event]) -> [String] {
    let r = replay(type, events, settleMisses: true).result
    return r.ruleLines + r.unexplained.map { "open: \($0.message)" }
  }

  @Test("s390-6.1: invariants, exact occupancy, no finding on its own sequences", arguments: seeds)
  func modelA(seed: UInt64) {
    let d = drive(.fragments, defer: false, [S390v61Model(context: ReplayContext())], seed: seed)
    #expect(d.script.events.count > Self.steps / 2)
    #expect(verdict(S390v61Model.self, d.script.events) == [])
  }

  @Test("s390-6.6 with pte_free_defer: invariants, exact occupancy, no finding", arguments: seeds)
  func modelB(seed: UInt64) {
    let d = drive(.fragments, defer: true, [S390v66Model(context: ReplayContext())], seed: seed)
    #expect(d.script.events.contains { $0.kind == .deferBegin })
    #expect(verdict(S390v66Model.self, d.script.events) == [])
  }

  @Test("s390-6.7 with pte_free_defer: invariants, exact occupancy, no finding", arguments: seeds)
  func modelD(seed: UInt64) {
    let d = drive(.onePerPage, defer: true, [S390v67Model(context: ReplayContext())], seed: seed)
    #expect(d.script.events.contains { $0.kind == .rcuFree })
    #expect(verdict(S390v67Model.self, d.script.events) == [])
  }

  @Test("s390-6.1 and s390-6.6 agree on sequences without pte_free_defer", arguments: seeds)
  func aAndBAgree(seed: UInt64) {
    let a = S390v61Model(context: ReplayContext())
    let b = S390v66Model(context: ReplayContext())
    let d = drive(.fragments, defer: false, [a, b], seed: seed) { i in
      #expect(a.occupancy == b.occupancy, "seed \(seed) event \(i)")
    }
    // Same page states, same predictions, same findings (none).
    for k in d.pool { #expect(a.describe(k) == b.describe(k), "seed \(seed) page \(hex(k))") }
    for mm in a.mms.map(\.address) {
      #expect(a.simulateAlloc(mm: mm, fresh: { 1 }) == b.simulateAlloc(mm: mm, fresh: { 1 }))
    }
    #expect(verdict(S390v61Model.self, d.script.events) == verdict(S390v66Model.self, d.script.events))
  }

  @Test("a generated sequence with one event changed is caught (the properties can fail)")
  func mutationIsCaught() {
    // Take a clean s390-6.6 sequence and make one page_table_free happen twice.
    let d = drive(.fragments, defer: true, [S390v66Model(context: ReplayContext())], seed: 7)
    var events = d.script.events
    guard let i = events.firstIndex(where: { $0.kind == .freeNow }) else {
      Issue.record("no page_table_free generated")
      return
    }
    events.insert(events[i], at: i + 1)
    for j in (i + 1)..<events.count { events[j].line += 1 }
    let v = verdict(S390v66Model.self, events)
    let dup = events[i + 1].line
    #expect(v.first == "double-free@\(dup)" || v.first == "free-unknown@\(dup)" || v.first == "use-while-rcu-pending@\(dup)", "\(v)")
  }
}
