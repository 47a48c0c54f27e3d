import PTFragEvents

/// # s390 one PTE table per 4 KiB page — Linux v6.7 … v6.13 (variant D; the Debian 6.12 kernel)
///
/// Encodes `arch/s390/mm/pgalloc.c` after d08d4e7cd6bf ("s390/mm: use full 4KB page for 2KB
/// PTE"), 0031f1c7cf26 ("use compound page order to distinguish page tables") and
/// 02e790ee3077 ("make pte_free_tlb() similar to pXd_free_tlb()"), all in v6.7
/// (docs/kernel-models.md §5; read at torvalds/linux@0031f1c7cf26 and
/// ctrliq/kernel-src-tree@0b346c28ef7f):
/// - `page_table_alloc`: a fresh order-0 page from `pagetable_alloc`, `pagetable_pte_ctor`,
///   the first 2 KiB set to invalid PTEs, the second 2 KiB zeroed (the PGSTE area), the page
///   base returned. No list, no bits, no tags, no Active.
/// - `page_table_free`: `pagetable_pte_dtor_free` at once.
/// - tlb path: `pte_free_tlb` → (6.7 … ~6.10: the trivial out-of-line `page_table_free_rcu`:
///   `gmap_unlink` for pgste mms, then `tlb_remove_ptdesc(tlb, table)`; 6.12: inline, the
///   same) → `tlb_remove_table(tlb, table VA)` (queue) → later `__tlb_remove_table(table VA)`:
///   `compound_order(page) == CRST_ALLOC_ORDER` → CRST (`pagetable_free`), else
///   `pagetable_pte_dtor_free`.
/// - `pte_free_defer`: `call_rcu(&ptdesc->pt_rcu_head, pte_free_now)`; later
///   `pte_free_now` → `pagetable_pte_dtor_free`.
///
/// Out of scope: 6.14+ (Qi Zheng's generic `__tlb_remove_table`), where `tlb_remove_table`
/// carries a `struct ptdesc *` (a vmemmap address) instead of the table VA and the arch
/// `__tlb_remove_table` is gone; such values are reported as `free-unknown` (not a
/// page-aligned table) and `ptfrag analyze --model auto` refuses such captures.
///
/// ## States (per 4 KiB page)
/// `Live` (a table handed out) –free_now→ released; `Live` –tlb queue→ `Q` –exec→ released;
/// `Live` –defer→ `R` –rcu cb→ released. Everything else is ✗. With the trivial
/// `page_table_free_rcu` probed (6.7 … ~6.10), `Live` –free_tlb→ `Q` and the
/// `tlb_remove_table` inside it is the same queueing, not a second one.
/// CRST tables (16 KiB, order 2, from `crst_table_alloc`) flow through the same tlb
/// functions; they are told apart by their address: a block the capture saw allocated by
/// `crst_table_alloc`, else a 16 KiB-aligned value the model never saw as a PTE table (kept
/// as "unknown, maybe CRST"), while a table `page_table_alloc` returned is a PTE table.
///
/// ## Invariants (§5) and rules
/// Every table is page-aligned (`alloc-not-page-aligned`); every alloc takes a page the
/// allocator does not hold (`reuse-before-release`); each page holds one table, freed once
/// (`double-free`), and only if it is one (`free-unknown`); `__tlb_remove_table` only after
/// `tlb_remove_table` (`exec-without-queue`); `pte_free_now` only for a page waiting for it
/// (`rcu-free-not-pending`); an mm's tables are all freed before its pgd (`leak`).
///
/// ## Occupancy
/// In 2 KiB slots, as for A and B, so `compare` lines the strategies up: every held page is
/// 2 slots, one for its table (live, or pending in Q/R) and one **stranded**: the upper
/// 2 KiB that D never uses for a table (§8: "D's permanent 2 KiB per table"). Bytes =
/// slots × 2048. Waste is never reusable: `reusableNow = reusableLater = 0`.
///
/// ## What a capture cannot tell
/// - Tables allocated before the capture: their frees/queues/execs are counted as untracked.
/// - Silent kprobe misses: a page handed out again while Q is a probable missed
///   `__tlb_remove_table`; while Live, a probable missed `page_table_free`; an exec of a Live
///   page, a probable missed `tlb_remove_table`. Each is inconclusive unless the
///   kprobe_profile shows that probe missed nothing.
/// - `pte_free_now` names a struct page; R ends when a hit maps to the page
///   (`RCUHeadMapper`), or when the page comes back as a fresh table (then the callback
///   must have run; once the mapping is trusted, that is a probable missed `pte_free_now`).
public final class S390v67Model: AllocatorModel, FindingReporter, MMLifetimes {
  public static let rules: [Rule] = [
    Rule(.doubleFree, .error, "a free (page_table_free, page_table_free_rcu, tlb_remove_table, pte_free_defer) of a table that is already freed (queued or waiting for RCU)"),
    Rule(.freeUnknown, .error, "a free of an address that is not a table: not page-aligned (a tagged fragment or a 6.14+ ptdesc pointer), a CRST table, or never returned to this mm"),
    Rule(.execWithoutQueue, .error, "__tlb_remove_table of a PTE table that tlb_remove_table never queued"),
    Rule(.reuseBeforeRelease, .error, "page_table_alloc or crst_table_alloc returned a page the allocator still holds (live, queued, or waiting for RCU)"),
    Rule(.allocNotPageAligned, .error, "page_table_alloc returned an address that is not 4 KiB-aligned (a 2 KiB fragment: not a 6.7+ kernel)"),
    .allocWithoutReturn("page_table_alloc"),
    Rule(.rcuFreeNotPending, .error, "pte_free_now released a page that is not waiting for an RCU callback (its table is live or queued)"),
    Rule(.crossMm, .warning, "a free names a different mm than the allocation (D's free paths ignore the mm, so the allocator is not corrupted)"),
    .leak,
  ]

