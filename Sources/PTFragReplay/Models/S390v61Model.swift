import PTFragEvents

/// # s390 "AA/PP" 2 KiB page-table fragments — Linux v5.17 … v6.5 (variant A; 6.1 LTS)
///
/// Encodes `arch/s390/mm/pgalloc.c` as of v6.1 (6.1.15 read; the logic is unchanged
/// v5.17…v6.5): `page_table_alloc`, `page_table_free`, `page_table_free_rcu`,
/// `__tlb_remove_table`, `page_table_release_check`; commits c2c224932fd0 ("fix 2KB pgtable
/// release race": the two-step P in `page_table_free`), 1194372db6f3 (the comment block),
/// 4c88bb96e40b (release check), 620b4e903179 (`_refcount` byte 3). kernel-models.md §2.
///
/// ## States
/// Each 4 KiB page holds two 2 KiB tables ("halves": lower at +0, upper at +2048). Byte 3 of
/// `page->_refcount` has, per half h, A(h) (allocated) and P(h) (pending: freed through the
/// tlb batch, `__tlb_remove_table` not yet run). A and P of one half are exclusive, so a half
/// is F, A or P. A page is on its mm's `context.pgtable_list` ("L") iff exactly one A is set.
/// pgste (KVM) mms use whole pages: A = {1,1} for life, never listed, never P.
///
/// ## Transitions (kernel-models.md §2.5)
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
public class S390v61Model: AllocatorModel {
  public static let rules: [Rule] = [
    Rule("double-free", .error, "a free of a half that is not allocated (F or P)"),
    Rule("free-unknown", .error, "a free of an address no allocation of this mm returned, or not a 2 KiB-aligned table"),
    Rule("exec-without-pending", .error, "__tlb_remove_table of a half whose P bit is clear"),
    Rule("queue-without-pending", .error, "tlb_remove_table queued a half that page_table_free_rcu did not make pending"),
    Rule("exec-tag-mismatch", .error, "a tlb tag that does not match the table: 3 on a non-pgste page, 1/2 on a pgste page or the wrong half, 0 on a PTE page"),
    Rule("reuse-before-grace", .error, "alloc returned a half whose P bit is set (the 0x13/0x23 state)"),
    Rule("alloc-busy-half", .error, "alloc returned a half that is already allocated"),
    Rule("alloc-not-head", .error, "alloc returned a half of a listed page that is not the list head",
      requires: .predictedAllocations),
    Rule("alloc-fresh-while-head-usable", .error, "alloc took a fresh page although the list head had a usable half",
      requires: .predictedAllocations),
    Rule("alloc-listed-while-fresh", .error, "alloc returned a listed page's half although the head was busy (a fresh page was due)",
      requires: .predictedAllocations),
    Rule("alloc-divergence", .error, "alloc returned a table the model cannot produce (misaligned, another mm's page, an unseen upper half)"),
    Rule("alloc-without-return", .error, "page_table_alloc was entered again by the same task without returning (the return was dropped)"),
    Rule("release-with-bits", .error, "a page the model still holds (an A bit set) came back from the buddy allocator as fresh"),
    Rule("release-while-listed", .error, "a page still on an mm's list came back from the buddy allocator as fresh"),
    Rule("cross-mm", .error, "a free names a different mm than the one the page was allocated to"),
    Rule("tlb-exec-missing", .error, "a table queued in a tlb batch was never executed although later entries of the same CPU were"),
    Rule("leak", .error, "an mm's pgd was freed while tables allocated to it were never freed"),
    Rule("pgste-inferred", .info, "an mm whose allocations are whole pages is replayed as a pgste (KVM) mm",
      requires: .predictedAllocations),
  ]

  public class var descriptor: ModelDescriptor { descriptorV61 }

  static let descriptorV61 = ModelDescriptor(
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
    rules: rules)

  static let rule: [String: Rule] = Dictionary(uniqueKeysWithValues: rules.map { ($0.id, $0) })
  /// The rules of the dynamic model type, by id (a subclass adds its own).
  class var ruleByID: [String: Rule] { rule }

  // MARK: State

  struct Page: ListLinked {
    var lo: HalfState
    var hi: HalfState
    /// Whole-page pgste table (A = {1,1}); `pgsteQueued` once tag 3 was queued.
    var pgste = false
    var pgsteQueued = false
    /// Bit h: `tlb_remove_table` seen for the pending half h.
    var queued: UInt8 = 0
    /// Owning mm incarnation (serial), -1 unknown.
    var owner: Int32
    var listed = false
    var prev: UInt64 = 0
    var next: UInt64 = 0
    /// Line of the free that made half h pending.
    var pendingLine: (Int, Int) = (0, 0)
    /// Where half h entered the tlb batch (the `tlb_remove_table`, else the free).
    var queuedAt: (QueueMark, QueueMark) = (QueueMark(), QueueMark())

    subscript(h: Int) -> HalfState {
      get { h == 0 ? lo : hi }
      set { if h == 0 { lo = newValue } else { hi = newValue } }
    }
    var aCount: Int { (lo == .allocated ? 1 : 0) + (hi == .allocated ? 1 : 0) }
    var allFree: Bool { lo == .free && hi == .free }
  }

  /// When, where and in which mmu_gather a table entered a tlb batch (`gather` 0: the
  /// `tlb` pointer is not probed, so nothing is inferred from order).
  struct QueueMark {
    var line = 0
    var cpu: Int32 = -1
    var ns: UInt64 = 0
    var pid: Int32 = -1
    var gather = 0
  }

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

  enum Prediction: Equatable {
    case half(UInt64, Int)
    case fresh
  }

  struct Window {
    var pid: Int32
    var cpu: Int32
    var beginLine: Int
    var beginNs: UInt64
    var candidates: Candidates
    var sawPush = false
  }

  /// A half that one of the allocations still in flight (`eligible` pids) must return:
  /// `page_table_alloc` decides under `spin_lock_bh(&mm->context.lock)`, and
  /// `spin_unlock_bh` may run softirqs before the task returns, so a task that locked
  /// first can return last. `fresh`: that allocation found the list empty and took the
  /// page as a fresh one; the page's `list_add` came before the allocation at `line`
  /// took its upper half.
  struct Reservation {
    var page: UInt64
    var half: Int
    var fresh: Bool
    var line: Int
    var eligible: [Int32]
  }

  /// The outcomes an alloc window allows, in the order they became possible; inline for
  /// the usual one (no allocation per window).
  struct Candidates {
    var first: Prediction
    var rest: [Prediction] = []
    var last: Prediction? { rest.last ?? first }
    mutating func append(_ p: Prediction) { rest.append(p) }
    func contains(_ p: Prediction) -> Bool { first == p || rest.contains(p) }
  }

