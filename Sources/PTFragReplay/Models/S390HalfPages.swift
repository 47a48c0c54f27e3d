import PTFragEvents

// The machinery Hugh's v2 (C1) and Gerald's variant (C2) share: both keep variant A's
// per-mm list and byte 3 of `page->_refcount`, add the HH bits ("PPHHAA", kernel-models.md
// §1.4) and the same per-half RCU callbacks (`pte_free_half`, chained through the one
// `page->rcu_head`). What differs — which list operations each path does — is in the
// subclasses (S390HughV2Model.swift, S390GeraldModel.swift), written like their patches.

/// Bits of byte 3 of `page->_refcount` in the proposals: A(h) = 0x01 << h (allocated),
/// H(h) = 0x04 << h (waiting for or using `page->rcu_head`), P(h) = 0x10 << h (pending free
/// by any method). Lower half h = 0 at +0, upper h = 1 at +2048.
enum PPHHAA {
  @inline(__always) static func a(_ h: Int) -> UInt8 { 0x01 << UInt8(h) }
  @inline(__always) static func hh(_ h: Int) -> UInt8 { 0x04 << UInt8(h) }
  @inline(__always) static func p(_ h: Int) -> UInt8 { 0x10 << UInt8(h) }
}

/// What one 2 KiB half is, read off the bits.
public enum HalfPhase: UInt8, Sendable {
  /// No bit set.
  case free
  /// A.
  case allocated
  /// P: freed through the tlb batch, `__tlb_remove_table` not yet run.
  case pending
  /// H+P ("D" in kernel-models.md §4): freed by `pte_free_defer`, waiting for its RCU
  /// callback (queued, or chained behind the other half's on the shared `rcu_head`).
  case deferred
  /// The half's history lies before the capture.
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

/// One 4 KiB page of 2 KiB tables as the proposals keep it.
struct HalfPage: ListLinked {
  /// Byte 3 of `page->_refcount` (`PPHHAA`).
  var bits: UInt8 = 0
  /// Bit h: half h's state is not known (history before the capture, capture mode only).
  var unknown: UInt8 = 0
  /// Whole-page pgste table (A = {1,1} for life).
  var pgste = false
  /// pgste table freed: queued with tag 3, or `call_rcu(pte_free_pgste)` pending.
  var pgsteFreed = false
  /// Bit h: `tlb_remove_table` seen for pending half h.
  var queued: UInt8 = 0
  /// The half whose RCU callback holds `page->rcu_head` (`pte_free_now0/1` queued), -1
  /// none, 2 the pgste callback (`pte_free_pgste`).
  var rcuHead: Int8 = -1
  /// C2: `page->pt_frag_refcount` used as the "on the list" flag.
  var onlist = false
  /// An upper half was handed out at some time (a page that never had one may be pgste).
  var upperSeen = false
  /// Capture mode only: a v6.6 `pte_free_defer` (PG_active) marked the page, which the
  /// captured kernel then never put back on the list.
  var activeInCapture = false
  /// Owning mm (serial; `page->pt_mm`), -1 unknown.
  var owner: Int32
  var listed = false
  var prev: UInt64 = 0
  var next: UInt64 = 0
  /// Line of the free that made half h pending or deferred.
  var pendingLine: (Int, Int) = (0, 0)
  /// A deferred half whose callback the posted `pte_free_half` never queues (its chain test
  /// reads the unshifted `_refcount`): it stays D, and the page is never released.
  var stranded = false

  init(owner: Int32) { self.owner = owner }

  func phase(_ h: Int) -> HalfPhase {
    if unknown & (1 << UInt8(h)) != 0 { return .unknown }
    if bits & PPHHAA.a(h) != 0 { return .allocated }
    if bits & PPHHAA.hh(h) != 0 { return .deferred }
    if bits & PPHHAA.p(h) != 0 { return .pending }
    return .free
  }

  /// `atomic_xor_bits(&page->_refcount, m << 24) >> 24`: flips `m`, returns the new byte.
  @inline(__always) mutating func xor(_ m: UInt8) -> UInt8 {
    bits ^= m
    return bits
  }

  func pendingLine(_ h: Int) -> Int { h == 0 ? pendingLine.0 : pendingLine.1 }
  mutating func setPendingLine(_ h: Int, _ line: Int) {
    if h == 0 { pendingLine.0 = line } else { pendingLine.1 = line }
  }
}

/// Base of the C1 and C2 models: event decoding, per-half checks that hold on every
/// replay, resynchronisation on what a captured kernel did, mm lifetimes, occupancy. The
/// subclasses implement the kernel procedures (the `proc…` hooks) exactly as their patches
/// do; this class never decides a list operation itself.
public class S390HalfPagesModel: RCUCallbackSource {
  let ctx: ReplayContext
  let rules: [String: Rule]
  var pages = AddressMap<HalfPage>()

  final class MM {
    let serial: Int32
    let address: UInt64
    /// Born in the capture (or a simulation), state known: allocations are predicted.
    var known: Bool
    var bornLine: Int?
    var list = PageListHead()
    var liveTables = 0
    /// nil: not known whether the mm allocates pgste (whole-page) tables.
    var pgste: Bool?
    /// The head's free half as counted in this mm's `ctx.mmBook` entry (0 or 1).
    var headCounted = 0
    init(serial: Int32, address: UInt64, known: Bool) {
      self.serial = serial
      self.address = address
      self.known = known
    }
  }

  var mmByAddress = AddressMap<MM>()
  var mmBySerial = AddressMap<MM>()
  var nextSerial: Int32 = 0
  /// pid → table: the `page_table_free` a v6.6 `pte_free_defer` calls (capture mode).
  var nestedFree: [Int32: UInt64] = [:]

  init(context: ReplayContext, rules: [Rule]) {
    ctx = context
    self.rules = ruleIndex(rules)
  }

  /// The allocator's choices are checked only on the model's own simulation.
  var checksChoices: Bool { ctx.simulating }

  // MARK: Kernel procedures (subclasses)

