import PTFragEvents

/// # s390 `pte_free_defer` on 2 KiB fragments — Linux v6.6 as merged (variant B; 6.6 LTS)
///
/// Encodes 8211dad62798 ("s390: add pte_free_defer() for pgtables sharing page") on top of
/// variant A: `arch/s390/mm/pgalloc.c` read at raspberrypi/linux@87c0bbc4187e (6.6.y, ptdesc
/// form) and frank-w/BPI-Router-Linux@9813e9518ef9 (the v3 posting's struct-page form);
/// docs/kernel-models.md §3. Everything A does, this model does (it is `S390v61Model` with the
/// deltas below); only the deltas are written here, as the commit wrote them.
///
/// ## Deltas (§3.1–3.2)
/// - Page flag **Active** (`*`, PG_active): set by `pte_free_defer` *before* its
///   `page_table_free`. No HH bits.
/// - `page_table_free` / `page_table_free_rcu` put a page on the list only if the other half
///   is allocated **and the page is not Active**; otherwise `list_del_init` (idempotent).
/// - The final release (`page_table_release_check`, then `pte_free_now`) goes through
///   `call_rcu(&ptdesc->pt_rcu_head, pte_free_now)` when `folio_test_clear_active` finds the
///   page Active: the page enters **R** and stays held until the callback. Otherwise
///   `pte_free_now` runs at once.
/// - `pte_free_defer(mm, table)`: `SetPageActive`, `page_table_free(mm, table)`,
///   `WARN_ON_ONCE(mm_has_pgste(mm))` (`mm_alloc_pgste` in the v3 posting; removed as a false
///   positive by 5647f61ad917, stable 6.6+). A pgste page takes the pgste branch and enters R.
///
/// ## States (§3.5)
/// A's states, each with or without `*`; plus R. Any free or exec on a `*` page follows A's
/// table with every "L" replaced by "–"; "→ release" becomes "→ R" on a `*` page;
/// `R –pte_free_now→ release`. Alloc from a `*` page is ✗ (I9) except inside a
/// `pte_free_defer` window (§3.3); R accepts nothing but its callback (I10).
///
/// ## The `pte_free_defer` window (§3.3)
/// Between `SetPageActive` and the deferring `page_table_free`'s lock section, another
/// task's `page_table_free` of the other half may have tested Active before it was set and
/// listed the page, and a third task may then allocate the free, non-deferred half. The
/// window is the call's entry → return: it opens at the `pte_free_defer` entry and closes at
/// its return (`.deferEnd`, when the capture probes the return), else at the deferring
/// task's next task-context event (its next alloc, free, tlb queue or defer; `__tlb_remove_table`
/// and `pte_free_now` may run in softirq on that task and do not close it), else at the end
/// of the capture. An alloc whose own entry → return window overlaps a defer window of the
/// same page, and which returns the page's *other* half, is legal (an explained
/// inconclusive item names it); anywhere else it is `alloc-from-active`. The deferring
/// `page_table_free` is the `page_table_free` hit of the same task and table inside the
/// window; without `page_table_free` probed, its effect is applied when the window closes
/// (that is where the kernel's lock section lies, as far as the capture can tell).
///
/// ## Closing R
/// `pte_free_now(head)` names the struct page (`head − 8`), not the table. `RCUHeadMapper`
/// learns the struct page ↔ VA bias from the first unambiguous hit (one page in R, or the
/// page the same CPU released directly just before: an out-of-line direct call) and from then
/// maps every hit: a hit on an R page ends R; a hit on a page that still holds tables, once
/// the mapping is confirmed by a second match, is `rcu-free-not-pending`. Without
/// `pte_free_now` probed (or before the bias is known) R ends when the page's address comes
/// back as a fresh page (lower half): the callback must have run, which is legal. With a
/// confirmed mapping such a return is a probable missed `pte_free_now`, settled by the
/// kprobe_profile. At the end of the capture, pages still in R count as pending.
/// A confirmed hit on a page the model holds with no table allocated is the direct call
/// (not Active): if a half's state predates the capture, that half was free (legal,
/// resynchronise); if a half is pending, its `__tlb_remove_table` ran unseen (a probable
/// missed exec, settled by the profile). Only a page holding an allocated table is
/// `rcu-free-not-pending`.
///
/// ## Invariants (§3.4, on top of A's I1–I8)
/// I2' listed ⇔ one A bit and not Active (outside §3.3); I9 Active ⇒ no alloc from the page
/// and no list add; I10 R accepts no A/P event and hands out no address; I11 no page leaves
/// while Active except through R.
public final class S390v66Model: S390v61Model {
  public static let rulesV66: [Rule] =
    S390v61Model.rules + [
      Rule(.allocFromActive, .error, "alloc returned the free half of an Active page (pte_free_defer used on it) outside any pte_free_defer window (I9, docs/kernel-models.md §3.3)"),
      Rule(.useWhileRcuPending, .error, "a free, tlb queue or exec, or pte_free_defer names a page whose final release waits for RCU (state R, I10)"),
      Rule(.reuseBeforeRcu, .error, "alloc returned a half of a page waiting in R before its pte_free_now ran (I10)"),
      Rule(.rcuFreeNotPending, .error, "pte_free_now released a page that is not waiting in R: it still holds tables (I11)"),
      Rule(.deferOnPgste, .info, "pte_free_defer on a pgste page: 6.6 warns (WARN_ON_ONCE) until 5647f61ad917 removed the warning as a false positive"),
    ]