  enum Tri { case unknown, yes, no }

  // Stored properties of the model's classes are marked @exclusivity(unchecked): the
  // replay is single-threaded and never overlaps accesses, and the runtime checks cost
  // about 15 % of the replay.
  final class MM {
    let serial: Int32
    let address: UInt64
    /// Born in the capture and never desynchronized: allocations are predicted.
    @exclusivity(unchecked) var known: Bool
    @exclusivity(unchecked) var bornLine: Int?
    /// `mm->context.pgtable_list`.
    @exclusivity(unchecked) var list = PageListHead()
    var head: UInt64 { list.head }
    var tail: UInt64 { list.tail }
    var listCount: Int { list.count }
    @exclusivity(unchecked) var liveTables = 0
    @exclusivity(unchecked) var pgste: Tri = .unknown
    @exclusivity(unchecked) var windows: [Window] = []
    /// Halves that other allocations of this mm, still in flight, must have taken (class 2:
    /// an allocation returned what the list gives only after they decided).
    @exclusivity(unchecked) var reserved: [Reservation] = []
    /// The head's free half as counted in this mm's `ctx.mmBook` entry (0 or 1).
    @exclusivity(unchecked) var headCounted = 0
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

  let ctx: ReplayContext
  // Per-event lookups go through AddressMap (no SipHash; see AddressMap).
  @exclusivity(unchecked) var pages = AddressMap<Page>()
  @exclusivity(unchecked) var mmByAddress = AddressMap<MM>()
  /// By `MM.serial` (never negative).
  @exclusivity(unchecked) var mmBySerial = AddressMap<MM>()
  @exclusivity(unchecked) var nextSerial: Int32 = 0
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
  /// Events by `Event.Kind.rawValue`; copied into `ReplayStats.eventsByKind` at the end.
  @exclusivity(unchecked) var kindCounts = [Int](repeating: 0, count: Event.Kind.allCases.count)
  @exclusivity(unchecked) var hadLoss = false
  /// Per CPU: the latest `lastNs` among gathers of that CPU with an entry run asynchronously.
  var executedQueuedUpTo = AddressMap<UInt64>()
  var gathers = AddressMap<Gather>()
  /// Per task: the gather its `tlb_remove_table` calls currently belong to.
  var openGather = AddressMap<(tlb: UInt64, id: Int)>()
  var nextGather = 1
  /// The last `page_table_free_rcu` reported as a double free (its queue is not reported again).
  var reportedFree: (pid: Int32, table: UInt64)? = nil

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
    return QueueMark(line: e.line, cpu: e.cpu, ns: e.timestampNs, pid: e.pid, gather: g)
  }
  /// Per task: the entry line of the page_table_alloc whose missing return a free inferred.
  var returnInferredAtFree = AddressMap<Int>()
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

  public required init(context: ReplayContext) { ctx = context }

  /// The functions a table of this kernel is freed through (`pte_free` →
  /// `page_table_free`, `pte_free_tlb` → `page_table_free_rcu`; B adds `pte_free_defer`).
  class var tableFreeFunctions: [KernelFunction] { [.pageTableFreeRCU, .pageTableFree] }

  // MARK: Helpers

  @inline(__always) func split(_ table: UInt64) -> (UInt64, Int) {
    (table & s390PageMask, table & s390HalfBit != 0 ? 1 : 0)
  }

  func mm(at address: UInt64?) -> MM? {
    guard let address else { return nil }
    if let m = mmByAddress[address] { return m }
    let m = MM(serial: nextSerial, address: address, known: false)
    nextSerial += 1
    mmByAddress[address] = m
    mmBySerial[UInt64(m.serial)] = m
    ctx.stats.mmsSeen += 1
    return m
  }

  func owner(of p: Page) -> MM? { p.owner >= 0 ? mmBySerial[UInt64(p.owner)] : nil }

  /// `AP L` style, as in kernel-models.md §2.5.
  func describe(_ key: UInt64) -> String { Self.describe(pages[key]) }

  static func describe(_ page: Page?) -> String {
    guard let p = page else { return "(none)" }
    if p.pgste { return p.pgsteQueued ? "Xq -" : "X -" }
    return "\(p.lo.letter)\(p.hi.letter) \(p.listed ? "L" : "-")"
  }

  /// A page's state before an event, put into words only when a finding needs it (the
  /// per-event path then costs a copy of the page, not a String).
  struct Before {
    var page: Page?
    var literal: String? = nil
    var text: String { literal ?? S390v61Model.describe(page) }
  }

  func snapshot(_ key: UInt64) -> Before { Before(page: pages[key]) }

  func finding(
    _ id: String, _ e: Event, mm: UInt64?, page: UInt64?, half: Int?, before: Before,
    after: String? = nil, _ message: String, related: [Int] = []
  ) {
    let f = Finding(
      rule: Self.ruleByID[id]!, event: e, mm: mm, page: page, half: half, stateBefore: before.text,
      stateAfter: after ?? page.map { describe($0) } ?? before.text, message: message,
      relatedLines: related)
    ctx.report(f)
  }

  /// As above, with the state before given as text (a state the page table cannot show, e.g. R).
  func finding(
    _ id: String, _ e: Event, mm: UInt64?, page: UInt64?, half: Int?, before: String,
    after: String? = nil, _ message: String, related: [Int] = []
  ) {
    finding(
      id, e, mm: mm, page: page, half: half, before: Before(page: nil, literal: before),
      after: after, message, related: related)
  }

  // MARK: List (mm->context.pgtable_list)

  func pushFront(_ m: MM, _ key: UInt64) {
    unlink(key)
    pages.pushFront(key, &m.list)
    let serial = m.serial
    pages.update(key) { $0.owner = serial }
    for i in m.windows.indices { m.windows[i].sawPush = true }
  }

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

  func release(_ key: UInt64) {
    unlink(key)
    pages.removeValue(forKey: key)
    ctx.released(page: key)
  }

  /// The kernel's final step for a page whose last bit cleared during `e`
  /// (`page_table_release_check`, then the dtor and the free to buddy): in A, an immediate
  /// release. B defers it through RCU when the page is Active.
  func final(_ key: UInt64, _ e: Event) { release(key) }

  /// Whether a free that leaves the other half allocated may put the page on the list
  /// (`list_add` / `list_add_tail`). Always in A; B forbids it on an Active page.
  func mayList(_ key: UInt64) -> Bool { true }

  /// What `page_table_alloc` would return for `m` now.
  func predict(_ m: MM) -> Prediction {
    if m.pgste == .yes { return .fresh }
    guard m.head != 0, let p = pages[m.head] else { return .fresh }
    let busyLo = p.lo != .free
    let busyHi = p.hi != .free
    if busyLo && busyHi { return .fresh }
    return .half(m.head, busyLo ? 1 : 0)
  }