  static let rule = ruleIndex(rules)

  public static let descriptor = ModelDescriptor(
    id: "s390-6.7",
    kernels: "v6.7 … v6.13 (incl. 6.12 LTS; 6.14+ tlb path carries ptdesc pointers: unsupported)",
    commits: [
      "d08d4e7cd6bf s390/mm: use full 4KB page for 2KB PTE",
      "0031f1c7cf26 s390/mm: use compound page order to distinguish page tables",
      "02e790ee3077 s390/mm: make pte_free_tlb() similar to pXd_free_tlb()",
    ],
    functions: [
      "page_table_alloc", "page_table_free", "page_table_free_rcu (6.7 … ~6.10)",
      "tlb_remove_table", "__tlb_remove_table", "pte_free_defer", "pte_free_now",
      "crst_table_alloc", "crst_table_free",
    ],
    summary: "one table per fresh 4 KiB page (upper 2 KiB unused), no sharing; untagged tlb path; pte_free_defer = call_rcu",
    rules: rules, mainline: (from: (6, 7), through: (6, 13)))

  // MARK: State

  enum State: UInt8 {
    /// A table handed out and not freed.
    case live
    /// Queued in an mmu_gather batch (`tlb_remove_table`), not yet executed.
    case queued
    /// `pte_free_defer` called `call_rcu`; `pte_free_now` not yet run.
    case rcu

    var name: String {
      switch self {
      case .live: "Live"
      case .queued: "Q"
      case .rcu: "R"
      }
    }
  }

  struct Page {
    var state: State
    /// Owning mm incarnation (serial), -1 unknown (allocated before the capture).
    var owner: Int32
    /// Line of the event that put the page in `state`.
    var since: Int
    /// `page_table_free_rcu` (trivial form) queued it; its own `tlb_remove_table` is due.
    var innerQueueDue = false
  }

  final class MM: RegisteredMM {
    let serial: Int32
    let address: UInt64
    /// Born in the capture: a free of a table it never got is `free-unknown`.
    var known: Bool
    var bornLine: Int?
    var liveTables = 0
    init(serial: Int32, address: UInt64, known: Bool) {
      self.serial = serial
      self.address = address
      self.known = known
    }
  }