  static let descriptorV66 = ModelDescriptor(
    id: "s390-6.6",
    kernels: "v6.6 (6.6 LTS)",
    commits: [
      "8211dad62798 s390: add pte_free_defer() for pgtables sharing page",
      "5647f61ad917 s390/mm: Remove possible false-positive warning in pte_free_defer() (v6.17, stable 6.6+)",
      "c2c224932fd0 s390/mm: fix 2KB pgtable release race (inherited from v6.1)",
      "620b4e903179 s390: use _refcount for pgtables (inherited from v6.1)",
    ],
    functions: [
      "page_table_alloc", "page_table_free", "page_table_free_rcu", "__tlb_remove_table",
      "tlb_remove_table", "pte_free_defer", "pte_free_now", "crst_table_alloc", "crst_table_free",
    ],
    summary: "v6.1's AA/PP fragments plus PageActive: pte_free_defer keeps the page off the list and its final release goes through call_rcu",
    rules: rulesV66, mainline: (from: (6, 6), through: (6, 6)))

  public override class var descriptor: ModelDescriptor { descriptorV66 }

  // MARK: State

  /// Pages with PG_active set (`*`).
  var active = Set<UInt64>()

  /// A page whose last bit cleared while Active: `call_rcu(pte_free_now)` queued (state R).
  struct Waiting {
    var owner: Int32
    /// Line of the event whose final step queued the callback.
    var line: Int
  }
  var rcu: [UInt64: Waiting] = [:]
  var heads = RCUHeadMapper()
  /// Per CPU: the page its latest event released directly (a `pte_free_now` hit right after
  /// it is the out-of-line direct call, not an RCU callback).
  var directRelease: [Int32: UInt64] = [:]

  /// One `pte_free_defer` call (§3.3 window).
  struct Defer {
    var pid: Int32
    var cpu: Int32
    var comm: Comm
    var mm: UInt64?
    var table: UInt64
    var line: Int
    var ns: UInt64
    /// The deferring `page_table_free` happened (seen as its own hit, or applied).
    var freeApplied = false
    /// Its own `page_table_free` hit was seen.
    var innerSeen = false
    /// The call itself was a finding (bad table, page in R): its free is not applied.
    var rejected = false
    /// Where the window closed (nil: open).
    var closedLine: Int? = nil
  }
  /// The `pte_free_defer` each task is inside.
  var deferByPID: [Int32: Defer] = [:]
  /// Defer windows per page, open or closed, until the page leaves the allocator.
  var windowsByPage: [UInt64: [Defer]] = [:]
  /// Tagged values whose `page_table_free_rcu` was a finding on a page in R: their
  /// `tlb_remove_table` (the same kernel call) is not another one.
  var rejectedQueue = Set<UInt64>()

