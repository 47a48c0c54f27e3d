import PTFragEvents

/// # s390 "AA/PP" 2 KiB page-table fragments — Linux v5.17 … v6.5 (variant A; 6.1 LTS)
///
/// Encodes `arch/s390/mm/pgalloc.c` as of v6.1 (6.1.15 read; the logic is unchanged
/// v5.17…v6.5): `page_table_alloc`, `page_table_free`, `page_table_free_rcu`,
/// `__tlb_remove_table`, `page_table_release_check`; commits c2c224932fd0 ("fix 2KB pgtable
/// release race": the two-step P in `page_table_free`), 1194372db6f3 (the comment block),
/// 4c88bb96e40b (release check), 620b4e903179 (`_refcount` byte 3). docs/kernel-models.md §2.
///
/// ## States
/// Each 4 KiB page holds two 2 KiB tables ("halves": lower at +0, upper at +2048). Byte 3 of
/// `page->_refcount` has, per half h, A(h) (allocated) and P(h) (pending: freed through the
/// tlb batch, `__tlb_remove_table` not yet run). A and P of one half are exclusive, so a half
/// is F, A or P. A page is on its mm's `context.pgtable_list` ("L") iff exactly one A is set.
/// pgste (KVM) mms use whole pages: A = {1,1} for life, never listed, never P.
///
/// ## Transitions (docs/kernel-models.md §2.5)
/// - alloc: look at the list **head only**. busy = A|P folded per half; if not both busy,
///   take the lower half unless it is busy, set A, and **remove the page from the list**.
///   Otherwise (or empty list) a fresh page: A(lower), `list_add` at the **front**; the
///   lower half (page base) is returned. The decision is made under `mm->context.lock` just
///   after entry; the fresh page's `list_add` is a second lock section before return.
/// - free_now (`page_table_free`): A(h)→P(h) under the lock; other half A → `list_add`
///   (front) else `list_del`; then P(h) cleared outside the lock; all clear → release.
/// - free_tlb (`page_table_free_rcu`): A(h)→P(h); other half A → `list_add_tail` else
///   `list_del`; queue `table | (h+1)` through `tlb_remove_table`.
/// - exec (`__tlb_remove_table`): tag 1/2 clears P(h), no list work; all clear → release.
///   Tag 3 releases a pgste page; tag 0 is a CRST table.
///
/// ## Invariants (§2.4) — what a capture must never show
/// I1 A and P exclusive per half (alloc of a P half: `reuse-before-grace`, the 0x13/0x23
/// state); I2 listed ⇔ one A (kept by construction: the model makes the kernel's exact
/// `list_add`/`list_del` decisions, so a trace cannot break I2 without an `alloc-*` finding;
/// §2.6's `alloc-wrong-half` and `list-invariant` therefore surface as `alloc-busy-half`,
/// `reuse-before-grace` or `alloc-not-head`: a listed page has exactly one usable half);
/// I4 alloc returns exactly the predicted half; I5 frees only of
/// A halves, exec only of P halves, tags match the page kind; I6 frees name the allocating
/// mm; I7 pgste pages are whole; I8 an mm's tables are all freed before its pgd is.
///
/// ## What a capture cannot tell, and how the replay says so
/// - mms born before the capture: their lists are unknown; allocations are not predicted
///   (counted as unverified) but every per-half check still applies.
/// - Silent kprobe misses of `__tlb_remove_table`: a pending half the kernel hands out again
///   (from the list head, or as a fresh page once all its halves were pending) is an
///   inconclusive "probable missed `__tlb_remove_table`" unless the kprobe_profile shows no
///   misses of that probe; the replay resynchronises.
/// - Concurrency: an alloc's decision lies anywhere in its entry→return window, and a
///   concurrent `page_table_free`'s transient P can make the head look busy; any outcome
///   consistent with some point of the window is accepted.
/// - Allocations of one mm in flight: the decision is made under
///   `spin_lock_bh(&mm->context.lock)` and `spin_unlock_bh` runs pending softirqs, so a task
///   that locked first may return last. A return the list allows only once other allocations
///   still in flight decided first (they took the head's free half, or a fresh page whose
///   `list_add` came before) reserves the halves they must have taken; each is checked when
///   its task returns, and one no task in flight returns undoes the explanation (a finding).
///
/// ## Subclassing
/// `S390v66Model` (variant B) is this model plus the deltas of 8211dad62798. The kernel's
/// decision points that B changes are the hooks `mayList(_:)` (may a free put the page on
/// the list?) and `final(_:_:)` (the kernel's final release: `pte_free_now`); everything
/// else is inherited unchanged.
public class S390v61Model: S390FragmentEngine, AllocatorModel {
  public static let rules: [Rule] = [
    Rule(.doubleFree, .error, "a free of a half that is not allocated (F or P)"),
    .s390FreeUnknown,
    Rule(.execWithoutPending, .error, "__tlb_remove_table of a half whose P bit is clear"),
    .s390QueueWithoutPending,
    .s390TagMismatch,
    Rule(.reuseBeforeGrace, .error, "alloc returned a half whose P bit is set (the 0x13/0x23 state)"),
    .s390AllocBusyHalf,
    Rule(.allocNotHead, .error, "alloc returned a half of a listed page that is not the list head",
      requires: .predictedAllocations),
    Rule(.allocFreshWhileHeadUsable, .error, "alloc took a fresh page although the list head had a usable half",
      requires: .predictedAllocations),
    Rule(.allocListedWhileFresh, .error, "alloc returned a listed page's half although the head was busy (a fresh page was due)",
      requires: .predictedAllocations),
    .s390AllocDivergence,
    .allocWithoutReturn("page_table_alloc"),
    Rule(.releaseWithBits, .error, "a page the model still holds (an A bit set) came back from the buddy allocator as fresh"),
    Rule(.releaseWhileListed, .error, "a page still on an mm's list came back from the buddy allocator as fresh"),
    .crossMm,
    Rule(.tlbExecMissing, .error, "a table queued in a tlb batch was never executed although later entries of the same CPU were"),
    .leak,
    Rule(.pgsteInferred, .info, "an mm whose allocations are whole pages is replayed as a pgste (KVM) mm",
      requires: .predictedAllocations),
  ]

