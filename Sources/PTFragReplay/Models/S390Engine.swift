import PTFragEvents

// # The s390 2 KiB-fragment engine (variants A, B, C1, C2)
//
// What every s390 kernel that shares a 4 KiB page between two 2 KiB PTE tables does the same
// way — v5.17 … v6.6 (`arch/s390/mm/pgalloc.c`: `page_table_alloc`, `page_table_free`,
// `page_table_free_rcu`, `__tlb_remove_table`, `crst_table_alloc`) and the two posted
// proposals built on v6.4-rc — written once: the page state (byte 3 of `page->_refcount`),
// the per-mm `pgtable_list`, the mm registry, the per-half checks of every free, queue and
// exec, the release of a page the capture did not show, mm lifetimes and the occupancy kept
// by difference. A variant (S390v61Model.swift, S390v66Model.swift, S390HughV2Model.swift,
// S390GeraldModel.swift) supplies its kernel procedures through the hooks in "Variant
// procedures"; the engine never decides a list operation itself. The spec is
// docs/kernel-models.md §1–§4.
//
// ## States
// Per half h (lower at +0, upper at +2048) the bits of byte 3, "PPHHAA": A(h) 0x01 << h
// allocated, H(h) 0x04 << h waiting for `page->rcu_head` (proposals only), P(h) 0x10 << h
// pending (freed through the tlb batch or deferred, `__tlb_remove_table` not yet run). A half
// is F, A, P or D (= H+P), or ? when its history lies before the capture. pgste (KVM) mms use
// whole pages, A = {1,1} for life.
//
// ## Invariants checked on every replay
// frees only of A halves (`double-free`, `free-unknown`), by the mm that allocated the page
// (`cross-mm`); a tlb queue only of a P half, an exec only of a P or D half, with the tag of
// the table (`queue-without-pending`, `exec-without-pending`, `exec-tag-mismatch`); a page
// comes back from the buddy allocator only once every half is free (`release-with-bits`,
// inconclusive while a probe may have missed the event that freed it); every table of an mm
// freed before its pgd (`leak`).

/// Bits of byte 3 of `page->_refcount`: A(h) = 0x01 << h (allocated), H(h) = 0x04 << h
/// (waiting for or using `page->rcu_head`; the proposals), P(h) = 0x10 << h (pending free).
enum PPHHAA {
  @inline(__always) static func a(_ h: Int) -> UInt8 { 0x01 << UInt8(h) }
  @inline(__always) static func hh(_ h: Int) -> UInt8 { 0x04 << UInt8(h) }
  @inline(__always) static func p(_ h: Int) -> UInt8 { 0x10 << UInt8(h) }
  /// Every bit of half h.
  @inline(__always) static func all(_ h: Int) -> UInt8 { 0x15 << UInt8(h) }
}

/// What one 2 KiB half is, read off the bits.
public enum HalfPhase: UInt8, Sendable {
  /// No bit set: never handed out, or freed and its pending bit cleared.
  case free
  /// A.
  case allocated
  /// P: freed through the tlb batch, `__tlb_remove_table` not yet run.
  case pending
  /// H+P: freed by a proposal's `pte_free_defer`, waiting for its RCU callback (queued, or
  /// chained behind the other half's on the shared `rcu_head`).
  case deferred
  /// The half's history lies before the capture (or after lost events).
  case unknown

  public var letter: Character {
    switch self {
    case .free: "F"
    case .allocated: "A"
    case .pending: "P"
    case .deferred: "D"
    case .unknown: "?"
    }
  }
}

/// When, where and in which mmu_gather a table entered a tlb batch (`gather` 0: the
/// `tlb` pointer is not probed, so nothing is inferred from order).
struct QueueMark {
  // Words first, then the 32-bit fields: 32 bytes (a page holds two).
  var line = 0
  var ns: UInt64 = 0
  var gather = 0
  var cpu: Int32 = -1
  var pid: Int32 = -1
}

/// One 4 KiB page of 2 KiB tables.
struct S390Page: ListLinked {
  // Stored words first, then the 32-bit owner, then the bytes: 111 bytes (stride 112). The
  // replay copies a page in and out of its map on every event; at more than 128 bytes the
  // copy becomes a call to memmove, measurably slower.
  var prev: UInt64 = 0
  var next: UInt64 = 0
  /// Line of the free that made half h pending (or deferred).
  var pendingLine: (Int, Int) = (0, 0)
  /// Where half h entered the tlb batch (the `tlb_remove_table`, else the free).
  var queuedAt: (QueueMark, QueueMark) = (QueueMark(), QueueMark())
  /// Owning mm incarnation (`MM.serial`; `page->pt_mm`), -1 unknown.
  var owner: Int32
  /// Byte 3 of `page->_refcount` (`PPHHAA`).
  var bits: UInt8 = 0
  /// Bit h: half h's state is not known (history before the capture).
  var unknown: UInt8 = 0
  /// Bit h: `tlb_remove_table` seen for pending half h.
  var queued: UInt8 = 0
  /// Proposals: the half whose RCU callback holds `page->rcu_head` (-1 none, 2 the pgste
  /// callback `pte_free_pgste`).
  var rcuHead: Int8 = -1
  var listed = false
  /// Whole-page pgste table (A = {1,1} for life).
  var pgste = false
  /// pgste table freed: queued with tag 3, or `call_rcu(pte_free_pgste)` pending.
  var pgsteFreed = false
  /// C2: `page->pt_frag_refcount` used as the "on the list" flag.
  var onlist = false
  /// An upper half was handed out at some time (a page that never had one may be pgste).
  var upperSeen = false
  /// Proposals replaying a v6.6 capture: `pte_free_defer` (PG_active) marked the page.
  var activeInCapture = false
  /// Proposals: a deferred half whose callback the posted `pte_free_half` never queues.
  var stranded = false

  init(owner: Int32) { self.owner = owner }

  init(lo: HalfPhase, hi: HalfPhase, owner: Int32) {
    self.owner = owner
    self[0] = lo
    self[1] = hi
  }

  @inline(__always) func phase(_ h: Int) -> HalfPhase {
    if unknown & (1 << UInt8(h)) != 0 { return .unknown }
    if bits & PPHHAA.a(h) != 0 { return .allocated }
    if bits & PPHHAA.hh(h) != 0 { return .deferred }
    if bits & PPHHAA.p(h) != 0 { return .pending }
    return .free
  }

  /// Half h as a phase; setting one replaces every bit of the half.
  subscript(h: Int) -> HalfPhase {
    @inline(__always) get { phase(h) }
    set {
      bits &= ~PPHHAA.all(h)
      unknown &= ~(1 << UInt8(h))
      switch newValue {
      case .free: break
      case .allocated: bits |= PPHHAA.a(h)
      case .pending: bits |= PPHHAA.p(h)
      case .deferred: bits |= PPHHAA.hh(h) | PPHHAA.p(h)
      case .unknown: unknown |= 1 << UInt8(h)
      }
    }
  }
  var lo: HalfPhase { phase(0) }
  var hi: HalfPhase { phase(1) }
  var aCount: Int { Int((bits & 1) + ((bits >> 1) & 1)) }
  var allFree: Bool { bits == 0 && unknown == 0 }

  /// `atomic_xor_bits(&page->_refcount, m << 24) >> 24`: flips `m`, returns the new byte.
  @inline(__always) mutating func xor(_ m: UInt8) -> UInt8 {
    bits ^= m
    return bits
  }