  public required init(context: ReplayContext) { super.init(context: context) }

  // MARK: Hooks into A

  /// v6.6 frees a table through `pte_free_defer` too (khugepaged's retract_page_tables).
  override class var tableFreeFunctions: [KernelFunction] { [.pageTableFreeRCU, .pageTableFree, .pteFreeDefer] }

  /// `(mask & 0x03U) && !folio_test_active(...)`: never list an Active page (I9).
  override func mayList(_ key: UInt64) -> Bool { !active.contains(key) }

  /// `if (folio_test_clear_active(...)) call_rcu(...); else pte_free_now(...)`.
  override func final(_ key: UInt64, _ e: Event) {
    guard active.remove(key) != nil, let p = pages[key] else {
      super.final(key, e)
      directRelease[e.cpu] = key
      return
    }
    unlink(key)
    pages.removeValue(forKey: key)
    rcu[key] = Waiting(owner: p.owner, line: e.line)
    ctx.mmBook.adjust(p.owner, mms[serial: p.owner]?.address, Self.waitingPage)
    // call_rcu(&ptdesc->pt_rcu_head, pte_free_now), in a simulation.
    if ctx.simulating { ctx.callRCU(.rcuFree, heads.simulatedHead(for: key)) }
  }

  /// A page in R, as occupancy: held, both halves pending.
  static let waitingPage: Occupancy = {
    var o = Occupancy()
    o.pagesHeld = 1
    o.pending = 2
    return o
  }()

  override func addToRecount(_ byMM: inout [Int32: (UInt64, Occupancy)]) {
    for w in rcu.values where w.owner >= 0 {
      byMM[w.owner, default: (mms[serial: w.owner]?.address ?? 0, Occupancy())].1.add(Self.waitingPage)
    }
  }

  /// The page leaves R (its callback ran, or the trace shows it otherwise).
  func leaveR(_ key: UInt64) {
    guard let w = rcu.removeValue(forKey: key) else { return }
    ctx.mmBook.adjust(w.owner, mms[serial: w.owner]?.address, Self.waitingPage, sign: -1)
  }

  override func drop(_ key: UInt64) {
    active.remove(key)
    windowsByPage[key] = nil
    super.drop(key)
  }

  override func describe(_ key: UInt64) -> String {
    if rcu[key] != nil { return "R" }
    let s = super.describe(key)
    guard active.contains(key), pages[key] != nil, let sp = s.firstIndex(of: " ") else { return s }
    return String(s[..<sp]) + "*" + String(s[sp...])
  }

  public override var occupancy: Occupancy {
    var o = super.occupancy
    o.pagesHeld += rcu.count
    o.pending += 2 * rcu.count
    return o
  }

  public override func apply(_ e: Event) {
    // A deferring task's window ends at its return, or at its next task-context event.
    if let d = deferByPID[e.pid] {
      if e.kind == .deferEnd || ends(d, e) { close(e.pid, at: e.line) }
    }
    if e.kind == .mmDeath, let mm = e.mm {
      // The deferring task held the mm (mmap lock) until pte_free_defer returned: the
      // pgd goes after every defer on it.
      for (pid, d) in deferByPID where d.mm == mm { close(pid, at: e.line) }
    }
    if e.kind != .rcuFree { directRelease[e.cpu] = nil }
    super.apply(e)
    let held = pages.count + rcu.count
    if held > ctx.stats.peakPages { ctx.stats.peakPages = held }
  }

  public override func finish(lastLine: Int) {
    for pid in deferByPID.keys.sorted() { close(pid, at: lastLine) }
    super.finish(lastLine: lastLine)
    ctx.stats.pagesAtEnd += rcu.count
  }

  override func dispatch(_ e: Event) {
    switch e.kind {
    case .deferBegin: deferBegin(e)
    case .rcuFree: rcuFree(e)
    case .freeNow, .freeTLB, .tlbQueue, .tlbExec:
      let key = (e.table & ~3) & s390PageMask
      if e.kind == .freeNow, let d = deferByPID[e.pid], !d.innerSeen, d.table == e.table {
        // The page_table_free inside pte_free_defer.
        deferByPID[e.pid]!.innerSeen = true
        if d.rejected { return }
        deferByPID[e.pid]!.freeApplied = true
      }
      if e.kind == .tlbQueue, rejectedQueue.remove(e.table) != nil { return }
      if rcu[key] != nil, e.table != 0 { return touchedWhileWaiting(e, key) }
      super.dispatch(e)
    default:
      super.dispatch(e)
    }
  }

