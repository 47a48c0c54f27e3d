import PTFragEvents

/// # s390 with powerpc's fragment allocator — "do it like powerpc", literal reading (proposal C3a, never posted)
///
/// Jason Gunthorpe: "make the PPC code common (with Hugh's proposed RCU modification) and
/// just use it in both arches" (2023-06-29, quoted in <edaa96f-80c1-1252-acbb-71c4f045b035@google.com>;
/// also <ZJGRa4zvsXfc43vB@ziepe.ca>, <ZJI7xkXWmjrE1yY3@ziepe.ca>). docs/kernel-models.md §4 C3a: our
/// construction, never posted as s390 code. It is `arch/powerpc/mm/pgtable-frag.c` (see
/// `PowerpcModel`: `pte_fragment_alloc`, `pte_fragment_free`, `pte_free_defer` of
/// 32cc0b7c9d50, `pte_frag_destroy` with fda4d71651f7's PG_active clear) with
/// `PTE_FRAG_SIZE` 2 KiB and `PTE_FRAG_NR` 2 in 4 KiB pages, behind s390's entry points:
/// `page_table_alloc` = `pte_fragment_alloc(mm, 0)`, `page_table_free` =
/// `pte_fragment_free(table, 0)`, `page_table_free_rcu` queues `table | (h+1)` (s390's tags
/// stay: `__tlb_remove_table` must still tell CRST (tag 0) from PTE tables), and
/// `__tlb_remove_table` tag 1/2 calls `pte_fragment_free(table, 0)`. pgste mms use one
/// fragment per page (a whole-page table, tag 3). `pte_frag_destroy` runs when the mm's pgd
/// goes (`destroy_context`, after `exit_mmap` freed every table).
///
/// ## States
/// Per mm: the cursor (`mm->context.pte_frag`): NULL, or the upper half of the last fresh
/// page. Per page: `pt_frag_refcount` (2 for a cursor-made page, 1 for a race loser or a
/// pgste page), PG_active, each half U (unhanded), H, Q (in a tlb batch), X (freed, **never
/// reused**). No list, no A/P bits.
///
/// ## Transitions (E's table, docs/kernel-models.md §6.3, with NR = 2)
/// - alloc: the cursor half if the cursor is set (the upper half; the cursor becomes NULL),
///   else a fresh page: lower half handed, the page becomes the cursor page (count 2).
/// - free_now / exec (tag h+1): H/Q→X, count − 1; at 0 release now, or `call_rcu` (R) if
///   PG_active. free_tlb: H→Q and queue `h+1`.
/// - `pte_free_defer`: PG_active, then free (kernel 0).
/// - mm death: destroy the cursor page's unhanded upper half (count − 1), release at 0
///   (PG_active cleared).
/// - `pte_free_now` (RCU): R → released.
///
/// ## Invariants
/// E1–E5 with NR = 2: a freed half is never handed out again before its page is released;
/// alloc returns exactly the cursor or a fresh page's lower half; release exactly at count 0.
///
/// ## Replaying a capture
/// Only the model's own simulation shows its choices. On an s390 6.1 capture (variant A
/// reuses freed halves from its list) the model checks each table's life and follows the
/// kernel: a freed half the kernel hands out again is revived (count + 1), a fresh page
/// becomes the cursor page. Occupancy then counts the kernel's choices under this model's
/// release rule; `compare` gives the what-if figures.
public final class S390PpcStyleModel: PgtableFragModel, AllocatorModel {
  /// 2 × 2 KiB fragments in a 4 KiB page.
  public static let geometry = FragGeometry(pageShift: 12, fragShift: 11)