  func pendingLine(_ h: Int) -> Int { h == 0 ? pendingLine.0 : pendingLine.1 }
  mutating func setPendingLine(_ h: Int, _ line: Int) {
    if h == 0 { pendingLine.0 = line } else { pendingLine.1 = line }
  }
  func queuedAt(_ h: Int) -> QueueMark { h == 0 ? queuedAt.0 : queuedAt.1 }
  mutating func setQueuedAt(_ h: Int, _ mark: QueueMark) {
    if h == 0 { queuedAt.0 = mark } else { queuedAt.1 = mark }
  }
}

/// What `page_table_alloc` returns: a half of the list head, or a fresh page.
enum S390Prediction: Equatable {
  case half(UInt64, Int)
  case fresh
}

/// The outcomes an alloc window allows, in the order they became possible; inline for
/// the usual one (no allocation per window).
struct S390Candidates {
  var first: S390Prediction
  var rest: [S390Prediction] = []
  var last: S390Prediction? { rest.last ?? first }
  mutating func append(_ p: S390Prediction) { rest.append(p) }
  func contains(_ p: S390Prediction) -> Bool { first == p || rest.contains(p) }
}

/// One `page_table_alloc` in flight: entry seen, return not yet.
struct S390AllocWindow {
  var pid: Int32
  var cpu: Int32
  var beginLine: Int
  var beginNs: UInt64
  var candidates: S390Candidates
  var sawPush = false
}

/// A half that one of the allocations still in flight (`eligible` pids) must return:
/// `page_table_alloc` decides under `spin_lock_bh(&mm->context.lock)`, and
/// `spin_unlock_bh` may run softirqs before the task returns, so a task that locked
/// first can return last. `fresh`: that allocation found the list empty and took the
/// page as a fresh one; the page's `list_add` came before the allocation at `line`
/// took its upper half.
struct S390Reservation {
  var page: UInt64
  var half: Int
  var fresh: Bool
  var line: Int
  var eligible: [Int32]
}

enum Tri { case unknown, yes, no }

/// One mm (`struct mm_struct` incarnation): its `context.pgtable_list` and what the replay
/// knows of it. Stored properties are @exclusivity(unchecked): the replay is single-threaded
/// and never overlaps accesses, and the runtime checks cost about 15 % of the replay.
final class S390MM: RegisteredMM {
  let serial: Int32
  let address: UInt64
  /// Born in the capture (or a simulation) and never desynchronized: allocations are predicted.
  @exclusivity(unchecked) var known: Bool
  @exclusivity(unchecked) var bornLine: Int?
  /// `mm->context.pgtable_list`.
  @exclusivity(unchecked) var list = PageListHead()
  var head: UInt64 { list.head }
  var listCount: Int { list.count }
  @exclusivity(unchecked) var liveTables = 0
  /// Whether the mm allocates pgste (whole-page) tables.
  @exclusivity(unchecked) var pgste: Tri = .unknown
  /// The head's free half as counted in this mm's `ctx.mmBook` entry (0 or 1).
  @exclusivity(unchecked) var headCounted = 0
  /// Allocations of this mm in flight (A and B: entries seen, returns not yet).
  @exclusivity(unchecked) var windows: [S390AllocWindow] = []
  /// Halves that other allocations of this mm, still in flight, must have taken (an
  /// allocation returned what the list gives only after they decided).
  @exclusivity(unchecked) var reserved: [S390Reservation] = []
  /// A concurrent list push may have landed on either side of a fresh page.
  @exclusivity(unchecked) var ambiguousSince: Int? = nil
  /// The last `page_table_free` that pushed a page to the front (its transient P).
  @exclusivity(unchecked) var lastFreeNow: (page: UInt64, line: Int, cpu: Int32, ns: UInt64)? = nil
  init(serial: Int32, address: UInt64, known: Bool) {
    self.serial = serial
    self.address = address
    self.known = known
  }
}

/// The engine: state, shared procedures, hooks. Not a model by itself.
public class S390FragmentEngine: FindingReporter, MMLifetimes {
  typealias Page = S390Page
  typealias MM = S390MM
  typealias Prediction = S390Prediction

  let ctx: ReplayContext
  let rules: [RuleID: Rule]
  // Per-event lookups go through AddressMap (no SipHash; see AddressMap).
  @exclusivity(unchecked) var pages = AddressMap<Page>()
  @exclusivity(unchecked) var mms = MMRegistry<MM>()
  /// An event changed pages beyond the one it names: recount the occupancy after it.
  @exclusivity(unchecked) var needsRecount = false
  /// The last `page_table_free_rcu` reported as a double free (its queue is not reported again).
  var reportedFree: (pid: Int32, table: UInt64)? = nil

  init(context: ReplayContext, rules: [Rule]) {
    ctx = context
    self.rules = ruleIndex(rules)
  }

  @inline(__always) func rule(_ id: RuleID) -> Rule { rules[id]! }

  // MARK: Variant procedures (hooks)

  /// `page_table_alloc`, list part: the half taken from the head page whose byte 3 of
  /// `_refcount` is `bits` (`unknown`: halves of unknown history, busy for the model), nil for
  /// a fresh page. It reads the byte, as the kernel does (not the page: no copy per event).
  func pickHalf(bits: UInt8, unknown: UInt8) -> Int? {
    // v5.17 … v6.6: "mask = (mask | (mask >> 4)) & 0x03U; if (mask != 0x03U)", lower first.
    let busy = (bits | (bits >> 2) | (bits >> 4) | unknown) & 0x03
    return busy == 0x03 ? nil : Int(busy & 1)
  }
  /// Whether an mm the replay meets before its birth starts known (a simulation starts from
  /// nothing: every mm it names is new and empty).
  var unseenMMKnown: Bool { false }
  /// The functions a table of this kernel is freed through (`pte_free` →
  /// `page_table_free`, `pte_free_tlb` → `page_table_free_rcu`, …).
  class var tableFreeFunctions: [KernelFunction] { [.pageTableFreeRCU, .pageTableFree] }
  /// Whether `pte_free_defer` makes a half pending itself (the proposals' D), rather than
  /// through `page_table_free` (B).
  class var defersHalves: Bool { false }
  /// `__tlb_remove_table(table | (h+1))` of half `h`, P set (or of unknown history).
  func execPending(_ e: Event, _ key: UInt64, _ h: Int) {}
  /// `__tlb_remove_table(table | 3)`: the pgste table freed through the tlb batch goes.
  func execPgste(_ e: Event, _ key: UInt64) {}
  /// An exec of a deferred (H+P) half: the proposals' RCU callback.
  func execDeferred(_ e: Event, _ key: UInt64, _ h: Int) {}
  /// `tlb_remove_table(table | (h+1))` of pending half `h` was seen (A: where it queued).
  func noteQueued(_ e: Event, _ key: UInt64, _ h: Int) {}
  /// A CRST table (tag 0) queued or executed where the model holds no page.
  func noteCRSTQueued(_ e: Event, _ table: UInt64) {}
  func noteCRSTExecuted(_ e: Event, _ table: UInt64) {}
  /// Tag 3 on a page that is not pgste: may the variant infer a pgste mm (true: it did)?
  func inferPgste(_ e: Event, _ key: UInt64) -> Bool { false }
  /// What a subclass holds outside `pages` (B: pages waiting in R), per mm, for a recount.
  func addToRecount(_ byMM: inout [Int32: (UInt64, Occupancy)]) {}
  /// The kernel procedures behind each event kind (no-ops where a variant has none).
  func allocBegin(_ e: Event) {}
  func alloc(_ e: Event) {}
  func freeNow(_ e: Event) {}
  func freeTLB(_ e: Event) {}
  func deferBegin(_ e: Event) {}
  /// After the event's effect (A: the CPU's last line).
  func didApply(_ e: Event) {}
  /// Before an event (or an operation the capture implies) takes effect.
  func willStep(_ e: Event) {}

