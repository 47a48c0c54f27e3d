import PTFragEvents

/// The three configurations of docs/kernel-models.md §6.1 with `PTE_FRAG_NR` > 1. The preset is
/// part of the model id: `powerpc-hash64k`, `powerpc-radix64k`, `powerpc-8xx16k`.
/// `PowerpcModel(context:geometry:destroyClearsActive:)` takes any other geometry (e.g.
/// `PTE_FRAG_NR` = 1 for 4 KiB-page configurations, where every table is a page).
public enum PowerpcPreset: String, CaseIterable, Sendable {
  /// book3s64 hash MMU, 64 KiB pages: 4 KiB fragments (2 KiB PTEs + 2 KiB hash slots),
  /// `H_PTE_FRAG_SIZE_SHIFT = H_PTE_INDEX_SIZE + 3 + 1` = 12, `H_PTE_FRAG_NR` = 16.
  case hash64K = "hash64k"
  /// book3s64 radix MMU, 64 KiB pages: 256 B fragments, `RADIX_PTE_FRAG_SIZE_SHIFT =
  /// RADIX_PTE_INDEX_SIZE + 3` = 8, `RADIX_PTE_FRAG_NR` = 256.
  case radix64K = "radix64k"
  /// 8xx with 16 KiB pages (`mmu-8xx.h`): `PTE_FRAG_NR` 4, `PTE_FRAG_SIZE_SHIFT` 12.
  case mpc8xx16K = "8xx16k"

  public var geometry: FragGeometry {
    switch self {
    case .hash64K: FragGeometry(pageShift: 16, fragShift: 12)
    case .radix64K: FragGeometry(pageShift: 16, fragShift: 8)
    case .mpc8xx16K: FragGeometry(pageShift: 14, fragShift: 12)
    }
  }

  public var modelID: String { "powerpc-\(rawValue)" }

  /// `PMD_FRAG_SIZE_SHIFT` (book3s64; nil where PMD tables are not fragments): hash 64K
  /// `H_PMD_FRAG_SIZE_SHIFT` 14 (4 × 16 KiB), radix 64K `RADIX_PMD_FRAG_SIZE_SHIFT` 12
  /// (16 × 4 KiB); 8xx has no PMD level. A PMD fragment (`pmd_fragment_alloc`, queued
  /// `table | PMD_INDEX`) is aligned to it.
  public var pmdFragShift: Int? {
    switch self {
    case .hash64K: 14
    case .radix64K: 12
    case .mpc8xx16K: nil
    }
  }

  /// book3s64: `pte_free_now`'s `pt_rcu_head` argument names its page (vmemmap at
  /// 0xc00c000000000000, 64-byte `struct page`).
  var headsNamePages: Bool { self != .mpc8xx16K }

  var title: String {
    switch self {
    case .hash64K: "book3s64 hash MMU, 64 KiB pages"
    case .radix64K: "book3s64 radix MMU, 64 KiB pages"
    case .mpc8xx16K: "8xx, 16 KiB pages"
    }
  }

  var sources: String {
    switch self {
    case .hash64K:
      "asm/book3s/64/hash-64k.h (H_PTE_FRAG_NR); __pte_frag_nr set in hash__early_init_mmu"
    case .radix64K:
      "asm/book3s/64/radix-64k.h (RADIX_PTE_FRAG_NR); __pte_frag_nr set in radix__early_init_mmu"
    case .mpc8xx16K: "asm/nohash/32/mmu-8xx.h (PTE_FRAG_NR 4, PTE_FRAG_SIZE_SHIFT 12)"
    }
  }
}