  public static let rules: [Rule] = [
    Rule(.doubleFree, .error, "a free (page_table_free, page_table_free_rcu, pte_free_defer) of a half already freed or in a tlb batch"),
    Rule(.freeUnknown, .error, "a free of a half never handed out, or of an address that is not a 2 KiB table"),
    Rule(.execWithoutPending, .error, "__tlb_remove_table of a half that page_table_free_rcu did not queue"),
    Rule(.queueWithoutPending, .error, "tlb_remove_table queued a half that page_table_free_rcu did not free"),
    .s390TagMismatch,
    Rule(.allocBusyHalf, .error, "alloc returned a half that is handed out and not freed"),
    Rule(.reuseBeforeRelease, .error, "alloc returned a freed half before its page went back to the buddy allocator (powerpc never reuses a freed fragment)"),
    Rule(.reuseBeforeGrace, .error, "alloc returned a half that is in a tlb batch, or of a page waiting for its RCU callback"),
    Rule(.releaseWithRefs, .error, "a page came back fresh while its pt_frag_refcount was not zero"),
    Rule(.allocNotCursor, .error, "alloc returned an unhanded half that is not the mm's cursor"),
    Rule(.allocFreshWhileCursor, .error, "alloc took a fresh page although the mm's cursor was set"),
    Rule(.allocDivergence, .error, "alloc returned a table the model cannot produce (misaligned, an upper half of a page the cursor never pointed to)"),
    .allocWithoutReturn("page_table_alloc"),
    .crossMm,
    .leak,
    .s390PgsteByTag,
  ]
  static let rule = ruleIndex(rules)

  public static let descriptor: ModelDescriptor = {
    var d = ModelDescriptor(
      id: "s390-ppc-style",
      kernels: "never posted: pgtable-frag.c with 2 × 2 KiB fragments per 4 KiB page (docs/kernel-models.md §4 C3a)",
      commits: [
        "<edaa96f-80c1-1252-acbb-71c4f045b035@google.com> Hugh Dickins 2023-06-29, quoting Jason Gunthorpe: make the PPC code common",
        "<ZJI7xkXWmjrE1yY3@ziepe.ca> Jason Gunthorpe 2023-06-20: RCU-free the whole page, since PPC never recycles fragments",
        "32cc0b7c9d50 powerpc: add pte_free_defer() for pgtables sharing page",
        "fda4d71651f7 powerpc/pgtable-frag: Fix bad page state in pte_frag_destroy (assumed)",
      ],
      functions: [
        "page_table_alloc (pte_fragment_alloc)", "page_table_free (pte_fragment_free)",
        "page_table_free_rcu", "__tlb_remove_table", "pte_free_defer", "pte_free_now",
        "pte_frag_destroy",
      ],
      summary:
        "powerpc's per-mm cursor on s390: 2 × 2 KiB fragments per page, freed halves never reused, page freed (through RCU if PG_active) at count 0",
      rules: rules)
    d.simulationOnly = true
    d.replayableOn = ["s390-6.1", "s390-6.6"]
    d.fragChecks(
      life: [
        .doubleFree, .freeUnknown, .execWithoutPending, .queueWithoutPending, .execTagMismatch,
        .allocBusyHalf, .reuseBeforeGrace, .allocWithoutReturn, .crossMm, .leak, .pgsteInferred,
      ], "the life of each 2 KiB table (handed, freed, tlb tags, the allocating mm) is the same on s390's kernels",
      choices: [.reuseBeforeRelease, .releaseWithRefs, .allocNotCursor, .allocFreshWhileCursor, .allocDivergence],
      "the cursor order, the never-reused halves and the release count are this construction's; s390's kernels reuse freed halves from a list")
    return d
  }()

  public init(context: ReplayContext) {
    super.init(
      context: context, geometry: Self.geometry, destroyClearsActive: true, rules: S390PpcStyleModel.rule)
  }

  // MARK: s390's names

  override var allocFunction: KernelFunction { .pageTableAlloc }
  /// The `page_table_free` a v6.6 `pte_free_defer` calls (capture).
  override var nestedFreeKind: Event.Kind { .freeNow }
  override var tableNoun: String { "2 KiB-aligned table" }
  override var locatesFragments: Bool { false }
  /// Only the model's own simulation shows its choices.
  override var checksChoices: Bool { ctx.simulating }
  override var neverHandedOut: String { "is never handed out" }
  override func slotName(_ p: FragPage, _ key: UInt64, _ h: Int) -> String { "\(tableName(p, h)) of \(hex(key))" }
  override func notATable(_ what: String, _ e: Event, _ table: UInt64) -> String {
    "\(what)(\(hex(e.table))) is not a \(tableNoun)"
  }

  /// "the lower half", or "the pgste table" of a pgste page.
  func tableName(_ p: FragPage, _ h: Int) -> String { "the \(p.pgste ? "pgste table" : "\(halfName(h)) half")" }