  // MARK: Helpers

  @inline(__always) func split(_ table: UInt64) -> (UInt64, Int) {
    (table & s390PageMask, table & s390HalfBit != 0 ? 1 : 0)
  }

  /// The mm at `address`, created (not known) when the replay meets it first.
  func mm(at address: UInt64?) -> MM? { mms.mm(at: address, knownIfNew: unseenMMKnown, &ctx.stats) }

  func owner(of p: Page) -> MM? { p.owner >= 0 ? mms[serial: p.owner] : nil }
  func owner(of key: UInt64) -> MM? { pages[key].flatMap { owner(of: $0) } }

  /// `AP L` style (docs/kernel-models.md §2.5; D a deferred half, X a pgste page).
  func describe(_ key: UInt64) -> String { Self.describe(pages[key]) }

  static func describe(_ page: Page?) -> String {
    guard let p = page else { return "(none)" }
    if p.pgste { return p.pgsteFreed ? (p.rcuHead == 2 ? "Xd -" : "Xq -") : "X -" }
    return "\(p.lo.letter)\(p.hi.letter) \(p.listed ? "L" : "-")"
  }

  /// The state of a page before an event, as a copy (trivially copied: no reference
  /// counting on the hot path), put into words only when a finding is made; or a state the
  /// page table cannot show ("queued", "R").
  struct Before: ExpressibleByStringLiteral {
    var page: Page?
    var literal: StaticString? = nil
    var text: String { literal.map { "\($0)" } ?? S390FragmentEngine.describe(page) }
    init(page: Page?) { self.page = page }
    init(stringLiteral s: StaticString) { literal = s }
  }

  func snapshot(_ key: UInt64) -> Before { Before(page: pages[key]) }

  // The findings (`FindingReporter`) with the state before as a page copy, rendered only
  // when a finding is made.
  func makeFinding(
    _ id: RuleID, _ e: Event, mm: UInt64?, page: UInt64?, half: Int?, before: Before,
    after: String? = nil, _ message: String, related: [Int] = []
  ) -> Finding {
    makeFinding(id, e, mm: mm, page: page, half: half, before: before.text, after: after, message, related: related)
  }

  func finding(
    _ id: RuleID, _ e: Event, mm: UInt64?, page: UInt64?, half: Int?, before: Before,
    after: String? = nil, _ message: String, related: [Int] = []
  ) {
    finding(id, e, mm: mm, page: page, half: half, before: before.text, after: after, message, related: related)
  }

  func probableMiss(
    _ reason: InconclusiveReason, of probe: KernelFunction, alternatives: [KernelFunction] = [],
    _ id: RuleID, _ e: Event, mm: UInt64?, page: UInt64?, half: Int?, before: Before,
    after: String? = nil, finding: String, related: [Int] = [], _ message: String
  ) {
    probableMiss(
      reason, of: probe, alternatives: alternatives, id, e, mm: mm, page: page, half: half,
      before: before.text, after: after, finding: finding, related: related, message)
  }

  // MARK: List (mm->context.pgtable_list)

  /// `list_add`; allocations in flight may have decided on either side of it.
  func pushFront(_ m: MM, _ key: UInt64) {
    unlink(key)
    pages.pushFront(key, &m.list)
    let serial = m.serial
    pages.update(key) { $0.owner = serial }
    for i in m.windows.indices { m.windows[i].sawPush = true }
  }

  /// `list_add_tail`.
  func pushBack(_ m: MM, _ key: UInt64) {
    unlink(key)
    pages.pushBack(key, &m.list)
    let serial = m.serial
    pages.update(key) { $0.owner = serial }
  }

  /// `list_del` from the list of the mm that owns the page.
  func unlink(_ key: UInt64) {
    guard let p = pages[key], p.listed else { return }
    guard let m = owner(of: p) else {
      pages.update(key) { $0.listed = false }
      return
    }
    pages.unlink(key, &m.list)
  }

  /// The page leaves the model (released, or replaced by what the kernel showed).
  func drop(_ key: UInt64) {
    unlink(key)
    pages.removeValue(forKey: key)
    ctx.released(page: key)
  }

  /// The kernel procedure saw byte 3 drop to 0 and releases the page to the buddy allocator.
  func release(_ key: UInt64) { drop(key) }

  // MARK: Prediction

  /// What `page_table_alloc` would return for `m` now.
  func predict(_ m: MM) -> Prediction {
    if m.pgste == .yes { return .fresh }
    guard m.head != 0, let b = pages[m.head]?.bits, let h = pickHalf(bits: b, unknown: pages[m.head]!.unknown)
    else { return .fresh }
    return .half(m.head, h)
  }

  /// After a change that touches `m`'s list or pages, open windows learn the new outcome.
  func changed(_ m: MM?) {
    guard let m, !m.windows.isEmpty else { return }
    let p = predict(m)
    for i in m.windows.indices where m.windows[i].candidates.last != p {
      m.windows[i].candidates.append(p)
    }
  }

  public func simulateAlloc(mm address: UInt64, fresh: () -> UInt64) -> UInt64 {
    guard let m = mms[address: address] else { return fresh() }
    switch predict(m) {
    case .fresh: return fresh()
    case .half(let k, let h): return k + UInt64(h) * 0x800
    }
  }

  /// "0x1000 AF, 0x3000 FA, … 12 pages", for divergence messages.
  func listSummary(_ m: MM) -> String {
    let heads = pages.keys(of: m.list, limit: 4).map { "\(hex($0)) \(pages[$0]!.lo.letter)\(pages[$0]!.hi.letter)" }
    if heads.isEmpty { return "empty" }
    return heads.joined(separator: ", ") + (m.listCount > heads.count ? ", … \(m.listCount) pages" : "")
  }

  // MARK: Events

  public func apply(_ e: Event) {
    ctx.count(e.kind)
    step(e)
    didApply(e)
    if pages.count > ctx.stats.peakPages { ctx.stats.peakPages = pages.count }
  }

  /// The effect of one event, by kind.
  func dispatch(_ e: Event) {
    switch e.kind {
    case .allocBegin: allocBegin(e)
    case .alloc: alloc(e)
    case .allocUnreturned: allocUnreturned(e)
    case .freeNow: freeNow(e)
    case .freeTLB: freeTLB(e)
    case .tlbQueue: tlbQueue(e)
    case .tlbExec: tlbExec(e)
    case .deferBegin: deferBegin(e)
    case .mmBirth:
      crstAlloc(e)  // the pgd's crst_table_alloc (mm_init → pgd_alloc): a new incarnation
      mmBorn(e)
    case .mmDeath: mmDied(e)  // the pgd's crst_table_free
    case .lost: lost(e)
    case .crstAlloc: crstAlloc(e)
    case .crstFree, .deferEnd, .rcuFree, .fragmentFree, .fragDestroy, .pmdAlloc, .pmdFree, .mmExit:
      break
    }
  }

