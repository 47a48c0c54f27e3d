import PTFragEvents

// Pieces shared by the proposal models (C1, C2, C3a) and the powerpc model (E): intrusive
// page lists kept in the page dictionary, rule lookup, the bookkeeping every model does for
// an allocation whose return never came, and the hand-off of due RCU callbacks to a
// simulation driver.

// MARK: - Intrusive lists (an mm's `pgtable_list`)

/// A page that can sit on one list, linked by page base addresses (0 = none).
protocol ListLinked {
  var listed: Bool { get set }
  var prev: UInt64 { get set }
  var next: UInt64 { get set }
}

/// Head of a list of pages (`mm->context.pgtable_list`): first and last page base, length.
struct PageListHead {
  var head: UInt64 = 0
  var tail: UInt64 = 0
  var count = 0
}

extension AddressMap where Value: ListLinked {
  // Each page is changed in place (`update`: one probe, no copy of the page).

  /// `list_add`: link `key` at the front (unlinking it first if it is listed).
  mutating func pushFront(_ key: UInt64, _ list: inout PageListHead) {
    unlink(key, &list)
    let head = list.head
    update(key) {
      $0.listed = true
      $0.prev = 0
      $0.next = head
    }
    if head != 0 { update(head) { $0.prev = key } } else { list.tail = key }
    list.head = key
    list.count += 1
  }

  /// `list_add_tail`.
  mutating func pushBack(_ key: UInt64, _ list: inout PageListHead) {
    unlink(key, &list)
    let tail = list.tail
    update(key) {
      $0.listed = true
      $0.next = 0
      $0.prev = tail
    }
    if tail != 0 { update(tail) { $0.next = key } } else { list.head = key }
    list.tail = key
    list.count += 1
  }

  /// `list_del` (a no-op for a page that is not listed).
  mutating func unlink(_ key: UInt64, _ list: inout PageListHead) {
    guard let p = self[key], p.listed else { return }
    if p.prev != 0 { update(p.prev) { $0.next = p.next } } else { list.head = p.next }
    if p.next != 0 { update(p.next) { $0.prev = p.prev } } else { list.tail = p.prev }
    update(key) {
      $0.listed = false
      $0.prev = 0
      $0.next = 0
    }
    list.count -= 1
  }

  /// The first `limit` page bases of `list`, in order.
  func keys(of list: PageListHead, limit: Int) -> [UInt64] {
    var out: [UInt64] = []
    var k = list.head
    while k != 0, out.count < limit, let p = self[k] {
      out.append(k)
      k = p.next
    }
    return out
  }
}

// MARK: - Findings

/// A model that states findings: its rules and how it renders a page's state. The findings
/// are made one way for every model: `makeFinding` at an event (the state after defaults to
/// the page as it is once the event is applied), `finding` reports it, `probableMiss`
/// reports one that a silent miss of a probe would explain.
protocol FindingReporter: AnyObject {
  var ctx: ReplayContext { get }
  func rule(_ id: RuleID) -> Rule
  /// The state of page `key` as findings print it.
  func describe(_ key: UInt64) -> String
  /// A finding locates a table as a fragment index (powerpc's pgtable-frag.c), not as an
  /// s390 half.
  var locatesFragments: Bool { get }
}

extension FindingReporter {
  var locatesFragments: Bool { false }

  /// A finding of rule `id` at `e` about `half` of `page` (nil: the page, or none):
  /// the state `before`, and `after` (default: the page as it is now); `related` lines
  /// (0: none).
  func makeFinding(
    _ id: RuleID, _ e: Event, mm: UInt64?, page: UInt64?, half: Int? = nil, before: String,
    after: String? = nil, _ message: String, related: [Int] = []
  ) -> Finding {
    Finding(
      rule: rule(id), event: e, mm: mm, page: page, half: half, fragment: locatesFragments, stateBefore: before,
      stateAfter: after ?? page.map { describe($0) } ?? before, message: message,
      relatedLines: related.filter { $0 > 0 })
  }

  func finding(
    _ id: RuleID, _ e: Event, mm: UInt64?, page: UInt64?, half: Int? = nil, before: String,
    after: String? = nil, _ message: String, related: [Int] = []
  ) {
    ctx.report(makeFinding(id, e, mm: mm, page: page, half: half, before: before, after: after, message, related: related))
  }