  public class var descriptor: ModelDescriptor { descriptorV61 }

  static let descriptorV61: ModelDescriptor = {
    var d = descriptorV61Base
    d.synth = .init(taggedHalves: true)
    return d
  }()

  static let descriptorV61Base = ModelDescriptor(
    id: "s390-6.1",
    kernels: "v5.17 … v6.5 (incl. 6.1 LTS)",
    commits: [
      "c2c224932fd0 s390/mm: fix 2KB pgtable release race",
      "1194372db6f3 s390/mm: better annotate 2KB pagetable fragments handling",
      "4c88bb96e40b s390/mm: check 2KB-fragment page on release",
      "620b4e903179 s390: use _refcount for pgtables",
    ],
    functions: [
      "page_table_alloc", "page_table_free", "page_table_free_rcu", "__tlb_remove_table",
      "tlb_remove_table", "crst_table_alloc", "crst_table_free",
    ],
    summary: "AA/PP bits in _refcount byte 3, per-mm list, head-only lookup, lower half first",
    rules: rules, mainline: (from: (5, 17), through: (6, 5)))

  // MARK: State

  typealias Window = S390AllocWindow
  typealias Candidates = S390Candidates
  typealias Reservation = S390Reservation

  /// One mmu_gather: a task's run of `tlb_remove_table` calls with one `tlb` pointer. Its
  /// batch goes to `call_rcu` when the gather is flushed, on the CPU the task runs on, no later
  /// than the task's next event that is not part of the gather (`closedNs`), and
  /// `tlb_remove_table_rcu` runs the entries in order; RCU invokes one CPU's callbacks in the
  /// order they were queued. So when a gather G2 of CPU c ran (asynchronously: from another
  /// task than the one that queued it, not the synchronous `tlb_remove_table_one` fallback)
  /// and its last entry was queued after an unmigrated gather G1 of CPU c was closed, G1 was
  /// flushed first and has run too: an entry of G1 never seen running was missed by its probe.
  /// A gather still open (the task was preempted in the middle of an unmap) orders nothing.
  struct Gather {
    var cpu: Int32
    var migrated = false
    var lastNs: UInt64
    /// The task that queued the gather's entries (its findings name it).
    var comm = Comm()
    /// When the task did something else (the batch was flushed by then); nil while open.
    var closedNs: UInt64? = nil
    /// Latest queue time among this gather's entries seen running asynchronously.
    var ranUpTo: UInt64 = 0
  }

  /// Last line seen per CPU (to tell whether a CPU's free may still be in flight): CPUs
  /// 0…1023 in an array, others in a map.
  @exclusivity(unchecked) var lastLineOfLowCPU = [Int](repeating: .min, count: 1024)
  @exclusivity(unchecked) var lastLineOfCPU = AddressMap<Int>()

  @inline(__always) func lastLine(ofCPU cpu: Int32) -> Int? {
    if cpu >= 0 && cpu < 1024 {
      let l = lastLineOfLowCPU[Int(cpu)]
      return l == .min ? nil : l
    }
    return lastLineOfCPU[UInt64(UInt32(bitPattern: cpu))]
  }