  /// One event, with the occupancy kept by difference. A subclass also uses it for an
  /// operation the capture implies without showing it as its own line (B: the
  /// `page_table_free` inside an unprobed `pte_free_defer`); it is not counted as an event.
  final func step(_ e: Event) {
    willStep(e)
    switch e.kind {
    case .allocBegin, .allocUnreturned, .tlbQueue, .crstAlloc, .crstFree, .fragmentFree,
      .fragDestroy:
      // These change no occupancy count here (windows, the queued bit, CRST bookkeeping,
      // findings); a resynchronisation that does sets needsRecount.
      dispatch(e)
      if needsRecount {
        needsRecount = false
        recount()
      }
      return
    default:
      break
    }
    // Occupancy by difference: the event's page and the heads of the mms it touches.
    let key = (e.table & ~3) & s390PageMask
    let touchesPage = e.kind != .lost && e.kind != .mmBirth && e.kind != .mmDeath && e.table != 0
    let pageBefore = touchesPage ? pages[key] : nil
    let ownerBefore = pageBefore.flatMap { owner(of: $0) }
    let serialBefore = pageBefore?.owner ?? -1
    let named = mms[address: e.mm]
    let tallyBefore = touchesPage ? contribution(pageBefore) : Tally()
    if touchesPage { tally -= tallyBefore }
    let headsBefore = headFree(ownerBefore) + (named !== ownerBefore ? headFree(named) : 0)
    let findingsBefore = ctx.findingCount
    dispatch(e)
    if touchesPage && ctx.findingCount > findingsBefore {
      // The state after, recorded once the transition is done.
      ctx.amendStateAfter(since: findingsBefore, page: key, describe(key))
    }
    // Births and deaths change no page here (a burial rebooks the pages it changes).
    if e.kind == .lost || needsRecount {
      needsRecount = false
      recount()
      return
    }
    let pageAfter = touchesPage ? pages[key] : nil
    let tallyAfter = touchesPage ? contribution(pageAfter) : Tally()
    if touchesPage { tally += tallyAfter }
    let namedAfter = named ?? mms[address: e.mm]  // created by this event
    let ownerAfter = pageAfter.flatMap { owner(of: $0) }
    if let ownerAfter, ownerAfter !== ownerBefore, ownerAfter !== namedAfter {
      // A third mm's head may have changed (its before is not known here): recount.
      recount()
      return
    }
    let after = headFree(ownerBefore) + (namedAfter !== ownerBefore ? headFree(namedAfter) : 0)
    headsWithFree += after - headsBefore
    if ctx.mmBook.enabled {
      // By the page's owner serial: a dead mm's pending halves stay its own until they go.
      if touchesPage {
        ctx.mmBook.move(
          from: serialBefore, slots(tallyBefore), to: pageAfter?.owner ?? -1, slots(tallyAfter),
          address: { mms[serial: $0]?.address })
      }
      syncHead(ownerBefore)
      if namedAfter !== ownerBefore { syncHead(namedAfter) }
    }
  }

  // MARK: page_table_alloc: what every variant shares

  /// Whether the replay checks which half the allocator picks (A, B: always; the proposals:
  /// only on their own simulation, since no kernel ran them).
  var checksChoices: Bool { true }
  /// Per task: the entry line of the page_table_alloc whose missing return a free inferred.
  var returnInferredAtFree = AddressMap<Int>()

  /// `page_table_alloc`, list part: the head page `key` gives half `h` (v5.17 … v6.6: set
  /// A, `list_del`).
  func procAllocFromList(_ m: MM, _ key: UInt64, _ h: Int) {
    pages[key]![h] = .allocated
    unlink(key)
  }

  /// `page_table_alloc` made fresh page `key`: A of the lower half, `list_add` (front).
  func procAllocFresh(_ m: MM, _ key: UInt64) {
    pages[key]![0] = .allocated
    pushFront(m, key)
  }

  /// The alloc's entry was seen and its return is missing: the capture ended inside it, or
  /// the same task entered again (the return probe missed, or the return was dropped).
  func allocUnreturned(_ e: Event) {
    guard let m = mm(at: e.mm) else { return }
    if returnInferredAtFree[e.pid] == e.line {
      // Its missing return was already inferred (and reported) at the pte_free that followed.
      returnInferredAtFree[e.pid] = nil
      return
    }
    let w = m.windows.first { $0.pid == e.pid }
    m.windows.removeAll { $0.pid == e.pid }
    if !m.reserved.isEmpty { claimUnreturned(m, pid: e.pid) }
    let wasKnown = m.known
    if e.count == 0 {
      // The same task entered again: the table it returned is unknown, so the mm is no
      // longer predicted either way. Resynchronise: the half the model predicted may or may
      // not have been taken, so it becomes unknown (later events of it are accepted).
      if wasKnown, let w, case .half(let k, let h)? = w.candidates.last, pages[k] != nil,
        pages[k]![h] == .free
      {
        ctx.record(page: k, e, mm: m.address)
        needsRecount = true
        pages[k]![h] = .unknown
        unlink(k)
      }
      m.known = false
    }
    reportUnreturnedAlloc(
      ctx, e, mm: m.address, symbol: "page_table_alloc", function: .pageTableAlloc,
      wasPredicted: wasKnown && checksChoices, rule: rule(.allocWithoutReturn))
  }

  /// An allocation of `m` in flight whose return was missed: it took the first half
  /// reserved for it.
  func claimUnreturned(_ m: MM, pid: Int32) {
    if let i = m.reserved.firstIndex(where: { $0.eligible.contains(pid) }) { m.reserved.remove(at: i) }
    for i in m.reserved.indices { m.reserved[i].eligible.removeAll { $0 == pid } }
  }

  /// The page changes hands to `m` (a divergence, or a page seen first in another mm).
  func adoptOwner(_ m: MM?, _ key: UInt64) {
    guard let m, let p = pages[key], p.owner != m.serial else { return }
    if let old = owner(of: p) {
      old.liveTables -= p.aCount
      m.liveTables += p.aCount
    }
    unlink(key)
    pages[key]!.owner = m.serial
  }

  /// The kernel handed out half `h` (free, or of unknown history) of a page the model holds.
  func takeHalf(_ m: MM?, _ key: UInt64, _ h: Int) {
    adoptOwner(m, key)
    let wasAllocated = pages[key]![h] == .allocated
    pages.update(key) {
      if h == 1 { $0.upperSeen = true }
      $0[h] = .free
    }
    guard let m else {
      pages[key]![h] = .allocated
      unlink(key)
      return
    }
    procAllocFromList(m, key, h)
    if !wasAllocated { m.liveTables += 1 }
    if h == 1 && m.pgste == .unknown { m.pgste = .no }
  }

  /// The kernel handed out half `h` of a page the model does not hold.
  func freshPage(_ m: MM?, _ key: UInt64, _ h: Int) {
    var p = Page(owner: m?.serial ?? -1)
    guard let m else {
      p[h] = .allocated
      p[1 - h] = .unknown
      pages[key] = p
      return
    }
    m.liveTables += 1
    if h == 1 {
      // The upper half of a page the model never saw: its lower half is unknown.
      p[0] = .unknown
      p[1] = .allocated
      p.upperSeen = true
      pages[key] = p
      if m.pgste == .unknown { m.pgste = .no }
      return
    }
    if m.pgste == .yes {
      p.bits = 0x03
      p.pgste = true
      pages[key] = p
      return
    }
    pages[key] = p
    procAllocFresh(m, key)
  }