  /// `page_table_alloc`, list part: the half taken from head page `p`, nil for a fresh page.
  func procPickHalf(_ p: HalfPage) -> Int? { fatalError("subclass") }
  /// `page_table_alloc` took half `h` of the head page `key`.
  func procAllocFromList(_ m: MM, _ key: UInt64, _ h: Int) { fatalError("subclass") }
  /// `page_table_alloc` made fresh page `key` (lower half handed out).
  func procAllocFresh(_ m: MM, _ key: UInt64) { fatalError("subclass") }
  /// `page_table_free(mm, table)` of half `h` (A set). Returns true if the page was released.
  func procFreeNow(_ m: MM?, _ key: UInt64, _ h: Int) { fatalError("subclass") }
  /// `page_table_free_rcu(tlb, table, vmaddr)` of half `h` (A set).
  func procFreeTLB(_ m: MM?, _ key: UInt64, _ h: Int) { fatalError("subclass") }
  /// `__tlb_remove_table(table | (h+1))` of half `h` (P set, H clear).
  func procTLBRemoveTable(_ key: UInt64, _ h: Int) { fatalError("subclass") }
  /// `pte_free_defer(mm, table)` of half `h` of a non-pgste page, up to its `call_rcu`.
  func procDefer(_ m: MM?, _ key: UInt64, _ h: Int, _ e: Event) { fatalError("subclass") }
  /// Invariants of one page the subclass's rules promise (nil = holds).
  func pageInvariantViolation(_ key: UInt64, _ p: HalfPage) -> String? { fatalError("subclass") }

  // MARK: Shared procedures (identical in Hugh's v2 and Gerald's variant)

  /// The `call_rcu` at the end of both patches' `pte_free_defer`: "Do not relink on
  /// rcu_head if other half already linked on rcu_head".
  func queueCallbackAfterDefer(_ key: UInt64, _ h: Int, mask: UInt8, _ e: Event) {
    guard mask & 0x0c != 0x0c else { return }
    callRCU(key, Int8(h), e)
  }

  /// `call_rcu(&page->rcu_head, …)`: the one rcu_head of the page must be free.
  func callRCU(_ key: UInt64, _ which: Int8, _ e: Event) {
    if ctx.simulating {
      // The callback is `pte_free_now0/1` (→ `__tlb_remove_table(table | (0x01 << h))`) or
      // `pte_free_pgste` (tag 3): its event is that `__tlb_remove_table`.
      ctx.callRCU(.tlbExec, which == 2 ? key | 3 : key + UInt64(which) * 0x800 + UInt64(which) + 1)
    }
    if let busy = pages[key]?.rcuHead, busy >= 0 {
      finding(
        "list-invariant", e, mm: owner(of: key)?.address, page: key, half: Int(which),
        before: describe(key),
        "call_rcu on page \(hex(key)) while its rcu_head is still queued for the \(busy == 2 ? "pgste table" : "\(halfName(Int(busy))) half") (model self-check)")
    }
    pages[key]?.rcuHead = which
  }

  /// `pte_free_half(head, bit)`, the RCU callback `pte_free_now0/1`, as posted (Hugh's v2
  /// 07/12 and Gerald's 2023-06-28 version, identical here):
  ///
  ///     mask = atomic_xor_bits(&page->_refcount, 0x04U << (bit + 24));
  ///     ...
  ///     __tlb_remove_table(table);
  ///     /* If pte_free_defer() of the other half came in, queue it now */
  ///     if (mask & 0x0CU)
  ///             call_rcu(&page->rcu_head, bit ? pte_free_now0 : pte_free_now1);
  ///
  /// `atomic_xor_bits()` returns the whole new `_refcount` (v6.4 `arch/s390/mm/pgalloc.c`),
  /// and unlike every other caller in the patch this one does not `mask >>= 24`: the test
  /// reads bits 2–3 of the page's ordinary reference count (1 for a page table), not the H
  /// bits at 26–27. So the other half's callback is never queued: when both halves were
  /// deferred within one grace period (the second `pte_free_defer` saw the first's H and did
  /// not `call_rcu`), the other half stays D (H|P) and the page is never freed — a leak of
  /// one 4 KiB page, with its ptlock and accounting. The model runs the code as posted
  /// (that is what the strategy would have cost); the stranded pages are counted.
  func procRCUCallback(_ key: UInt64, _ h: Int, _ e: Event) {
    pages[key]!.rcuHead = -1
    let mask = pages[key]!.xor(PPHHAA.hh(h))
    procTLBRemoveTable(key, h)
    let refcount = UInt32(mask) << 24 | Self.pageRefcount
    if refcount & 0x0c != 0, pages[key] != nil {
      callRCU(key, Int8(1 - h), e)
    } else if mask & 0x0c != 0, pages[key] != nil {
      pages[key]!.stranded = true
      strandedPages += 1
    }
  }

  /// The ordinary reference count of a page-table page (`alloc_page`): the low bits of the
  /// `_refcount` the posted chain test reads.
  static var pageRefcount: UInt32 { 1 }
  /// Pages whose deferred half's callback the posted chain test never queued.
  var strandedPages = 0

  /// What `compare` prints beside this strategy's row.
  public var simulationNotes: [String] {
    guard strandedPages > 0 else { return [] }
    return [
      "\(strandedPages) page\(strandedPages == 1 ? "" : "s") never freed: both halves deferred within one grace period, and the posted pte_free_half tests `mask & 0x0CU` on the unshifted _refcount, so the other half's callback is never queued (modelled as posted)"
    ]
  }

  // MARK: Helpers

  @inline(__always) func split(_ table: UInt64) -> (UInt64, Int) {
    (table & s390PageMask, table & s390HalfBit != 0 ? 1 : 0)
  }

  func mm(at address: UInt64?) -> MM? {
    guard let address else { return nil }
    if let m = mmByAddress[address] { return m }
    // A simulation starts from nothing: every mm it names is new and empty.
    let m = MM(serial: nextSerial, address: address, known: ctx.simulating)
    nextSerial += 1
    mmByAddress[address] = m
    mmBySerial[serial: m.serial] = m
    ctx.stats.mmsSeen += 1
    return m
  }

  func owner(of key: UInt64) -> MM? {
    guard let p = pages[key], p.owner >= 0 else { return nil }
    return mmBySerial[serial: p.owner]
  }

  /// `AD L` style (kernel-models.md §2.5 letters, D for a deferred half).
  func describe(_ key: UInt64) -> String {
    guard let p = pages[key] else { return "(none)" }
    if p.pgste { return p.pgsteFreed ? (p.rcuHead == 2 ? "Xd –" : "Xq –") : "X –" }
    return "\(p.phase(0).letter)\(p.phase(1).letter) \(p.listed ? "L" : "–")"
  }

