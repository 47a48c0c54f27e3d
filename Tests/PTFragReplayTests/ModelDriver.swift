import PTFragEvents
import PTFragTestSupport
import Testing

@testable import PTFragReplay

/// Drives allocator models with random *legal* operation sequences: every allocation result
/// comes from the first model's `simulateAlloc`, every free names a live table, every exec a
/// queued one, every `pte_free_now` a page the first model holds in R. All models see the
/// same events; `check` runs after each.
struct ModelDriver {
  enum Variant { case fragments, onePerPage }

  let variant: Variant
  let allowDefer: Bool
  let models: [any AllocatorModel]
  var rng: SplitMix64
  var script = EventScript()
  /// Live tables per mm (table addresses), and each mm's pgd.
  var live: [UInt64: [UInt64]] = [:]
  var pgd: [UInt64: UInt64] = [:]
  /// Values queued by tlb_remove_table, not yet executed.
  var queued: [UInt64] = []
  var nextMM: UInt64 = 0x20c_0000
  var nextPGD: UInt64 = 0x800_0000
  /// Table pages come from this pool, so released pages come back.
  let pool: [UInt64] = (0..<48).map { 0x3000_0000 + UInt64($0) * 0x1000 }
  /// Called after every event with the event's index.
  var check: (Int) -> Void = { _ in }

  init(_ variant: Variant, allowDefer: Bool, models: [any AllocatorModel], seed: UInt64) {
    self.variant = variant
    self.allowDefer = allowDefer
    self.models = models
    rng = SplitMix64(seed: seed)
  }

  var generator: any AllocatorModel { models[0] }

  /// Whether the generating model still holds page `k` (a table, pending, or in R).
  func held(_ k: UInt64) -> Bool {
    switch generator {
    case let b as S390v66Model: b.pages[k] != nil || b.rcu[k] != nil
    case let a as S390v61Model: a.pages[k] != nil
    case let d as S390v67Model: d.pages[k] != nil
    default: true
    }
  }

  /// Pages the generating model holds in R.
  var waiting: [UInt64] {
    switch generator {
    case let b as S390v66Model: b.rcu.keys.sorted()
    case let d as S390v67Model: d.rcuPages.sorted()
    default: []
    }
  }

  mutating func emit(_ build: (inout EventScript) -> Void) {
    let from = script.events.count
    build(&script)
    for i in from..<script.events.count {
      for m in models { m.apply(script.events[i]) }
      check(i)
    }
  }

  /// One random legal operation.
  mutating func step() {
    let mms = live.keys.sorted()
    switch Int.random(in: 0..<100, using: &rng) {
    case 0..<6 where mms.count < 5:
      let mm = nextMM
      let p = nextPGD
      nextMM += 0x400
      nextPGD += 0x4000
      live[mm] = []
      pgd[mm] = p
      emit { $0.birth(mm, pgd: p) }
    case 0..<40 where !mms.isEmpty:
      let mm = mms.randomElement(using: &rng)!
      let free = pool.filter { !held($0) }
      guard let fresh = free.randomElement(using: &rng) else { return }
      let t = generator.simulateAlloc(mm: mm, fresh: { fresh })
      live[mm]!.append(t)
      emit { $0.alloc(mm, t, pid: Int32(truncatingIfNeeded: mm >> 10)) }
    case 40..<55:
      guard let (mm, t) = takeLive() else { return }
      emit { $0.freeNow(mm, t) }
    case 55..<75:
      guard let (mm, t) = takeLive() else { return }
      queueFree(mm, t)
    case 75..<88 where !queued.isEmpty:
      let i = Int.random(in: 0..<queued.count, using: &rng)
      let v = queued.remove(at: i)
      emit { $0.execRaw(v) }
    case 88..<93 where allowDefer:
      guard let (mm, t) = takeLive() else { return }
      deferFree(mm, t)
    case 93..<97 where !waiting.isEmpty:
      let p = waiting.randomElement(using: &rng)!
      emit { $0.rcuFree(page: p) }
    case 97..<100 where !mms.isEmpty:
      // Exit: every table goes through the tlb batch, then the pgd is freed.
      let mm = mms.randomElement(using: &rng)!
      for t in live[mm]! { queueFree(mm, t) }
      live[mm] = nil
      let p = pgd.removeValue(forKey: mm)!
      emit { $0.death(mm, pgd: p) }
    default:
      break
    }
  }