  /// A finding that a silent miss of `probe` would explain (`message` names the miss):
  /// inconclusive `reason`, settled by the kprobe_profile (an error when it shows that probe
  /// missed nothing).
  func probableMiss(
    _ reason: InconclusiveReason, of probe: KernelFunction, alternatives: [KernelFunction] = [],
    _ id: RuleID, _ e: Event, mm: UInt64?, page: UInt64?, half: Int? = nil, before: String,
    after: String? = nil, finding: String, related: [Int] = [], _ message: String
  ) {
    let f = makeFinding(id, e, mm: mm, page: page, half: half, before: before, after: after, finding, related: related)
    ctx.report(Inconclusive(reason, missOf: probe, f, message, alternatives: alternatives))
  }
}

// MARK: - The mm's life

/// A model's mms (`MMRegistry`) through their lives, the same in every model: a birth
/// (the pgd's allocation) buries the address's previous incarnation unseen (its pgd free was
/// missed, or the capture began after it), a death (the pgd's free) buries it seen and counts
/// it; `bury` is the model's own (the leak check, forgetting the mm's pages).
protocol MMLifetimes: AnyObject {
  associatedtype MM: RegisteredMM
  var ctx: ReplayContext { get }
  var mms: MMRegistry<MM> { get set }
  func bury(_ m: MM, _ e: Event, seen: Bool)
}

extension MMLifetimes {
  /// The new incarnation at `e.mm` (nil when the event names no mm).
  @discardableResult
  func mmBorn(_ e: Event) -> MM? {
    guard let address = e.mm else { return nil }
    if let old = mms[address: address] { bury(old, e, seen: false) }
    return mms.born(address, line: e.line, &ctx.stats)
  }

  func mmDied(_ e: Event) {
    guard let address = e.mm, let m = mms[address: address] else { return }
    bury(m, e, seen: true)
    ctx.stats.mmsDied += 1
  }

  /// A `LOST EVENTS` marker, counted; the model then forgets what the loss may have changed.
  func countLost(_ e: Event) {
    ctx.stats.lostMarkers += 1
    ctx.stats.lostEvents += e.count
  }
}

// MARK: - Rules

/// Rules that mean the same in every model stating them, so written once (a model's list
/// names them among its own, in its order).
extension Rule {
  /// exit_mmap frees (or queues) every table of the mm before its pgd goes: every variant.
  static let leak = Rule(.leak, .error, "an mm's pgd was freed while tables allocated to it were never freed")
  /// A second entry of the allocation function `symbol` by one task: the return was lost.
  static func allocWithoutReturn(_ symbol: String) -> Rule {
    Rule(.allocWithoutReturn, .error, "\(symbol) was entered again by the same task without returning (the return was dropped)")
  }
  /// The 2 KiB s390 variants: a free through the wrong mm corrupts that mm's list.
  static let crossMm = Rule(.crossMm, .error, "a free names a different mm than the one the page was allocated to")

  // The 2 KiB s390 variants' entry points (page_table_alloc/free/free_rcu, __tlb_remove_table
  // with the half's tag in the pointer's low bits).
  static let s390TagMismatch = Rule(.execTagMismatch, .error, "a tlb tag that does not match the table: 3 on a non-pgste page, 1/2 on a pgste page or the wrong half, 0 on a PTE page")
  static let s390PgsteByTag = Rule(.pgsteInferred, .info, "an mm whose tables are whole pages (tlb tag 3) is replayed as a pgste (KVM) mm")
  static let s390FreeUnknown = Rule(.freeUnknown, .error, "a free of an address no allocation of this mm returned, or not a 2 KiB-aligned table")
  static let s390QueueWithoutPending = Rule(.queueWithoutPending, .error, "tlb_remove_table queued a half that page_table_free_rcu did not make pending")
  static let s390AllocBusyHalf = Rule(.allocBusyHalf, .error, "alloc returned a half that is already allocated")
  static let s390AllocDivergence = Rule(.allocDivergence, .error, "alloc returned a table the model cannot produce (misaligned, another mm's page, an unseen upper half)")
}

/// `[id: Rule]` for a model's rule list (ids are unique per model).
func ruleIndex(_ rules: [Rule]) -> [RuleID: Rule] {
  Dictionary(uniqueKeysWithValues: rules.map { ($0.key, $0) })
}

// MARK: - Allocations without a return