  func finding(
    _ id: String, _ e: Event, mm: UInt64?, page: UInt64?, half: Int?, before: String,
    after: String? = nil, _ message: String, related: [Int] = []
  ) {
    ctx.report(
      Finding(
        rule: rules[id]!, event: e, mm: mm, page: page, half: half, stateBefore: before,
        stateAfter: after ?? page.map { describe($0) } ?? before, message: message,
        relatedLines: related))
  }

  func pushFront(_ m: MM, _ key: UInt64) { pages.pushFront(key, &m.list); pages[key]!.owner = m.serial }
  func pushBack(_ m: MM, _ key: UInt64) { pages.pushBack(key, &m.list); pages[key]!.owner = m.serial }
  func listDel(_ key: UInt64) {
    guard let p = pages[key], p.listed else { return }
    if let m = owner(of: key) { pages.unlink(key, &m.list) } else { pages[key]!.listed = false }
  }

  /// The kernel procedure saw byte 3 drop to 0 and releases the page to the buddy
  /// allocator. A page with a half of unknown history (that half may be live) is kept.
  func release(_ key: UInt64) {
    guard pages[key]?.unknown == 0 else { return listDel(key) }
    drop(key)
  }

  /// The page leaves the model (released, or replaced by what the kernel showed).
  func drop(_ key: UInt64) {
    listDel(key)
    pages.removeValue(forKey: key)
    ctx.released(page: key)
  }

  // MARK: Prediction

  enum Prediction: Equatable {
    case half(UInt64, Int)
    case fresh
  }

  /// What `page_table_alloc` returns for `m` now: a half of the list head, or a fresh page.
  func predict(_ m: MM) -> Prediction {
    if m.pgste == true { return .fresh }
    guard m.list.head != 0, let p = pages[m.list.head], let h = procPickHalf(p) else {
      return .fresh
    }
    return .half(m.list.head, h)
  }

  public func simulateAlloc(mm address: UInt64, fresh: () -> UInt64) -> UInt64 {
    guard let m = mmByAddress[address] else { return fresh() }
    switch predict(m) {
    case .fresh: return fresh()
    case .half(let k, let h): return k + UInt64(h) * 0x800
    }
  }

  public var dueRCUCallbacks: [(kind: Event.Kind, table: UInt64)] {
    pages.compactMap { key, p in
      switch p.rcuHead {
      case 0, 1: (.tlbExec, key + UInt64(p.rcuHead) * 0x800 + UInt64(p.rcuHead) + 1)
      case 2: (.tlbExec, key | 3)
      default: nil
      }
    }.sorted { $0.table < $1.table }
  }

  // MARK: Events

  public func apply(_ e: Event) {
    ctx.count(e.kind)
    let key = (e.table & ~3) & s390PageMask
    let touchesPage =
      e.kind != .lost && e.kind != .mmBirth && e.kind != .mmDeath && e.kind != .crstAlloc
      && e.kind != .crstFree && e.table != 0
    let ownerBefore = touchesPage ? owner(of: key) : nil
    let serialBefore = touchesPage ? pages[key]?.owner ?? -1 : -1
    let named = e.mm.flatMap { mmByAddress[$0] }
    let tallyBefore = touchesPage ? contribution(key) : Tally()
    if touchesPage { tally.remove(tallyBefore) }
    let headsBefore = headFree(ownerBefore) + (named !== ownerBefore ? headFree(named) : 0)
    dispatch(e)
    // A birth or death changes only the pages of the buried mm (`bury` rebooks them).
    if e.kind == .lost || needsRecount {
      needsRecount = false
      recount()
    } else {
      let tallyAfter = touchesPage ? contribution(key) : Tally()
      if touchesPage { tally.add(tallyAfter) }
      let namedAfter = named ?? e.mm.flatMap { mmByAddress[$0] }
      let ownerAfter = touchesPage ? owner(of: key) : nil
      var after = headFree(ownerBefore) + (namedAfter !== ownerBefore ? headFree(namedAfter) : 0)
      if let ownerAfter, ownerAfter !== ownerBefore, ownerAfter !== namedAfter {
        after += headFree(ownerAfter)
      }
      headsWithFree += after - headsBefore
      if ctx.mmBook.enabled {
        if touchesPage {
          ctx.mmBook.move(
            from: serialBefore, tallyBefore.occupancy, to: pages[key]?.owner ?? -1, tallyAfter.occupancy,
            address: { mmBySerial[serial: $0]?.address })
        }
        syncHead(ownerBefore)
        if namedAfter !== ownerBefore { syncHead(namedAfter) }
        if let ownerAfter, ownerAfter !== ownerBefore, ownerAfter !== namedAfter { syncHead(ownerAfter) }
      }
    }
    if pages.count > ctx.stats.peakPages { ctx.stats.peakPages = pages.count }
  }

  func dispatch(_ e: Event) {
    if e.kind != .freeNow { nestedFree[e.pid] = nil }
    switch e.kind {
    case .alloc: alloc(e)
    case .allocUnreturned: allocUnreturned(e)
    case .freeNow: freeNow(e)
    case .freeTLB: freeTLB(e)
    case .tlbQueue: tlbQueue(e)
    case .tlbExec: tlbExec(e)
    case .deferBegin: deferBegin(e)
    case .mmBirth:
      crstCovers(e)
      birth(e)
    case .mmDeath: death(e)
    case .lost: lost(e)
    case .crstAlloc: crstCovers(e)
    case .allocBegin, .deferEnd, .rcuFree, .crstFree, .fragmentFree, .fragDestroy, .pmdAlloc,
      .pmdFree, .mmExit:
      break
    }
  }

  /// `crst_table_alloc` takes an order-2 block (CRST_ALLOC_ORDER, 16 KiB; arch/s390/mm/pgalloc.c
  /// v6.1): a page of it the model holds went back to the buddy allocator unseen.
  func crstCovers(_ e: Event) {
    guard e.table != 0 else { return }
    let block = e.table & ~0x3fff
    for k in 0..<4 where pages[block + UInt64(k) * 0x1000] != nil {
      releasedUnseen(block + UInt64(k) * 0x1000, e, as: "inside the CRST table \(hex(e.table))")
    }
  }

  /// Nothing of the page is allocated (halves free, pending, deferred or unknown).
  func heldOnlyAsReleased(_ key: UInt64) -> Bool {
    guard let p = pages[key] else { return false }
    return p.pgste ? p.pgsteFreed : p.phase(0) != .allocated && p.phase(1) != .allocated
  }