  @inline(__always) func setLastLine(_ line: Int, ofCPU cpu: Int32) {
    if cpu >= 0 && cpu < 1024 {
      lastLineOfLowCPU[Int(cpu)] = line
    } else {
      lastLineOfCPU[UInt64(UInt32(bitPattern: cpu))] = line
    }
  }
  @exclusivity(unchecked) var hadLoss = false
  /// Per CPU: the latest `lastNs` among gathers of that CPU with an entry run asynchronously.
  var executedQueuedUpTo = AddressMap<UInt64>()
  var gathers = AddressMap<Gather>()
  /// Per task: the gather its `tlb_remove_table` calls currently belong to.
  var openGather = AddressMap<(tlb: UInt64, id: Int)>()
  var nextGather = 1

  func mark(_ e: Event) -> QueueMark {
    var g = 0
    if let tlb = e.tlb {
      if let o = openGather[e.pid], o.tlb == tlb {
        g = o.id
        if gathers[g]!.cpu != e.cpu { gathers[g]!.migrated = true }
        gathers[g]!.lastNs = e.timestampNs
      } else {
        if let o = openGather[e.pid] { close(o.id, by: e) }
        if gathers.count >= gatherCollectAt { collectGathers() }
        g = nextGather
        nextGather += 1
        openGather[e.pid] = (tlb, g)
        gathers[g] = Gather(cpu: e.cpu, lastNs: e.timestampNs, comm: e.comm)
      }
    }
    return QueueMark(line: e.line, ns: e.timestampNs, gather: g, cpu: e.cpu, pid: e.pid)
  }
  /// Gathers are read only through the mark of a pending half or of a queued CRST table,
  /// and through a task's open gather: the others can never be read again. They are dropped
  /// whenever the table has doubled since the last collection (amortised O(1) per gather),
  /// so memory follows the tables in flight, not the length of the capture.
  var gatherCollectAt = 4096
  /// The smallest table that triggers a collection (tests lower it to collect at every gather).
  var gatherCollectFloor = 4096

  func collectGathers() {
    var live = Set<Int>()
    for (_, p) in pages where !p.pgste {
      if p.lo == .pending { live.insert(p.queuedAt.0.gather) }
      if p.hi == .pending { live.insert(p.queuedAt.1.gather) }
    }
    for m in crstQueued.values { live.insert(m.gather) }
    for o in openGather.values { live.insert(o.id) }
    var kept = AddressMap<Gather>()
    for (k, g) in gathers where live.contains(Int(k)) { kept[k] = g }
    gathers = kept
    gatherCollectAt = max(gatherCollectFloor, 2 * gathers.count)
  }

  /// The task's next event `e` outside gather `id`: the batch was flushed by then
  /// (`tlb_finish_mmu` → `tlb_table_flush` → `call_rcu`), on the CPU the task ran on at that
  /// moment (mm/mmu_gather.c, v6.1). Seen on another CPU than the entries, the task may have
  /// migrated before the flush: the batch may sit on either CPU's callback list, so the
  /// gather orders nothing.
  func close(_ id: Int, by e: Event) {
    guard gathers[id] != nil else { return }
    gathers[id]!.closedNs = e.timestampNs
    if gathers[id]!.cpu != e.cpu { gathers[id]!.migrated = true }
    // Entries of it ran (asynchronously) while it was open: now that it is known not to have
    // migrated, it orders its CPU's earlier gathers (see `executed`) — up to the queue time of
    // the latest entry seen running, not its last entry: a gather can hand several batches to
    // call_rcu (`tlb_remove_table` flushes a full batch), and a later one may not have run.
    if let g = gathers[id], !g.migrated, g.ranUpTo > executedQueuedUpTo[g.cpu, default: 0] {
      executedQueuedUpTo[g.cpu] = g.ranUpTo
    }
  }

  /// CRST tables (tag 0) queued and not yet executed.
  var crstQueued = AddressMap<QueueMark>()

  public required init(context: ReplayContext) { super.init(context: context, rules: Self.descriptor.rules) }

  /// The functions a table of this kernel is freed through (`pte_free` →
  /// `page_table_free`, `pte_free_tlb` → `page_table_free_rcu`; B adds `pte_free_defer`).
  override class var tableFreeFunctions: [KernelFunction] { [.pageTableFreeRCU, .pageTableFree] }

  /// The kernel's final step for a page whose last bit cleared during `e`
  /// (`page_table_release_check`, then the dtor and the free to buddy): in A, an immediate
  /// release. B defers it through RCU when the page is Active.
  func final(_ key: UInt64, _ e: Event) { release(key) }