  // MARK: pte_free_defer

  /// Whether `e` (of the deferring task) shows that its `pte_free_defer` has returned.
  func ends(_ d: Defer, _ e: Event) -> Bool {
    switch e.kind {
    case .allocBegin, .alloc, .freeTLB, .tlbQueue, .deferBegin, .crstAlloc, .crstFree, .mmBirth,
      .mmDeath:
      return true
    case .freeNow:
      return d.innerSeen || d.table != e.table
    case .allocUnreturned, .tlbExec, .rcuFree, .deferEnd, .lost, .fragmentFree, .fragDestroy,
      .pmdAlloc, .pmdFree, .mmExit:
      return false
    }
  }

  override func deferBegin(_ e: Event) {
    let (key, h) = split(e.table)
    ctx.record(page: key, e, mm: e.mm)
    var d = Defer(
      pid: e.pid, cpu: e.cpu, comm: e.comm, mm: e.mm, table: e.table, line: e.line,
      ns: e.timestampNs)
    if e.table & 0x7ff != 0 || e.table == 0 || rcu[key] != nil {
      if rcu[key] != nil {
        touchedWhileWaiting(e, key)
      } else {
        finding(
          .freeUnknown, e, mm: e.mm, page: key, half: h, before: describe(key),
          "pte_free_defer(\(hex(e.table))) is not a 2 KiB-aligned table")
      }
      // Its own page_table_free is part of this finding, not another one.
      d.rejected = true
      deferByPID[e.pid] = d
      return
    }
    if let p = pages[key], p.pgste {
      finding(
        .deferOnPgste, e, mm: e.mm, page: key, half: nil, before: describe(key),
        "pte_free_defer(\(hex(e.table))) on a pgste page: 6.6 warns here (WARN_ON_ONCE(mm_has_pgste)) unless 5647f61ad917 is applied; the page takes the pgste branch and waits for RCU")
    }
    active.insert(key)  // SetPageActive, before page_table_free takes the lock
    deferByPID[e.pid] = d
    windowsByPage[key, default: []].append(d)
  }

  /// Closes the window of `pid`'s `pte_free_defer`; applies its `page_table_free` if the
  /// capture did not show it. Called between events, never inside one.
  func close(_ pid: Int32, at line: Int) {
    guard let d = deferByPID.removeValue(forKey: pid) else { return }
    let (key, _) = split(d.table)
    if let i = windowsByPage[key]?.lastIndex(where: { $0.pid == pid && $0.line == d.line }) {
      windowsByPage[key]![i].closedLine = line
    }
    if !d.freeApplied && !d.rejected {
      step(
        Event(
          kind: .freeNow, line: d.line, timestampNs: d.ns, cpu: d.cpu, pid: d.pid, comm: d.comm,
          mm: d.mm, table: d.table))
    }
    if pages[key] == nil && rcu[key] == nil {
      active.remove(key)
      windowsByPage[key] = nil
    }
  }

  /// A defer window on `key` that overlaps the entry → return window of the alloc `e` and
  /// deferred the half other than `h`.
  func overlappingWindow(_ key: UInt64, _ h: Int, _ e: Event) -> Defer? {
    windowsByPage[key]?.last { d in
      d.line <= e.line && (d.closedLine ?? Int.max) >= e.beginLine
        && (d.table & s390HalfBit != 0 ? 1 : 0) != h
    }
  }

  // MARK: Alloc from Active or R pages

