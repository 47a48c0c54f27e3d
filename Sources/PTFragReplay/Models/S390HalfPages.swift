import PTFragEvents

// The machinery Hugh's v2 (C1) and Gerald's variant (C2) share on top of the s390 fragment
// engine (S390Engine.swift): both keep variant A's per-mm list and byte 3 of
// `page->_refcount`, add the HH bits ("PPHHAA", docs/kernel-models.md §1.4) and the same
// per-half RCU callbacks (`pte_free_half`, chained through the one `page->rcu_head`). What
// differs — which list operations each path does — is in the subclasses
// (S390HughV2Model.swift, S390GeraldModel.swift), written like their patches.

/// Base of the C1 and C2 models: the proposals' `pte_free_defer` and RCU callbacks, and how a
/// captured kernel's choices are followed (no kernel ran the proposals: allocation choices
/// are checked on the model's own simulation only). The subclasses write the kernel
/// procedures their patches change (`page_table_free`, `page_table_free_rcu`,
/// `pte_free_defer`, and Hugh's `__tlb_remove_table`) exactly as posted; this class never
/// decides a list operation itself.
public class S390HalfPagesModel: S390FragmentEngine, RCUCallbackSource {
  /// pid → table: the `page_table_free` a v6.6 `pte_free_defer` calls (capture mode).
  var nestedFree: [Int32: UInt64] = [:]

  /// What the `list-invariant` self-check tests: the patch's list rules.
  class var listInvariant: String {
    "a page on the list against the proposal's list rules, or a second use of page->rcu_head (model self-check)"
  }

  public required init(context: ReplayContext) {
    super.init(context: context, rules: s390ProposalRules(listInvariant: Self.listInvariant))
  }

  /// The allocator's choices are checked only on the model's own simulation.
  override var checksChoices: Bool { ctx.simulating }
  /// A simulation starts from nothing: every mm it names is new and empty.
  override var unseenMMKnown: Bool { ctx.simulating }
  override class var tableFreeFunctions: [KernelFunction] { s390TableFreeFunctions }
  override class var defersHalves: Bool { true }

  // MARK: Kernel procedures
  //
  // Each patch's `page_table_free`, `page_table_free_rcu` and `pte_free_defer` are the
  // subclass's overrides of `freeNow`, `freeTLB` and `deferBegin`; each starts with the entry
  // both patches share (`enterFreeNow`, `enterFreeTLB`, `enterDefer` below: the checks, pgste,
  // a captured v6.6 kernel's PG_active) and goes on with the patch's own code.

  /// `__tlb_remove_table(table | (h+1))` of half `h` (P set, H clear), and the
  /// `__tlb_remove_table(table | (0x01 << h))` of `pte_free_half`: as v6.4-rc, "clear P(h);
  /// byte 0 → release" (Gerald's version keeps it; Hugh's v2 re-lists the page).
  func tlbRemoveTable(_ key: UInt64, _ h: Int) {
    if pages[key]!.xor(PPHHAA.p(h)) == 0 { release(key) }
  }

  /// What a page must hold beyond the shared invariants under the subclass's list rules
  /// (nil: holds).
  func pageInvariantViolation(_ key: UInt64, _ p: Page) -> String? { nil }

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
        .listInvariant, e, mm: owner(of: key)?.address, page: key, half: Int(which),
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
    tlbRemoveTable(key, h)
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

  override func willStep(_ e: Event) {
    if e.kind != .freeNow { nestedFree[e.pid] = nil }
  }

  /// A page with a half of unknown history (that half may be live) is kept.
  override func release(_ key: UInt64) {
    guard pages[key]?.unknown == 0 else { return unlink(key) }
    drop(key)
  }