/// # powerpc PTE fragments — `arch/powerpc/mm/pgtable-frag.c` (variant E, v4.x … now)
///
/// Encodes torvalds/linux `arch/powerpc/mm/pgtable-frag.c` (blob 00c010e130e5):
/// `pte_fragment_alloc` (`get_pte_from_cache`, `__alloc_for_ptecache`),
/// `pte_fragment_free`, `pte_free_now`, `pte_free_defer` (32cc0b7c9d50, v6.6-rc1), and
/// `pte_frag_destroy`; book3s64's tlb path in `arch/powerpc/mm/book3s64/pgtable.c`
/// (032b7f08932c: `pgtable_free_tlb` ORs the level index into the pointer, `PTE_INDEX` = 0,
/// `MAX_PGTABLE_INDEX_SIZE` = 0xf; `__tlb_remove_table` → `pgtable_free` →
/// `pte_fragment_free(table, 0)`); wrappers in `asm/pgalloc.h` (112d6212c80a). The fix
/// fda4d71651f7 "powerpc/pgtable-frag: Fix bad page state in pte_frag_destroy" (seen in
/// openSUSE/kernel 1990d9df8216) clears PG_active in `pte_frag_destroy`; before it, that
/// release is the `released-with-active` rule. docs/kernel-models.md §6; 5c1f6ee9a31c (2013).
///
/// ## States
/// Per mm: the cursor `mm->context.pte_frag` (next unhanded fragment, or NULL) under
/// `mm->page_table_lock`. Per page: `pt_frag_refcount`, PG_active, and each fragment U
/// (unhanded), H (handed out), Q (in a tlb batch), X (freed; never revived). Pages are a
/// cursor page (count `PTE_FRAG_NR`), detached (all handed, or a race loser with count 1),
/// R (`call_rcu(pte_free_now)` queued), or released.
///
/// ## Transitions (docs/kernel-models.md §6.3)
/// - alloc from the cursor: that fragment U→H; the cursor advances by the fragment size and
///   becomes NULL after the last fragment of the page.
/// - alloc fresh (cursor NULL): a new page, fragment 0 H; with the lock, a still-NULL
///   cursor makes it the cursor page (count NR, cursor at fragment 1); otherwise it is a
///   race loser (count 1, its other NR−1 fragments lost).
/// - free (`pte_fragment_free`, also from `__tlb_remove_table`): H/Q→X, count − 1; at 0:
///   `kernel` or not PG_active → release now, else clear PG_active and `call_rcu` (→ R).
/// - `pte_free_defer`: set PG_active, then free (kernel 0).
/// - destroy (`pte_frag_destroy(cursor)` at mm exit): the cursor page's unhanded fragments
///   U→X, count −= NR − k; at 0 release now (PG_active cleared only since fda4d71651f7).
/// - RCU callback `pte_free_now`: R → released.
///
/// ## Invariants
/// E1 count = NR − freed on a cursor-made page (unhanded fragments stay counted until
/// destroy), 1 − freed on a race loser; E2 alloc returns exactly the cursor or a fresh
/// page's base; E3 a freed fragment is never handed out again before its page is released;
/// E4 release exactly at count 0; E5 after `pte_free_defer`, release via `call_rcu`, except
/// `pte_frag_destroy`.
///
/// ## Events and what a capture cannot tell
/// `.alloc` pairs `pte_fragment_alloc(mm, kernel)` with its return; `.fragmentFree` is
/// `pte_fragment_free(table, kernel)`; `.tlbQueue`/`.tlbExec` are `tlb_remove_table` /
/// `__tlb_remove_table` with the level index in the low 4 bits (book3s64; 8xx frees
/// directly); `.deferBegin` is `pte_free_defer(mm, table)`; `.fragDestroy` is
/// `pte_frag_destroy(frag)`; `.rcuFree` is `pte_free_now(head)`. The nested
/// `pte_fragment_free` inside `pte_free_defer` and `__tlb_remove_table` (same task, same
/// table) is that free, not a second one. `pte_free_now`'s argument is the `pt_rcu_head` in
/// the page's ptdesc: on book3s64 it names the page (`0xc00c000000000000 + pfn × 64 + 8`), so
/// hits are matched by page (v6.6+ calls it for every user PTE page release, directly or as
/// the RCU callback); elsewhere in `call_rcu` order. The mm's life (book3s64
/// `mmu_context.c`, v6.1/v6.12): `.mmBirth` is `init_new_context` (cursor NULL, every
/// allocation predicted), `.mmExit` is `arch_exit_mmap` (its `pte_frag_destroy` follows, before
/// the mm's tables are freed), `.mmDeath` is `destroy_context`; `.pmdAlloc`/`.pmdFree` are
/// `pmd_fragment_alloc`/`_free` (book3s64 `pgtable.c`). Without a birth, an mm's cursor is
/// synchronised by its first allocation the capture shows, and a surprise before a
/// prediction confirmed it is inconclusive. A page the model holds that the kernel shows
/// released (a PMD/PUD table, a fresh page, a direct `pte_free_now`) is resynchronised over
/// the misses that explain it (`releasedUnseen`), settled by the kprobe_profile. Concurrent allocations of
/// one mm may return out of lock order: a return ahead of the cursor, or a fresh page, is
/// accepted when enough other allocations of the mm are in flight to have taken the
/// fragments in between (or to have set the cursor after this one found it NULL).
public class PowerpcModel: PgtableFragModel, AllocatorModel {
  /// The configuration of a registered id (subclasses).
  public class var preset: PowerpcPreset { .hash64K }
  /// The kernel has fda4d71651f7 ("powerpc/pgtable-frag: Fix bad page state in
  /// pte_frag_destroy", v7.1 and stable backports): `pte_frag_destroy` clears PG_active
  /// before it frees the page. False (the default) for kernels without it, such as Debian's
  /// 6.12.95: there a page `pte_free_defer` marked that `pte_frag_destroy` frees is the
  /// `released-with-active` error (the kernel's own "BUG: Bad page state … flags: active").
  public class var hasDestroyFix: Bool { false }
  /// The id suffix of the models of kernels with fda4d71651f7 (`--kernel-fix fda4d71651f7`).
  public static let destroyFixSuffix = "+fda4d71651f7"