  override func alloc(_ e: Event) {
    guard e.table != 0, e.table & 0x7ff == 0 else { return super.alloc(e) }
    let (key, h) = split(e.table)
    if let w = rcu[key] { return allocFromWaiting(e, key, h, w) }
    guard active.contains(key), let p = pages[key], p[h] == .free else { return super.alloc(e) }
    let before = describe(key)
    if let d = overlappingWindow(key, h, e) {
      return acceptInWindow(
        e, key, h, wouldBe: .allocFromActive,
        "page_table_alloc returned \(hex(e.table)), the free half of Active page \(hex(key)), inside the window of pte_free_defer(\(hex(d.table))) at line \(d.line) (docs/kernel-models.md §3.3: the freeing task tested Active before it was set)"
      )
    }
    acceptAlloc(e) { m in
      let last = windowsByPage[key]?.last
      finding(
        .allocFromActive, e, mm: m?.address, page: key, half: h, before: before,
        after: "\(h == 0 ? "A\(p.hi.letter)" : "\(p.lo.letter)A")* -",
        "page_table_alloc returned \(hex(e.table)), the \(halfName(h)) half of page \(hex(key)), which is Active\(last.map { " since pte_free_defer at line \($0.line)" } ?? ""): an Active page is never on the list, and no pte_free_defer of this page was in flight",
        related: last.map { [$0.line] } ?? [])
      takeHalf(m, key, h)
    }
  }

  /// §3.3: the alloc took half `h` of an Active page while a `pte_free_defer` of the other
  /// half was in flight. Legal; an explained inconclusive item says so.
  func acceptInWindow(_ e: Event, _ key: UInt64, _ h: Int, wouldBe: RuleID, _ message: String) {
    ctx.stats.concurrencyResolved += 1
    acceptAlloc(e) { m in
      ctx.report(
        Inconclusive(
          reason: .concurrency, line: e.line, mm: m?.address, page: key, message: message,
          wouldBeRule: wouldBe, explainedBy: "pte_free_defer in flight"))
      takeHalf(m, key, h)
    }
  }

  /// The bookkeeping of an alloc the model accepts without a list prediction.
  func acceptAlloc(_ e: Event, _ body: (MM?) -> Void) {
    let m = mm(at: e.mm)
    var hadWindow = false
    if let m, let wi = m.windows.firstIndex(where: { $0.pid == e.pid }) {
      m.windows.remove(at: wi)
      hadWindow = true
    }
    if m?.known == true && hadWindow {
      ctx.stats.allocationsPredicted += 1
    } else {
      ctx.stats.allocationsUnverified += 1
    }
    ctx.record(page: split(e.table).0, e, mm: m?.address)
    body(m)
    changed(m)
  }

  /// `page_table_alloc` returned a half of a page in R.
  func allocFromWaiting(_ e: Event, _ key: UInt64, _ h: Int, _ w: Waiting) {
    let before: Before = "R"
    if let d = overlappingWindow(key, h, e) {
      // §3.3 in trace order: the alloc took its half before the deferring free's lock
      // section, so the page never emptied. Back to the page as the kernel has it.
      leaveR(key)
      pages[key] = Page(lo: .free, hi: .free, owner: w.owner)
      active.insert(key)
      return acceptInWindow(
        e, key, h, wouldBe: .reuseBeforeRcu,
        "page_table_alloc returned \(hex(e.table)) from page \(hex(key)), which the trace order shows empty and waiting for RCU; the alloc decided inside the window of pte_free_defer(\(hex(d.table))) at line \(d.line), before that free's lock section (docs/kernel-models.md §3.3)"
      )
    }
    endWaiting(key)
    if h == 0 {
      // The page came back from the buddy allocator: its callback ran.
      if heads.trusted {
        probableMiss(
          .missedProbe, of: .pteFreeNow,
          .reuseBeforeRcu, e, mm: e.mm, page: key, half: 0, before: before, after: "AF L",
          finding: "page_table_alloc returned \(hex(e.table)) as a fresh page, but page \(hex(key)) waits in R since line \(w.line) and no pte_free_now released it",
          related: [w.line],
          "page_table_alloc returned \(hex(e.table)) while page \(hex(key)) waits in R since line \(w.line): probable missed pte_free_now")
      }
      return super.alloc(e)
    }
    acceptAlloc(e) { m in
      finding(
        .reuseBeforeRcu, e, mm: m?.address, page: key, half: h, before: before,
        after: "?A -",
        "page_table_alloc returned \(hex(e.table)), the upper half of page \(hex(key)), which waits in R since line \(w.line) (its last bit cleared while Active); nothing may be handed out of it before pte_free_now",
        related: [w.line])
      freshPage(m, key, h)
    }
  }