  struct Crst {
    var owner: Int32
    var line: Int
    var queued = false
  }

  let ctx: ReplayContext
  var pages = AddressMap<Page>()
  /// CRST blocks (16 KiB) by base address, as seen allocated in the capture.
  var crst: [UInt64: Crst] = [:]
  /// 16 KiB-aligned tables queued that the capture never saw allocated: PTE or CRST.
  var maybeCrstQueued: [UInt64: Int] = [:]
  var mms = MMRegistry<MM>()
  /// Pages in R, for `pte_free_now` resolution.
  var rcuPages = Set<UInt64>()
  var heads = RCUHeadMapper()
  /// Whether the capture probes `tlb_remove_table` (one queue seen so far).
  var sawQueue = false
  /// Pages per state (O(1) occupancy).
  var liveCount = 0
  var pendingCount = 0

  public init(context: ReplayContext) { ctx = context }

  static let pageMask: UInt64 = ~0xfff
  static let crstBytes: UInt64 = 0x4000

  // MARK: Helpers

  func mm(at address: UInt64?) -> MM? { mms.mm(at: address, knownIfNew: false, &ctx.stats) }

  func owner(of p: Page) -> MM? { p.owner >= 0 ? mms[serial: p.owner] : nil }

  func describe(_ key: UInt64) -> String {
    if let p = pages[key] { return p.state.name }
    if crst[key] != nil { return crst[key]!.queued ? "CRST Q" : "CRST" }
    return "(none)"
  }

  func rule(_ id: RuleID) -> Rule { Self.rule[id]! }

  /// Sets a page's state, keeping the per-state counts.
  func set(_ key: UInt64, _ p: Page) {
    if let old = pages[key] { count(key, old, -1) }
    pages[key] = p
    count(key, p, 1)
  }

  /// Adds `d` (±1) pages like `p` to the counts (global and its owner's).
  func count(_ key: UInt64, _ p: Page, _ d: Int) {
    let s = p.state
    if s == .live { liveCount += d } else { pendingCount += d }
    if s == .rcu { if d > 0 { rcuPages.insert(key) } else { rcuPages.remove(key) } }
    if p.owner >= 0 {
      ctx.mmBook.adjust(p.owner, mms[serial: p.owner]?.address, s == .live ? Self.livePage : Self.pendingPage, sign: d)
    }
  }

  /// One held page as occupancy: its table live (or pending), its upper 2 KiB stranded.
  static let livePage = heldPage(live: true)
  static let pendingPage = heldPage(live: false)
  static func heldPage(live: Bool) -> Occupancy {
    var o = Occupancy()
    o.pagesHeld = 1
    if live { o.live = 1 } else { o.pending = 1 }
    o.stranded = 1
    return o
  }

  /// The page goes back to the buddy allocator.
  func release(_ key: UInt64) {
    guard let p = pages.removeValue(forKey: key) else { return }
    count(key, p, -1)
    if p.state == .live { owner(of: p)?.liveTables -= 1 }
    ctx.released(page: key)
  }

  /// The CRST block holding `address`, if the capture saw it allocated.
  func crstBlock(containing address: UInt64) -> UInt64? {
    let base = address & ~(Self.crstBytes - 1)
    return crst[base] != nil ? base : nil
  }

  // MARK: AllocatorModel

  public var occupancy: Occupancy {
    var o = Occupancy()
    o.pagesHeld = pages.count
    o.slotsPerPage = 2
    o.live = liveCount
    o.pending = pendingCount
    o.stranded = pages.count
    return o
  }