  public static let rules: [Rule] = [
    Rule(.doubleFree, .error, "a free (pte_fragment_free, __tlb_remove_table, pte_free_defer) of a fragment already freed, or queued twice"),
    Rule(.freeUnknown, .error, "a free of a fragment never handed out, or of an address that is not a fragment"),
    Rule(.execTagMismatch, .error, "a tlb level index other than PTE_INDEX (0) on a page the model holds as PTE fragments"),
    Rule(.allocBusyFragment, .error, "pte_fragment_alloc returned a fragment that is handed out and not freed"),
    Rule(.reuseBeforeRelease, .error, "pte_fragment_alloc returned a freed fragment before its page went back to the buddy allocator (E3)"),
    Rule(.reuseBeforeGrace, .error, "pte_fragment_alloc returned a fragment of a page whose RCU callback (pte_free_now) has not run"),
    Rule(.releaseWithRefs, .error, "a page came back fresh from the buddy allocator while its pt_frag_refcount was not zero (E1/E4)"),
    Rule(.allocNotCursor, .error, "pte_fragment_alloc returned an unhanded fragment that is not the mm's cursor (E2)"),
    Rule(.allocFreshWhileCursor, .error, "pte_fragment_alloc took a fresh page although the mm's cursor was never NULL during the call (E2)"),
    Rule(.allocDivergence, .error, "pte_fragment_alloc returned a table the model cannot produce (misaligned, or inside a page the mm's cursor never pointed to)"),
    .allocWithoutReturn("pte_fragment_alloc"),
    Rule(.destroyNotCursor, .error, "pte_frag_destroy of a pointer that is not the mm's cursor"),
    Rule(.releasedWithActive, .error, "a page went back to the buddy allocator with PG_active set: pte_frag_destroy before fda4d71651f7 (\"BUG: Bad page state … flags: active\"), or a kernel free of a page pte_free_defer marked"),
  ]
  static let rule = ruleIndex(rules)

  public class var descriptor: ModelDescriptor { Self.descriptor(for: preset, fixed: hasDestroyFix) }

  static func descriptor(for preset: PowerpcPreset, fixed: Bool = false) -> ModelDescriptor {
    var d = ModelDescriptor(
      id: preset.modelID + (fixed ? destroyFixSuffix : ""),
      kernels:
        "v4.x … now (pte_free_defer since v6.6); \(preset.title): \(preset.geometry); pte_frag_destroy "
        + (fixed
          ? "with fda4d71651f7 (PG_active cleared: declared with --kernel-fix fda4d71651f7)"
          : "without fda4d71651f7 (PG_active not cleared; --kernel-fix fda4d71651f7 for kernels that have it)"),
      commits: [
        "5c1f6ee9a31c powerpc: Reduce PTE table memory wastage",
        "32cc0b7c9d50 powerpc: add pte_free_defer() for pgtables sharing page",
        fixed
          ? "fda4d71651f7 powerpc/pgtable-frag: Fix bad page state in pte_frag_destroy (declared: the kernel has it, so pte_frag_destroy clears PG_active)"
          : "fda4d71651f7 powerpc/pgtable-frag: Fix bad page state in pte_frag_destroy (not assumed: released-with-active fires without it)",
        preset.sources,
      ],
      functions: [
        "pte_fragment_alloc", "pte_fragment_free", "pte_free_defer", "pte_frag_destroy",
        "pte_free_now", "tlb_remove_table", "__tlb_remove_table", "init_new_context",
        "arch_exit_mmap", "destroy_context", "pmd_fragment_alloc", "pmd_fragment_free",
      ],
      summary:
        "per-mm cursor over \(preset.geometry.nr) fragments per page, pt_frag_refcount, freed fragments never reused, call_rcu at release if PG_active",
      rules: rules, architecture: .powerpc)
    d.replayableOn = [preset.modelID, preset.modelID + destroyFixSuffix]
    d.fragChecks(
      life: [
        .doubleFree, .freeUnknown, .execTagMismatch, .allocBusyFragment, .reuseBeforeRelease,
        .reuseBeforeGrace, .releasedWithActive, .allocWithoutReturn,
      ], "the life of each fragment and page (handed, freed, PG_active, RCU)",
      choices: [.allocNotCursor, .allocFreshWhileCursor, .allocDivergence, .releaseWithRefs, .destroyNotCursor],
      "the cursor order and the count at which pages go back, for this fragment geometry")
    return d
  }

  /// `PMD_FRAG_SIZE` when PMD tables are fragments (book3s64), else nil.
  let pmdFragBytes: UInt64?
  /// `arch_exit_mmap` seen, its `pte_frag_destroy` not yet: pid → (mm, line).
  var exiting: [Int32: (mm: UInt64, line: Int)] = [:]

  public required convenience init(context: ReplayContext) {
    let p = Self.preset
    self.init(
      context: context, geometry: p.geometry, destroyClearsActive: Self.hasDestroyFix,
      pmdFragShift: p.pmdFragShift, headsNamePages: p.headsNamePages)
  }

  /// A model of any fragment geometry; `destroyClearsActive` for kernels with fda4d71651f7;
  /// `pmdFragShift` where PMD tables are fragments; `headsNamePages` where `pte_free_now`'s
  /// argument names its page (book3s64).
  public init(
    context: ReplayContext, geometry: FragGeometry, destroyClearsActive: Bool,
    pmdFragShift: Int? = nil, headsNamePages: Bool = false
  ) {
    pmdFragBytes = pmdFragShift.map { 1 << UInt64($0) }
    super.init(
      context: context, geometry: geometry, destroyClearsActive: destroyClearsActive,
      rules: PowerpcModel.rule)
    frag.headsNamePages = headsNamePages
  }