  override func dispatch(_ e: Event) {
    switch e.kind {
    case .alloc: alloc(e)
    case .freeNow: freeNow(e)
    case .freeTLB: freeTLB(e)
    case .tlbQueue: tlbQueue(e)
    case .tlbExec: tlbExec(e)
    case .deferBegin: deferFree(e, frag.mm(at: e.mm, knownIfNew: ctx.simulating))
    case .rcuFree: if let k = frag.rcuCallback() { ctx.record(page: k, e, mm: nil) }
    case .fragDestroy: explicitDestroy(e)
    case .mmBirth:
      crstCovers(e)
      mmBorn(e)
    case .mmDeath: death(e)
    case .crstAlloc: crstCovers(e)
    case .allocBegin, .deferEnd, .crstFree, .fragmentFree, .pmdAlloc, .pmdFree, .mmExit, .allocUnreturned, .lost:
      break
    }
  }

  /// The captured kernel's `crst_table_alloc` took an order-2 block (CRST_ALLOC_ORDER, 16 KiB;
  /// arch/s390/mm/pgalloc.c v6.1): pages of it the model holds went back to the buddy
  /// allocator unseen — a queued fragment's `__tlb_remove_table` or a handed one's free was
  /// missed (inconclusive, settled by the kprobe_profile). The pages leave the model.
  func crstCovers(_ e: Event) {
    guard e.table != 0 else { return }
    let block = e.table & ~0x3fff
    for k in 0..<4 {
      let key = block + UInt64(k) * 0x1000
      cameBack(key, e) { p, before in
        for (h, table, queued) in frag.unfreed(key, p) {
          let probe: KernelFunction = queued ? .tlbRemoveTableExec : .pageTableFreeRCU
          let f = makeFinding(
            queued ? .reuseBeforeGrace : .allocBusyHalf, e, mm: frag.owner(key)?.address, page: key,
            half: h, before: before, after: "(released)",
            "page \(hex(key)) came back inside the CRST table \(hex(e.table)) while \(hex(table)) is \(queued ? "queued" : "handed out"), and the kprobe_profile shows no missed \(queued ? probe.symbol : s390TableFreeFunctions.map(\.symbol).joined(separator: ", "))")
          ctx.report(
            Inconclusive(
              reason: queued ? .missedTLBExec : .missedProbe, line: e.line, mm: frag.owner(key)?.address,
              page: key,
              message:
                "page \(hex(key)) came back inside the CRST table \(hex(e.table)) while \(hex(table)) is \(queued ? "queued: probable missed __tlb_remove_table" : "handed out: probable missed free")",
              wouldBeRule: f.rule.key, hingesOn: probe,
              alternatives: queued ? [] : s390TableFreeFunctions.filter { $0 != probe }, asFinding: f))
        }
      }
    }
  }

  // MARK: page_table_alloc

  func alloc(_ e: Event) {
    guard let (m, _, key, i, before) = allocReturned(e) else { return }
    let t = e.table
    if checksChoices, let m, m.known {
      ctx.stats.allocationsPredicted += 1
      if allocPredicted(m, t, key, i) { return }
      let kind = frag.surprise(key, i)
      if let (rule, why) = frag.explain(kind, key, i, busyRule: .allocBusyHalf) {
        finding(
          rule, e, mm: m.address, page: key, half: i, before: before,
          "page_table_alloc returned \(hex(t)) for mm \(hex(m.address)): \(why); the model predicted \(m.pgste != true ? m.cursor.map { hex($0) } ?? "a fresh page" : "a fresh page (pgste mm)")")
      }
      return follow(m, key, i)
    }
    ctx.stats.allocationsUnverified += 1
    // A capture: what holds on every replay, then follow the kernel.
    if let p = frag.pages[key] {
      let kind = frag.surprise(key, i)
      if kind == .busy || kind == .rcuPending {
        let (rule, why) = frag.explain(kind, key, i, busyRule: .allocBusyHalf)!
        finding(rule, e, mm: m?.address, page: key, half: i, before: before, "page_table_alloc returned \(hex(t)): \(why)")
      }
      // In a tlb batch: its __tlb_remove_table is missing (A's fresh-page case covers both).
      var queued = p.slots[i] == .queued ? [i] : []
      if i == 0, !p.pgste, p.slots[0] != .handed, p.slots[1] == .queued { queued.append(1) }
      for h in queued where frag.pages[key] != nil {
        missedExec(e, m, key, h, first: h == queued[0])
      }
    }
    follow(m, key, i)
  }