  /// Self-check for tests: the kept counts equal a full recount.
  public func occupancyMatchesRecount() -> Bool {
    let live = pages.values.filter { $0.state == .live }.count
    let rcu = Set(pages.filter { $0.value.state == .rcu }.map { $0.key })
    var perMM: [Int32: Int] = [:]
    for p in pages.values where p.state == .live && p.owner >= 0 { perMM[p.owner, default: 0] += 1 }
    let mmsAgree = mms.allSatisfy { $0.liveTables == perMM[$0.serial, default: 0] }
    // The book: every owned page counted for its owner, live or pending, one stranded slot.
    var byMM: [Int32: Occupancy] = [:]
    for p in pages.values where p.owner >= 0 { byMM[p.owner, default: Occupancy()].add(p.state == .live ? Self.livePage : Self.pendingPage) }
    guard byMM.filter({ !$0.value.isEmpty }) == ctx.mmBook.currentByMM || !ctx.mmBook.enabled else { return false }
    return live == liveCount && pages.count - live == pendingCount && rcu == rcuPages && mmsAgree
  }

  /// Every allocation takes a fresh page from the buddy allocator.
  public func simulateAlloc(mm: UInt64, fresh: () -> UInt64) -> UInt64 { fresh() }

  /// Simulation: the 6.12 vocabulary. `pte_free_tlb` queues the untagged table with
  /// `tlb_remove_table` (no `page_table_free_rcu`), `__tlb_remove_table` runs the same value,
  /// `pte_free_defer` is `call_rcu`.
  public func kernelEvents(for op: SimulatedOperation, _ emit: (SimulatedEvent) -> Void) {
    switch op {
    case .freeTLB(_, let t): emit(SimulatedEvent(.tlbQueue, table: t))
    case .exec(let t): emit(SimulatedEvent(.tlbExec, table: t))
    case .deferFree(let mm, let t): emit(SimulatedEvent(.deferBegin, mm: mm, table: t))
    default: s390FragmentEvents(for: op, deferAs: .deferBegin, emit)
    }
  }

  public func apply(_ e: Event) {
    ctx.count(e.kind)
    switch e.kind {
    case .allocBegin: _ = mm(at: e.mm)
    case .alloc: alloc(e)
    case .allocUnreturned: allocUnreturned(e)
    case .freeNow: free(e, via: "page_table_free")
    case .freeTLB: freeTLB(e)
    case .tlbQueue: tlbQueue(e)
    case .tlbExec: tlbExec(e)
    case .deferBegin: deferBegin(e)
    case .rcuFree: rcuFree(e)
    case .crstAlloc: crstAlloc(e, owner: mm(at: e.mm))
    case .crstFree: crstFree(e)
    case .mmBirth: birth(e)
    case .mmDeath: death(e)
    case .lost: lost(e)
    case .deferEnd, .fragmentFree, .fragDestroy, .pmdAlloc, .pmdFree, .mmExit: break
    }
    if pages.count > ctx.stats.peakPages { ctx.stats.peakPages = pages.count }
  }

  public func finish(lastLine: Int) {
    ctx.stats.pagesAtEnd = pages.count
    ctx.stats.tablesLiveAtEnd = liveCount
  }

  // MARK: Events

  func alloc(_ e: Event) {
    let m = mm(at: e.mm)
    if e.table == 0 {
      ctx.stats.allocationsFailed += 1
      return
    }
    ctx.stats.allocationsPredicted += 1
    let key = e.table & Self.pageMask
    ctx.record(page: key, e, mm: m?.address)
    let before = describe(key)
    if e.table & 0xfff != 0 {
      finding(
        .allocNotPageAligned, e, mm: m?.address, page: key, before: before,
        "page_table_alloc returned \(hex(e.table)), which is not 4 KiB-aligned: a 6.7+ kernel hands out whole pages (a 2 KiB fragment means a pre-6.7 kernel: use --model s390-6.1 or s390-6.6)")
      return
    }
    if let base = crstBlock(containing: key) {
      let c = crst[base]!
      let text =
        "page_table_alloc returned \(hex(e.table)), inside the CRST table \(hex(base)) that crst_table_alloc returned at line \(c.line)"
      if c.queued {
        // pmd_free_tlb/pud_free_tlb queued the CRST: a missed __tlb_remove_table (case 0,
        // free_pages of the order-2 block) released it.
        ctx.inferred(.exec(table: base))
        probableMiss(
          .missedTLBExec, of: .tlbRemoveTableExec,
          .reuseBeforeRelease, e, mm: m?.address, page: key, before: before, after: "Live",
          finding: "\(text) and whose __tlb_remove_table was not seen", related: [c.line],
          "\(text) and queued since: probable missed __tlb_remove_table(\(hex(base)))")
      } else {
        finding(
          .reuseBeforeRelease, e, mm: m?.address, page: key, before: before,
          "\(text), still in use", related: [c.line])
      }
      crst[base] = nil
    }
    if let p = pages[key] { reuseHeld(e, m, key, p, before) }
    set(key, Page(state: .live, owner: m?.serial ?? -1, since: e.line))
    m?.liveTables += 1
  }