  /// Simulation: the powerpc vocabulary. `pte_fragment_alloc(mm, 0)`; `pte_fragment_free`;
  /// `pte_free_tlb` queues `table | PTE_INDEX` (0) and `__tlb_remove_table` frees it;
  /// `pte_free_defer`; `init_new_context` at birth; `arch_exit_mmap` and `pte_frag_destroy`
  /// of the cursor when `exit_mmap` starts, before the mm's tables are freed (v6.12
  /// `arch/powerpc/mm/book3s64/mmu_context.c` `arch_exit_mmap`; issue 10 item 8: destroying
  /// at pgd free, after the frees, made pages pte_free_defer marked leave with PG_active);
  /// `destroy_context` at death — with the cursor destroyed then only when the workload had
  /// no exit (an s390 capture's workload).
  public func kernelEvents(for op: SimulatedOperation, _ emit: (SimulatedEvent) -> Void) {
    switch op {
    case .birth(let mm): emit(SimulatedEvent(.mmBirth, mm: mm))
    case .exit(let mm):
      emit(SimulatedEvent(.mmExit, mm: mm))
      if let c = frag.mms[address: mm]?.cursor { emit(SimulatedEvent(.fragDestroy, mm: mm, table: c)) }
    case .death(let mm):
      if let c = frag.mms[address: mm]?.cursor { emit(SimulatedEvent(.fragDestroy, mm: mm, table: c)) }
      emit(SimulatedEvent(.mmDeath, mm: mm))
    case .alloc(let mm, let t):
      emit(SimulatedEvent(.allocBegin, mm: mm))
      emit(SimulatedEvent(.alloc, mm: mm, table: t))
    case .freeNow(_, let t): emit(SimulatedEvent(.fragmentFree, table: t))
    case .freeTLB(_, let t): emit(SimulatedEvent(.tlbQueue, table: t))
    case .exec(let t): emit(SimulatedEvent(.tlbExec, table: t))
    case .deferFree(let mm, let t): emit(SimulatedEvent(.deferBegin, mm: mm, table: t))
    }
  }

  override func dispatch(_ e: Event) {
    if !exiting.isEmpty, let x = exiting[e.pid], Self.processContext(e.kind) { exitWithoutDestroy(e, x) }
    switch e.kind {
    case .allocBegin: allocBegin(e)
    case .alloc: alloc(e)
    case .fragmentFree: fragmentFree(e)
    case .tlbQueue: tlbQueue(e)
    case .tlbExec: tlbExec(e)
    case .deferBegin: deferFree(e, nil)
    case .fragDestroy: destroy(e)
    case .rcuFree: rcuFree(e)
    case .mmBirth: mmBorn(e)  // init_new_context (v6.12 book3s64/mmu_context.c)
    case .mmExit: exit(e)
    case .mmDeath: death(e)
    case .pmdAlloc, .pmdFree: pmdFragment(e)
    case .freeNow, .freeTLB, .deferEnd, .crstAlloc, .crstFree, .allocUnreturned, .lost: break
    }
  }

  // MARK: Helpers

  /// The page frame number of the kernel linear address `key` (PAGE_OFFSET 0xc000000000000000
  /// on book3s64, 0xc0000000 on 32-bit), as dmesg prints it.
  func pfn(_ key: UInt64) -> UInt64 {
    let base: UInt64 = key >= 0xc000_0000_0000_0000 ? 0xc000_0000_0000_0000 : key >= 0xc000_0000 ? 0xc000_0000 : 0
    return (key - base) >> UInt64(geo.pageShift)
  }

  // MARK: pte_fragment_alloc

  func allocBegin(_ e: Event) {
    guard let m = frag.mm(at: e.mm, knownIfNew: ctx.simulating) else { return }
    m.windows[e.pid] = (e.line, m.cursor == nil)
  }