  /// Alloc of a half in a tlb batch: its `__tlb_remove_table` was probably missed.
  func missedExec(_ e: Event, _ m: FragMM?, _ key: UInt64, _ h: Int, first: Bool) {
    let f = makeFinding(
      .reuseBeforeGrace, e, mm: m?.address, page: key, half: h, before: frag.state(key),
      "page_table_alloc returned \(hex(e.table)) while the \(halfName(h)) half of \(hex(key)) is in a tlb batch and no __tlb_remove_table freed it, and the kprobe_profile shows no missed __tlb_remove_table")
    ctx.report(
      Inconclusive(
        reason: .missedTLBExec, line: e.line, mm: m?.address, page: key,
        message:
          "page_table_alloc returned \(hex(e.table)) while the \(halfName(h)) half of page \(hex(key)) is in a tlb batch: probable missed __tlb_remove_table(\(hex(key + UInt64(h) * 0x800 + UInt64(h + 1))))",
        wouldBeRule: .reuseBeforeGrace, hingesOn: .tlbRemoveTableExec, asFinding: first ? f : nil))
    ctx.inferred(.exec(table: key + UInt64(h) * 0x800))
    frag.fragmentFree(key, h, kernel: false)
  }

  /// Follows what the kernel handed out (after any finding): a fresh page becomes the
  /// cursor page; a half the model holds is handed out (revived if freed: count + 1).
  func follow(_ m: FragMM?, _ key: UInt64, _ i: Int) {
    let t = key + UInt64(i) * 0x800
    m?.synchronise()
    guard let p = frag.pages[key], !p.rcu else {
      frag.drop(key)
      if i == 0 {
        if let m, m.pgste != true { frag.setCursor(m, nil) }
        frag.allocFresh(m, key)
      } else {
        frag.adopt(m, key, i)
      }
      return
    }
    if p.pgste {
      frag.drop(key)
      return frag.allocFresh(m, key)
    }
    if let m, m.cursor == t {
      frag.takeFromCursor(m)
      return
    }
    if p.slots[i] == .handed {
      if let m, p.owner != m.serial {
        frag.owner(key)?.liveTables -= 1
        m.liveTables += 1
        frag.update(key) { $0.owner = m.serial }
      }
      return
    }
    // Revive: the kernel handed out a half this model would not.
    frag.handOut(m, key, i)
  }

  // MARK: Frees

  func freeNow(_ e: Event) {
    if isNested(e) { return }
    let m = frag.mm(at: e.mm, knownIfNew: ctx.simulating)
    guard let (key, h) = checkedFree(e, e.table, "page_table_free", m, accept: [.handed]) else { return }
    free(e, key, h, kernel: false)
  }

  func freeTLB(_ e: Event) {
    let m = frag.mms[address: e.mm]
    guard let (key, h) = checkedFree(e, e.table, "page_table_free_rcu", m, accept: [.handed]) else { return }
    if frag.pages[key]?.slots[h] == .handed { frag.owner(key)?.liveTables -= 1 }
    frag.update(key) { p in
      p.set(h, .queued)
      if p.pgste { p.set(1 - h, .queued) }
    }
  }

  func tlbQueue(_ e: Event) {
    let tag = Int(e.table & 3)
    let (key, h) = geo.split(e.table & ~3)
    guard let p = frag.pages[key] else { return }
    ctx.record(page: key, e, mm: e.mm ?? frag.owner(key)?.address)
    if let why = tagMismatch(tag, key, h, p, e) {
      return finding(
        .execTagMismatch, e, mm: e.mm ?? frag.owner(key)?.address, page: key, half: tag == 0 ? nil : h,
        before: frag.state(key), "tlb_remove_table(\(hex(e.table))): \(why)")
    }
    if p.slots[h] != .queued && p.slots[h] != .unknown {
      finding(
        .queueWithoutPending, e, mm: e.mm ?? frag.owner(key)?.address, page: key, half: h,
        before: frag.state(key),
        "tlb_remove_table(\(hex(e.table))) queues \(tableName(p, h)), which page_table_free_rcu did not free")
    }
  }