  /// `page_table_alloc` returned a page the model still holds: the kernel released it unseen.
  /// Each case hinges on the probe whose silent miss would explain it.
  /// `how` names the allocation ("page_table_alloc returned 0x…", or a CRST block covering it).
  func reuseHeld(
    _ e: Event, _ m: MM?, _ key: UInt64, _ p: Page, _ before: String, how: String? = nil
  ) {
    let t = how ?? "page_table_alloc returned \(hex(e.table))"
    switch p.state {
    case .live: ctx.inferred(.free(table: key))
    case .queued: ctx.inferred(.exec(table: key))
    case .rcu: break
    }
    switch p.state {
    case .live:
      probableMiss(
        e, m, key, before, p, .missedProbe, .pageTableFree,
        "\(t), whose table (allocated at line \(p.since)) was never freed",
        "\(t) while its table from line \(p.since) is live: probable missed free of \(hex(key)) (page_table_free, pte_free_defer or tlb_remove_table)",
        alternatives: [.pteFreeDefer, .tlbRemoveTable])
    case .queued:
      probableMiss(
        e, m, key, before, p, .missedTLBExec, .tlbRemoveTableExec,
        "\(t), queued by tlb_remove_table at line \(p.since); no __tlb_remove_table released it",
        "\(t) while it is queued since line \(p.since): probable missed __tlb_remove_table(\(hex(key)))")
    case .rcu:
      // The page is back from the buddy allocator: its pte_free_now must have run. Only a
      // trusted struct page mapping makes its absence suspicious.
      if heads.trusted {
        probableMiss(
          e, m, key, before, p, .missedProbe, .pteFreeNow,
          "\(t), deferred by pte_free_defer at line \(p.since); no pte_free_now released it",
          "\(t) while it waits for RCU since line \(p.since): probable missed pte_free_now")
      }
    }
    release(key)
  }

  /// A `reuse-before-release` that a silent miss of `probe` would explain.
  func probableMiss(
    _ e: Event, _ m: MM?, _ key: UInt64, _ before: String, _ p: Page,
    _ reason: InconclusiveReason, _ probe: KernelFunction, _ finding: String, _ message: String,
    alternatives: [KernelFunction] = []
  ) {
    probableMiss(
      reason, of: probe, alternatives: alternatives, .reuseBeforeRelease, e, mm: m?.address,
      page: key, before: before, after: "Live", finding: finding, related: [p.since], message)
  }

  func allocUnreturned(_ e: Event) {
    guard let m = mm(at: e.mm) else { return }
    reportUnreturnedAlloc(
      ctx, e, mm: m.address, symbol: "page_table_alloc", function: .pageTableAlloc,
      wasPredicted: nil, rule: rule(.allocWithoutReturn))
  }