  /// Whether a free that leaves the other half allocated may put the page on the list
  /// (`list_add` / `list_add_tail`). Always in A; B forbids it on an Active page.
  func mayList(_ key: UInt64) -> Bool { true }

  // MARK: Events

  /// Simulation: the s390 fragment vocabulary; a kernel without `pte_free_defer` (≤ v6.5,
  /// per the descriptor's functions) frees khugepaged's table with `pte_free` instead.
  public func kernelEvents(for op: SimulatedOperation, _ emit: (SimulatedEvent) -> Void) {
    let hasDefer = Self.descriptor.functions.contains("pte_free_defer")
    s390FragmentEvents(for: op, deferAs: hasDefer ? .deferBegin : .freeNow, emit)
  }

  override func didApply(_ e: Event) {
    if e.kind != .lost { setLastLine(e.line, ofCPU: e.cpu) }
  }

  /// The task moved on: its gather was flushed by now.
  override func willStep(_ e: Event) {
    if e.kind != .freeTLB && e.kind != .tlbQueue && e.kind != .tlbExec && e.kind != .lost,
      let o = openGather[e.pid]
    {
      close(o.id, by: e)
      openGather[e.pid] = nil
    }
  }


  override func lost(_ e: Event) {
    hadLoss = true
    super.lost(e)
  }

  override func allocBegin(_ e: Event) {
    guard let m = mm(at: e.mm) else { return }
    m.windows.removeAll { $0.pid == e.pid }
    m.windows.append(
      Window(
        pid: e.pid, cpu: e.cpu, beginLine: e.line, beginNs: e.timestampNs,
        candidates: Candidates(first: predict(m))))
  }

  override func alloc(_ e: Event) {
    let table = e.table
    let m = mm(at: e.mm)
    var window: Window? = nil
    if let m, let wi = m.windows.firstIndex(where: { $0.pid == e.pid }) {
      window = m.windows.remove(at: wi)
    }
    if table == 0 {
      ctx.stats.allocationsFailed += 1
      return
    }
    let (key, h) = split(table)
    let checked = m?.known == true && window != nil
    if checked { ctx.stats.allocationsPredicted += 1 } else { ctx.stats.allocationsUnverified += 1 }
    ctx.record(page: key, e, mm: m?.address)
    let before = snapshot(key)
    if let m, !m.reserved.isEmpty, settleReservation(e, m, key, h) { return }

    if table & 0x7ff != 0 {
      finding(
        .allocDivergence, e, mm: m?.address, page: key, half: h, before: before,
        "page_table_alloc returned \(hex(table)), which is not a 2 KiB-aligned table")
      return
    }

    // 1. What the returned half was, whatever the prediction.
    if let p = pages[key] {
      if p.pgste, h == 1, pgsteRefuted(e, key, wouldBe: .allocBusyHalf, "page_table_alloc returned \(hex(table)), an upper half,") {
        // Follow the kernel: the half is this mm's now.
        if let m { takeHalf(m, key, h) }
        changed(m)
        return
      }
      if p.pgste || p[h] == .allocated {
        // Another mm got the page base as if fresh: the page went back to the buddy
        // allocator while a table on it was still allocated.
        let holder = owner(of: p)
        let released = h == 0 && holder != nil && holder !== m
        let lastAlloc = ctx.history(of: key).filter { $0.kind == .alloc }.suffix(1).map(\.line)
        finding(
          released ? .releaseWithBits : .allocBusyHalf, e, mm: m?.address, page: key,
          half: h, before: before,
          released
            ? "page_table_alloc for mm \(hex(m?.address)) returned \(hex(table)) as a fresh page, but the page still holds \(p.pgste ? "a live pgste table" : "an allocated table") of mm \(hex(holder?.address)): it was released with A bits set"
            : "page_table_alloc returned \(hex(table)), the \(halfName(h)) half of a page whose \(p.pgste ? "whole page is a live pgste table" : "\(halfName(h)) half is still allocated")",
          related: lastAlloc)
        // Resynchronise: the kernel says the half is (again) in use by this mm.
        if let m { takeHalf(m, key, h) }
        changed(m)
        return
      }
      if p[h] == .pending {
        reuseBeforeGrace(e, m, key, h, before)
        changed(m)
        return
      }
      // The lower half of an unlisted page with nothing allocated and a half still pending:
      // page_table_alloc takes halves only from the list, so this is the page coming back
      // fresh after the missed __tlb_remove_table of that half released it.
      if h == 0, !p.pgste, !p.listed, p.aCount == 0, p.hi == .pending {
        releasedUnseen(key, e, as: "as a fresh page for mm \(hex(m?.address))")
      }
      // A page held with a half of unknown history that is not on this mm's list may have
      // been released unseen (its other half freed before the capture): it comes back fresh.
      if h == 0 && p.hi == .unknown && !(p.listed && p.owner == m?.serial) {
        release(key)
      }
    }

    // 2. The prediction (mms known from birth, with the entry seen).
    if checked, let m, let window {
      let observed: Prediction = pages[key] == nil ? .fresh : .half(key, h)
      var candidates = window.candidates
      let now = predict(m)
      if candidates.last != now { candidates.append(now) }
      if candidates.contains(observed) && (observed != .fresh || h == 0) {
        if observed == .fresh, window.sawPush { m.ambiguousSince = window.beginLine }
        if observed != .fresh { m.ambiguousSince = nil }
      } else if observed == .fresh, h == 0, let lf = m.lastFreeNow,
        candidates.contains(.half(lf.page, pages[lf.page].map { $0.lo == .free ? 0 : 1 } ?? 0)),
        inFlight(lf.cpu, lf.line, lf.ns, window, e)
      {
        // §7.5: the head page's concurrent page_table_free still held its transient P.
        ctx.stats.concurrencyResolved += 1
        ctx.report(
          Inconclusive(
            reason: .concurrency, line: e.line, mm: m.address, page: key,
            message:
              "fresh page although the head \(hex(lf.page)) had a free half: the page_table_free at line \(lf.line) on CPU \(lf.cpu) was still in flight, and its transient P bit (c2c224932fd0) makes the head look busy",
            wouldBeRule: .allocFreshWhileHeadUsable, explainedBy: "concurrent page_table_free in flight"))
      } else if inFlightAllocsExplain(e, m, observed, key, h) {
        needsRecount = true
        ctx.stats.concurrencyResolved += 1
      } else if m.pgste == .unknown, observed == .fresh, h == 0, pgsteCandidate(m) {
        m.pgste = .yes
        convertToPgste(m)
        finding(
          .pgsteInferred, e, mm: m.address, page: key, half: 0, before: before,
          "mm \(hex(m.address)) gets a fresh page for every table and never an upper half: replayed as a pgste (KVM) mm from here on"
        )
      } else {
        diverge(e, m, predicted: candidates.last!, observed, key, h, before, related: [window.beginLine])
      }
    }

    // 3. Apply what the kernel did.
    if pages[key] != nil {
      takeHalf(m, key, h)
    } else {
      freshPage(m, key, h)
    }
    changed(m)
  }