  /// The kernel shows the page released (it came back `how`): a pending or deferred half's
  /// `__tlb_remove_table` was missed, an allocated half's free was missed (each inconclusive,
  /// settled by the kprobe_profile); a half of unknown history says nothing. The page leaves
  /// the model.
  func releasedUnseen(_ key: UInt64, _ e: Event, as how: String) {
    guard let p = pages[key] else { return }
    ctx.record(page: key, e, mm: e.mm)
    let before = describe(key)
    let holder = owner(of: key)
    var live = 0
    for h in p.pgste ? [0] : [0, 1] {
      let phase: HalfPhase = p.pgste ? (p.pgsteFreed ? .pending : .allocated) : p.phase(h)
      let table = key + UInt64(h) * 0x800
      let rule: String
      let probe: KernelFunction
      let what: String
      switch phase {
      case .pending, .deferred:
        (rule, probe, what) = ("reuse-before-grace", .tlbRemoveTableExec, "\(phase == .pending ? "pending" : "deferred") since line \(p.pendingLine(h)): probable missed __tlb_remove_table")
      case .allocated:
        live += 1
        (rule, probe, what) = ("alloc-busy-half", .pageTableFreeRCU, "allocated: probable missed free")
      case .free, .unknown: continue
      }
      let f = Finding(
        rule: rules[rule]!, event: e, mm: holder?.address, page: key, half: p.pgste ? nil : h,
        stateBefore: before, stateAfter: "(released)",
        message: "page \(hex(key)) came back from the buddy allocator \(how) while \(hex(table)) is \(what.split(separator: ":")[0]), and the kprobe_profile shows no missed \(probe == .tlbRemoveTableExec ? probe.symbol : s390TableFreeFunctions.map(\.symbol).joined(separator: ", "))")
      ctx.report(
        Inconclusive(
          reason: probe == .tlbRemoveTableExec ? .missedTLBExec : .missedProbe, line: e.line,
          mm: holder?.address, page: key,
          message: "page \(hex(key)) came back from the buddy allocator \(how) while \(hex(table)) is \(what)",
          wouldBeRule: rule, hingesOn: probe,
          alternatives: probe == .tlbRemoveTableExec ? [] : s390TableFreeFunctions.filter { $0 != probe },
          asFinding: f))
    }
    holder?.liveTables -= live
    drop(key)
    needsRecount = true
  }

  func allocUnreturned(_ e: Event) {
    guard let m = mm(at: e.mm) else { return }
    let wasKnown = m.known
    if e.count == 0 { m.known = false }
    reportUnreturnedAlloc(
      ctx, e, mm: m.address, symbol: "page_table_alloc", function: .pageTableAlloc,
      wasPredicted: wasKnown && checksChoices, rule: rules["alloc-without-return"]!)
  }

  func alloc(_ e: Event) {
    let m = mm(at: e.mm)
    if e.table == 0 {
      ctx.stats.allocationsFailed += 1
      return
    }
    let (key, h) = split(e.table)
    ctx.record(page: key, e, mm: m?.address)
    let before = describe(key)
    if e.table & 0x7ff != 0 {
      finding(
        "alloc-divergence", e, mm: m?.address, page: key, half: h, before: before,
        "page_table_alloc returned \(hex(e.table)), which is not a 2 KiB-aligned table")
      return
    }
    let predicted: Prediction? = (checksChoices && m?.known == true) ? predict(m!) : nil
    if predicted != nil {
      ctx.stats.allocationsPredicted += 1
    } else {
      ctx.stats.allocationsUnverified += 1
    }

    // 1. What the returned half was (every replay).
    if let p = pages[key] {
      if p.pgste {
        finding(
          p.pgsteFreed ? "reuse-before-grace" : "alloc-busy-half", e, mm: m?.address, page: key,
          half: h, before: before,
          "page_table_alloc returned \(hex(e.table)), part of a pgste table that is \(p.pgsteFreed ? "freed but not yet released" : "still live")")
        drop(key)
        freshPage(m, key, h)
        return
      }
      switch p.phase(h) {
      case .allocated:
        finding(
          "alloc-busy-half", e, mm: m?.address, page: key, half: h, before: before,
          "page_table_alloc returned \(hex(e.table)), whose \(halfName(h)) half is still allocated",
          related: ctx.history(of: key).filter { $0.kind == .alloc && $0.line < e.line }
            .suffix(1).map(\.line))
        adoptOwner(m, key)
        return
      case .pending, .deferred:
        reuseBeforeGrace(e, m, key, h, before)
        return
      case .free, .unknown:
        break
      }
    }

    // 2. The allocator's choice (own simulation only).
    if let predicted, let m {
      let observed: Prediction = pages[key] == nil ? .fresh : .half(key, h)
      if observed != predicted || (observed == .fresh && h == 1) {
        diverge(e, m, predicted, observed, key, h, before)
      }
    }

    // 3. Apply what the kernel did.
    if let p = pages[key] {
      // A page held with a half of unknown history that is not on this mm's list may have
      // been released unseen: it comes back fresh.
      if h == 0 && p.phase(1) == .unknown && !(p.listed && p.owner == m?.serial) {
        drop(key)
        freshPage(m, key, 0)
      } else {
        takeHalf(m, key, h)
      }
    } else {
      freshPage(m, key, h)
    }
  }

  /// The kernel handed out half `h` (checked free or of unknown history) of a page the
  /// model holds: the model's alloc path from the list (set A, `list_del`).
  func takeHalf(_ m: MM?, _ key: UInt64, _ h: Int) {
    adoptOwner(m, key)
    if h == 1 { pages[key]!.upperSeen = true }
    pages[key]!.unknown &= ~(1 << UInt8(h))
    pages[key]!.bits &= ~(PPHHAA.a(h) | PPHHAA.hh(h) | PPHHAA.p(h))
    if let m {
      procAllocFromList(m, key, h)
      m.liveTables += 1
      if h == 1, m.pgste == nil { m.pgste = false }
    } else {
      pages[key]!.bits |= PPHHAA.a(h)
      listDel(key)
    }
  }

  /// The page changes hands to `m` (a divergence, or a page seen first in another mm).
  func adoptOwner(_ m: MM?, _ key: UInt64) {
    guard let m, let p = pages[key], p.owner != m.serial else { return }
    let aCount = (0..<2).filter { p.phase($0) == .allocated }.count
    if let old = owner(of: key) {
      old.liveTables -= aCount
      listDel(key)
    }
    m.liveTables += aCount
    pages[key]!.owner = m.serial
  }