  /// Whether a pending half handed out again is explained by missed `__tlb_remove_table`
  /// probes (then inconclusive, settled by the profile) rather than a kernel bug.
  func reuseExplainable(_ p: Page, _ m: MM?, _ key: UInt64, _ h: Int, freshCase: Bool) -> Bool { true }

  /// The kernel handed out a half the model holds as pending (P) or deferred (H+P).
  func reuseBeforeGrace(_ e: Event, _ m: MM?, _ key: UInt64, _ h: Int, _ before: Before) {
    let p = pages[key]!
    let freeLine = p.pendingLine(h)
    let deferred = p[h] == .deferred
    // A page whose halves are all pending or free, handed out as a fresh page (lower half):
    // released once the missed executions ran; every pending half's is missing. Otherwise
    // only this half's.
    let freshCase = h == 0 && p[1] != .allocated && !(p.listed && p.owner == m?.serial)
    let missing = freshCase ? [0, 1].filter { p[$0] == .pending || p[$0] == .deferred } : [h]
    let base = makeFinding(
      .reuseBeforeGrace, e, mm: m?.address, page: key, half: h, before: before,
      after: freshCase ? "AF L" : "\(h == 0 ? "A\(p.hi.letter)" : "\(p.lo.letter)A") -",
      deferred
        ? "page_table_alloc returned \(hex(e.table)), whose H and P bits are set since pte_free_defer at line \(freeLine); no RCU callback (__tlb_remove_table) cleared them"
        : "page_table_alloc returned \(hex(e.table)), whose P bit is set since page_table_free_rcu at line \(freeLine); no __tlb_remove_table cleared it",
      related: [freeLine])
    if reuseExplainable(p, m, key, h, freshCase: freshCase) {
      for mh in missing {
        var f = base
        f.message += ", and the kprobe_profile shows no missed __tlb_remove_table"
        ctx.report(
          Inconclusive(
            .missedTLBExec, missOf: .tlbRemoveTableExec, f,
            "page_table_alloc returned \(hex(e.table)) while the \(halfName(mh)) half of page \(hex(key)) is pending since line \(p.pendingLine(mh)): probable missed __tlb_remove_table(\(hex(key + UInt64(mh) * 0x800 + UInt64(mh + 1))))",
            carry: mh == missing[0]))
      }
    } else {
      ctx.report(base)
    }
    // Resynchronise on what the kernel did: the missing executions ran.
    for mh in missing where p[mh] == .pending { ctx.inferred(.exec(table: key + UInt64(mh) * 0x800)) }
    if freshCase {
      drop(key)
      freshPage(m, key, 0)
    } else {
      pages.update(key) {
        $0[h] = .free
        $0.queued &= ~(1 << UInt8(h))
        if $0.rcuHead == Int8(h) { $0.rcuHead = -1 }
      }
      takeHalf(m, key, h)
    }
  }

  /// The rule of this model for `id`, or `alloc-divergence` when the model has no such rule.
  func ruleOrDivergence(_ id: RuleID) -> RuleID { rules[id] != nil ? id : .allocDivergence }

  /// The kernel's choice is not the model's: name the divergence.
  func diverge(
    _ e: Event, _ m: MM, predicted: Prediction, _ observed: Prediction, _ key: UInt64,
    _ h: Int, _ before: Before, related: [Int]
  ) {
    let predictedText: String
    switch predicted {
    case .fresh: predictedText = "a fresh page (the list head has no usable half)"
    case .half(let k, let ph): predictedText = "\(hex(k + UInt64(ph) * 0x800)) (the \(halfName(ph)) half of the list head)"
    }
    let rule: RuleID
    var why: String
    let p = pages[key]
    switch (observed, predicted) {
    case (.fresh, _) where h == 1:
      rule = .allocDivergence
      why = "the upper half of a page this mm never held"
    case (.fresh, .half):
      rule = .allocFreshWhileHeadUsable
      why = "a fresh page"
    case (.half(let k, _), .half(let pk, _)) where k == pk && rules[.allocWrongHalf] != nil:
      rule = .allocWrongHalf
      why = "the other half of the list head"
    case (.half, _) where p?.listed == true && p?.owner == m.serial:
      rule = predicted == .fresh ? .allocListedWhileFresh : .allocNotHead
      why = "a half of a page further down the list"
    case (.half, _) where p?.listed == true || (p?.aCount ?? 0) > 0:
      let other = p.flatMap { owner(of: $0) }
      if other !== m && p?.aCount ?? 0 > 0 && h == 0 && p?[1] == .allocated {
        rule = ruleOrDivergence(p?.listed == true ? .releaseWhileListed : .releaseWithBits)
        why = "a page still held\(other.map { " by mm \(hex($0.address))" } ?? "") with its other half allocated"
      } else {
        rule = .allocDivergence
        why = "a half of a page held by \(other.map { "mm \(hex($0.address))" } ?? "another mm")"
      }
    default:
      rule = .allocDivergence
      why = "a table the model cannot produce"
    }
    if let since = m.ambiguousSince {
      ctx.report(
        Inconclusive(
          reason: .concurrency, line: e.line, mm: m.address, page: key,
          message:
            "page_table_alloc returned \(hex(e.table)) (\(why)); the model predicted \(predictedText), but a concurrent list change inside the alloc window at line \(since) leaves the list order open",
          wouldBeRule: rule))
      m.ambiguousSince = nil
      return
    }
    finding(
      rule, e, mm: m.address, page: key, half: h, before: before,
      "page_table_alloc returned \(hex(e.table)) (\(why)); the model predicted \(predictedText) for mm \(hex(m.address)) [list: \(listSummary(m))]",
      related: related)
  }

  // MARK: Per-half checks of frees

  /// What a free's checks found.
  enum FreeCheck {
    /// Rejected (a finding was reported): nothing to apply.
    case rejected
    /// A page the model did not hold, of an mm allocated before the capture: the page was
    /// created with the other half unknown and half h allocated (the free is untracked).
    case untracked(UInt64, Int)
    /// Half h of a held page (A set, or of unknown history and now A) or a pgste page.
    case apply(UInt64, Int)

    /// A model that applies an untracked free as it does a tracked one.
    var applied: FreeCheck {
      if case .untracked(let k, let h) = self { return .apply(k, h) }
      return self
    }
  }