  /// Checks that `e.table` names a page-aligned table; reports `free-unknown` otherwise.
  func aligned(_ e: Event, _ via: String, mm: UInt64?) -> Bool {
    guard e.table & 0xfff != 0 || e.table == 0 else { return true }
    let key = e.table & Self.pageMask
    let what =
      e.table & 0x3 != 0 && e.table & 0xffc == 0
      ? "a tagged 2 KiB fragment (a pre-6.7 kernel: use --model s390-6.1 or s390-6.6)"
      : e.table & 0x7ff == 0
        ? "a 2 KiB fragment (a pre-6.7 kernel: use --model s390-6.1 or s390-6.6)"
        : "not a page-aligned table (a 6.14+ kernel queues struct ptdesc pointers: unsupported)"
    finding(
      .freeUnknown, e, mm: mm, page: key, before: describe(key),
      "\(via)(\(hex(e.table))): \(what)")
    return false
  }

  /// `page_table_free` (immediate) and the free inside nothing else: Live → released.
  func free(_ e: Event, via: String) {
    let m = mm(at: e.mm)
    guard aligned(e, via, mm: m?.address) else { return }
    let key = e.table
    ctx.record(page: key, e, mm: m?.address)
    let before = describe(key)
    guard checkedFree(e, m, key, before, via) != nil else { return }
    release(key)
  }

  /// The checks every free of a table makes; returns the page when it is Live.
  func checkedFree(_ e: Event, _ m: MM?, _ key: UInt64, _ before: String, _ via: String) -> Page? {
    if let base = crstBlock(containing: key) {
      finding(
        .freeUnknown, e, mm: m?.address, page: key, before: before,
        "\(via)(\(hex(e.table))) frees a CRST table (crst_table_alloc at line \(crst[base]!.line)) as a PTE table",
        related: [crst[base]!.line])
      return nil
    }
    guard let p = pages[key] else {
      if let m, m.known {
        finding(
          .freeUnknown, e, mm: m.address, page: key, before: before,
          "\(via)(\(hex(e.table))), which no page_table_alloc of mm \(hex(m.address)) (born at line \(m.bornLine ?? 0)) returned")
      } else {
        ctx.stats.freesUntracked += 1
      }
      return nil
    }
    if p.state != .live {
      let how = p.state == .queued ? "queued by the tlb batch" : "deferred by pte_free_defer"
      finding(
        .doubleFree, e, mm: m?.address ?? owner(of: p)?.address, page: key, before: before,
        "\(via)(\(hex(e.table))), already \(how) at line \(p.since)", related: [p.since])
      return nil
    }
    if let m, p.owner >= 0, p.owner != m.serial {
      finding(
        .crossMm, e, mm: m.address, page: key, before: before,
        "\(via) names mm \(hex(m.address)), but \(hex(key)) was allocated to mm \(owner(of: p).map { hex($0.address) } ?? "(gone)")")
    }
    return p
  }

  /// The trivial `page_table_free_rcu` of 6.7 … ~6.10: Live → Q, its `tlb_remove_table` due.
  func freeTLB(_ e: Event) {
    let m = mms[address: e.mm]
    guard aligned(e, "page_table_free_rcu", mm: m?.address) else { return }
    let key = e.table
    ctx.record(page: key, e, mm: e.mm)
    let before = describe(key)
    if pages[key] == nil, crstBlock(containing: key) == nil, !(m?.known ?? false) {
      ctx.stats.freesUntracked += 1
      var p = Page(state: .queued, owner: -1, since: e.line)
      p.innerQueueDue = true
      set(key, p)
      return
    }
    guard var p = checkedFree(e, m, key, before, "page_table_free_rcu") else { return }
    owner(of: p)?.liveTables -= 1
    p.state = .queued
    p.since = e.line
    p.innerQueueDue = true
    set(key, p)
  }