  mutating func takeLive() -> (UInt64, UInt64)? {
    let mms = live.keys.sorted().filter { !live[$0]!.isEmpty }
    guard let mm = mms.randomElement(using: &rng) else { return nil }
    let i = Int.random(in: 0..<live[mm]!.count, using: &rng)
    return (mm, live[mm]!.remove(at: i))
  }

  /// `pte_free_tlb`: fragments tag the queued value; one-per-page queues it as is, through
  /// the 6.7 … 6.10 `page_table_free_rcu` or (6.12) directly.
  mutating func queueFree(_ mm: UInt64, _ t: UInt64) {
    switch variant {
    case .fragments:
      queued.append(t | (t & 0x800 != 0 ? 2 : 1))
      emit { $0.freeTLB(mm, t) }
    case .onePerPage:
      queued.append(t)
      let viaFreeRCU = Bool.random(using: &rng)
      emit { s in
        if viaFreeRCU { s.add(.freeTLB, mm: mm, table: t) }
        s.queue(t)
      }
    }
  }

  /// `pte_free_defer` from a khugepaged-like task; its `page_table_free` and return are
  /// probed or not at random (fragments), the window closing as the model documents.
  mutating func deferFree(_ mm: UInt64, _ t: UInt64) {
    let inner = variant == .fragments && Bool.random(using: &rng)
    let ret = Bool.random(using: &rng)
    emit { s in
      s.deferBegin(mm, t, pid: 7)
      if inner { s.freeNow(mm, t, pid: 7) }
      if ret { s.deferEnd(pid: 7) }
    }
  }
}

/// The invariants every model keeps after every event of a legal sequence; one expectation
/// per call (the problems found, if any).
func checkInvariants(_ m: any AllocatorModel, _ where_: @autoclosure () -> String) {
  var problems: [String] = []
  func require(_ ok: Bool, _ what: @autoclosure () -> String) { if !ok { problems.append(what()) } }
  let o = m.occupancy
  require(o.pagesHeld >= 0 && o.live >= 0 && o.pending >= 0 && o.unknown >= 0, "negative: \(o)")
  require(o.reusableNow >= 0 && o.reusableLater >= 0 && o.stranded >= 0 && o.waste >= 0, "negative waste: \(o)")
  require(
    o.slotsHeld == o.live + o.pending + o.unknown + o.reusableNow + o.reusableLater + o.stranded,
    "slots do not add up: \(o)")
  switch m {
  case let a as S390v61Model:
    require(a.occupancyMatchesRecount(), "occupancy differs from a recount")
    let b = a as? S390v66Model
    var listed = 0
    for (k, p) in a.pages {
      // I1 holds by construction (a half is F, A or P). I2: listed ⇔ exactly one A bit
      // (and, in B, not Active: I2'/I9), except while a pte_free_defer of the page is in
      // flight (§3.3: Active is set before its page_table_free unlinks the page).
      let inWindow = b?.deferByPID.values.contains { $0.table & ~0xfff == k } ?? false
      let shouldList = !p.pgste && p.aCount == 1 && !(b?.active.contains(k) ?? false)
      require(inWindow || p.listed == shouldList, "page \(hex(k)) \(a.describe(k)) listed=\(p.listed)")
      if p.listed { listed += 1 }
      require(!p.allFree, "empty page \(hex(k)) still held")
      if let b { require(b.rcu[k] == nil, "\(hex(k)) both held and in R") }
    }
    require(listed == a.mms.reduce(0) { $0 + $1.listCount }, "list counts")
    // I10/I11: an Active page is held (R pages have Active cleared already).
    for k in b?.active ?? [] { require(a.pages[k] != nil, "Active \(hex(k)) not held") }
  case let d as S390v67Model:
    require(d.occupancyMatchesRecount(), "occupancy differs from a recount")
    for k in d.pages.keys { require(k & 0xfff == 0, "\(hex(k)) not page-aligned") }
  default:
    problems.append("unknown model type")
  }
  if !problems.isEmpty { Issue.record("\(where_()): \(problems.joined(separator: "; "))") }
}