  func alloc(_ e: Event) {
    guard let (m, window, key, i, before) = allocReturned(e) else { return }
    let t = e.table
    if i == 0, frag.pages[key] != nil {
      // Fragment 0 is only ever handed out with a fresh page (`__alloc_for_ptecache`: the
      // cursor starts at fragment 1): the kernel released this page, so whatever the model
      // still holds of it went unseen.
      releasedUnseen(
        key, e, as: "as a fresh page for mm \(hex(m?.address))", rule: .releaseWithRefs)
    }
    guard let m, m.known else {
      // No entry, or an mm whose cursor the capture has not shown yet: only what holds on
      // every replay is checked; then follow the kernel, which shows the cursor.
      ctx.stats.allocationsUnverified += 1
      if frag.pages[key] != nil {
        let kind = frag.surprise(key, i)
        if [.busy, .freedReused, .rcuPending, .releasedWithRefs, .missedExec].contains(kind) {
          return surprise(e, m, key, i, before, window: window, kind: kind)
        }
      }
      frag.adopt(m, key, i)
      m?.synchronise()
      return
    }
    ctx.stats.allocationsPredicted += 1
    let others = m.windows.count

    if m.cursor == t, m.race?.winner == key { m.race = nil }
    if allocPredicted(m, t, key, i) { return confirmed(m) }
    // Two fresh pages raced and the other one won the cursor.
    if let r = m.race, let c = m.cursor, geo.page(c) == r.winner, geo.index(c) == 1,
      t == r.loser + geo.fragBytes
    {
      swapRace(m, r)
      frag.takeFromCursor(m)
      ctx.stats.concurrencyResolved += 1
      return confirmed(m)
    }
    // A fragment a concurrent allocation reserved.
    if frag.pages[key]?.slots[i] == .inFlight {
      frag.update(key) { $0.set(i, .handed) }
      return
    }
    if let c = m.cursor {
      let ci = geo.index(c)
      // Ahead of the cursor: other allocations in flight took the fragments in between.
      if geo.page(c) == key, i > ci, i - ci <= others {
        reserve(m, key, from: ci, to: i)
        frag.takeFromCursor(m)
        ctx.stats.concurrencyResolved += 1
        return
      }
      if i == 0 && frag.pages[key] == nil {
        if window?.sawNull == true {
          // The cursor was NULL when this call looked; a concurrent call set it first:
          // this page is a race loser (count 1).
          if geo.index(c) == 1, frag.pages[geo.page(c)]?.slots[1] == .unhanded {
            m.race = (geo.page(c), key)
          }
          frag.allocFresh(m, key)
          ctx.stats.concurrencyResolved += 1
          return
        }
        if geo.nr - ci <= others {
          // The calls in flight take the rest of the cursor page; this one found it NULL.
          reserve(m, geo.page(c), from: ci, to: geo.nr)
          frag.setCursor(m, nil)
          frag.allocFresh(m, key)
          ctx.stats.concurrencyResolved += 1
          return
        }
      }
    }
    surprise(e, m, key, i, before, window: window, kind: frag.surprise(key, i))
  }

  /// Fragments `from..<to` of `key` were taken by allocations still in flight.
  func reserve(_ m: FragMM, _ key: UInt64, from: Int, to: Int) {
    frag.update(key) { p in
      for j in from..<to where p.slots[j] == .unhanded { p.set(j, .inFlight) }
    }
    m.liveTables += to - from
    let next = key + UInt64(to) * geo.fragBytes
    frag.setCursor(m, to >= geo.nr ? nil : next)
  }

  /// The page the model made the cursor page lost the race to `r.loser`.
  func swapRace(_ m: FragMM, _ r: (winner: UInt64, loser: UInt64)) {
    m.race = nil
    frag.setCursor(m, nil)
    frag.update(r.winner) {
      $0.ref -= geo.nr - 1
      $0.unhandedCounted = false
    }
    frag.update(r.loser) {
      $0.ref += geo.nr - 1
      $0.unhandedCounted = true
    }
    frag.setCursor(m, r.loser + geo.fragBytes)
  }

  func confirmed(_ m: FragMM) {
    m.confirmed = true
  }

  /// A return the procedures cannot produce (`kind`): report and follow the kernel. `m` is
  /// nil when the entry (hence the mm) was not seen.
  func surprise(
    _ e: Event, _ m: FragMM?, _ key: UInt64, _ i: Int, _ before: FragState,
    window: (line: Int, sawNull: Bool)?, kind: FragSurprise
  ) {
    defer {
      frag.adopt(m, key, i)
      m?.race = nil
      m?.synchronise()
    }
    let t = e.table
    let mmText = m.map { " for mm \(hex($0.address))" } ?? ""
    guard let explained = frag.explain(kind, key, i, busyRule: .allocBusyFragment) else {
      return
    }
    let rule = explained.rule
    var why = explained.why
    if let m, [.notCursor, .freshWhileCursor, .foreignPage].contains(kind) {
      why += "; the model predicted \(m.cursor.map { "the cursor \(hex($0))" } ?? "a fresh page (the cursor is NULL)")"
    }
    let message = "pte_fragment_alloc returned \(hex(t))\(mmText): \(why)"
    let f = makeFinding(
      rule, e, mm: m?.address, page: key, half: i, before: before, after: frag.describe(before), message,
      related: window.map { [$0.line] } ?? [])
    let choice = PgtableFrag.isChoice(kind)
    if kind == .missedExec {
      // The page came back: its fragments in a tlb batch were executed unseen.
      if let p = frag.pages[key] {
        for j in 0..<geo.nr where p.slots[j] == .queued {
          ctx.inferred(.exec(table: key + UInt64(j) * geo.fragBytes))
        }
      }
      ctx.report(
        Inconclusive(
          reason: .missedTLBExec, line: e.line, mm: m?.address, page: key,
          message: "\(message): fragments of it were still in a tlb batch; probable missed __tlb_remove_table",
          wouldBeRule: rule, hingesOn: .tlbRemoveTableExec, asFinding: f))
    } else if choice, let m, !m.confirmed {
      ctx.report(
        Inconclusive(
          reason: .beforeCapture, line: e.line, mm: m.address, page: key,
          message:
            "\(message); the mm's cursor was synchronised from the capture alone (no prediction has confirmed it), so state from before the capture may explain it",
          wouldBeRule: rule))
    } else if choice, let m, !m.windows.isEmpty {
      ctx.report(
        Inconclusive(
          reason: .concurrency, line: e.line, mm: m.address, page: key,
          message: "\(message); \(m.windows.count) other allocation(s) of the mm are in flight",
          wouldBeRule: rule))
    } else {
      ctx.report(f)
    }
  }