  /// The checks every free path shares (`page_table_free`, `page_table_free_rcu`,
  /// `pte_free_defer`): a 2 KiB-aligned table, held by the model (else `free-unknown` for an
  /// mm known from birth), named with the mm that allocated it (`cross-mm`), an allocated
  /// half (`double-free`). The free's owner loses the table from its live count.
  func checkedFree(_ e: Event, _ what: String, _ m: MM?) -> FreeCheck {
    let (key, h) = split(e.table)
    let page = pages[key]
    ctx.record(page: key, e, mm: e.mm ?? page.flatMap { owner(of: $0) }?.address)
    let before = Before(page: page)
    if e.table & 0x7ff != 0 || e.table == 0 {
      finding(
        .freeUnknown, e, mm: e.mm, page: key, half: h, before: before,
        "\(what)(\(hex(e.table))) is not a 2 KiB-aligned table")
      return .rejected
    }
    guard let p = page else {
      if let m, m.known {
        finding(
          .freeUnknown, e, mm: m.address, page: key, half: h, before: before,
          "\(what) of \(hex(e.table)), which no allocation of mm \(hex(m.address))\(m.bornLine.map { " (born at line \($0))" } ?? "") returned")
        return .rejected
      }
      // Allocated before the capture: the page's other half is unknown.
      ctx.stats.freesUntracked += 1
      var np = Page(owner: m?.serial ?? -1)
      np[1 - h] = .unknown
      np[h] = .allocated
      pages[key] = np
      return .untracked(key, h)
    }
    let pageOwner = owner(of: p)
    if let m, p.owner >= 0, p.owner != m.serial {
      finding(
        .crossMm, e, mm: m.address, page: key, half: h, before: before,
        "\(what) names mm \(hex(m.address)), but \(hex(key)) was allocated to mm \(pageOwner.map { hex($0.address) } ?? "(gone)")")
    }
    if p.pgste, h == 1,
      pgsteRefuted(e, key, wouldBe: p.pgsteFreed ? .doubleFree : nil, "\(what)(\(hex(e.table))) frees an upper half")
    {
      ctx.stats.freesUntracked += 1
      pages[key]![h] = .allocated
      return .untracked(key, h)
    }
    if p.pgste {
      if p.pgsteFreed {
        finding(
          .doubleFree, e, mm: e.mm, page: key, half: h, before: before,
          "\(what) of pgste table \(hex(e.table)), already freed")
        return .rejected
      }
      return .apply(key, h)
    }
    switch p[h] {
    case .allocated: pageOwner?.liveTables -= 1
    case .unknown:
      ctx.stats.freesUntracked += 1
      pages[key]![h] = .allocated
    case .free, .pending, .deferred:
      let pl = p.pendingLine(h)
      finding(
        .doubleFree, e, mm: e.mm ?? pageOwner?.address, page: key, half: h, before: before,
        "\(what) of \(hex(e.table)), whose \(halfName(h)) half is \(p[h] == .free ? "already free" : "\(p[h] == .deferred ? "deferred" : "pending") since line \(pl)")",
        related: pl > 0 ? [pl] : [])
      if e.kind == .freeTLB { reportedFree = (e.pid, e.table) }
      return .rejected
    }
    return .apply(key, h)
  }

  // MARK: tlb batch: queue and exec

  /// `tlb_remove_table(table | tag)`: the tag must name the table's kind and half, and a
  /// PTE half must be pending from its `page_table_free_rcu`.
  func tlbQueue(_ e: Event) {
    let tag = Int(e.table & 3)
    let base = e.table & ~3
    let (key, h) = split(base)
    guard let p = pages[key] else {
      if tag == 0 { noteCRSTQueued(e, base) }
      return
    }
    if tag == 0 && heldOnlyAsReleased(p) {
      // A CRST table on a page whose PTE tables were all freed: the page went back to the
      // buddy allocator unseen and crst_table_alloc handed it out again.
      releasedUnseen(key, e, as: "as the CRST table that tlb_remove_table(\(hex(e.table))) queues")
      noteCRSTQueued(e, base)
      return
    }
    ctx.record(page: key, e, mm: e.mm)
    let before = Before(page: p)
    switch tag {
    case 0:
      finding(
        .execTagMismatch, e, mm: e.mm, page: key, half: nil, before: before,
        "tlb_remove_table(\(hex(e.table))) with tag 0 (CRST) names a page the model holds as PTE tables")
    case 3:
      if !p.pgste && !inferPgste(e, key) {
        finding(
          .execTagMismatch, e, mm: e.mm, page: key, half: nil, before: before,
          "tlb_remove_table(\(hex(e.table))) with tag 3 (pgste) on a page that is not a pgste table")
      }
    default:
      let th = tag - 1
      if p.pgste, pgsteRefuted(e, key, wouldBe: .execTagMismatch, "tlb_remove_table(\(hex(e.table))) with tag \(tag)") {
        return  // the half's history is unknown now
      }
      if p.pgste || th != h || base & 0x7ff != 0 {
        finding(
          .execTagMismatch, e, mm: e.mm, page: key, half: h, before: before,
          p.pgste
            ? "tlb_remove_table(\(hex(e.table))) with tag \(tag) on a pgste page (tag 3 expected)"
            : "tlb_remove_table(\(hex(e.table))): tag \(tag) names the \(halfName(th)) half, the address the \(halfName(h)) half")
        return
      }
      // The queue that belongs to a free already reported is part of the same double free.
      let sameFree = reportedFree.map { $0.pid == e.pid && $0.table == base } ?? false
      reportedFree = nil
      if sameFree { return }
      switch p[h] {
      case .pending:
        if p.queued & (1 << UInt8(h)) != 0 {
          finding(
            .doubleFree, e, mm: e.mm, page: key, half: h, before: before,
            "tlb_remove_table(\(hex(e.table))) queues the \(halfName(h)) half a second time (freed twice through the tlb batch)")
        }
        pages.update(key) { $0.queued |= 1 << UInt8(h) }
        noteQueued(e, key, h)
      case .unknown: break
      case .free, .allocated, .deferred:
        finding(
          .queueWithoutPending, e, mm: e.mm, page: key, half: h, before: before,
          "tlb_remove_table(\(hex(e.table))) queues the \(halfName(h)) half, which is \(p[h] == .deferred ? "waiting for its RCU callback" : p[h] == .free ? "free" : "allocated"), not pending")
      }
    }
  }