  /// After a change that touches `m`'s list or pages, open windows learn the new outcome.
  func changed(_ m: MM?) {
    guard let m, !m.windows.isEmpty else { return }
    let p = predict(m)
    for i in m.windows.indices where m.windows[i].candidates.last != p {
      m.windows[i].candidates.append(p)
    }
  }

  // MARK: Events

  // MARK: Occupancy (kernel-models.md §8), kept by difference around each event

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
  /// Σ over mms: 1 if the list head has a free half (what the next alloc takes).
  @exclusivity(unchecked) var headsWithFree = 0

  func contribution(_ key: UInt64) -> Tally { contribution(pages[key]) }

  @inline(__always)
  func contribution(_ page: Page?) -> Tally {
    var t = Tally()
    guard let p = page else { return t }
    if p.pgste {
      t.live = 2
      return t
    }
    for h in 0..<2 {
      switch p[h] {
      case .allocated: t.live += 1
      case .pending: t.pending += 1
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
    return p.lo == .free || p.hi == .free ? 1 : 0
  }

  /// Self-check for tests: the kept occupancy equals a full recount.
  public func occupancyMatchesRecount() -> Bool {
    let kept = (tally.live, tally.pending, tally.unknown, tally.free, tally.freeListed, headsWithFree)
    let keptByMM = ctx.mmBook.currentByMM
    recount()
    return kept == (tally.live, tally.pending, tally.unknown, tally.free, tally.freeListed, headsWithFree)
      && keptByMM == ctx.mmBook.currentByMM
  }

  func recount() {
    tally = Tally()
    for (k, _) in pages { tally += contribution(k) }
    headsWithFree = mmByAddress.reduce(0) { $0 + headFree($1.value) }
    guard ctx.mmBook.enabled else { return }
    var byMM: [Int32: (UInt64, Occupancy)] = [:]
    for (k, p) in pages where p.owner >= 0 {
      byMM[p.owner, default: (mmBySerial[UInt64(p.owner)]?.address ?? 0, Occupancy())].1.add(slots(contribution(k)))
    }
    for (_, m) in mmByAddress {
      m.headCounted = headFree(m)
      if m.headCounted > 0 { byMM[m.serial, default: (m.address, Occupancy())].1.add(s390HeadDelta) }
    }
    addToRecount(&byMM)
    ctx.mmBook.replaceAll(byMM)
  }

  // MARK: Per-mm occupancy (`ctx.mmBook`), kept with the tally

  /// One page's tally as an occupancy.
  func slots(_ t: Tally) -> Occupancy {
    s390PageOccupancy(live: t.live, pending: t.pending, unknown: t.unknown, free: t.free, freeListed: t.freeListed)
  }

  /// Re-counts `m`'s head into its book entry.
  func syncHead(_ m: MM?) {
    guard let m else { return }
    syncHeadCount(ctx, m.serial, m.address, now: headFree(m), counted: &m.headCounted)
  }

  /// What a subclass holds outside `pages` (B: pages waiting in R), per mm, for a recount.
  func addToRecount(_ byMM: inout [Int32: (UInt64, Occupancy)]) {}

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

  public func simulateAlloc(mm address: UInt64, fresh: () -> UInt64) -> UInt64 {
    guard let m = mmByAddress[address] else { return fresh() }
    switch predict(m) {
    case .fresh: return fresh()
    case .half(let k, let h): return k + UInt64(h) * 0x800
    }
  }

  /// Simulation: the s390 fragment vocabulary; a kernel without `pte_free_defer` (≤ v6.5,
  /// per the descriptor's functions) frees khugepaged's table with `pte_free` instead.
  public func kernelEvents(for op: SimulatedOperation, _ emit: (SimulatedEvent) -> Void) {
    let hasDefer = Self.descriptor.functions.contains("pte_free_defer")
    s390FragmentEvents(for: op, deferAs: hasDefer ? .deferBegin : .freeNow, emit)
  }

  public func apply(_ e: Event) {
    kindCounts[Int(e.kind.rawValue)] += 1
    step(e)
    if e.kind != .lost { setLastLine(e.line, ofCPU: e.cpu) }
    if pages.count > ctx.stats.peakPages { ctx.stats.peakPages = pages.count }
  }

  /// The effect of one event, with the occupancy kept by difference. A subclass also uses it
  /// for an operation the capture implies without showing it as its own line (B: the
  /// `page_table_free` inside an unprobed `pte_free_defer`); it is not counted as an event.
  final func step(_ e: Event) {
    if e.kind != .freeTLB && e.kind != .tlbQueue && e.kind != .tlbExec && e.kind != .lost,
      let o = openGather[e.pid]
    {
      // The task moved on: its gather was flushed by now.
      close(o.id, by: e)
      openGather[e.pid] = nil
    }
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
    let named = e.mm.flatMap { mmByAddress[$0] }
    let tallyBefore = touchesPage ? contribution(pageBefore) : Tally()
    if touchesPage { tally -= tallyBefore }
    let headsBefore = headFree(ownerBefore) + (named !== ownerBefore ? headFree(named) : 0)
    let findingsBefore = ctx.findingCount
    dispatch(e)
    if touchesPage && ctx.findingCount > findingsBefore {
      ctx.amendStateAfter(since: findingsBefore, page: key, describe(key))
    }
    // Births and deaths change no page unless a leak is buried (bury sets needsRecount).
    if e.kind == .lost || needsRecount {
      needsRecount = false
      recount()
    } else {
      let tallyAfter = touchesPage ? contribution(pages[key]) : Tally()
      if touchesPage { tally += tallyAfter }
      let namedAfter = named ?? e.mm.flatMap { mmByAddress[$0] }  // created by this event
      let after = headFree(ownerBefore) + (namedAfter !== ownerBefore ? headFree(namedAfter) : 0)
      headsWithFree += after - headsBefore
      if ctx.mmBook.enabled {
        // By the page's owner serial: a dead mm's pending halves stay its own until they go.
        let ownerAfter = touchesPage ? pages[key].flatMap { owner(of: $0) } : nil
        if touchesPage {
          ctx.mmBook.move(
            from: serialBefore, slots(tallyBefore), to: pages[key]?.owner ?? -1, slots(tallyAfter),
            address: { mmBySerial[UInt64($0)]?.address })
        }
        syncHead(ownerBefore)
        if namedAfter !== ownerBefore { syncHead(namedAfter) }
        if ownerAfter !== ownerBefore && ownerAfter !== namedAfter { syncHead(ownerAfter) }
      }
    }
  }

  @exclusivity(unchecked) var needsRecount = false

  func dispatch(_ e: Event) {
    switch e.kind {
    case .allocBegin:
      allocBegin(e)
    case .alloc: alloc(e)
    case .allocUnreturned: allocUnreturned(e)
    case .freeNow: freeNow(e)
    case .freeTLB: freeTLB(e)
    case .tlbQueue: tlbQueue(e)
    case .tlbExec: tlbExec(e)
    case .mmBirth: birth(e)
    case .mmDeath: death(e)
    case .lost: lost(e)
    case .crstAlloc: crstAlloc(e)
    case .crstFree, .deferBegin, .deferEnd, .rcuFree, .fragmentFree, .fragDestroy, .pmdAlloc,
      .pmdFree, .mmExit:
      break
    }
  }

  func allocBegin(_ e: Event) {
    guard let m = mm(at: e.mm) else { return }
    m.windows.removeAll { $0.pid == e.pid }
    m.windows.append(
      Window(
        pid: e.pid, cpu: e.cpu, beginLine: e.line, beginNs: e.timestampNs,
        candidates: Candidates(first: predict(m))))
  }

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
      // The same task entered again: its return is missing. Unless the return probe missed
      // (kretprobe maxactive), that is a divergence; the table it returned is unknown, so
      // the mm is no longer predicted either way. Resynchronise: the half the model
      // predicted may or may not have been taken, so it becomes unknown (later events of it
      // are accepted).
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
      wasPredicted: wasKnown, rule: Self.ruleByID["alloc-without-return"]!)
  }