  // MARK: Frees

  func fragmentFree(_ e: Event) {
    if isNested(e) { return }
    guard let (key, i) = checkedFree(e, e.table, "pte_fragment_free", nil, accept: [.handed, .queued])
    else { return }
    free(e, key, i, kernel: e.kernel ?? false)
  }

  func tlbQueue(_ e: Event) {
    let index = Int(e.table & 0xf)
    let table = e.table & ~0xf
    let key = geo.page(table)
    guard index == 0 else { return levelMismatch(e, key, "tlb_remove_table", index) }
    guard frag.pages[key] != nil else { return }
    guard let (k, i) = checkedFree(e, table, "tlb_remove_table", nil, accept: [.handed]) else { return }
    if frag.pages[k]?.slots[i] == .handed { frag.update(k) { $0.set(i, .queued) } }
  }

  func tlbExec(_ e: Event) {
    let index = Int(e.table & 0xf)
    let table = e.table & ~0xf
    let key = geo.page(table)
    guard index == 0 else { return levelMismatch(e, key, "__tlb_remove_table", index) }
    // pgtable_free(table, PTE_INDEX) → pte_fragment_free(table, 0), probed on its own.
    nested[e.pid] = table
    guard frag.pages[key] != nil else {
      ctx.stats.execsUntracked += 1
      return
    }
    guard let (k, i) = checkedFree(e, table, "__tlb_remove_table", nil, accept: [.handed, .queued])
    else { return }
    free(e, k, i, kernel: false)
  }

  func levelMismatch(_ e: Event, _ key: UInt64, _ what: String, _ index: Int) {
    guard frag.pages[key] != nil else { return }  // a PMD/PUD table: not modelled
    let table = e.table & ~0xf
    // book3s64 `pgtable_free_tlb` ORs the level into the table (`PMD_INDEX` 1: a PMD
    // fragment; `PUD_INDEX` 2 and the hugepd indexes above it: slab objects of
    // `pgtable_cache`). All take pages from the buddy allocator, so a held PTE page that comes
    // back as one was released unseen — if the address can be such a table (a PMD fragment is
    // `PMD_FRAG_SIZE`-aligned; a misaligned PMD-level value is no table at all).
    if let pmd = pmdFragBytes, (index == 1 && table & (pmd - 1) == 0) || index >= 2 {
      releasedUnseen(
        key, e,
        as: "as the \(index == 1 ? "PMD" : index == 2 ? "PUD" : "level-\(index)") table that \(what)(\(hex(e.table))) names",
        rule: .execTagMismatch)
      return
    }
    ctx.record(page: key, e, mm: frag.owner(key)?.address)
    finding(
      .execTagMismatch, e, mm: frag.owner(key)?.address, page: key, half: nil,
      before: frag.state(key),
      "\(what)(\(hex(e.table))): level index \(index) (\(index == 1 ? "PMD" : index == 2 ? "PUD" : "not PTE")) on a page the model holds as PTE fragments")
  }

  // MARK: pte_frag_destroy, pte_free_now

  func destroy(_ e: Event) {
    exiting[e.pid] = nil
    let f = e.table
    let key = geo.page(f)
    let k = geo.index(f)
    let owner = frag.pages[key].flatMap { frag.mms[serial: $0.cursorOf >= 0 ? $0.cursorOf : $0.owner] }
    ctx.record(page: key, e, mm: owner?.address)
    let before = frag.state(key)
    guard geo.aligned(f), k > 0 else {
      finding(
        .destroyNotCursor, e, mm: owner?.address, page: key, half: k, before: before,
        "pte_frag_destroy(\(hex(f))): a cursor is a fragment after the first of its page")
      return
    }
    guard let p = frag.pages[key] else { return }  // a cursor page from before the capture
    let m = p.cursorOf >= 0 ? frag.mms[serial: p.cursorOf] : nil
    if let m, m.cursor != f || !(k..<geo.nr).allSatisfy({ [.unhanded, .unknown].contains(p.slots[$0]) }) {
      finding(
        .destroyNotCursor, e, mm: m.address, page: key, half: k, before: before,
        "pte_frag_destroy(\(hex(f))), but the cursor of mm \(hex(m.address)) is \(m.cursor.map { hex($0) } ?? "NULL")")
      frag.update(key) { $0.refKnown = false }
    } else if m == nil, p.refKnown, let om = frag.mms[serial: p.owner], om.confirmed {
      finding(
        .destroyNotCursor, e, mm: om.address, page: key, half: k, before: before,
        "pte_frag_destroy(\(hex(f))), but no mm's cursor points into \(hex(key)) (mm \(hex(om.address))'s cursor is \(om.cursor.map { hex($0) } ?? "NULL"))")
      frag.update(key) { $0.refKnown = false }
    }
    if let m { frag.setCursor(m, nil) }
    let r = frag.destroy(f)
    if r.withActive {
      finding(
        .releasedWithActive, e, mm: m?.address ?? owner?.address, page: key, half: k, before: before,
        after: "released with PG_active",
        "pte_frag_destroy(\(hex(f))) dropped the last references of \(hex(key))\(ctx.simulating ? "" : " (pfn \(hex(pfn(key))))") and freed it with PG_active still set (pte_free_defer used one of its fragments): \"BUG: Bad page state … \(ctx.simulating ? "" : "pfn:\(String(pfn(key), radix: 16)) … ")flags: active\" on kernels without fda4d71651f7",
        related: ctx.history(of: key).filter { $0.kind == .deferBegin }.map(\.line))
    }
  }