  /// `__tlb_remove_table(table | tag)`: tag 0 a CRST table, 3 a pgste page, 1/2 a PTE half
  /// that must be pending (or deferred: a proposal's RCU callback).
  func tlbExec(_ e: Event) {
    let tag = Int(e.table & 3)
    let base = e.table & ~3
    let (key, h) = split(base)
    guard let p = pages[key] else {
      if tag != 0 { ctx.stats.execsUntracked += 1 } else { noteCRSTExecuted(e, base) }
      return
    }
    if tag == 0 && heldOnlyAsReleased(p) {
      releasedUnseen(key, e, as: "as the CRST table that __tlb_remove_table(\(hex(e.table))) frees")
      return
    }
    ctx.record(page: key, e, mm: nil)
    let before = Before(page: p)
    let pageOwner = owner(of: p)
    switch tag {
    case 0:
      finding(
        .execTagMismatch, e, mm: pageOwner?.address, page: key, half: nil, before: before,
        "__tlb_remove_table(\(hex(e.table))) with tag 0 (CRST) names a page the model holds as PTE tables")
    case 3:
      guard p.pgste || inferPgste(e, key) else {
        finding(
          .execTagMismatch, e, mm: pageOwner?.address, page: key, half: nil, before: before,
          "__tlb_remove_table(\(hex(e.table))) with tag 3 (pgste) on a page that is not a pgste table")
        return
      }
      guard pages[key]!.pgsteFreed else {
        finding(
          .execWithoutPending, e, mm: pageOwner?.address, page: key, half: nil, before: before,
          "__tlb_remove_table(\(hex(e.table))) of a pgste table that was not freed")
        return
      }
      pageOwner?.liveTables -= 1
      execPgste(e, key)
      changed(pageOwner)
    default:
      let th = tag - 1
      if p.pgste, pgsteRefuted(e, key, wouldBe: .execTagMismatch, "__tlb_remove_table(\(hex(e.table))) with tag \(tag)") {
        return  // the half's history is unknown now
      }
      if p.pgste || th != h || base & 0x7ff != 0 {
        finding(
          .execTagMismatch, e, mm: pageOwner?.address, page: key, half: h, before: before,
          p.pgste
            ? "__tlb_remove_table(\(hex(e.table))) with tag \(tag) on a pgste page (tag 3 expected)"
            : "__tlb_remove_table(\(hex(e.table))): tag \(tag) names the \(halfName(th)) half, the address the \(halfName(h)) half")
        return
      }
      switch p[h] {
      case .pending, .unknown:
        if p[h] == .unknown {
          // Freed before the capture: pending, with no queue seen (it orders nothing).
          ctx.stats.execsUntracked += 1
          pages.update(key) {
            $0[h] = .pending
            $0.setQueuedAt(h, QueueMark())
          }
        }
        execPending(e, key, h)
        changed(pageOwner)
      case .deferred:
        execDeferred(e, key, h)
      case .free, .allocated:
        finding(
          .execWithoutPending, e, mm: pageOwner?.address, page: key, half: h, before: before,
          "__tlb_remove_table(\(hex(e.table))) executes the \(halfName(h)) half, which is \(p[h] == .free ? "free" : "allocated"): no \(Self.defersHalves ? "page_table_free_rcu or pte_free_defer" : "page_table_free_rcu") made it pending")
      }
    }
  }

  // MARK: Pages released unseen

  /// No table of the page is allocated: every half is free, pending, deferred or of unknown
  /// history, so the page may have gone back to the buddy allocator through events the
  /// capture lacks.
  func heldOnlyAsReleased(_ p: Page) -> Bool {
    p.pgste ? p.pgsteFreed : p.aCount == 0
  }

  /// `crst_table_alloc` takes an order-2 block (CRST_ALLOC_ORDER, 16 KiB) from the buddy
  /// allocator: any page of it the model still holds as PTE tables was released unseen.
  func crstAlloc(_ e: Event) {
    guard e.table != 0 else { return }
    let block = e.table & ~0x3fff
    for k in 0..<4 {
      let key = block + UInt64(k) * 0x1000
      if pages[key] != nil {
        releasedUnseen(key, e, as: "inside the CRST table \(hex(e.table)) that crst_table_alloc returned")
      }
    }
  }

  /// The kernel shows that a page the model holds went back to the buddy allocator: it came
  /// back `how` (inside a CRST block, or as a fresh PTE page). A page is freed only when its
  /// last bit clears — in `page_table_free` or in `__tlb_remove_table` (cases 1/2, then
  /// `__free_page`; v6.1 `arch/s390/mm/pgalloc.c`) — so every half the model holds was
  /// released by an event the capture does not show:
  /// - a pending (or deferred) half: its `__tlb_remove_table` was missed (the nested-kprobe
  ///   kind the kprobe_profile counts) — inconclusive, settled by the profile;
  /// - an allocated half: its free was missed, or the kernel released a page in use —
  ///   inconclusive while a free function may have missed hits, else `release-with-bits`;
  /// - a half of unknown history (an mm born before the capture, a lost event): nothing to say.
  /// Then the model forgets the page (resynchronises on what the kernel did).
  func releasedUnseen(_ key: UInt64, _ e: Event, as how: String) {
    guard let p = pages[key] else { return }
    ctx.record(page: key, e, mm: e.mm)
    let before = Before(page: p)
    let holder = owner(of: p)
    let halves = p.pgste ? [0] : [0, 1]
    var first = true
    for h in halves where p.pgste ? p.pgsteFreed : (p[h] == .pending || p[h] == .deferred) {
      let freeLine = p.pendingLine(h)
      let table = key + UInt64(h) * 0x800
      let tagged = table + UInt64(p.pgste ? 3 : h + 1)
      let f = makeFinding(
        .releaseWithBits, e, mm: holder?.address, page: key, half: p.pgste ? nil : h,
        before: before, after: "(released)",
        "page \(hex(key)) came back from the buddy allocator \(how) while \(hex(table)) was pending since line \(freeLine) and no __tlb_remove_table(\(hex(tagged))) ran, and the kprobe_profile shows no missed __tlb_remove_table",
        related: [freeLine])
      ctx.report(
        Inconclusive(
          .missedTLBExec, missOf: .tlbRemoveTableExec, f,
          "page \(hex(key)) came back from the buddy allocator \(how) while \(hex(table)) is pending since line \(freeLine): probable missed __tlb_remove_table(\(hex(tagged)))",
          carry: first))
      first = false
      ctx.inferred(.exec(table: table))
    }
    for h in halves where p.pgste ? !p.pgsteFreed : p[h] == .allocated {
      let table = key + UInt64(h) * 0x800
      probableMiss(
        .missedProbe, of: .pageTableFreeRCU, alternatives: Self.tableFreeFunctions.filter { $0 != .pageTableFreeRCU },
        .releaseWithBits, e, mm: holder?.address, page: key, half: p.pgste ? nil : h,
        before: before, after: "(released)",
        finding: "page \(hex(key)) came back from the buddy allocator \(how) while \(hex(table)) of mm \(hex(holder?.address)) was never freed: it was released with its A bit set",
        "page \(hex(key)) came back from the buddy allocator \(how) while \(hex(table)) of mm \(hex(holder?.address)) is allocated: probable missed free of \(hex(table))")
      ctx.inferred(.free(table: table))
    }
    if p.pgste { if !p.pgsteFreed { holder?.liveTables -= 1 } } else { holder?.liveTables -= p.aCount }
    drop(key)
    needsRecount = true
    changed(holder)
  }

  // MARK: pgste readings refuted

  /// No probe tells a pgste (KVM) mm here: the replay reads an mm's tables as whole pages only
  /// by inference (`pgste-inferred`, a tag 3). An event only a 2 KiB fragment page shows — its
  /// upper half handed out or freed, a tlb tag 1 or 2 — on a page read as pgste refutes that
  /// reading: the capture misses events of the mm (the allocations of its upper halves). Its
  /// pgste pages become 2 KiB pages of unknown history, the mm is no longer predicted, and the
  /// event is one inconclusive item, never a finding. Returns whether it refuted.
  func pgsteRefuted(_ e: Event, _ key: UInt64, wouldBe rule: RuleID?, _ what: String) -> Bool {
    guard let p = pages[key], p.pgste else { return false }
    let holder = owner(of: p)
    ctx.report(
      Inconclusive(
        reason: .inferenceRefuted, line: e.line, mm: holder?.address ?? e.mm, page: key,
        message:
          "\(what) on page \(hex(key)), which the replay read as a whole-page pgste table\(holder.map { " of mm \(hex($0.address))" } ?? ""): only a 2 KiB fragment page shows that, so the pgste reading (inferred; no probe tells pgste tables) was wrong — events of the mm are probably missing from the capture",
        wouldBeRule: rule))
    var converted = [key]
    if let holder {
      holder.pgste = .no
      holder.known = false
      converted += pages.keys.filter { $0 != key && pages[$0]!.pgste && pages[$0]!.owner == holder.serial }
    }
    for k in converted {
      rebook(k) {
        let q = pages[k]!
        if !q.pgsteFreed { owner(of: q)?.liveTables -= 1 }
        pages.update(k) {
          $0.pgste = false
          $0.pgsteFreed = false
          $0[0] = .unknown
          $0[1] = .unknown
        }
      }
    }
    needsRecount = true
    changed(holder)
    return true
  }