  // MARK: Allocations of one mm in flight (class 2)

  /// `page_table_alloc` returned what the list gives only once `j` of the other
  /// allocations of `m` still in flight had decided first (they locked
  /// `mm->context.lock` earlier but return later). Each of those took the list head's free
  /// half and `list_del`ed the page, or — once the head had no usable half — a fresh page,
  /// whose `list_add` may precede this allocation's lock section (so it can return that
  /// page's upper half). The halves they must have taken are reserved for them and checked
  /// when they return (`settleReservation`).
  func inFlightAllocsExplain(
    _ e: Event, _ m: MM, _ observed: Prediction, _ key: UInt64, _ h: Int
  ) -> Bool {
    guard m.pgste != .yes else { return false }
    let others = m.windows.map(\.pid)
    guard !others.isEmpty else { return false }
    func usable(_ k: UInt64) -> Int? {
      guard k != 0, let p = pages[k] else { return nil }
      if p.lo == .free { return 0 }
      return p.hi == .free ? 1 : nil
    }
    var cur = m.head
    var taken: [(UInt64, Int)] = []
    var freshAhead = 0
    var chosen = false
    var upperOfFresh = false
    for _ in others.indices {
      if let fh = usable(cur) {
        taken.append((cur, fh))
        cur = pages[cur]!.next
      } else {
        freshAhead += 1
      }
      let outcome: Prediction = usable(cur).map { .half(cur, $0) } ?? .fresh
      if observed == outcome && (observed != .fresh || h == 0) {
        chosen = true
        break
      }
      if freshAhead > 0, observed == .fresh, h == 1 {
        chosen = true
        upperOfFresh = true
        break
      }
    }
    guard chosen else { return false }
    for (k, th) in taken {
      takeHalf(m, k, th)
      m.reserved.append(Reservation(page: k, half: th, fresh: false, line: e.line, eligible: others))
    }
    if upperOfFresh {
      // Another allocation's fresh page, listed with its upper half free: the lower half
      // is that allocation's.
      pages[key] = Page(lo: .allocated, hi: .free, owner: m.serial)
      m.liveTables += 1
      m.reserved.append(Reservation(page: key, half: 0, fresh: true, line: e.line, eligible: others))
    }
    return true
  }