  func tlbQueue(_ e: Event) {
    sawQueue = true
    guard aligned(e, "tlb_remove_table", mm: e.mm) else { return }
    let key = e.table
    if var c = crst[key] {
      ctx.record(page: key, e, mm: nil)
      if c.queued {
        finding(
          .doubleFree, e, mm: mms[serial: c.owner]?.address, page: key, before: "CRST Q",
          "tlb_remove_table(\(hex(key))) queues the CRST table a second time")
        return
      }
      c.queued = true
      crst[key] = c
      return
    }
    guard var p = pages[key] else {
      // Allocated before the capture. A 16 KiB-aligned value may be a CRST table.
      if key & (Self.crstBytes - 1) == 0 {
        maybeCrstQueued[key] = e.line
      } else {
        ctx.stats.freesUntracked += 1
        ctx.record(page: key, e, mm: nil)
        set(key, Page(state: .queued, owner: -1, since: e.line))
      }
      return
    }
    ctx.record(page: key, e, mm: nil)
    let before = describe(key)
    switch p.state {
    case .live:
      owner(of: p)?.liveTables -= 1
      p.state = .queued
      p.since = e.line
      set(key, p)
    case .queued where p.innerQueueDue:
      // The tlb_remove_table inside page_table_free_rcu.
      p.innerQueueDue = false
      set(key, p)
    case .queued, .rcu:
      let how = p.state == .queued ? "queued by the tlb batch" : "deferred by pte_free_defer"
      finding(
        .doubleFree, e, mm: owner(of: p)?.address, page: key, before: before,
        "tlb_remove_table(\(hex(key))) frees a table already \(how) at line \(p.since)",
        related: [p.since])
    }
  }

  func tlbExec(_ e: Event) {
    guard aligned(e, "__tlb_remove_table", mm: nil) else { return }
    let key = e.table
    if let c = crst[key] {
      ctx.record(page: key, e, mm: nil)
      if !c.queued && sawQueue {
        probableMiss(
          .missedProbe, of: .tlbRemoveTable,
          .execWithoutQueue, e, mm: mms[serial: c.owner]?.address, page: key, before: "CRST",
          after: "(none)",
          finding: "__tlb_remove_table(\(hex(key))) frees the CRST table from line \(c.line), which tlb_remove_table never queued",
          related: [c.line],
          "__tlb_remove_table(\(hex(key))) of a CRST table never queued: probable missed tlb_remove_table")
      }
      crst[key] = nil
      return
    }
    if maybeCrstQueued.removeValue(forKey: key) != nil { return }
    guard let p = pages[key] else {
      ctx.stats.execsUntracked += 1
      return
    }
    ctx.record(page: key, e, mm: nil)
    let before = describe(key)
    switch p.state {
    case .queued:
      release(key)
    case .live:
      if sawQueue {
        probableMiss(
          .missedProbe, of: .tlbRemoveTable,
          .execWithoutQueue, e, mm: owner(of: p)?.address, page: key, before: before,
          after: "(none)",
          finding: "__tlb_remove_table(\(hex(key))) frees a live table (allocated at line \(p.since)) that tlb_remove_table never queued",
          related: [p.since],
          "__tlb_remove_table(\(hex(key))) of a live table: probable missed tlb_remove_table(\(hex(key)))")
      }
      release(key)
    case .rcu:
      finding(
        .doubleFree, e, mm: owner(of: p)?.address, page: key, before: before,
        "__tlb_remove_table(\(hex(key))) frees a table that pte_free_defer already handed to RCU at line \(p.since)",
        related: [p.since])
    }
  }

  func deferBegin(_ e: Event) {
    let m = mm(at: e.mm)
    guard aligned(e, "pte_free_defer", mm: m?.address) else { return }
    let key = e.table
    ctx.record(page: key, e, mm: m?.address)
    let before = describe(key)
    if pages[key] == nil, crstBlock(containing: key) == nil, !(m?.known ?? false) {
      ctx.stats.freesUntracked += 1
      set(key, Page(state: .rcu, owner: -1, since: e.line))
      return
    }
    guard var p = checkedFree(e, m, key, before, "pte_free_defer") else { return }
    owner(of: p)?.liveTables -= 1
    p.state = .rcu
    p.since = e.line
    set(key, p)
    // call_rcu(&ptdesc->pt_rcu_head, pte_free_now), in a simulation.
    if ctx.simulating { ctx.callRCU(.rcuFree, heads.simulatedHead(for: key)) }
  }