  func freshPage(_ m: MM?, _ key: UInt64, _ h: Int) {
    var p = HalfPage(owner: m?.serial ?? -1)
    guard let m else {
      p.bits = PPHHAA.a(h)
      p.unknown = 1 << UInt8(1 - h)
      pages[key] = p
      return
    }
    m.liveTables += 1
    if h == 1 {
      // The upper half of a page the model never saw: its lower half is unknown.
      p.bits = PPHHAA.a(1)
      p.unknown = 1
      p.upperSeen = true
      pages[key] = p
      if m.pgste == nil { m.pgste = false }
      return
    }
    if m.pgste == true {
      p.bits = 0x03
      p.pgste = true
      pages[key] = p
      return
    }
    pages[key] = p
    procAllocFresh(m, key)
  }

  /// The kernel handed out a half the model holds as pending (P) or deferred (H+P).
  func reuseBeforeGrace(_ e: Event, _ m: MM?, _ key: UInt64, _ h: Int, _ before: String) {
    let p = pages[key]!
    let freeLine = p.pendingLine(h)
    // A page whose halves are all pending or free, handed out as a fresh page: both
    // pending halves' executions are missing. Otherwise only this half's.
    let freshCase = h == 0 && p.phase(1) != .allocated && !(p.listed && p.owner == m?.serial)
    let missing = freshCase ? [0, 1].filter { [.pending, .deferred].contains(p.phase($0)) } : [h]
    let base = Finding(
      rule: rules["reuse-before-grace"]!, event: e, mm: m?.address, page: key, half: h,
      stateBefore: before, stateAfter: "\(h == 0 ? "A\(p.phase(1).letter)" : "\(p.phase(0).letter)A") –",
      message:
        "page_table_alloc returned \(hex(e.table)), whose \(p.phase(h) == .deferred ? "H and P bits are" : "P bit is") set since line \(freeLine); no \(p.phase(h) == .deferred ? "RCU callback (__tlb_remove_table)" : "__tlb_remove_table") cleared \(p.phase(h) == .deferred ? "them" : "it")",
      relatedLines: freeLine > 0 ? [freeLine] : [])
    if checksChoices {
      // The model's own simulation never hands out a pending half.
      ctx.report(base)
    } else {
      for mh in missing {
        var f = base
        f.message += ", and the kprobe_profile shows no missed __tlb_remove_table"
        ctx.report(
          Inconclusive(
            reason: .missedTLBExec, line: e.line, mm: m?.address, page: key,
            message:
              "page_table_alloc returned \(hex(e.table)) while the \(halfName(mh)) half of page \(hex(key)) is pending since line \(p.pendingLine(mh)): probable missed __tlb_remove_table(\(hex(key + UInt64(mh) * 0x800 + UInt64(mh + 1))))",
            wouldBeRule: "reuse-before-grace", hingesOn: .tlbRemoveTableExec,
            asFinding: mh == missing[0] ? f : nil))
      }
    }
    // Resynchronise: the missing executions ran.
    for mh in missing where p.phase(mh) == .pending { ctx.inferred(.exec(table: key + UInt64(mh) * 0x800)) }
    if freshCase {
      drop(key)
      freshPage(m, key, 0)
    } else {
      pages[key]!.bits &= ~(PPHHAA.hh(h) | PPHHAA.p(h))
      pages[key]!.queued &= ~(1 << UInt8(h))
      if pages[key]!.rcuHead == Int8(h) { pages[key]!.rcuHead = -1 }
      takeHalf(m, key, h)
    }
  }

  /// The allocator's choice is not the model's (own simulation only).
  func diverge(
    _ e: Event, _ m: MM, _ predicted: Prediction, _ observed: Prediction, _ key: UInt64,
    _ h: Int, _ before: String
  ) {
    let predictedText: String
    switch predicted {
    case .fresh: predictedText = "a fresh page (the list head has no usable half)"
    case .half(let k, let ph):
      predictedText = "\(hex(k + UInt64(ph) * 0x800)) (the \(halfName(ph)) half of the list head)"
    }
    let p = pages[key]
    let rule: String
    switch (observed, predicted) {
    case (.fresh, .half): rule = h == 1 ? "alloc-divergence" : "alloc-fresh-while-head-usable"
    case (.fresh, .fresh): rule = "alloc-divergence"
    case (.half(let k, _), .half(let pk, _)) where k == pk: rule = "alloc-wrong-half"
    case (.half, _) where p?.listed == true && p?.owner == m.serial:
      rule = predicted == .fresh ? "alloc-listed-while-fresh" : "alloc-not-head"
    default: rule = "alloc-divergence"
    }
    let heads = pages.keys(of: m.list, limit: 4).map { "\(hex($0)) \(describe($0))" }
    finding(
      rule, e, mm: m.address, page: key, half: h, before: before,
      "page_table_alloc returned \(hex(e.table)); the model predicted \(predictedText) for mm \(hex(m.address)) [list: \(heads.isEmpty ? "empty" : heads.joined(separator: ", "))\(m.list.count > 4 ? ", … \(m.list.count) pages" : "")]"
    )
  }

  // MARK: Frees

  /// Checks shared by the three free paths; returns the page and half if the free applies.
  func checkedFree(_ e: Event, _ what: String, _ m: MM?) -> (UInt64, Int)? {
    let (key, h) = split(e.table)
    ctx.record(page: key, e, mm: e.mm ?? owner(of: key)?.address)
    let before = describe(key)
    if e.table & 0x7ff != 0 || e.table == 0 {
      finding(
        "free-unknown", e, mm: e.mm, page: key, half: h, before: before,
        "\(what)(\(hex(e.table))) is not a 2 KiB-aligned table")
      return nil
    }
    guard let p = pages[key] else {
      if let m, m.known {
        finding(
          "free-unknown", e, mm: m.address, page: key, half: h, before: before,
          "\(what) of \(hex(e.table)), which no allocation of mm \(hex(m.address))\(m.bornLine.map { " (born at line \($0))" } ?? "") returned")
      } else {
        // Allocated before the capture: the page's other half is unknown.
        ctx.stats.freesUntracked += 1
        var np = HalfPage(owner: m?.serial ?? -1)
        np.unknown = 1 << UInt8(1 - h)
        np.bits = PPHHAA.a(h)
        pages[key] = np
        return (key, h)
      }
      return nil
    }
    if let m, p.owner >= 0, p.owner != m.serial {
      finding(
        "cross-mm", e, mm: m.address, page: key, half: h, before: before,
        "\(what) names mm \(hex(m.address)), but \(hex(key)) was allocated to mm \(owner(of: key).map { hex($0.address) } ?? "(gone)")")
    }
    if p.pgste { return (key, h) }
    switch p.phase(h) {
    case .allocated: owner(of: key)?.liveTables -= 1
    case .unknown:
      ctx.stats.freesUntracked += 1
      pages[key]!.unknown &= ~(1 << UInt8(h))
      pages[key]!.bits |= PPHHAA.a(h)
    case .free, .pending, .deferred:
      let pl = p.pendingLine(h)
      finding(
        "double-free", e, mm: e.mm ?? owner(of: key)?.address, page: key, half: h, before: before,
        "\(what) of \(hex(e.table)), whose \(halfName(h)) half is \(p.phase(h) == .free ? "already free" : "\(p.phase(h) == .deferred ? "deferred" : "pending") since line \(pl)")",
        related: pl > 0 ? [pl] : [])
      return nil
    }
    return (key, h)
  }