  /// A return of `m` while halves are reserved for its allocations in flight: the one it
  /// claims is already applied (returns true: nothing more to do). A task that returns
  /// something else was not one of those; a reservation no task in flight can claim any
  /// more is undone — the earlier return was not explained — and, for a fresh page's lower
  /// half, that earlier return of its upper half is a divergence.
  func settleReservation(_ e: Event, _ m: MM, _ key: UInt64, _ h: Int) -> Bool {
    if let i = m.reserved.firstIndex(where: {
      $0.page == key && $0.half == h && $0.eligible.contains(e.pid)
    }), pages[key]?[h] == .allocated {
      m.reserved.remove(at: i)
      changed(m)
      return true
    }
    for i in m.reserved.indices { m.reserved[i].eligible.removeAll { $0 == e.pid } }
    let unclaimed = m.reserved.filter { $0.eligible.isEmpty }
    guard !unclaimed.isEmpty else { return false }
    m.reserved.removeAll { $0.eligible.isEmpty }
    needsRecount = true
    for r in unclaimed where pages[r.page]?[r.half] == .allocated {
      m.liveTables -= 1
      if r.fresh {
        pages[r.page]![r.half] = .unknown
        finding(
          .allocDivergence, e, mm: m.address, page: r.page, half: 1,
          before: Before(page: pages[r.page]),
          "page_table_alloc at line \(r.line) returned \(hex(r.page + 0x800)), the upper half of a page this mm never held; no allocation in flight then returned its lower half \(hex(r.page)) (pid \(e.pid) returned \(hex(e.table)))",
          related: [r.line])
      } else {
        pages[r.page]![r.half] = .free
        if pages[r.page]!.allFree { release(r.page) } else { pushFront(m, r.page) }
      }
    }
    changed(m)
    return false
  }

  /// Whether a free on `cpu` (line, ns) may still have been inside the kernel when the
  /// allocation in `w` decided: no later event of that CPU, and close in time.
  func inFlight(_ cpu: Int32, _ line: Int, _ ns: UInt64, _ w: Window, _ e: Event) -> Bool {
    guard cpu != w.cpu, lastLine(ofCPU: cpu) == line else { return false }
    let lo = w.beginNs > 1_000_000 ? w.beginNs - 1_000_000 : 0
    return ns >= lo && ns <= e.timestampNs
  }

  /// An mm that has only ever received lower halves of fresh pages, none shared.
  func pgsteCandidate(_ m: MM) -> Bool {
    guard m.pgste == .unknown, m.head != 0 else { return false }
    var k = m.head
    while k != 0, let p = pages[k] {
      if !(p.lo == .allocated && p.hi == .free) { return false }
      k = p.next
    }
    return true
  }

  func convertToPgste(_ m: MM) {
    needsRecount = true
    while m.head != 0 {
      let k = m.head
      unlink(k)
      pages[k]![1] = .allocated
      pages[k]!.pgste = true
    }
  }

  /// A pending half handed out again: explained by missed `__tlb_remove_table` probes on the
  /// list head of this mm whose other half is allocated (with the exec, the head would have
  /// had exactly this half usable), or on a page whose halves are all pending or free
  /// (released once the missed execs ran, and handed out again as a fresh page).
  override func reuseExplainable(_ p: Page, _ m: MM?, _ key: UInt64, _ h: Int, freshCase: Bool) -> Bool {
    if freshCase { return true }
    guard let m else { return false }
    return p.listed && p.owner == m.serial && m.head == key && p[1 - h] == .allocated
  }