  // MARK: mm lifetimes

  /// By the time the pgd goes, exit_mmap has freed every table of the mm (`leak`). The mm
  /// leaves the registry; its tables never freed are forgotten (their later events are
  /// judged as of unknown history), its pages leave its list.
  func bury(_ m: MM, _ e: Event, seen: Bool) {
    ctx.mmBook.died(m.serial)
    var live: [UInt64] = []
    if m.liveTables != 0 {
      for (k, p) in pages where p.owner == m.serial {
        if p.pgste {
          if !p.pgsteFreed { live.append(k) }
        } else {
          for h in 0..<2 where p[h] == .allocated { live.append(k + UInt64(h) * 0x800) }
        }
      }
    }
    live.sort()
    if !live.isEmpty {
      reportLeak(ctx, rule(.leak), e, mm: m.address, live: live, seen: seen, page: split)
      for t in live {
        let (k, h) = split(t)
        rebook(k) {
          if pages[k]!.pgste {
            pages[k]!.owner = -1
          } else {
            pages[k]![h] = .unknown
          }
        }
      }
    }
    while m.head != 0 {
      let k = m.head
      rebook(k) { pages.unlink(k, &m.list) }
    }
    mms.remove(m)
  }

  /// A `LOST EVENTS` marker: no mm's list is known any more.
  func lost(_ e: Event) {
    countLost(e)
    for m in mms {
      m.known = false
      m.windows.removeAll()
      m.reserved.removeAll()
    }
  }

  /// The end-of-capture statistics of what the model still holds.
  func finishStats() {
    ctx.stats.pagesAtEnd = pages.count
    var live = 0
    for (_, p) in pages { live += p.pgste ? (p.pgsteFreed ? 0 : 1) : p.aCount }
    ctx.stats.tablesLiveAtEnd = live
  }

  // MARK: Occupancy (docs/kernel-models.md §8), kept by difference around each event

  struct Tally {
    var live = 0, pending = 0, unknown = 0, free = 0, freeListed = 0
    static func += (a: inout Tally, b: Tally) {
      a.live += b.live; a.pending += b.pending; a.unknown += b.unknown
      a.free += b.free; a.freeListed += b.freeListed
    }
    static func -= (a: inout Tally, b: Tally) {
      a.live -= b.live; a.pending -= b.pending; a.unknown -= b.unknown
      a.free -= b.free; a.freeListed -= b.freeListed
    }
  }
  @exclusivity(unchecked) var tally = Tally()
  /// Σ over mms: 1 if the list head has the free half the next alloc takes.
  @exclusivity(unchecked) var headsWithFree = 0

  func contribution(_ key: UInt64) -> Tally { contribution(pages[key]) }

  @inline(__always)
  func contribution(_ page: Page?) -> Tally {
    var t = Tally()
    guard let p = page else { return t }
    if p.pgste {
      if p.pgsteFreed { t.pending = 2 } else { t.live = 2 }
      return t
    }
    for h in 0..<2 {
      switch p[h] {
      case .allocated: t.live += 1
      case .pending, .deferred: t.pending += 1
      case .unknown: t.unknown += 1
      case .free:
        t.free += 1
        if p.listed { t.freeListed += 1 }
      }
    }
    return t
  }

  func headFree(_ m: MM?) -> Int {
    guard let m, m.head != 0, let p = pages[m.head] else { return 0 }
    let b = p.bits
    let u = p.unknown
    guard let h = pickHalf(bits: b, unknown: u) else { return 0 }
    return (b | u) & PPHHAA.all(h) == 0 ? 1 : 0  // the half it takes is F (no A, H, P, ?)
  }

  /// One page's tally as an occupancy.
  func slots(_ t: Tally) -> Occupancy {
    s390PageOccupancy(live: t.live, pending: t.pending, unknown: t.unknown, free: t.free, freeListed: t.freeListed)
  }

  /// Changes page `key` outside the page an event names (an mm's burial), keeping the
  /// tally and the per-mm book as `step` does for that page: O(1), no recount.
  func rebook(_ key: UInt64, _ change: () -> Void) {
    let before = contribution(key)
    let serialBefore = pages[key]?.owner ?? -1
    tally -= before
    change()
    let after = contribution(key)
    tally += after
    if ctx.mmBook.enabled {
      ctx.mmBook.move(
        from: serialBefore, slots(before), to: pages[key]?.owner ?? -1, slots(after),
        address: { mms[serial: $0]?.address })
    }
  }

  func recount() {
    tally = Tally()
    for (_, p) in pages { tally += contribution(p) }
    headsWithFree = mms.reduce(0) { $0 + headFree($1) }
    guard ctx.mmBook.enabled else { return }
    var byMM: [Int32: (UInt64, Occupancy)] = [:]
    for (_, p) in pages where p.owner >= 0 {
      byMM[p.owner, default: (mms[serial: p.owner]?.address ?? 0, Occupancy())].1.add(slots(contribution(p)))
    }
    for m in mms {
      m.headCounted = headFree(m)
      if m.headCounted > 0 { byMM[m.serial, default: (m.address, Occupancy())].1.add(s390HeadDelta) }
    }
    addToRecount(&byMM)
    ctx.mmBook.replaceAll(byMM)
  }

  /// Re-counts `m`'s head into its book entry.
  func syncHead(_ m: MM?) {
    guard let m else { return }
    syncHeadCount(ctx, m.serial, m.address, now: headFree(m), counted: &m.headCounted)
  }

  /// Self-check for tests: the kept occupancy equals a full recount.
  public func occupancyMatchesRecount() -> Bool {
    let kept = (tally.live, tally.pending, tally.unknown, tally.free, tally.freeListed, headsWithFree)
    let keptByMM = ctx.mmBook.currentByMM
    recount()
    return kept == (tally.live, tally.pending, tally.unknown, tally.free, tally.freeListed, headsWithFree)
      && keptByMM == ctx.mmBook.currentByMM
  }

  public var occupancy: Occupancy {
    var o = Occupancy()
    o.pagesHeld = pages.count
    o.live = tally.live
    o.pending = tally.pending
    o.unknown = tally.unknown
    o.reusableNow = headsWithFree
    o.reusableLater = tally.freeListed - headsWithFree
    o.stranded = tally.free - tally.freeListed
    return o
  }
}

// Per-task (pid), per-CPU and per-gather maps of the model: AddressMap keys.
extension AddressMap {
  subscript(_ k: Int32) -> Value? {
    get { self[UInt64(UInt32(bitPattern: k))] }
    set { self[UInt64(UInt32(bitPattern: k))] = newValue }
  }
  subscript(_ k: Int32, default d: @autoclosure () -> Value) -> Value {
    self[UInt64(UInt32(bitPattern: k))] ?? d()
  }
  subscript(_ k: Int) -> Value? {
    get { self[UInt64(bitPattern: Int64(k))] }
    set { self[UInt64(bitPattern: Int64(k))] = newValue }
  }
}