  func tlbExec(_ e: Event) {
    let tag = Int(e.table & 3)
    let (key, h) = geo.split(e.table & ~3)
    guard let p = frag.pages[key] else {
      if tag != 0 { ctx.stats.execsUntracked += 1 }
      return
    }
    ctx.record(page: key, e, mm: frag.owner(key)?.address)
    let before = frag.state(key)
    if let why = tagMismatch(tag, key, h, p, e) {
      return finding(
        .execTagMismatch, e, mm: frag.owner(key)?.address, page: key, half: tag == 0 ? nil : h,
        before: before, "__tlb_remove_table(\(hex(e.table))): \(why)")
    }
    switch p.slots[h] {
    case .queued, .unknown:
      if p.slots[h] == .unknown { ctx.stats.execsUntracked += 1 }
      frag.fragmentFree(key, h, kernel: false)
    default:
      finding(
        .execWithoutPending, e, mm: frag.owner(key)?.address, page: key, half: h, before: before,
        "__tlb_remove_table(\(hex(e.table))) frees \(tableName(p, h)), which is \(p.slots[h] == .freed ? "already freed" : p.slots[h] == .handed ? "handed out" : "never handed out"): page_table_free_rcu did not queue it")
    }
  }

  /// Why tag `tag` does not fit half `h` of page `p` (nil: it fits). Tag 3 on a page whose
  /// mm only ever had lower halves turns the mm into a pgste mm.
  func tagMismatch(_ tag: Int, _ key: UInt64, _ h: Int, _ p: FragPage, _ e: Event) -> String? {
    switch tag {
    case 0: return "tag 0 (CRST) names a page the model holds as PTE tables"
    case 3:
      if p.pgste || inferPgste(e, key) { return nil }
      return "tag 3 (pgste) on a page that is not a pgste table"
    default:
      if p.pgste { return "tag \(tag) on a pgste page (tag 3 expected)" }
      if tag - 1 != h { return "tag \(tag) names the \(halfName(tag - 1)) half, the address the \(halfName(h)) half" }
      return nil
    }
  }

  /// A page whose upper half was never handed out, freed with tag 3: the mm allocates pgste
  /// tables. Its pages become whole-page tables (count 1).
  func inferPgste(_ e: Event, _ key: UInt64) -> Bool {
    func lowerOnly(_ p: FragPage) -> Bool {
      [.unhanded, .unknown].contains(p.slots[1]) && [.handed, .queued].contains(p.slots[0])
    }
    guard let m = frag.owner(key), m.pgste != false, let p = frag.pages[key], lowerOnly(p) else { return false }
    m.pgste = true
    frag.setCursor(m, nil)
    for k in frag.pages.keys where frag.pages[k]!.owner == m.serial && lowerOnly(frag.pages[k]!) {
      frag.update(k) { p in
        p.pgste = true
        p.set(1, p.slots[0])
        p.ref = 1
        p.refKnown = true
        p.unhandedCounted = false
      }
    }
    finding(
      .pgsteInferred, e, mm: m.address, page: key, half: nil, before: "mm \(hex(m.address))",
      after: "pgste mm",
      "\(hex(e.table)) is a whole-page (pgste) table of mm \(hex(m.address)), whose pages never had an upper half handed out: replayed as a pgste (KVM) mm from here on")
    return true
  }

  // MARK: mm lifetimes, pte_frag_destroy

  /// The pgd goes: every table of the mm was freed (else `leak`), then `pte_frag_destroy`
  /// of the cursor.
  override func bury(_ m: FragMM, _ e: Event, seen: Bool) {
    if m.liveTables > 0 {
      var live: [UInt64] = []
      for (k, p) in frag.pages where p.owner == m.serial {
        for h in 0..<(p.pgste ? 1 : 2) where p.slots[h] == .handed { live.append(k + UInt64(h) * 0x800) }
      }
      live.sort()
      if !live.isEmpty {
        reportLeak(ctx, rule(.leak), e, mm: m.address, live: live, seen: seen, page: geo.split)
        for t in live {
          let (k, h) = geo.split(t)
          frag.update(k) { p in
            p.set(h, .unknown)
            if p.pgste { p.set(1, .unknown) }
            p.refKnown = false
          }
        }
      }
    }
    frag.destroyCursor(m)
    frag.forget(m)
  }

  /// An explicit `pte_frag_destroy(frag)` event (a simulation driver may send one).
  func explicitDestroy(_ e: Event) {
    let key = e.table & s390PageMask
    guard let p = frag.pages[key], p.cursorOf >= 0, let m = frag.mms[serial: p.cursorOf],
      m.cursor == e.table
    else { return }
    ctx.record(page: key, e, mm: m.address)
    frag.destroyCursor(m)
  }
}