  /// `page_table_free` (v6.1): `xor 0x11 << h` under `mm->context.lock` (A→P), the other
  /// half allocated → `list_add` (front), else `list_del`; then `xor 0x10 << h` outside the
  /// lock (the transient P, c2c224932fd0); byte 0 → release.
  override func freeNow(_ e: Event) {
    let table = e.table
    let (key, h) = split(table)
    let m = mm(at: e.mm)
    if table & 0x7ff == 0, table != 0, let m, let wi = m.windows.firstIndex(where: { $0.pid == e.pid }),
      m.windows[wi].candidates.contains(pages[key] == nil ? .fresh : .half(key, h))
        || (pages[key] == nil && h == 0)
    {
      // mm/memory.c __pte_alloc (v6.1): pte_alloc_one, then pmd_install; when another thread
      // installed a table first, pte_free(mm, new) frees it at once. The task is still inside
      // its page_table_alloc window, so that return was missed (a kretprobe miss the profile
      // counts under page_table_alloc): the free names the table the alloc returned, and an
      // alloc and free of one half leave the page as it was.
      ctx.record(page: key, e, mm: e.mm)
      let w = m.windows.remove(at: wi)
      returnInferredAtFree[e.pid] = w.beginLine
      ctx.stats.allocationsUnverified += 1
      probableMiss(
        .missedProbe, of: .pageTableAlloc,
        .allocWithoutReturn, e, mm: m.address, page: key, half: h, before: snapshot(key),
        finding: "page_table_free(\(hex(table))) by pid \(e.pid) while its page_table_alloc entered at line \(w.beginLine) has not returned: the return event is missing",
        related: [w.beginLine],
        "page_table_free(\(hex(table))) by pid \(e.pid) inside its page_table_alloc window (entered at line \(w.beginLine)): probable missed page_table_alloc return of \(hex(table)), freed at once by __pte_alloc")
      return
    }
    switch checkedFree(e, "page_table_free", m) {
    case .rejected: return
    case .untracked(let key, let h): pages[key]![h] = .free
    case .apply(let key, let h):
      let pageOwner = owner(of: key)
      if pages[key]!.pgste {
        pageOwner?.liveTables -= 1
        final(key, e)
        changed(pageOwner)
        return
      }
      // xor 0x11<<h, list op, xor 0x10<<h: net effect F, with the page on/off the list.
      pages[key]![h] = .free
      let listOwner = pageOwner ?? m
      if pages[key]![1 - h] == .allocated, mayList(key), let listOwner {
        pushFront(listOwner, key)
        listOwner.lastFreeNow = (key, e.line, e.cpu, e.timestampNs)
        // The transient P: an alloc deciding now sees the head busy.
        for i in listOwner.windows.indices where listOwner.windows[i].candidates.last != .fresh {
          listOwner.windows[i].candidates.append(.fresh)
        }
      } else {
        unlink(key)
      }
      if pages[key]!.allFree { final(key, e) }
      changed(listOwner)
    }
  }

  /// `page_table_free_rcu` (v6.1): `xor 0x11 << h` (A→P), the other half allocated →
  /// `list_add_tail`, else `list_del`; `tlb_remove_table(table | (h+1))`.
  override func freeTLB(_ e: Event) {
    let named = mms[address: e.mm]
    switch checkedFree(e, "page_table_free_rcu", named) {
    case .rejected: return
    case .untracked(let key, let h):
      pages[key]![h] = .pending
      pages[key]!.setPendingLine(h, e.line)
    case .apply(let key, let h):
      let p = pages[key]!
      let pageOwner = owner(of: p)
      if p.pgste {
        pages[key]!.pgsteFreed = true
        return
      }
      let mark = mark(e)
      pages.update(key) {
        $0[h] = .pending
        $0.queued &= ~(1 << UInt8(h))
        $0.setPendingLine(h, e.line)
        $0.setQueuedAt(h, mark)
      }
      // The update changed half h only.
      if p[1 - h] == .allocated, mayList(key), let listOwner = pageOwner ?? named {
        pushBack(listOwner, key)
      } else {
        unlink(key)
      }
      if pageOwner?.pgste == .unknown { pageOwner?.pgste = .no }
      changed(pageOwner)
    }
  }

  // MARK: The tlb batch (engine hooks)

  override func noteQueued(_ e: Event, _ key: UInt64, _ h: Int) {
    let mark = mark(e)
    pages.update(key) { $0.setQueuedAt(h, mark) }
  }

  override func noteCRSTQueued(_ e: Event, _ table: UInt64) { crstQueued[table] = mark(e) }

  override func noteCRSTExecuted(_ e: Event, _ table: UInt64) {
    if let mark = crstQueued.removeValue(forKey: table) { executed(mark, by: e) }
  }

  /// `__tlb_remove_table` cases 1/2: clear P(h), no list work; byte 0 → release.
  override func execPending(_ e: Event, _ key: UInt64, _ h: Int) {
    executed(pages[key]!.queuedAt(h), by: e)
    pages.update(key) {
      $0[h] = .free
      $0.queued &= ~(1 << UInt8(h))
    }
    if pages[key]!.allFree { final(key, e) }
  }

  /// `__tlb_remove_table` case 3: the pgste page goes.
  override func execPgste(_ e: Event, _ key: UInt64) { final(key, e) }