  /// A second free of a whole-page pgste table: `double-free` (true: reported).
  func pgsteFreedTwice(_ e: Event, _ key: UInt64, _ h: Int, _ what: String) -> Bool {
    guard pages[key]!.pgsteFreed else { return false }
    finding(
      "double-free", e, mm: e.mm, page: key, half: h, before: describe(key),
      "\(what) of pgste table \(hex(e.table)), already freed")
    return true
  }

  func freeNow(_ e: Event) {
    if let t = nestedFree.removeValue(forKey: e.pid), t == e.table { return }
    let m = mm(at: e.mm)
    guard let (key, h) = checkedFree(e, "page_table_free", m) else { return }
    if pages[key]!.pgste {
      if pgsteFreedTwice(e, key, h, "page_table_free") { return }
      owner(of: key)?.liveTables -= 1
      release(key)
      return
    }
    if pages[key]!.activeInCapture {
      return freeActiveInCapture(key, h)
    }
    procFreeNow(m ?? owner(of: key), key, h)
  }

  func freeTLB(_ e: Event) {
    let named = e.mm.flatMap { mmByAddress[$0] }
    guard let (key, h) = checkedFree(e, "page_table_free_rcu", named) else { return }
    if pages[key]!.pgste {
      if !pgsteFreedTwice(e, key, h, "page_table_free_rcu") { pages[key]!.pgsteFreed = true }
      return
    }
    pages[key]!.queued &= ~(1 << UInt8(h))
    pages[key]!.setPendingLine(h, e.line)
    if pages[key]!.activeInCapture {
      pages[key]!.bits ^= PPHHAA.a(h) | PPHHAA.p(h)
      listDel(key)
      return
    }
    procFreeTLB(named ?? owner(of: key), key, h)
    if let m = owner(of: key), m.pgste == nil { m.pgste = false }
  }

  /// A capture of v6.6 (8211dad62798): after `pte_free_defer` marked the page PG_active, its
  /// frees never re-list it and the last one releases it (via RCU: not modelled here).
  func freeActiveInCapture(_ key: UInt64, _ h: Int) {
    pages[key]!.bits &= ~PPHHAA.a(h)
    listDel(key)
    if pages[key]!.bits == 0 { release(key) }
  }

  func deferBegin(_ e: Event) {
    let m = mm(at: e.mm)
    guard let (key, h) = checkedFree(e, "pte_free_defer", m) else { return }
    pages[key]!.setPendingLine(h, e.line)
    if pages[key]!.pgste {
      // "if (mm_alloc_pgste(mm)) { call_rcu(&page->rcu_head, pte_free_pgste); return; }"
      if pgsteFreedTwice(e, key, h, "pte_free_defer") { return }
      pages[key]!.pgsteFreed = true
      callRCU(key, 2, e)
      return
    }
    if !checksChoices {
      // A real capture with pte_free_defer is v6.6 (variant B): the captured kernel set
      // PG_active and called page_table_free (probed as a nested free, absorbed here).
      nestedFree[e.pid] = e.table
      pages[key]!.activeInCapture = true
      return freeActiveInCapture(key, h)
    }
    procDefer(m ?? owner(of: key), key, h, e)
  }

  func tlbQueue(_ e: Event) {
    let tag = Int(e.table & 3)
    let base = e.table & ~3
    let (key, h) = split(base)
    guard let p = pages[key] else { return }
    if tag == 0 && heldOnlyAsReleased(key) {
      return releasedUnseen(key, e, as: "as the CRST table that tlb_remove_table(\(hex(e.table))) queues")
    }
    ctx.record(page: key, e, mm: e.mm)
    let before = describe(key)
    switch tag {
    case 0:
      finding(
        "exec-tag-mismatch", e, mm: e.mm, page: key, half: nil, before: before,
        "tlb_remove_table(\(hex(e.table))) with tag 0 (CRST) names a page the model holds as PTE tables")
    case 3:
      if !p.pgste && !inferPgste(e, key) {
        finding(
          "exec-tag-mismatch", e, mm: e.mm, page: key, half: nil, before: before,
          "tlb_remove_table(\(hex(e.table))) with tag 3 (pgste) on a page that is not a pgste table")
      }
    default:
      if p.pgste || tag - 1 != h || base & 0x7ff != 0 {
        finding(
          "exec-tag-mismatch", e, mm: e.mm, page: key, half: h, before: before,
          p.pgste
            ? "tlb_remove_table(\(hex(e.table))) with tag \(tag) on a pgste page (tag 3 expected)"
            : "tlb_remove_table(\(hex(e.table))): tag \(tag) names the \(halfName(tag - 1)) half, the address the \(halfName(h)) half")
        return
      }
      switch p.phase(h) {
      case .pending:
        if p.queued & (1 << UInt8(h)) != 0 {
          finding(
            "double-free", e, mm: e.mm, page: key, half: h, before: before,
            "tlb_remove_table(\(hex(e.table))) queues the \(halfName(h)) half a second time (freed twice through the tlb batch)")
        }
        pages[key]!.queued |= 1 << UInt8(h)
      case .unknown: break
      case .free, .allocated, .deferred:
        finding(
          "queue-without-pending", e, mm: e.mm, page: key, half: h, before: before,
          "tlb_remove_table(\(hex(e.table))) queues the \(halfName(h)) half, which is \(p.phase(h) == .deferred ? "waiting for its RCU callback" : p.phase(h) == .free ? "free" : "allocated"), not pending from page_table_free_rcu")
      }
    }
  }