  func alloc(_ e: Event) {
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
        "alloc-divergence", e, mm: m?.address, page: key, half: h, before: before,
        "page_table_alloc returned \(hex(table)), which is not a 2 KiB-aligned table")
      return
    }

    // 1. What the returned half was, whatever the prediction.
    if let p = pages[key] {
      if p.pgste || p[h] == .allocated {
        // Another mm got the page base as if fresh: the page went back to the buddy
        // allocator while a table on it was still allocated.
        let holder = owner(of: p)
        let released = h == 0 && holder != nil && holder !== m
        let lastAlloc = ctx.history(of: key).filter { $0.kind == .alloc }.suffix(1).map(\.line)
        finding(
          released ? "release-with-bits" : "alloc-busy-half", e, mm: m?.address, page: key,
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
        pendingReuse(e, m, window, key, h, before)
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
        var i = Inconclusive(
          reason: .concurrency, line: e.line, mm: m.address, page: key,
          message:
            "fresh page although the head \(hex(lf.page)) had a free half: the page_table_free at line \(lf.line) on CPU \(lf.cpu) was still in flight, and its transient P bit (c2c224932fd0) makes the head look busy",
          wouldBeRule: "alloc-fresh-while-head-usable")
        i.explainedBy = "concurrent page_table_free in flight"
        ctx.report(i)
      } else if inFlightAllocsExplain(e, m, observed, key, h) {
        needsRecount = true
        ctx.stats.concurrencyResolved += 1
      } else if m.pgste == .unknown, observed == .fresh, h == 0, pgsteCandidate(m) {
        m.pgste = .yes
        convertToPgste(m)
        finding(
          "pgste-inferred", e, mm: m.address, page: key, half: 0, before: before,
          "mm \(hex(m.address)) gets a fresh page for every table and never an upper half: replayed as a pgste (KVM) mm from here on"
        )
      } else {
        diverge(e, m, window, candidates, observed, key, h, before)
      }
    }

    // 3. Apply what the kernel did.
    if pages[key] != nil {
      if let m { takeHalf(m, key, h) } else { pages[key]![h] = .allocated; unlink(key) }
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
          "alloc-divergence", e, mm: m.address, page: r.page, half: 1,
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

  /// An allocation of `m` in flight whose return was missed: it took the first half
  /// reserved for it.
  func claimUnreturned(_ m: MM, pid: Int32) {
    if let i = m.reserved.firstIndex(where: { $0.eligible.contains(pid) }) { m.reserved.remove(at: i) }
    for i in m.reserved.indices { m.reserved[i].eligible.removeAll { $0 == pid } }
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
      pages[k]!.hi = .allocated
      pages[k]!.pgste = true
    }
  }

  func takeHalf(_ m: MM, _ key: UInt64, _ h: Int) {
    let p = pages[key]!
    if p[h] != .allocated { m.liveTables += 1 }
    if p.owner != m.serial, let old = owner(of: p), p.aCount > 0 {
      old.liveTables -= p.aCount
      m.liveTables += p.aCount
    }
    unlink(key)
    let serial = m.serial
    pages.update(key) {
      $0[h] = .allocated
      $0.owner = serial
    }
    if h == 1 && m.pgste == .unknown { m.pgste = .no }
  }

  func freshPage(_ m: MM?, _ key: UInt64, _ h: Int) {
    guard let m else {
      pages[key] = Page(lo: h == 0 ? .allocated : .unknown, hi: h == 1 ? .allocated : .unknown, owner: -1)
      return
    }
    if h == 1 {
      // The upper half of a page the model never saw: its lower half is unknown.
      pages[key] = Page(lo: .unknown, hi: .allocated, owner: m.serial)
      m.liveTables += 1
      if m.pgste == .unknown { m.pgste = .no }
      return
    }
    if m.pgste == .yes {
      var p = Page(lo: .allocated, hi: .allocated, owner: m.serial)
      p.pgste = true
      pages[key] = p
      m.liveTables += 1
      return
    }
    pages[key] = Page(lo: .allocated, hi: .free, owner: m.serial)
    m.liveTables += 1
    pushFront(m, key)
  }

  /// The kernel handed out a half the model holds as pending.
  func pendingReuse(
    _ e: Event, _ m: MM?, _ w: Window?, _ key: UInt64, _ h: Int, _ before: Before
  ) {
    let p = pages[key]!
    let freeLine = h == 0 ? p.pendingLine.0 : p.pendingLine.1
    let isFreshCase = p.lo != .allocated && p.hi != .allocated && !p.listed && h == 0
    // (a) the list head of this mm whose other half is allocated: with the exec, the head
    //     would have had exactly this half usable.
    let isHeadCase =
      m != nil && p.listed && p.owner == m!.serial && m!.head == key && p[1 - h] == .allocated
    // (b) a page whose halves are all pending or free: released once the missed execs ran,
    //     and handed out again as a fresh page (lower half).
    let base = Finding(
      rule: Self.ruleByID["reuse-before-grace"]!, event: e, mm: m?.address, page: key, half: h,
      stateBefore: before.text,
      stateAfter: isFreshCase ? "AF L" : "\(h == 0 ? "A\(p.hi.letter)" : "\(p.lo.letter)A") -",
      message:
        "page_table_alloc returned \(hex(e.table)), whose P bit is set since page_table_free_rcu at line \(freeLine); no __tlb_remove_table cleared it",
      relatedLines: freeLine > 0 ? [freeLine] : [])
    if isHeadCase || isFreshCase {
      // Explained by silent misses of __tlb_remove_table, unless the profile shows none.
      let missing = isFreshCase ? [0, 1].filter { p[$0] == .pending } : [h]
      for mh in missing {
        var f = base
        f.message += ", and the kprobe_profile shows no missed __tlb_remove_table"
        ctx.report(
          Inconclusive(
            reason: .missedTLBExec, line: e.line, mm: m?.address, page: key,
            message:
              "page_table_alloc returned \(hex(e.table)) while the \(halfName(mh)) half of page \(hex(key)) is pending since line \(mh == 0 ? p.pendingLine.0 : p.pendingLine.1): probable missed __tlb_remove_table(\(hex(key + UInt64(mh) * 0x800 + UInt64(mh + 1))))",
            wouldBeRule: "reuse-before-grace", hingesOn: .tlbRemoveTableExec,
            asFinding: mh == missing[0] ? f : nil))
      }
    } else {
      ctx.report(base)
    }
    // Resynchronise on what the kernel did: the missing executions ran.
    if isFreshCase {
      for ph in 0..<2 where p[ph] == .pending { ctx.inferred(.exec(table: key + UInt64(ph) * 0x800)) }
      release(key)
      freshPage(m, key, 0)
    } else {
      ctx.inferred(.exec(table: key + UInt64(h) * 0x800))
      pages[key]![h] = .free
      pages[key]!.queued &= ~(1 << UInt8(h))
      if let m { takeHalf(m, key, h) } else { pages[key]![h] = .allocated; unlink(key) }
    }
  }

  /// The kernel's choice matches no point of the window: name the divergence.
  func diverge(
    _ e: Event, _ m: MM, _ w: Window, _ candidates: Candidates, _ observed: Prediction,
    _ key: UInt64, _ h: Int, _ before: Before
  ) {
    let predicted = candidates.last!
    let predictedText: String
    switch predicted {
    case .fresh: predictedText = "a fresh page (the list head has no usable half)"
    case .half(let k, let ph): predictedText = "\(hex(k + UInt64(ph) * 0x800)) (the \(halfName(ph)) half of the list head)"
    }
    let rule: String
    var why: String
    let p = pages[key]
    switch (observed, predicted) {
    case (.fresh, _) where h == 1:
      rule = "alloc-divergence"
      why = "the upper half of a page this mm never held"
    case (.fresh, .half):
      rule = "alloc-fresh-while-head-usable"
      why = "a fresh page"
    case (.half, _) where p?.listed == true && p?.owner == m.serial:
      rule = predicted == .fresh ? "alloc-listed-while-fresh" : "alloc-not-head"
      why = "a half of a page further down the list"
    case (.half, _) where p?.listed == true || (p?.aCount ?? 0) > 0:
      let other = p.flatMap { owner(of: $0) }
      if other !== m && p?.aCount ?? 0 > 0 && h == 0 && p?[1] == .allocated {
        rule = p?.listed == true ? "release-while-listed" : "release-with-bits"
        why = "a page still held\(other.map { " by mm \(hex($0.address))" } ?? "") with its other half allocated"
      } else {
        rule = "alloc-divergence"
        why = "a half of a page held by \(other.map { "mm \(hex($0.address))" } ?? "another mm")"
      }
    default:
      rule = "alloc-divergence"
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
      related: [w.beginLine])
  }

  func listSummary(_ m: MM) -> String {
    var parts: [String] = []
    var k = m.head
    while k != 0, let p = pages[k], parts.count < 4 {
      parts.append("\(hex(k)) \(p.lo.letter)\(p.hi.letter)")
      k = p.next
    }
    if m.listCount > parts.count { parts.append("… \(m.listCount) pages") }
    return parts.isEmpty ? "empty" : parts.joined(separator: ", ")
  }

  func freeNow(_ e: Event) {
    let table = e.table
    let (key, h) = split(table)
    let m = mm(at: e.mm)
    ctx.record(page: key, e, mm: e.mm)
    if table & 0x7ff != 0 || table == 0 {
      finding(
        "free-unknown", e, mm: e.mm, page: key, half: h, before: snapshot(key),
        "page_table_free(\(hex(table))) is not a 2 KiB-aligned table")
      return
    }
    if let m, let wi = m.windows.firstIndex(where: { $0.pid == e.pid }),
      m.windows[wi].candidates.contains(pages[key] == nil ? .fresh : .half(key, h))
        || (pages[key] == nil && h == 0)
    {
      // mm/memory.c __pte_alloc (v6.1): pte_alloc_one, then pmd_install; when another thread
      // installed a table first, pte_free(mm, new) frees it at once. The task is still inside
      // its page_table_alloc window, so that return was missed (a kretprobe miss the profile
      // counts under page_table_alloc): the free names the table the alloc returned, and an
      // alloc and free of one half leave the page as it was.
      let w = m.windows.remove(at: wi)
      returnInferredAtFree[e.pid] = w.beginLine
      ctx.stats.allocationsUnverified += 1
      let f = Finding(
        rule: Self.ruleByID["alloc-without-return"]!, event: e, mm: m.address, page: key, half: h,
        stateBefore: snapshot(key).text, stateAfter: snapshot(key).text,
        message:
          "page_table_free(\(hex(table))) by pid \(e.pid) while its page_table_alloc entered at line \(w.beginLine) has not returned: the return event is missing",
        relatedLines: [w.beginLine])
      ctx.report(
        Inconclusive(
          reason: .missedProbe, line: e.line, mm: m.address, page: key,
          message:
            "page_table_free(\(hex(table))) by pid \(e.pid) inside its page_table_alloc window (entered at line \(w.beginLine)): probable missed page_table_alloc return of \(hex(table)), freed at once by __pte_alloc",
          wouldBeRule: "alloc-without-return", hingesOn: .pageTableAlloc, asFinding: f))
      return
    }
    let before = snapshot(key)
    guard var p = pages[key] else {
      if let m, m.known {
        finding(
          "free-unknown", e, mm: m.address, page: key, half: h, before: before,
          "page_table_free of \(hex(table)), which no allocation of mm \(hex(m.address)) (born at line \(m.bornLine ?? 0)) returned")
      } else {
        ctx.stats.freesUntracked += 1
        var np = Page(lo: .unknown, hi: .unknown, owner: m?.serial ?? -1)
        np[h] = .free
        pages[key] = np
      }
      return
    }
    let pageOwner = owner(of: p)
    if let m, p.owner >= 0, p.owner != m.serial {
      finding(
        "cross-mm", e, mm: m.address, page: key, half: h, before: before,
        "page_table_free names mm \(hex(m.address)), but \(hex(key)) was allocated to mm \(pageOwner.map { hex($0.address) } ?? "(gone)")")
    }
    if p.pgste {
      if p.pgsteQueued {
        finding("double-free", e, mm: e.mm, page: key, half: h, before: before,
          "page_table_free of pgste table \(hex(table)), already freed through the tlb batch")
        return
      }
      pageOwner?.liveTables -= 1
      final(key, e)
      changed(pageOwner)
      return
    }
    switch p[h] {
    case .allocated, .unknown:
      if p[h] == .allocated { pageOwner?.liveTables -= 1 } else { ctx.stats.freesUntracked += 1 }
    case .free, .pending:
      finding(
        "double-free", e, mm: e.mm, page: key, half: h, before: before,
        "page_table_free of \(hex(table)), whose \(halfName(h)) half is \(p[h] == .free ? "already free" : "pending since line \(h == 0 ? p.pendingLine.0 : p.pendingLine.1)")",
        related: [h == 0 ? p.pendingLine.0 : p.pendingLine.1].filter { $0 > 0 })
      return
    }
    // xor 0x11<<h, list op, xor 0x10<<h: net effect F, with the page on/off the list.
    p[h] = .free
    pages[key] = p
    let listOwner = pageOwner ?? m
    if p[1 - h] == .allocated, mayList(key), let listOwner {
      pushFront(listOwner, key)
      listOwner.lastFreeNow = (key, e.line, e.cpu, e.timestampNs)
      // The transient P: an alloc deciding now sees the head busy.
      if !listOwner.windows.isEmpty {
        for i in listOwner.windows.indices where listOwner.windows[i].candidates.last != .fresh {
          listOwner.windows[i].candidates.append(.fresh)
        }
      }
    } else {
      unlink(key)
    }
    if pages[key]!.allFree { final(key, e) }
    changed(listOwner)
  }

  func freeTLB(_ e: Event) {
    let table = e.table
    let (key, h) = split(table)
    ctx.record(page: key, e, mm: e.mm)
    if table & 0x7ff != 0 || table == 0 {
      finding(
        "free-unknown", e, mm: e.mm, page: key, half: h, before: snapshot(key),
        "page_table_free_rcu(\(hex(table))) is not a 2 KiB-aligned table")
      return
    }
    let current = pages[key]
    let before = Before(page: current)
    let named = e.mm.flatMap { mmByAddress[$0] }
    guard var p = current else {
      if let named, named.known {
        finding(
          "free-unknown", e, mm: named.address, page: key, half: h, before: before,
          "page_table_free_rcu of \(hex(table)), which no allocation of mm \(hex(named.address)) returned")
      } else {
        ctx.stats.freesUntracked += 1
        var np = Page(lo: .unknown, hi: .unknown, owner: named?.serial ?? -1)
        np[h] = .pending
        np.pendingLine = h == 0 ? (e.line, 0) : (0, e.line)
        pages[key] = np
      }
      return
    }
    let pageOwner = owner(of: p)
    if let named, p.owner >= 0, p.owner != named.serial {
      finding(
        "cross-mm", e, mm: named.address, page: key, half: h, before: before,
        "page_table_free_rcu names mm \(hex(named.address)), but \(hex(key)) was allocated to mm \(pageOwner.map { hex($0.address) } ?? "(gone)")")
    }
    if p.pgste {
      if p.pgsteQueued {
        finding("double-free", e, mm: e.mm, page: key, half: h, before: before,
          "page_table_free_rcu of pgste table \(hex(table)), already queued")
        return
      }
      pages[key]!.pgsteQueued = true
      return
    }
    switch p[h] {
    case .allocated: pageOwner?.liveTables -= 1
    case .unknown: ctx.stats.freesUntracked += 1
    case .free, .pending:
      finding(
        "double-free", e, mm: e.mm ?? pageOwner?.address, page: key, half: h, before: before,
        "page_table_free_rcu of \(hex(table)), whose \(halfName(h)) half is \(p[h] == .free ? "already free" : "pending since line \(h == 0 ? p.pendingLine.0 : p.pendingLine.1)")",
        related: [h == 0 ? p.pendingLine.0 : p.pendingLine.1].filter { $0 > 0 })
      reportedFree = (e.pid, table)
      return
    }
    p[h] = .pending
    p.queued &= ~(1 << UInt8(h))
    let mark = mark(e)
    if h == 0 {
      p.pendingLine.0 = e.line
      p.queuedAt.0 = mark
    } else {
      p.pendingLine.1 = e.line
      p.queuedAt.1 = mark
    }
    pages[key] = p
    if p[1 - h] == .allocated, mayList(key), let listOwner = pageOwner ?? named {
      pushBack(listOwner, key)
    } else {
      unlink(key)
    }
    if pageOwner?.pgste == .unknown { pageOwner?.pgste = .no }
    changed(pageOwner)
  }

  func tlbQueue(_ e: Event) {
    let tag = Int(e.table & 3)
    let base = e.table & ~3
    let (key, h) = split(base)
    guard var p = pages[key] else {
      if tag == 0 { crstQueued[base] = mark(e) }
      return
    }
    if tag == 0 && heldOnlyAsReleased(p) {
      // A CRST table on a page whose PTE tables were all freed: the page went back to the
      // buddy allocator unseen and crst_table_alloc handed it out again.
      releasedUnseen(key, e, as: "as the CRST table that tlb_remove_table(\(hex(e.table))) queues")
      crstQueued[base] = mark(e)
      return
    }
    ctx.record(page: key, e, mm: e.mm)
    let before = Before(page: p)
    switch tag {
    case 0:
      finding(
        "exec-tag-mismatch", e, mm: e.mm, page: key, half: nil, before: before,
        "tlb_remove_table(\(hex(e.table))) with tag 0 (CRST) names a page the model holds as PTE tables")
    case 3:
      if !p.pgste {
        finding(
          "exec-tag-mismatch", e, mm: e.mm, page: key, half: nil, before: before,
          "tlb_remove_table(\(hex(e.table))) with tag 3 (pgste) on a page that is not a pgste table")
      }
    default:
      let th = tag - 1
      if p.pgste || th != h || base & 0x7ff != 0 {
        finding(
          "exec-tag-mismatch", e, mm: e.mm, page: key, half: h, before: before,
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
            "double-free", e, mm: e.mm, page: key, half: h, before: before,
            "tlb_remove_table(\(hex(e.table))) queues the \(halfName(h)) half a second time (freed twice through the tlb batch)")
        }
        p.queued |= 1 << UInt8(h)
        let mark = mark(e)
        if h == 0 { p.queuedAt.0 = mark } else { p.queuedAt.1 = mark }
        pages[key] = p
      case .unknown: break
      case .free, .allocated:
        finding(
          "queue-without-pending", e, mm: e.mm, page: key, half: h, before: before,
          "tlb_remove_table(\(hex(e.table))) queues the \(halfName(h)) half, which is \(p[h] == .free ? "free" : "allocated"), not pending")
      }
    }
  }

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

  func tlbExec(_ e: Event) {
    let tag = Int(e.table & 3)
    let base = e.table & ~3
    let (key, h) = split(base)
    guard let p = pages[key] else {
      if tag != 0 {
        ctx.stats.execsUntracked += 1
      } else if let mark = crstQueued.removeValue(forKey: base) {
        executed(mark, by: e)
      }
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
        "exec-tag-mismatch", e, mm: pageOwner?.address, page: key, half: nil, before: before,
        "__tlb_remove_table(\(hex(e.table))) with tag 0 (CRST) names a page the model holds as PTE tables")
    case 3:
      if !p.pgste {
        finding(
          "exec-tag-mismatch", e, mm: pageOwner?.address, page: key, half: nil, before: before,
          "__tlb_remove_table(\(hex(e.table))) with tag 3 (pgste) on a page that is not a pgste table")
        return
      }
      if !p.pgsteQueued {
        finding(
          "exec-without-pending", e, mm: pageOwner?.address, page: key, half: nil, before: before,
          "__tlb_remove_table(\(hex(e.table))) of a pgste table that was not freed")
        return
      }
      pageOwner?.liveTables -= 1
      final(key, e)
      changed(pageOwner)
    default:
      let th = tag - 1
      if p.pgste || th != h || base & 0x7ff != 0 {
        finding(
          "exec-tag-mismatch", e, mm: pageOwner?.address, page: key, half: h, before: before,
          p.pgste
            ? "__tlb_remove_table(\(hex(e.table))) with tag \(tag) on a pgste page (tag 3 expected)"
            : "__tlb_remove_table(\(hex(e.table))): tag \(tag) names the \(halfName(th)) half, the address the \(halfName(h)) half")
        return
      }
      switch p[h] {
      case .pending, .unknown:
        if p[h] == .unknown { ctx.stats.execsUntracked += 1 } else { executed(h == 0 ? p.queuedAt.0 : p.queuedAt.1, by: e) }
        var q = p
        q[h] = .free
        q.queued &= ~(1 << UInt8(h))
        pages[key] = q
        if q.allFree { final(key, e) }
        changed(pageOwner)
      case .free, .allocated:
        finding(
          "exec-without-pending", e, mm: pageOwner?.address, page: key, half: h, before: before,
          "__tlb_remove_table(\(hex(e.table))) executes the \(halfName(h)) half, which is \(p[h] == .free ? "free" : "allocated"): no page_table_free_rcu made it pending")
      }
    }
  }

  /// The kernel shows that a page the model holds went back to the buddy allocator: it came
  /// back `how` (inside a CRST block, or as a fresh PTE page). In v6.1 (arch/s390/mm/pgalloc.c)
  /// a page is freed only when its last bit clears — in `page_table_free` or in
  /// `__tlb_remove_table` (cases 1/2, then `__free_page`) — so every half the model holds was
  /// released by an event the capture does not show:
  /// - a pending half: its `__tlb_remove_table` was missed (the nested-kprobe kind the
  ///   kprobe_profile counts) — inconclusive, settled by the profile;
  /// - an allocated half: its free was missed, or the kernel released a page in use —
  ///   inconclusive while `page_table_free_rcu` may have missed hits, else `release-with-bits`;
  /// - a half of unknown history (an mm born before the capture, a lost event): nothing to say.
  /// Then the model forgets the page (resynchronises on what the kernel did).
  /// No table of the page is allocated: every half is free, pending or of unknown history,
  /// so the page may have gone back to the buddy allocator through events the capture lacks.
  func heldOnlyAsReleased(_ p: Page) -> Bool {
    p.pgste ? p.pgsteQueued : p.aCount == 0
  }

  func releasedUnseen(_ key: UInt64, _ e: Event, as how: String) {
    guard let p = pages[key] else { return }
    ctx.record(page: key, e, mm: e.mm)
    let before = Before(page: p)
    let holder = owner(of: p)
    let halves = p.pgste ? [0] : [0, 1]
    var first = true
    for h in halves where p[h] == .pending || (p.pgste && p.pgsteQueued) {
      let freeLine = h == 0 ? p.pendingLine.0 : p.pendingLine.1
      let table = key + UInt64(h) * 0x800
      let tagged = table + UInt64(p.pgste ? 3 : h + 1)
      let f = Finding(
        rule: Self.ruleByID["release-with-bits"]!, event: e, mm: holder?.address, page: key,
        half: p.pgste ? nil : h, stateBefore: before.text, stateAfter: "(released)",
        message:
          "page \(hex(key)) came back from the buddy allocator \(how) while \(hex(table)) was pending since line \(freeLine) and no __tlb_remove_table(\(hex(tagged))) ran, and the kprobe_profile shows no missed __tlb_remove_table",
        relatedLines: freeLine > 0 ? [freeLine] : [])
      ctx.report(
        Inconclusive(
          reason: .missedTLBExec, line: e.line, mm: holder?.address, page: key,
          message:
            "page \(hex(key)) came back from the buddy allocator \(how) while \(hex(table)) is pending since line \(freeLine): probable missed __tlb_remove_table(\(hex(tagged)))",
          wouldBeRule: "release-with-bits", hingesOn: .tlbRemoveTableExec, asFinding: first ? f : nil))
      first = false
      ctx.inferred(.exec(table: table))
    }
    for h in halves where p[h] == .allocated && !(p.pgste && p.pgsteQueued) {
      let table = key + UInt64(h) * 0x800
      let f = Finding(
        rule: Self.ruleByID["release-with-bits"]!, event: e, mm: holder?.address, page: key,
        half: p.pgste ? nil : h, stateBefore: before.text, stateAfter: "(released)",
        message:
          "page \(hex(key)) came back from the buddy allocator \(how) while \(hex(table)) of mm \(hex(holder?.address)) was never freed: it was released with its A bit set")
      ctx.report(
        Inconclusive(
          reason: .missedProbe, line: e.line, mm: holder?.address, page: key,
          message:
            "page \(hex(key)) came back from the buddy allocator \(how) while \(hex(table)) of mm \(hex(holder?.address)) is allocated: probable missed free of \(hex(table))",
          wouldBeRule: "release-with-bits", hingesOn: .pageTableFreeRCU,
          alternatives: type(of: self).tableFreeFunctions.filter { $0 != .pageTableFreeRCU }, asFinding: f))
      ctx.inferred(.free(table: table))
    }
    if p.aCount > 0 { holder?.liveTables -= p.pgste ? 1 : p.aCount }
    release(key)
    needsRecount = true
    changed(holder)
  }

  /// A CRST table handed out again while its queued tlb free was never seen executing: the
  /// block went back to the buddy allocator, so the `__tlb_remove_table` was missed.
  func crstAlloc(_ e: Event) {
    guard e.table != 0 else { return }
    // crst_table_alloc takes an order-2 block (CRST_ALLOC_ORDER, 16 KiB) from the buddy
    // allocator: any page of it the model still holds as PTE tables was released unseen.
    let block = e.table & ~0x3fff
    for k in 0..<4 {
      let key = block + UInt64(k) * 0x1000
      if pages[key] != nil {
        releasedUnseen(key, e, as: "inside the CRST table \(hex(e.table)) that crst_table_alloc returned")
      }
    }
    guard let mark = crstQueued.removeValue(forKey: e.table) else { return }
    let f = Finding(
      rule: Self.ruleByID["tlb-exec-missing"]!,
      event: queueEvent(mark),
      mm: e.mm, page: nil, half: nil, stateBefore: "queued", stateAfter: "allocated again",
      message:
        "CRST table \(hex(e.table)) queued for __tlb_remove_table at line \(mark.line) was allocated again at line \(e.line) without its execution, and the kprobe_profile shows no missed __tlb_remove_table",
      relatedLines: [e.line])
    ctx.report(
      Inconclusive(
        reason: .missedTLBExec, line: mark.line, mm: e.mm,
        message:
          "CRST table \(hex(e.table)) queued at line \(mark.line) is allocated again at line \(e.line) with no __tlb_remove_table seen: probable missed __tlb_remove_table",
        wouldBeRule: "tlb-exec-missing", hingesOn: .tlbRemoveTableExec, asFinding: f))
  }

  func birth(_ e: Event) {
    crstAlloc(e)
    guard let address = e.mm else { return }
    if let old = mmByAddress[address] { bury(old, e, seen: false) }
    let m = MM(serial: nextSerial, address: address, known: true)
    nextSerial += 1
    m.bornLine = e.line
    mmByAddress[address] = m
    mmBySerial[UInt64(m.serial)] = m
    ctx.stats.mmsBorn += 1
    ctx.stats.mmsSeen += 1
  }

  func death(_ e: Event) {
    guard let address = e.mm, let m = mmByAddress[address] else { return }
    bury(m, e, seen: true)
    ctx.stats.mmsDied += 1
  }

  /// I8: by the time the pgd goes, exit_mmap has freed every table of the mm.
  func bury(_ m: MM, _ e: Event, seen: Bool) {
    ctx.mmBook.died(m.serial)
    if m.liveTables > 0 || m.listCount > 0 {
      var live: [(UInt64, Int)] = []
      for (k, p) in pages where p.owner == m.serial {
        for h in 0..<2 where p[h] == .allocated { live.append((k, h)) }
      }
      live.sort { $0 < $1 }
      if !live.isEmpty {
        let list = live.prefix(6).map { hex($0.0 + UInt64($0.1) * 0x800) }.joined(separator: ", ")
        finding(
          "leak", e, mm: m.address, page: live[0].0, half: live[0].1,
          before: Before(page: nil, literal: "\(live.count) live tables"), after: "mm gone",
          seen
            ? "the pgd of mm \(hex(m.address)) was freed while \(live.count) of its tables were never freed: \(list)\(live.count > 6 ? ", …" : "")"
            : "mm \(hex(m.address)) was born again while \(live.count) tables of its previous life were never freed: \(list)\(live.count > 6 ? ", …" : "")")
      }
      // Forget them: later events of these tables are judged as of unknown history.
      for (k, h) in live { pages[k]![h] = .unknown }
      while m.head != 0 { unlink(m.head) }
      needsRecount = true
    }
    mmByAddress[m.address] = nil
    mmBySerial[UInt64(m.serial)] = nil
  }

  func lost(_ e: Event) {
    hadLoss = true
    ctx.stats.lostMarkers += 1
    ctx.stats.lostEvents += e.count
    for (_, m) in mmByAddress {
      m.known = false
      m.windows.removeAll()
      m.reserved.removeAll()
    }
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
      var f = Finding(
        rule: Self.ruleByID["tlb-exec-missing"]!,
        event: queueEvent(mark),
        mm: nil, page: page ?? (tagged & s390PageMask), half: page == nil ? nil : Int(tagged & 3) - 1,
        stateBefore: page.map { describe($0) } ?? "queued", stateAfter: page.map { describe($0) } ?? "queued",
        message:
          "\(what) was queued for __tlb_remove_table at line \(mark.line) on CPU \(mark.cpu) and never executed, although a later mmu_gather batch of CPU \(mark.cpu) ran, and the kprobe_profile shows no missed __tlb_remove_table")
      f.relatedLines = []
      ctx.report(
        Inconclusive(
          reason: .missedTLBExec, line: mark.line, mm: nil, page: page,
          message:
            "\(what) queued at line \(mark.line) on CPU \(mark.cpu) was never executed, although a later mmu_gather batch of CPU \(mark.cpu) ran (RCU runs one CPU's callbacks in order): probable missed __tlb_remove_table",
          wouldBeRule: "tlb-exec-missing", hingesOn: .tlbRemoveTableExec, asFinding: f))
    }

    for k in Event.Kind.allCases where kindCounts[Int(k.rawValue)] > 0 {
      ctx.stats.eventsByKind[k, default: 0] += kindCounts[Int(k.rawValue)]
    }
    kindCounts = [Int](repeating: 0, count: Event.Kind.allCases.count)
    ctx.stats.pagesAtEnd = pages.count
    var live = 0
    for (_, p) in pages { live += p.pgste ? 1 : p.aCount }
    ctx.stats.tablesLiveAtEnd = live
  }
}

// Per-task (pid), per-CPU and per-gather maps of the model: AddressMap keys.
extension AddressMap {
  fileprivate subscript(_ k: Int32) -> Value? {
    get { self[UInt64(UInt32(bitPattern: k))] }
    set { self[UInt64(UInt32(bitPattern: k))] = newValue }
  }
  fileprivate subscript(_ k: Int32, default d: @autoclosure () -> Value) -> Value {
    self[UInt64(UInt32(bitPattern: k))] ?? d()
  }
  fileprivate subscript(_ k: Int) -> Value? {
    get { self[UInt64(bitPattern: Int64(k))] }
    set { self[UInt64(bitPattern: Int64(k))] = newValue }
  }
}