  /// An entry ran. Only an asynchronous run orders its CPU's gathers.
  func executed(_ mark: QueueMark, by e: Event) {
    guard mark.gather != 0, e.pid != mark.pid, let g = gathers[mark.gather] else { return }
    if mark.ns > g.ranUpTo { gathers[mark.gather]!.ranUpTo = mark.ns }
    // Only a closed gather orders: while it is open, its task may have been migrated before
    // the flush (which has no probe), and the batch handed to another CPU's call_rcu. The
    // batch holding this entry was handed over no earlier than the entry was queued: gathers of
    // the CPU closed before `mark.ns` were flushed first and have run. (Not the gather's last
    // entry: a full batch is flushed mid-gather, mm/mmu_gather.c v6.1 `tlb_remove_table`, so
    // the gather's later batches say nothing yet.)
    if g.closedNs != nil && !g.migrated && mark.ns > executedQueuedUpTo[g.cpu, default: 0] {
      executedQueuedUpTo[g.cpu] = mark.ns
    }
  }

  /// The `tlb_remove_table` a mark stands for, with the pid (and, through its gather, the
  /// comm) of the task that queued it, for the findings about it.
  func queueEvent(_ mark: QueueMark) -> Event {
    Event(
      kind: .tlbQueue, line: mark.line, timestampNs: mark.ns, cpu: mark.cpu, pid: max(mark.pid, 0),
      comm: gathers[mark.gather]?.comm ?? Comm())
  }

  /// Whether the entry's gather ran before a later gather of its CPU that was seen running.
  func superseded(_ mark: QueueMark) -> Bool {
    guard mark.gather != 0, let g = gathers[mark.gather] else { return false }
    // A later entry of its own gather ran: so did this one, unless the task migrated in
    // between (one mmu_gather can hand several batches to call_rcu, each on the CPU the
    // task runs on then).
    if !g.migrated && mark.ns < g.ranUpTo { return true }
    guard let closed = g.closedNs, !g.migrated else { return false }
    return closed < executedQueuedUpTo[g.cpu, default: 0]
  }

  /// A CRST table handed out again while its queued tlb free was never seen executing: the
  /// block went back to the buddy allocator, so the `__tlb_remove_table` was missed.
  override func crstAlloc(_ e: Event) {
    guard e.table != 0 else { return }
    super.crstAlloc(e)
    guard let mark = crstQueued.removeValue(forKey: e.table) else { return }
    probableMiss(
      .missedTLBExec, of: .tlbRemoveTableExec,
      .tlbExecMissing, queueEvent(mark), mm: e.mm, page: nil, half: nil, before: "queued",
      after: "allocated again",
      finding: "CRST table \(hex(e.table)) queued for __tlb_remove_table at line \(mark.line) was allocated again at line \(e.line) without its execution, and the kprobe_profile shows no missed __tlb_remove_table",
      related: [e.line],
      "CRST table \(hex(e.table)) queued at line \(mark.line) is allocated again at line \(e.line) with no __tlb_remove_table seen: probable missed __tlb_remove_table")
  }

  public func finish(lastLine: Int) {
    // Batch entries never executed although later entries of the same CPU were: their
    // __tlb_remove_table was missed (or, with a profile showing no misses, never ran).
    var stale: [(QueueMark, UInt64, UInt64?)] = []  // mark, tagged table, page
    for (k, p) in pages where !p.pgste {
      for h in 0..<2 where p[h] == .pending {
        let mark = h == 0 ? p.queuedAt.0 : p.queuedAt.1
        if superseded(mark) {
          stale.append((mark, k + UInt64(h) * 0x800 + UInt64(h + 1), k))
        }
      }
    }
    for (t, mark) in crstQueued where superseded(mark) {
      stale.append((mark, t, nil))
    }
    stale.sort { $0.0.line < $1.0.line }
    for (mark, tagged, page) in stale {
      let what = page == nil ? "CRST table \(hex(tagged))" : "\(hex(tagged))"
      let state = page.map { describe($0) } ?? "queued"
      let f = makeFinding(
        .tlbExecMissing, queueEvent(mark), mm: nil, page: page ?? (tagged & s390PageMask),
        half: page == nil ? nil : Int(tagged & 3) - 1, before: state, after: state,
        "\(what) was queued for __tlb_remove_table at line \(mark.line) on CPU \(mark.cpu) and never executed, although a later mmu_gather batch of CPU \(mark.cpu) ran, and the kprobe_profile shows no missed __tlb_remove_table")
      ctx.report(
        Inconclusive(
          reason: .missedTLBExec, line: mark.line, mm: nil, page: page,
          message:
            "\(what) queued at line \(mark.line) on CPU \(mark.cpu) was never executed, although a later mmu_gather batch of CPU \(mark.cpu) ran (RCU runs one CPU's callbacks in order): probable missed __tlb_remove_table",
          wouldBeRule: .tlbExecMissing, hingesOn: .tlbRemoveTableExec, asFinding: f))
    }

    finishStats()
  }
}