  /// A page handed out lower half only, freed with tag 3: the mm allocates pgste tables.
  func inferPgste(_ e: Event, _ key: UInt64) -> Bool {
    guard let p = pages[key], !p.upperSeen, p.phase(1) == .free,
      [.pending, .allocated].contains(p.phase(0)), let m = owner(of: key), m.pgste != false
    else { return false }
    m.pgste = true
    needsRecount = true
    for k in pages.keys where pages[k]!.owner == m.serial && !pages[k]!.upperSeen {
      let q = pages[k]!
      guard q.phase(1) == .free, [.pending, .allocated].contains(q.phase(0)) else { continue }
      listDel(k)
      pages[k]!.pgste = true
      pages[k]!.pgsteFreed = q.phase(0) == .pending
      pages[k]!.bits = 0x03
    }
    finding(
      "pgste-inferred", e, mm: m.address, page: key, half: nil, before: "mm \(hex(m.address))",
      after: "pgste mm",
      "tlb_remove_table(\(hex(e.table))) queues a whole-page (pgste) table of mm \(hex(m.address)), whose pages never had an upper half handed out: replayed as a pgste (KVM) mm from here on"
    )
    return true
  }

  func tlbExec(_ e: Event) {
    let tag = Int(e.table & 3)
    let base = e.table & ~3
    let (key, h) = split(base)
    guard let p = pages[key] else {
      if tag != 0 { ctx.stats.execsUntracked += 1 }
      return
    }
    if tag == 0 && heldOnlyAsReleased(key) {
      return releasedUnseen(key, e, as: "as the CRST table that __tlb_remove_table(\(hex(e.table))) frees")
    }
    ctx.record(page: key, e, mm: nil)
    let before = describe(key)
    let pageOwner = owner(of: key)
    switch tag {
    case 0:
      finding(
        "exec-tag-mismatch", e, mm: pageOwner?.address, page: key, half: nil, before: before,
        "__tlb_remove_table(\(hex(e.table))) with tag 0 (CRST) names a page the model holds as PTE tables")
    case 3:
      guard p.pgste || inferPgste(e, key) else {
        finding(
          "exec-tag-mismatch", e, mm: pageOwner?.address, page: key, half: nil, before: before,
          "__tlb_remove_table(\(hex(e.table))) with tag 3 (pgste) on a page that is not a pgste table")
        return
      }
      guard pages[key]!.pgsteFreed else {
        finding(
          "exec-without-pending", e, mm: pageOwner?.address, page: key, half: nil, before: before,
          "__tlb_remove_table(\(hex(e.table))) of a pgste table that was not freed")
        return
      }
      if pages[key]!.rcuHead == 2 { pages[key]!.rcuHead = -1 }
      pageOwner?.liveTables -= 1
      release(key)
    default:
      if p.pgste || tag - 1 != h || base & 0x7ff != 0 {
        finding(
          "exec-tag-mismatch", e, mm: pageOwner?.address, page: key, half: h, before: before,
          p.pgste
            ? "__tlb_remove_table(\(hex(e.table))) with tag \(tag) on a pgste page (tag 3 expected)"
            : "__tlb_remove_table(\(hex(e.table))): tag \(tag) names the \(halfName(tag - 1)) half, the address the \(halfName(h)) half")
        return
      }
      switch p.phase(h) {
      case .pending, .unknown:
        if p.phase(h) == .unknown {
          ctx.stats.execsUntracked += 1
          pages[key]!.unknown &= ~(1 << UInt8(h))
          pages[key]!.bits |= PPHHAA.p(h)
        }
        pages[key]!.queued &= ~(1 << UInt8(h))
        if pages[key]!.activeInCapture {
          if pages[key]!.xor(PPHHAA.p(h)) == 0 { release(key) }
        } else {
          procTLBRemoveTable(key, h)
        }
      case .deferred:
        // The RCU callback pte_free_now<h> runs pte_free_half, which calls
        // __tlb_remove_table(table | (0x01 << h)): this event.
        if p.rcuHead != Int8(h) {
          finding(
            "rcu-callback-not-queued", e, mm: pageOwner?.address, page: key, half: h,
            before: before,
            "__tlb_remove_table(\(hex(e.table))) from the RCU callback of the \(halfName(h)) half, whose callback was not queued: the page's one rcu_head \(p.rcuHead >= 0 ? "was queued for the \(halfName(Int(p.rcuHead))) half" : "was not in use") (the halves share page->rcu_head)",
            related: [p.pendingLine(h)].filter { $0 > 0 })
          pages[key]!.rcuHead = Int8(h)
        }
        procRCUCallback(key, h, e)
      case .free, .allocated:
        finding(
          "exec-without-pending", e, mm: pageOwner?.address, page: key, half: h, before: before,
          "__tlb_remove_table(\(hex(e.table))) executes the \(halfName(h)) half, which is \(p.phase(h) == .free ? "free" : "allocated"): no page_table_free_rcu or pte_free_defer made it pending")
      }
    }
  }

  // MARK: mm lifetimes

  func birth(_ e: Event) {
    guard let address = e.mm else { return }
    if let old = mmByAddress[address] { bury(old, e, seen: false) }
    let m = MM(serial: nextSerial, address: address, known: true)
    nextSerial += 1
    m.bornLine = e.line
    mmByAddress[address] = m
    mmBySerial[serial: m.serial] = m
    ctx.stats.mmsBorn += 1
    ctx.stats.mmsSeen += 1
  }

  func death(_ e: Event) {
    guard let address = e.mm, let m = mmByAddress[address] else { return }
    bury(m, e, seen: true)
    ctx.stats.mmsDied += 1
  }

  /// By the time the pgd goes, exit_mmap has freed every table of the mm (A's I8).
  func bury(_ m: MM, _ e: Event, seen: Bool) {
    ctx.mmBook.died(m.serial)
    var live: [UInt64] = []
    if m.liveTables != 0 {
      for (k, p) in pages where p.owner == m.serial {
        if p.pgste && !p.pgsteFreed { live.append(k) }
        if !p.pgste {
          for h in 0..<2 where p.phase(h) == .allocated { live.append(k + UInt64(h) * 0x800) }
        }
      }
    }
    live.sort()
    if !live.isEmpty {
      reportLeak(ctx, rules["leak"]!, e, mm: m.address, live: live, seen: seen, page: split)
      // Forget them: later events of these tables are judged as of unknown history.
      for t in live {
        let (k, h) = split(t)
        rebook(k) {
          if pages[k]!.pgste {
            pages[k]!.pgsteFreed = true
          } else {
            pages[k]!.bits &= ~PPHHAA.a(h)
            pages[k]!.unknown |= 1 << UInt8(h)
          }
        }
      }
    }
    // The mm's head is counted by `apply` (the event names the mm); its pages leave the list.
    while m.list.head != 0 {
      let k = m.list.head
      rebook(k) { pages.unlink(k, &m.list) }
    }
    mmByAddress[m.address] = nil
    mmBySerial[serial: m.serial] = nil
  }