  // MARK: R

  /// The page leaves R: back to the buddy allocator.
  func endWaiting(_ key: UInt64) {
    leaveR(key)
    windowsByPage[key] = nil
    ctx.released(page: key)
  }

  /// I10: a free, queue, exec or defer names a page in R.
  func touchedWhileWaiting(_ e: Event, _ key: UInt64) {
    let (_, h) = split(e.table & ~3)
    if e.kind == .freeTLB { rejectedQueue.insert(e.table | UInt64(h + 1)) }
    ctx.record(page: key, e, mm: e.mm)
    let w = rcu[key]!
    finding(
      .useWhileRcuPending, e, mm: e.mm ?? (w.owner >= 0 ? mms[serial: w.owner]?.address : nil), page: key, half: h,
      before: "R",
      "\(e.kind.symbol)(\(hex(e.table))) names page \(hex(key)), whose last table went at line \(w.line) while Active: it waits in R for pte_free_now and holds no table",
      related: [w.line])
  }

  func rcuFree(_ e: Event) {
    let direct = directRelease[e.cpu]
    directRelease[e.cpu] = nil
    heads.handle(
      head: e.table, directCandidate: direct, waiting: { Array(rcu.keys) },
      isWaiting: { rcu[$0] != nil }, waitingCount: rcu.count,
      end: { key in
        ctx.record(page: key, e, mm: nil)
        endWaiting(key)
      },
      unexpected: { key in
        guard let p = pages[key] else { return }
        ctx.record(page: key, e, mm: nil)
        if !p.pgste, p.aCount == 0, p.lo == .unknown || p.hi == .unknown || p.lo == .pending || p.hi == .pending {
          return releasedDirectly(e, key, p)
        }
        finding(
          .rcuFreeNotPending, e, mm: owner(of: p)?.address, page: key, half: nil,
          before: describe(key), after: "(none)",
          "pte_free_now(\(hex(e.table))) releases page \(hex(key)) (struct page \(hex(e.table &- RCUHeadMapper.headOffset))), which is \(describe(key)) and not waiting in R")
        // Resynchronise on the kernel: the page is gone.
        release(key)
        needsRecount = true
      })
  }

  /// `pte_free_now` called directly (the page was not Active: `page_table_free` or
  /// `__tlb_remove_table` found `mask == 0` and `folio_test_clear_active` false) for a page
  /// the model holds with no table allocated but a half it cannot clear: a half whose state
  /// predates the capture was free (legal; nothing to report), or a pending half's
  /// `__tlb_remove_table` ran unseen (a probable missed exec, settled by the profile).
  func releasedDirectly(_ e: Event, _ key: UInt64, _ p: Page) {
    let pendingHalves = [0, 1].filter { p[$0] == .pending }
    if !pendingHalves.isEmpty {
      let f = makeFinding(
        .rcuFreeNotPending, e, mm: owner(of: p)?.address, page: key, half: nil,
        before: describe(key), after: "(none)",
        "pte_free_now(\(hex(e.table))) releases page \(hex(key)), which is \(describe(key)) and not waiting in R, and the kprobe_profile shows no missed __tlb_remove_table")
      for (n, h) in pendingHalves.enumerated() {
        let tagged = key + UInt64(h) * 0x800 + UInt64(h + 1)
        ctx.report(
          Inconclusive(
            .missedTLBExec, missOf: .tlbRemoveTableExec, f,
            "pte_free_now(\(hex(e.table))) releases page \(hex(key)) while its \(halfName(h)) half is pending since line \(h == 0 ? p.pendingLine.0 : p.pendingLine.1): probable missed __tlb_remove_table(\(hex(tagged)))",
            carry: n == 0))
        ctx.inferred(.exec(table: key + UInt64(h) * 0x800))
      }
    }
    active.remove(key)
    release(key)
    needsRecount = true
  }
}