  /// `pte_free_now(head)`: the page `head` names (book3s64), else the oldest in R.
  func rcuFree(_ e: Event) {
    switch frag.rcuCallback(e.table) {
    case .released(let key): ctx.record(page: key, e, mm: nil)
    case .heldNotPending(let key):
      // v6.6+: `pte_fragment_free` calls `pte_free_now` when the count reaches zero, so
      // the kernel released a page whose count the model did not see reach zero.
      releasedUnseen(
        key, e, as: "through pte_free_now(\(hex(e.table)))", rule: .releaseWithRefs)
    case .none: break
    }
  }

  // MARK: The mm's life (book3s64 mmu_context.c), PMD fragments (book3s64/pgtable.c)

  /// `arch_exit_mmap(mm)`, at the start of `exit_mmap` (mm/mmap.c), before `unmap_vmas` and
  /// `free_pgtables`: `destroy_pagetable_cache` calls `pte_frag_destroy` on a non-NULL
  /// cursor (v6.12 `arch/powerpc/mm/book3s64/mmu_context.c` `arch_exit_mmap`). The
  /// `pte_frag_destroy` follows in the same task; the mm's tables are freed after it.
  func exit(_ e: Event) {
    guard let a = e.mm else { return }
    exiting[e.pid] = (a, e.line)
  }

  /// Kinds only the task itself shows (not an interrupt's softirq that runs in its context and
  /// prints its pid: `__tlb_remove_table`, the nested `pte_fragment_free`/`pmd_fragment_free`,
  /// `pte_free_now` of RCU callbacks).
  static func processContext(_ k: Event.Kind) -> Bool {
    switch k {
    case .allocBegin, .alloc, .tlbQueue, .deferBegin, .pmdAlloc, .mmBirth, .mmExit, .mmDeath: true
    default: false
    }
  }

  /// The task that entered `arch_exit_mmap` went on without `pte_frag_destroy`: the kernel's
  /// cursor was NULL. If the model holds one, a `pte_frag_destroy` hit was missed or the
  /// model's cursor is wrong.
  func exitWithoutDestroy(_ e: Event, _ x: (mm: UInt64, line: Int)) {
    exiting[e.pid] = nil
    guard let m = frag.mms[address: x.mm], let c = m.cursor else { return }
    let key = geo.page(c)
    let before = frag.state(key)
    let f = makeFinding(
      .destroyNotCursor, Event(kind: .mmExit, line: x.line, pid: e.pid), mm: m.address, page: key,
      half: geo.index(c), before: before, after: frag.describe(before),
      "arch_exit_mmap(\(hex(m.address))) at line \(x.line) ran no pte_frag_destroy, so the kernel's cursor was NULL, but the model's is \(hex(c))")
    if m.confirmed {
      ctx.report(
        Inconclusive(
          reason: .missedProbe, line: x.line, mm: m.address, page: key,
          message:
            "arch_exit_mmap(\(hex(m.address))) ran no pte_frag_destroy of the cursor \(hex(c)): probable missed pte_frag_destroy",
          wouldBeRule: .destroyNotCursor, hingesOn: .pteFragDestroy, asFinding: f))
    }
    // Follow the kernel: the cursor is gone; what it still counted is not known.
    frag.setCursor(m, nil)
    frag.update(key) { $0.refKnown = false }
  }

  /// `destroy_context(mm)` (from `__mmdrop`), after an `arch_exit_mmap` without its
  /// `pte_frag_destroy`, if any.
  override func death(_ e: Event) {
    if let a = e.mm, let (pid, x) = exiting.first(where: { $0.value.mm == a }) {
      exiting[pid] = nil
      exitWithoutDestroy(e, x)
    }
    super.death(e)
  }

  /// `pmd_fragment_alloc(mm, vmaddr)` returned `table`, or `pmd_fragment_free(table)` (v6.12
  /// `arch/powerpc/mm/book3s64/pgtable.c` `pmd_fragment_alloc`, `__alloc_for_pmdcache`):
  /// PMD fragments never share a page with PTE fragments, so a page the model holds as PTE
  /// fragments that shows one was released unseen.
  func pmdFragment(_ e: Event) {
    let alloc = e.kind == .pmdAlloc
    guard !alloc || e.table != 0, frag.pages[geo.page(e.table)] != nil else { return }
    releasedUnseen(
      geo.page(e.table), e,
      as: "as the PMD fragment \(hex(e.table)) that \(alloc ? "pmd_fragment_alloc returned" : "pmd_fragment_free frees")",
      rule: .releaseWithRefs)
  }