/// `allocUnreturned`: the capture ended inside the call (an explained inconclusive item), or
/// the same task entered `symbol` again, so its return is missing: inconclusive unless the
/// kprobe_profile shows the return probe missed nothing, then `alloc-without-return`.
/// `wasPredicted`: whether the mm's allocations were predicted until now (nil: the allocator
/// predicts nothing, as v6.7's one table per page; only the table is lost).
func reportUnreturnedAlloc(
  _ ctx: ReplayContext, _ e: Event, mm: UInt64, symbol: String, function: KernelFunction,
  wasPredicted: Bool?, rule: Rule
) {
  if e.count == 1 {
    ctx.report(
      Inconclusive(
        reason: .unreturnedAlloc, line: e.line, mm: mm,
        message: "the capture ended while pid \(e.pid) was inside \(symbol)",
        explainedBy: "the capture ended"))
    return
  }
  let unpredicted = "mm \(hex(mm)) is no longer predicted"
  let f = Finding(
    rule: rule, event: e, mm: mm, page: nil, half: nil,
    stateBefore: wasPredicted.map { $0 ? "mm synchronized" : "mm not predicted" } ?? "in \(symbol)",
    stateAfter: wasPredicted == nil ? "table unknown" : "mm not predicted",
    message:
      "\(symbol) entered by pid \(e.pid) never returned before the task entered it again: the return event is missing"
      + (wasPredicted == nil
        ? ", and with it one table of mm \(hex(mm))" : "; the table it returned is unknown, so \(unpredicted)"))
  ctx.report(
    Inconclusive(
      .missedProbe, missOf: function, f,
      "\(symbol) entered by pid \(e.pid) has no return before the task entered again; a missed return probe would explain it"
        + (wasPredicted == nil ? "" : "; \(unpredicted)")))
}

// MARK: - Simulation hand-off

/// A model whose frees can leave work for later (a tlb batch is not modelled here: its
/// executions are the caller's choice; RCU callbacks are the allocator's). A simulation
/// driver (`compare`, `synth`, property tests) asks which callback events are due and
/// feeds them back, in any order, whenever it lets a grace period pass.
public protocol RCUCallbackSource: AnyObject {
  /// The events the kernel's RCU callbacks would produce now, one per queued callback:
  /// `(.tlbExec, tagged table)` for the s390 proposals' per-half callbacks (Hugh's
  /// `pte_free_half`, which calls `__tlb_remove_table`), `(.rcuFree, page base)` for a
  /// page-level `pte_free_now` (powerpc, C3a).
  var dueRCUCallbacks: [(kind: Event.Kind, table: UInt64)] { get }
}

// MARK: - mm death

/// `leak`: the pgd of mm `mm` was freed (`seen`), or the mm was born again, while tables of
/// it (`live`, table addresses, sorted) were never freed. `page` maps a table to its page and
/// fragment (nil: the table is the page).
func reportLeak(
  _ ctx: ReplayContext, _ rule: Rule, _ e: Event, mm: UInt64, live: [UInt64], seen: Bool,
  page: ((UInt64) -> (UInt64, Int))? = nil
) {
  guard let first = live.first else { return }
  let list = live.prefix(6).map { hex($0) }.joined(separator: ", ") + (live.count > 6 ? ", …" : "")
  let (key, half): (UInt64, Int?) = page.map { $0(first) } ?? (first, nil)
  ctx.report(
    Finding(
      rule: rule, event: e, mm: mm, page: key, half: half,
      stateBefore: "\(live.count) live tables", stateAfter: "mm gone",
      message: seen
        ? "the pgd of mm \(hex(mm)) was freed while \(live.count) of its tables were never freed: \(list)"
        : "mm \(hex(mm)) was born again while \(live.count) tables of its previous life were never freed: \(list)"))
}

// MARK: - mms by serial

extension AddressMap {
  /// By an mm serial (`MM.serial`, an incarnation number ≥ 0; negative ones are never stored).
  subscript(serial s: Int32) -> Value? {
    get { self[UInt64(UInt32(bitPattern: s))] }
    set { self[UInt64(UInt32(bitPattern: s))] = newValue }
  }
}

// MARK: - Free functions

/// The functions through which an s390 PTE table is freed on the v6.6-era kernels the
/// proposals (C1, C2, C3a) and B build on (`pte_free` → `page_table_free`, `pte_free_tlb` →
/// `page_table_free_rcu`, `pte_free_defer`): a table the capture shows allocated and then
/// released with its page went through one of them unseen. (A, v6.1: the first two only,
/// `S390v61Model.tableFreeFunctions`.)
let s390TableFreeFunctions: [KernelFunction] = [.pageTableFreeRCU, .pageTableFree, .pteFreeDefer]