  func rcuFree(_ e: Event) {
    heads.handle(
      head: e.table, directCandidate: nil, waiting: { Array(rcuPages) },
      isWaiting: { pages[$0]?.state == .rcu }, waitingCount: rcuPages.count,
      end: { key in
        ctx.record(page: key, e, mm: nil)
        release(key)
      },
      unexpected: { key in
        guard let p = pages[key] else { return }
        ctx.record(page: key, e, mm: nil)
        finding(
          .rcuFreeNotPending, e, mm: owner(of: p)?.address, page: key, before: describe(key),
          after: "(none)",
          "pte_free_now(\(hex(e.table))) releases page \(hex(key)), which is \(p.state == .live ? "live (allocated at line \(p.since))" : "queued in the tlb batch at line \(p.since)"), not waiting for RCU",
          related: [p.since])
        release(key)
      })
  }

  func crstAlloc(_ e: Event, owner m: MM?) {
    guard e.table != 0 else { return }
    let base = e.table
    ctx.record(page: base, e, mm: m?.address)
    if let c = crst[base] {
      let f = makeFinding(
        .reuseBeforeRelease, e, mm: m?.address, page: base, before: c.queued ? "CRST Q" : "CRST",
        after: "CRST",
        "crst_table_alloc returned \(hex(base)), the CRST table from line \(c.line)\(c.queued ? ", queued but never executed" : ", never freed")",
        related: [c.line])
      if c.queued {
        ctx.report(
          Inconclusive(
            .missedTLBExec, missOf: .tlbRemoveTableExec, f,
            "crst_table_alloc returned \(hex(base)) while it is queued since line \(c.line): probable missed __tlb_remove_table"))
      } else {
        ctx.report(f)
      }
    }
    maybeCrstQueued[base] = nil
    var k = base
    while k < base + Self.crstBytes {
      if let p = pages[k] {
        // The same evidence as a page_table_alloc of a held page: the kernel released it.
        ctx.record(page: k, e, mm: m?.address)
        reuseHeld(
          e, m, k, p, describe(k),
          how: "crst_table_alloc returned \(hex(base)), whose 16 KiB cover the PTE table \(hex(k))")
        release(k)
      }
      k += 0x1000
    }
    crst[base] = Crst(owner: m?.serial ?? -1, line: e.line)
  }

  func crstFree(_ e: Event) {
    guard e.table != 0 else { return }
    if let p = pages[e.table & Self.pageMask] {
      let key = e.table & Self.pageMask
      ctx.record(page: key, e, mm: e.mm)
      finding(
        .freeUnknown, e, mm: e.mm, page: key, before: describe(key),
        "crst_table_free(\(hex(e.table))) frees the PTE table from line \(p.since) as a CRST table",
        related: [p.since])
      return
    }
    crst[e.table] = nil
  }

  /// The pgd's `crst_table_alloc`: a new incarnation, owner of its CRST block.
  func birth(_ e: Event) { crstAlloc(e, owner: mmBorn(e)) }

  /// The pgd's `crst_table_free`.
  func death(_ e: Event) {
    crst[e.table] = nil
    mmDied(e)
  }

  /// By the time the pgd goes, exit_mmap has freed (or queued) every table of the mm.
  func bury(_ m: MM, _ e: Event, seen: Bool) {
    ctx.mmBook.died(m.serial)
    if m.liveTables > 0 {
      var live: [UInt64] = []
      for (k, p) in pages where p.owner == m.serial && p.state == .live { live.append(k) }
      live.sort()
      reportLeak(ctx, rule(.leak), e, mm: m.address, live: live, seen: seen)
      // Later events of these tables are judged as of unknown history.
      for k in live {
        var p = pages[k]!
        p.owner = -1
        set(k, p)
      }
      m.liveTables = 0
    }
    mms.remove(m)
  }

  func lost(_ e: Event) {
    countLost(e)
    mms.forgetKnowledge()
  }
}