  func lost(_ e: Event) {
    ctx.stats.lostMarkers += 1
    ctx.stats.lostEvents += e.count
    for m in mmByAddress.values { m.known = false }
  }

  public func finish(lastLine: Int) {
    ctx.stats.pagesAtEnd = pages.count
    var live = 0
    for p in pages.values {
      live += p.pgste ? (p.pgsteFreed ? 0 : 1) : (0..<2).filter { p.phase($0) == .allocated }.count
    }
    ctx.stats.tablesLiveAtEnd = live
  }

  // MARK: Invariants (tests, self-checks)

  /// Every page or list that breaks the model's invariants, described (empty: all hold).
  /// O(pages): for tests and debugging, not the hot path.
  public func invariantViolations() -> [String] {
    var out: [String] = []
    for (k, p) in pages.sorted(by: { $0.key < $1.key }) where !p.pgste && p.unknown == 0 {
      for h in 0..<2 {
        let b = p.bits
        if b & PPHHAA.a(h) != 0 && b & (PPHHAA.p(h) | PPHHAA.hh(h)) != 0 {
          out.append("\(hex(k)): \(halfName(h)) half has A with P or H (byte \(hex(UInt64(b))))")
        }
        if b & PPHHAA.hh(h) != 0 && b & PPHHAA.p(h) == 0 {
          out.append("\(hex(k)): \(halfName(h)) half has H without P")
        }
      }
      if p.bits == 0 { out.append("\(hex(k)): held with no bit set (should have been released)") }
      if let v = pageInvariantViolation(k, p) { out.append("\(hex(k)) \(describe(k)): \(v)") }
      if p.listed, p.owner < 0 || mmBySerial[serial: p.owner] == nil {
        out.append("\(hex(k)): listed without an owning mm")
      }
      let deferred = (0..<2).filter { p.phase($0) == .deferred }
      if !deferred.isEmpty, !p.stranded, p.rcuHead < 0 || !deferred.contains(Int(p.rcuHead)) {
        out.append("\(hex(k)): deferred halves \(deferred) but rcu_head holds \(p.rcuHead)")
      }
    }
    for m in mmByAddress.values {
      var n = 0
      var k = m.list.head
      while k != 0, let p = pages[k], n <= m.list.count {
        if p.owner != m.serial { out.append("\(hex(k)): on mm \(hex(m.address))'s list, owned by another") }
        n += 1
        k = p.next
      }
      if n != m.list.count { out.append("mm \(hex(m.address)): list length \(n) ≠ count \(m.list.count)") }
    }
    return out
  }

  // MARK: Occupancy (kernel-models.md §8), kept by difference around each event

  struct Tally {
    var live = 0, pending = 0, unknown = 0, free = 0, freeListed = 0
    mutating func add(_ b: Tally) {
      live += b.live; pending += b.pending; unknown += b.unknown
      free += b.free; freeListed += b.freeListed
    }
    mutating func remove(_ b: Tally) {
      live -= b.live; pending -= b.pending; unknown -= b.unknown
      free -= b.free; freeListed -= b.freeListed
    }
    /// One page's tally as occupancy.
    var occupancy: Occupancy {
      s390PageOccupancy(live: live, pending: pending, unknown: unknown, free: free, freeListed: freeListed)
    }
  }
  var tally = Tally()
  /// Σ over mms: 1 if the list head has the free half the next alloc takes.
  var headsWithFree = 0
  var needsRecount = false

  func contribution(_ key: UInt64) -> Tally {
    var t = Tally()
    guard let p = pages[key] else { return t }
    if p.pgste {
      if p.pgsteFreed { t.pending = 2 } else { t.live = 2 }
      return t
    }
    for h in 0..<2 {
      switch p.phase(h) {
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
    guard let m, m.list.head != 0, let p = pages[m.list.head], let h = procPickHalf(p) else {
      return 0
    }
    return p.phase(h) == .free ? 1 : 0
  }

  /// Changes page `key` outside the page an event names (an mm's burial), keeping the
  /// tally and the per-mm book as `apply` does for that page: O(1), no recount.
  func rebook(_ key: UInt64, _ change: () -> Void) {
    let before = contribution(key)
    let serialBefore = pages[key]?.owner ?? -1
    tally.remove(before)
    change()
    let after = contribution(key)
    tally.add(after)
    if ctx.mmBook.enabled {
      ctx.mmBook.move(
        from: serialBefore, before.occupancy, to: pages[key]?.owner ?? -1, after.occupancy,
        address: { mmBySerial[serial: $0]?.address })
    }
  }

  func recount() {
    tally = Tally()
    for k in pages.keys { tally.add(contribution(k)) }
    headsWithFree = mmByAddress.values.reduce(0) { $0 + headFree($1) }
    guard ctx.mmBook.enabled else { return }
    var byMM: [Int32: (UInt64, Occupancy)] = [:]
    for (k, p) in pages where p.owner >= 0 {
      byMM[p.owner, default: (mmBySerial[serial: p.owner]?.address ?? 0, Occupancy())].1.add(contribution(k).occupancy)
    }
    for m in mmByAddress.values {
      m.headCounted = headFree(m)
      if m.headCounted > 0 { byMM[m.serial, default: (m.address, Occupancy())].1.add(s390HeadDelta) }
    }
    ctx.mmBook.replaceAll(byMM)
  }

  /// Re-counts `m`'s head into its book entry.
  func syncHead(_ m: MM?) {
    guard let m else { return }
    syncHeadCount(ctx, m.serial, m.address, now: headFree(m), counted: &m.headCounted)
  }

  /// Self-check for tests: the kept occupancy equals a full recount.
  public func occupancyMatchesRecount() -> Bool {
    let kept = occupancy
    let keptByMM = ctx.mmBook.currentByMM
    recount()
    return kept == occupancy && keptByMM == ctx.mmBook.currentByMM
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