  /// Page `key` came back from the buddy allocator (`how`) while the model still holds it:
  /// the kernel released it, so what kept it in the model was missed — each fragment in a
  /// tlb batch a `__tlb_remove_table`, each fragment handed out a `pte_fragment_free`, an
  /// RCU wait its `pte_free_now`, a cursor page's unhanded fragments a `pte_frag_destroy`.
  /// One inconclusive item per inferred miss, hinging on that probe: the kprobe_profile
  /// explains it, or (no misses counted) it is the finding `rule` (the first of each probe).
  /// Fragments whose history lies before the capture need no miss. Then the model drops
  /// the page (resynchronised). The s390 models' `releasedUnseen` is the same idea.
  func releasedUnseen(_ key: UInt64, _ e: Event, as how: String, rule: RuleID) {
    cameBack(key, e) { p, before in
      let owner = frag.mms[serial: p.owner]
      var carried: Set<KernelFunction> = []
      func item(
        _ reason: InconclusiveReason, _ probe: KernelFunction, _ index: Int?, _ rule: RuleID,
        what: String, missed: String
      ) {
        let f = makeFinding(
          rule, e, mm: owner?.address, page: key, half: index, before: before, after: "(released)",
          "page \(hex(key)) came back from the buddy allocator \(how) while \(what), and the kprobe_profile shows no missed \(probe.symbol)")
        let first = carried.insert(probe).inserted
        ctx.report(
          Inconclusive(
            reason: reason, line: e.line, mm: owner?.address, page: key,
            message: "page \(hex(key)) came back from the buddy allocator \(how) while \(what): probable missed \(missed)",
            wouldBeRule: rule, hingesOn: probe, asFinding: first ? f : nil))
      }
      if p.rcu {
        if frag.headsSeen {
          item(
            .missedProbe, .pteFreeNow, nil, .reuseBeforeGrace,
            what: "it waited for its RCU callback", missed: "pte_free_now")
        } else if frag.surprise(key, 0) == .rcuPending {
          // Callbacks matched in call_rcu order, and none ran since the page entered R.
          finding(
            .reuseBeforeGrace, e, mm: owner?.address, page: key, half: 0, before: before,
            "page \(hex(key)) came back from the buddy allocator \(how) while it waits for its RCU callback (pte_free_now), which has not run")
        }
      } else if !p.pgste {
        for (j, t, queued) in frag.unfreed(key, p) {
          if queued {
            item(
              .missedTLBExec, .tlbRemoveTableExec, j, rule,
              what: "fragment \(hex(t)) was in a tlb batch", missed: "__tlb_remove_table(\(hex(t)))")
            ctx.inferred(.exec(table: t))
          } else {
            item(
              .missedProbe, .pteFragmentFree, j, rule,
              what: "fragment \(hex(t)) was handed out and not freed", missed: "pte_fragment_free(\(hex(t)))")
            ctx.inferred(.free(table: t))
          }
        }
        if p.refKnown, p.unhandedCounted, p.count(.unhanded) > 0, p.cursorOf >= 0,
          let cm = frag.mms[serial: p.cursorOf], let c = cm.cursor
        {
          if cm.confirmed {
            item(
              .missedProbe, .pteFragDestroy, geo.index(c), rule,
              what: "it was the cursor page of mm \(hex(cm.address)) (\(p.count(.unhanded)) unhanded fragments counted)",
              missed: "pte_frag_destroy(\(hex(c)))")
          } else {
            ctx.report(
              Inconclusive(
                reason: .beforeCapture, line: e.line, mm: cm.address, page: key,
                message:
                  "page \(hex(key)) came back from the buddy allocator \(how) while the model held it as the cursor page of mm \(hex(cm.address)), whose cursor was synchronised from the capture alone",
                wouldBeRule: rule))
          }
        }
      }
    }
  }
}

/// `powerpc-hash64k`: book3s64 hash MMU, 64 KiB pages, 16 × 4 KiB fragments.
public final class PowerpcHash64KModel: PowerpcModel {
  override public class var preset: PowerpcPreset { .hash64K }
}

/// `powerpc-radix64k`: book3s64 radix MMU, 64 KiB pages, 256 × 256 B fragments.
public final class PowerpcRadix64KModel: PowerpcModel {
  override public class var preset: PowerpcPreset { .radix64K }
}

/// `powerpc-8xx16k`: 8xx with 16 KiB pages, 4 × 4 KiB fragments.
public final class Powerpc8xx16KModel: PowerpcModel {
  override public class var preset: PowerpcPreset { .mpc8xx16K }
}

/// `powerpc-hash64k+fda4d71651f7`: as `powerpc-hash64k`, for kernels with fda4d71651f7.
public final class PowerpcHash64KFixedModel: PowerpcModel {
  override public class var preset: PowerpcPreset { .hash64K }
  override public class var hasDestroyFix: Bool { true }
}

/// `powerpc-radix64k+fda4d71651f7`: as `powerpc-radix64k`, for kernels with fda4d71651f7.
public final class PowerpcRadix64KFixedModel: PowerpcModel {
  override public class var preset: PowerpcPreset { .radix64K }
  override public class var hasDestroyFix: Bool { true }
}

/// `powerpc-8xx16k+fda4d71651f7`: as `powerpc-8xx16k`, for kernels with fda4d71651f7.
public final class Powerpc8xx16KFixedModel: PowerpcModel {
  override public class var preset: PowerpcPreset { .mpc8xx16K }
  override public class var hasDestroyFix: Bool { true }
}