  override func alloc(_ e: Event) {
    let m = mm(at: e.mm)
    if e.table == 0 {
      ctx.stats.allocationsFailed += 1
      return
    }
    let (key, h) = split(e.table)
    ctx.record(page: key, e, mm: m?.address)
    let before = snapshot(key)
    if e.table & 0x7ff != 0 {
      finding(
        .allocDivergence, e, mm: m?.address, page: key, half: h, before: before,
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
          p.pgsteFreed ? .reuseBeforeGrace : .allocBusyHalf, e, mm: m?.address, page: key,
          half: h, before: before,
          "page_table_alloc returned \(hex(e.table)), part of a pgste table that is \(p.pgsteFreed ? "freed but not yet released" : "still live")")
        drop(key)
        freshPage(m, key, h)
        return
      }
      switch p.phase(h) {
      case .allocated:
        finding(
          .allocBusyHalf, e, mm: m?.address, page: key, half: h, before: before,
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
        diverge(e, m, predicted: predicted, observed, key, h, before, related: [])
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

  /// No kernel ran the proposals: a reuse is explained by missed probes on a capture (the
  /// captured kernel's lists are not the proposal's), never on the model's own simulation.
  override func reuseExplainable(_ p: Page, _ m: MM?, _ key: UInt64, _ h: Int, freshCase: Bool) -> Bool {
    !checksChoices
  }

  // MARK: Frees

  /// `page_table_free(mm, table)` up to the patch's own code: the half it frees (A set),
  /// nil when nothing is left to do (a nested free, a rejected free, a pgste page, a page a
  /// captured v6.6 kernel marked PG_active).
  func enterFreeNow(_ e: Event) -> (mm: MM?, key: UInt64, h: Int)? {
    if let t = nestedFree.removeValue(forKey: e.pid), t == e.table { return nil }
    let m = mm(at: e.mm)
    guard case let .apply(key, h) = checkedFree(e, "page_table_free", m).applied else { return nil }
    if pages[key]!.pgste {
      owner(of: key)?.liveTables -= 1
      release(key)
      return nil
    }
    if pages[key]!.activeInCapture {
      freeActiveInCapture(key, h)
      return nil
    }
    return (m ?? owner(of: key), key, h)
  }

  /// `page_table_free_rcu(tlb, table, vmaddr)` up to the patch's own code: the half it
  /// frees (A set), nil when nothing is left to do.
  func enterFreeTLB(_ e: Event) -> (mm: MM?, key: UInt64, h: Int)? {
    let named = mms[address: e.mm]
    guard case let .apply(key, h) = checkedFree(e, "page_table_free_rcu", named).applied else { return nil }
    if pages[key]!.pgste {
      pages[key]!.pgsteFreed = true
      return nil
    }
    pages[key]!.queued &= ~(1 << UInt8(h))
    pages[key]!.setPendingLine(h, e.line)
    if pages[key]!.activeInCapture {
      pages[key]!.bits ^= PPHHAA.a(h) | PPHHAA.p(h)
      unlink(key)
      return nil
    }
    if let m = owner(of: key), m.pgste == .unknown { m.pgste = .no }
    return (named ?? owner(of: key), key, h)
  }

  /// A capture of v6.6 (8211dad62798): after `pte_free_defer` marked the page PG_active, its
  /// frees never re-list it and the last one releases it (via RCU: not modelled here).
  func freeActiveInCapture(_ key: UInt64, _ h: Int) {
    pages[key]!.bits &= ~PPHHAA.a(h)
    unlink(key)
    if pages[key]!.bits == 0 { release(key) }
  }

  /// `pte_free_defer(mm, table)` up to the patch's own code for a half of a non-pgste page
  /// (nil: done — a rejected free, the pgste `call_rcu(pte_free_pgste)`, or a captured
  /// v6.6 kernel's PG_active path).
  func enterDefer(_ e: Event) -> (mm: MM?, key: UInt64, h: Int)? {
    let m = mm(at: e.mm)
    guard case let .apply(key, h) = checkedFree(e, "pte_free_defer", m).applied else { return nil }
    pages[key]!.setPendingLine(h, e.line)
    if pages[key]!.pgste {
      // "if (mm_alloc_pgste(mm)) { call_rcu(&page->rcu_head, pte_free_pgste); return; }"
      pages[key]!.pgsteFreed = true
      callRCU(key, 2, e)
      return nil
    }
    if !checksChoices {
      // A real capture with pte_free_defer is v6.6 (variant B): the captured kernel set
      // PG_active and called page_table_free (probed as a nested free, absorbed here).
      nestedFree[e.pid] = e.table
      pages[key]!.activeInCapture = true
      freeActiveInCapture(key, h)
      return nil
    }
    return (m ?? owner(of: key), key, h)
  }

  // MARK: The tlb batch (engine hooks)

  override func execPending(_ e: Event, _ key: UInt64, _ h: Int) {
    pages[key]!.queued &= ~(1 << UInt8(h))
    if pages[key]!.activeInCapture {
      if pages[key]!.xor(PPHHAA.p(h)) == 0 { release(key) }
    } else {
      tlbRemoveTable(key, h)
    }
  }

  override func execPgste(_ e: Event, _ key: UInt64) {
    if pages[key]!.rcuHead == 2 { pages[key]!.rcuHead = -1 }
    release(key)
  }

  /// The RCU callback pte_free_now<h> runs pte_free_half, which calls
  /// __tlb_remove_table(table | (0x01 << h)): this event.
  override func execDeferred(_ e: Event, _ key: UInt64, _ h: Int) {
    let p = pages[key]!
    if p.rcuHead != Int8(h) {
      finding(
        .rcuCallbackNotQueued, e, mm: owner(of: key)?.address, page: key, half: h,
        before: describe(key),
        "__tlb_remove_table(\(hex(e.table))) from the RCU callback of the \(halfName(h)) half, whose callback was not queued: the page's one rcu_head \(p.rcuHead >= 0 ? "was queued for the \(halfName(Int(p.rcuHead))) half" : "was not in use") (the halves share page->rcu_head)",
        related: [p.pendingLine(h)].filter { $0 > 0 })
      pages[key]!.rcuHead = Int8(h)
    }
    procRCUCallback(key, h, e)
  }

  /// A page handed out lower half only, freed with tag 3: the mm allocates pgste tables.
  override func inferPgste(_ e: Event, _ key: UInt64) -> Bool {
    guard let p = pages[key], !p.upperSeen, p.phase(1) == .free,
      [.pending, .allocated].contains(p.phase(0)), let m = owner(of: key), m.pgste != .no
    else { return false }
    m.pgste = .yes
    needsRecount = true
    for k in pages.keys where pages[k]!.owner == m.serial && !pages[k]!.upperSeen {
      let q = pages[k]!
      guard q.phase(1) == .free, [.pending, .allocated].contains(q.phase(0)) else { continue }
      unlink(k)
      pages[k]!.pgste = true
      pages[k]!.pgsteFreed = q.phase(0) == .pending
      pages[k]!.bits = 0x03
    }
    finding(
      .pgsteInferred, e, mm: m.address, page: key, half: nil, before: "mm \(hex(m.address))",
      after: "pgste mm",
      "tlb_remove_table(\(hex(e.table))) queues a whole-page (pgste) table of mm \(hex(m.address)), whose pages never had an upper half handed out: replayed as a pgste (KVM) mm from here on"
    )
    return true
  }

  public func finish(lastLine: Int) { finishStats() }

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
      if p.listed, p.owner < 0 || mms[serial: p.owner] == nil {
        out.append("\(hex(k)): listed without an owning mm")
      }
      let deferred = (0..<2).filter { p.phase($0) == .deferred }
      if !deferred.isEmpty, !p.stranded, p.rcuHead < 0 || !deferred.contains(Int(p.rcuHead)) {
        out.append("\(hex(k)): deferred halves \(deferred) but rcu_head holds \(p.rcuHead)")
      }
    }
    for m in mms {
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
}
