import PTFragEvents

// arch/powerpc/mm/pgtable-frag.c as a data structure: the per-mm cursor
// (`mm->context.pte_frag`), each page's `pt_frag_refcount` and PG_active, the RCU-pending
// pages, and what the allocator holds (docs/kernel-models.md §6, §8). Used by the powerpc model
// (E, PowerpcModel.swift) and by its s390 reading (C3a, S390PpcStyleModel.swift). The
// procedures here are the kernel's; the models decode events, check them and report.

/// Page and fragment sizes of one configuration (docs/kernel-models.md §6.1).
public struct FragGeometry: Sendable, Equatable, CustomStringConvertible {
  /// log2 of the page size in bytes (`PAGE_SHIFT`).
  public var pageShift: Int
  /// log2 of the fragment size in bytes (`PTE_FRAG_SIZE_SHIFT`).
  public var fragShift: Int

  public init(pageShift: Int, fragShift: Int) {
    precondition(fragShift >= 4 && fragShift <= pageShift && pageShift <= 20)
    self.pageShift = pageShift
    self.fragShift = fragShift
  }

  /// `PTE_FRAG_NR`: fragments per page.
  public var nr: Int { 1 << (pageShift - fragShift) }
  /// Bytes per page / per fragment.
  public var pageBytes: UInt64 { 1 << UInt64(pageShift) }
  public var fragBytes: UInt64 { 1 << UInt64(fragShift) }

  /// Base of the page holding `table`.
  @inline(__always) public func page(_ table: UInt64) -> UInt64 { table & ~(pageBytes - 1) }
  /// Index of `table`'s fragment in its page (0-based).
  @inline(__always) public func index(_ table: UInt64) -> Int {
    Int((table & (pageBytes - 1)) >> UInt64(fragShift))
  }
  /// Whether `table` is fragment-aligned.
  @inline(__always) public func aligned(_ table: UInt64) -> Bool { table & (fragBytes - 1) == 0 }
  /// `table`'s page and fragment index.
  @inline(__always) func split(_ table: UInt64) -> (UInt64, Int) { (page(table), index(table)) }

  public var description: String {
    "\(nr) × \(fragBytes >= 1024 ? "\(fragBytes / 1024) KiB" : "\(fragBytes) B") in \(pageBytes / 1024) KiB pages"
  }
}

/// One fragment slot of a page.
enum FragSlot: UInt8 {
  /// U: never handed out (counted in `pt_frag_refcount` on a cursor page until handed or
  /// destroyed; uncounted on a race loser's page).
  case unhanded
  /// H: handed out by `pte_fragment_alloc`, not freed.
  case handed
  /// Handed out by an allocation whose return is still in flight (concurrent allocs).
  case inFlight
  /// Q: in an mmu_gather batch (`tlb_remove_table`), `__tlb_remove_table` not yet run.
  case queued
  /// X: freed; never handed out again before its page goes back to the buddy allocator.
  case freed
  /// Its history lies before the capture.
  case unknown

  var letter: Character {
    switch self {
    case .unhanded: "U"
    case .handed: "H"
    case .inFlight: "h"
    case .queued: "Q"
    case .freed: "X"
    case .unknown: "?"
    }
  }
}

/// A page's state at one moment, for a report (`PgtableFrag.state`); or a text given as is.
struct FragState: ExpressibleByStringInterpolation {
  var page: FragPage?
  var cursorIndex: Int?
  var text: String? = nil
  init(page: FragPage?, cursorIndex: Int?) {
    self.page = page
    self.cursorIndex = cursorIndex
  }
  init(stringLiteral s: String) { text = s }
  init(stringInterpolation i: DefaultStringInterpolation) { text = String(stringInterpolation: i) }
}

/// One page of fragments.
struct FragPage {
  var slots: [FragSlot]
  /// `pt_frag_refcount`, when `refKnown`.
  var ref: Int
  /// False for a page first seen mid-life (capture): its count is not known.
  var refKnown = true
  /// Its unhanded fragments are counted in `ref`: it became a cursor page (count set to
  /// `PTE_FRAG_NR`); false for a race loser (count 1).
  var unhandedCounted = false
  /// PG_active: `pte_free_defer` was used on one of its fragments (v6.6+).
  var active = false
  /// R: the last reference went with PG_active set: `call_rcu(pte_free_now)` is queued.
  var rcu = false
  /// RCU callbacks seen (`rcuFree`) when the page entered R.
  var rcuSeenAtEntry = 0
  /// A whole-page (s390 pgste) table: both slots hold one table, count 1.
  var pgste = false
  /// The mm the page was allocated for (serial), -1 unknown.
  var owner: Int32
  /// The mm whose cursor points into this page (serial), -1 none.
  var cursorOf: Int32 = -1
  /// Slots by state.
  var counts = [Int](repeating: 0, count: 6)

  init(nr: Int, fill: FragSlot, ref: Int, owner: Int32) {
    slots = [FragSlot](repeating: fill, count: nr)
    counts[Int(fill.rawValue)] = nr
    self.ref = ref
    self.owner = owner
  }

  func count(_ s: FragSlot) -> Int { counts[Int(s.rawValue)] }

  mutating func set(_ i: Int, _ s: FragSlot) {
    counts[Int(slots[i].rawValue)] -= 1
    counts[Int(s.rawValue)] += 1
    slots[i] = s
  }

  /// Slots still counted against release: handed, in flight, queued, or unknown.
  var outstanding: Int { count(.handed) + count(.inFlight) + count(.queued) + count(.unknown) }
}

/// What the allocator holds, in slots (docs/kernel-models.md §8).
struct FragTally: Equatable {
  var live = 0, pending = 0, unknown = 0, reusableNow = 0, stranded = 0

  init() {}
  init(_ p: FragPage, nr: Int) {
    if p.rcu {
      pending = nr
      return
    }
    live = p.count(.handed) + p.count(.inFlight)
    pending = p.count(.queued)
    unknown = p.count(.unknown)
    stranded = p.count(.freed)
    if p.cursorOf >= 0 { reusableNow = p.count(.unhanded) } else { stranded += p.count(.unhanded) }
  }
  mutating func add(_ t: FragTally) {
    live += t.live; pending += t.pending; unknown += t.unknown
    reusableNow += t.reusableNow; stranded += t.stranded
  }
  mutating func remove(_ t: FragTally) {
    live -= t.live; pending -= t.pending; unknown -= t.unknown
    reusableNow -= t.reusableNow; stranded -= t.stranded
  }

  /// As the occupancy of `pages` pages of `geo`.
  func occupancy(pages: Int, _ geo: FragGeometry) -> Occupancy {
    var o = Occupancy()
    o.pagesHeld = pages
    o.pageBytes = Int(geo.pageBytes)
    o.slotsPerPage = geo.nr
    o.live = live
    o.pending = pending
    o.unknown = unknown
    o.reusableNow = reusableNow
    o.stranded = stranded
    return o
  }
}

extension PgtableFrag {
  /// Moves page `p`'s share (`sign` ±1) of the occupancy to or from its owner's book entry.
  @inline(__always)
  func book(_ p: FragPage, _ sign: Int) {
    guard ctx.mmBook.enabled, p.owner >= 0 else { return }
    ctx.mmBook.adjust(p.owner, mms[serial: p.owner]?.address, share(p), sign: sign)
  }

  /// Page `p` as occupancy: one page of this geometry and its slots.
  func share(_ p: FragPage) -> Occupancy { FragTally(p, nr: nr).occupancy(pages: 1, geo) }
}

/// An mm as pgtable-frag.c sees it: its cursor, plus what a replay needs.
final class FragMM: RegisteredMM {
  let serial: Int32
  let address: UInt64
  /// The cursor is known (synchronized): allocations are predicted.
  var known: Bool
  /// A prediction succeeded since the mm was synchronized from the capture alone.
  var confirmed: Bool
  /// `mm->context.pte_frag`: the next unhanded fragment, nil = NULL.
  var cursor: UInt64?
  var liveTables = 0
  var bornLine: Int?
  /// s390 (C3a): the mm allocates whole-page pgste tables (nil: not known).
  var pgste: Bool?
  /// Allocations in flight (entry seen, return not yet): pid → entry line, whether the
  /// cursor was NULL at some time since the entry.
  var windows: [Int32: (line: Int, sawNull: Bool)] = [:]
  /// Two fresh pages raced for the cursor and the returns do not say which won yet.
  var race: (winner: UInt64, loser: UInt64)?

  init(serial: Int32, address: UInt64, known: Bool) {
    self.serial = serial
    self.address = address
    self.known = known
    self.confirmed = known
  }

  /// The capture showed the kernel's cursor: predicted from here, though no prediction has
  /// confirmed it yet.
  func synchronise() {
    if !known {
      known = true
      confirmed = false
    }
  }
}

/// The allocator state of pgtable-frag.c and its procedures.
final class PgtableFrag {
  let geo: FragGeometry
  /// Kernels with fda4d71651f7 clear PG_active in `pte_frag_destroy`.
  let destroyClearsActive: Bool
  let ctx: ReplayContext
  var pages = AddressMap<FragPage>()
  var mms = MMRegistry<FragMM>()
  /// Pages in R, oldest first (entries of pages no longer in R are skipped).
  var rcuQueue: [UInt64] = []
  var rcuQueueHead = 0
  /// `pte_free_now` hits seen (RCU callbacks, or direct calls when not inlined).
  var rcuSeen = 0
  /// `pte_free_now`'s argument names its page (book3s64 vmemmap; see `rcuCallback(_:)`).
  var headsNamePages = false
  /// A `pte_free_now` hit named its page: a page in R whose hit is not seen was missed.
  var headsSeen = false
  var tally = FragTally()

  init(geometry: FragGeometry, destroyClearsActive: Bool, context: ReplayContext) {
    geo = geometry
    self.destroyClearsActive = destroyClearsActive
    ctx = context
  }

  var nr: Int { geo.nr }

  // MARK: Pages (every change keeps the tally)

  /// Mutates page `key` in place, keeping the occupancy tally.
  @inline(__always) func update(_ key: UInt64, _ body: (inout FragPage) -> Void) {
    guard var p = pages.removeValue(forKey: key) else { return }
    tally.remove(FragTally(p, nr: nr))
    book(p, -1)
    body(&p)
    tally.add(FragTally(p, nr: nr))
    book(p, 1)
    pages[key] = p
  }

  func insert(_ key: UInt64, _ p: FragPage) {
    if let old = pages[key] {
      tally.remove(FragTally(old, nr: nr))
      book(old, -1)
    }
    pages[key] = p
    tally.add(FragTally(p, nr: nr))
    book(p, 1)
    if pages.count > ctx.stats.peakPages { ctx.stats.peakPages = pages.count }
  }

  /// The page goes back to the buddy allocator (`pagetable_dtor` + `pagetable_free`), or
  /// leaves the model because the capture showed it fresh again.
  func drop(_ key: UInt64) {
    guard let p = pages.removeValue(forKey: key) else { return }
    tally.remove(FragTally(p, nr: nr))
    book(p, -1)
    if p.owner >= 0 { mms[serial: p.owner]?.liveTables -= p.count(.handed) + p.count(.inFlight) }
    if p.cursorOf >= 0, let m = mms[serial: p.cursorOf], let c = m.cursor, geo.page(c) == key {
      setCursor(m, nil)
    }
    ctx.released(page: key)
  }

  func mm(at address: UInt64?, knownIfNew: Bool) -> FragMM? {
    mms.mm(at: address, knownIfNew: knownIfNew, &ctx.stats)
  }

  /// The mm page `key` was allocated for, while it lives.
  func owner(_ key: UInt64) -> FragMM? { pages[key].flatMap { mms[serial: $0.owner] } }

  func forget(_ m: FragMM) {
    ctx.mmBook.died(m.serial)
    setCursor(m, nil)
    mms.remove(m)
  }

  /// `pte_frag_set(&mm->context, c)`: moves the cursor, keeping the pages' `cursorOf`.
  func setCursor(_ m: FragMM, _ c: UInt64?) {
    if let old = m.cursor, geo.page(old) != c.map({ geo.page($0) }) {
      update(geo.page(old)) { if $0.cursorOf == m.serial { $0.cursorOf = -1 } }
    }
    m.cursor = c
    if let c {
      update(geo.page(c)) { $0.cursorOf = m.serial }
    } else {
      for pid in m.windows.keys { m.windows[pid]!.sawNull = true }
    }
  }

  // MARK: pte_fragment_alloc

  /// `get_pte_from_cache`: the cursor fragment, advancing the cursor (NULL after the last
  /// fragment of the page). nil when `PTE_FRAG_NR` is 1 or the cursor is NULL.
  @discardableResult
  func takeFromCursor(_ m: FragMM) -> UInt64? {
    guard nr > 1, let r = m.cursor else { return nil }
    let n = r + geo.fragBytes
    update(geo.page(r)) { $0.set(geo.index(r), .handed) }
    m.liveTables += 1
    setCursor(m, n & (geo.pageBytes - 1) == 0 ? nil : n)
    return r
  }

  /// `__alloc_for_ptecache`: a fresh page, count 1, fragment 0 handed out. With
  /// `PTE_FRAG_NR` > 1, under `page_table_lock`: a NULL cursor makes the page the cursor
  /// page (count `PTE_FRAG_NR`, cursor at fragment 1); otherwise the page is a race loser
  /// and keeps count 1 (its other fragments are never handed out). A pgste mm's page (C3a)
  /// is one whole table, count 1.
  func allocFresh(_ m: FragMM?, _ key: UInt64) {
    let pgste = m?.pgste == true
    var p = FragPage(nr: nr, fill: pgste ? .handed : .unhanded, ref: 1, owner: m?.serial ?? -1)
    if pgste { p.pgste = true } else { p.set(0, .handed) }
    if m == nil { p.refKnown = nr == 1 }
    insert(key, p)
    m?.liveTables += 1
    guard nr > 1, !pgste, let m, m.cursor == nil else { return }
    update(key) {
      $0.ref = nr
      $0.unhandedCounted = true
    }
    setCursor(m, key + geo.fragBytes)
  }

  // MARK: pte_fragment_free

  enum FreeOutcome: Equatable {
    case held
    /// Freed to the buddy allocator now; `withActive`: PG_active still set (a `kernel`
    /// free of a page `pte_free_defer` marked: "Bad page state").
    case releasedNow(withActive: Bool)
    case rcuQueued
  }

  /// `pte_fragment_free(table, kernel)` of a fragment whose slot the caller checked:
  /// `atomic_dec_and_test(&pt_frag_refcount)`; at zero, `kernel` or not PG_active → free
  /// now, else clear PG_active and `call_rcu(pte_free_now)`.
  @discardableResult
  func fragmentFree(_ key: UInt64, _ i: Int, kernel: Bool) -> FreeOutcome {
    var zero = false
    update(key) { p in
      p.set(i, .freed)
      if p.pgste { p.set(1 - i, .freed) }
      guard p.refKnown else {
        // A page first seen mid-life: free once nothing of it is outstanding any more.
        zero = p.outstanding == 0 && p.cursorOf < 0
        return
      }
      p.ref -= 1
      zero = p.ref == 0
    }
    guard zero, let p = pages[key] else { return .held }
    if kernel || !p.active {
      drop(key)
      return .releasedNow(withActive: p.active)
    }
    update(key) {
      $0.active = false
      $0.rcu = true
      $0.rcuSeenAtEntry = rcuSeen
    }
    rcuQueue.append(key)
    // call_rcu(pte_free_now): callbacks are matched in call_rcu order (`rcuCallback`).
    ctx.callRCU(.rcuFree, key)
    return .rcuQueued
  }

  /// `pte_free_now` ran for `value`. On book3s64 (`headsNamePages`) its argument is the
  /// `pt_rcu_head` inside the page's `struct ptdesc` (v6.12 `arch/powerpc/mm/pgtable-frag.c`
  /// `pte_free_now(struct rcu_head *head)`): `0xc00c000000000000 + pfn × 64 + 8` (vmemmap,
  /// 64-byte `struct page`, `pt_rcu_head` after `flags`), so the hit names its page exactly —
  /// and on v6.6+ it runs for every user PTE page release, directly from
  /// `pte_fragment_free` unless `pte_free_defer` set PG_active, then as an RCU callback.
  /// Otherwise (a simulation passes the page itself; 8xx and s390 readings) callbacks are
  /// matched to pages in `call_rcu` order.
  enum RCUHit: Equatable {
    /// The page in R went back to the buddy allocator.
    case released(UInt64)
    /// The hit names a page the model still holds outside R: the kernel released it, the
    /// model's count did not reach zero.
    case heldNotPending(UInt64)
    /// Nothing the model holds (a direct call after the release the model already made).
    case none
  }

  /// The page a `pte_free_now` argument names (book3s64 vmemmap), nil when it names none.
  func pageOfHead(_ head: UInt64) -> UInt64? {
    let base: UInt64 = 0xc00c_0000_0000_0000
    guard headsNamePages, head >= base, head < base + (1 << 44), (head - base) % 64 == 8 else {
      return nil
    }
    return 0xc000_0000_0000_0000 | (((head - base) / 64) << UInt64(geo.pageShift))
  }

  func rcuCallback(_ value: UInt64) -> RCUHit {
    rcuSeen += 1
    return namedPage(value)
  }

  private func namedPage(_ value: UInt64) -> RCUHit {
    if pages[value]?.rcu == true {
      drop(value)
      return .released(value)
    }
    if let key = pageOfHead(value) {
      headsSeen = true
      guard let p = pages[key] else { return .none }
      if p.rcu {
        drop(key)
        return .released(key)
      }
      return .heldNotPending(key)
    }
    return oldestPending().map { .released($0) } ?? .none
  }

  /// `pte_free_now` ran (an RCU callback) and its argument names no page: the oldest page
  /// in R goes back to the buddy allocator (`call_rcu` order). Returns the released page,
  /// nil when no page is in R (a direct, non-inlined call).
  @discardableResult
  func rcuCallback() -> UInt64? {
    rcuSeen += 1
    return oldestPending()
  }

  private func oldestPending() -> UInt64? {
    while rcuQueueHead < rcuQueue.count {
      let key = rcuQueue[rcuQueueHead]
      rcuQueueHead += 1
      if rcuQueueHead > 1024 && rcuQueueHead * 2 > rcuQueue.count {
        rcuQueue.removeFirst(rcuQueueHead)
        rcuQueueHead = 0
      }
      if pages[key]?.rcu == true {
        drop(key)
        return key
      }
    }
    return nil
  }

  /// Pages in R now, oldest first.
  var rcuPending: [UInt64] {
    rcuQueue[rcuQueueHead...].filter { pages[$0]?.rcu == true }
  }

  // MARK: pte_frag_destroy

  /// `pte_frag_destroy(frag)` at mm teardown (`arch_exit_mmap` / `destroy_context`): drops
  /// the references of the cursor page's unhanded fragments (`PTE_FRAG_NR - count`); at
  /// zero frees the page now, without RCU, clearing PG_active only since fda4d71651f7.
  /// The caller has set the mm's cursor to NULL. Returns whether the page was released,
  /// and with PG_active still set.
  @discardableResult
  func destroy(_ frag: UInt64) -> (released: Bool, withActive: Bool) {
    let key = geo.page(frag)
    let k = geo.index(frag)
    var released = false
    var withActive = false
    update(key) { p in
      for i in k..<nr where p.slots[i] == .unhanded || p.slots[i] == .unknown {
        p.set(i, .freed)
      }
      if p.refKnown {
        p.ref -= nr - k
        released = p.ref == 0
      } else {
        released = p.outstanding == 0
      }
      if released {
        withActive = p.active && !destroyClearsActive
        if destroyClearsActive { p.active = false }
      }
    }
    if released { drop(key) }
    return (released, withActive)
  }

  /// `pte_frag_destroy` of `m`'s cursor, if it has one, which becomes NULL.
  func destroyCursor(_ m: FragMM) {
    guard let c = m.cursor else { return }
    setCursor(m, nil)
    destroy(c)
  }

  // MARK: Views

  /// One line: `ref 13/16 · H 2 X 1 U 13 · cursor @3 · active`.
  /// Page `key`'s state as `describe` prints it, captured cheaply (a copy of the page, whose
  /// slot array is shared) and rendered only when a finding or an inconclusive item needs it:
  /// the per-event paths build no string.
  func state(_ key: UInt64) -> FragState {
    guard let p = pages[key] else { return FragState(page: nil, cursorIndex: nil) }
    var cursor: Int? = nil
    if p.cursorOf >= 0, let m = mms[serial: p.cursorOf], let c = m.cursor { cursor = geo.index(c) }
    return FragState(page: p, cursorIndex: cursor)
  }

  func describe(_ key: UInt64) -> String { describe(state(key)) }

  func describe(_ s: FragState) -> String {
    if let t = s.text { return t }
    guard let p = s.page else { return "(none)" }
    if p.rcu { return "R (call_rcu(pte_free_now) pending)" }
    if p.pgste { return "pgste \(p.slots[0].letter)" }
    var parts: [String] = []
    parts.append(p.refKnown ? "ref \(p.ref)/\(nr)" : "ref ?")
    let order: [FragSlot] = [.handed, .inFlight, .queued, .freed, .unhanded, .unknown]
    parts.append(order.filter { p.count($0) > 0 }.map { "\($0.letter) \(p.count($0))" }.joined(separator: " "))
    if let c = s.cursorIndex { parts.append("cursor @\(c)") }
    if p.active { parts.append("active") }
    return parts.joined(separator: " · ")
  }

  var occupancy: Occupancy { tally.occupancy(pages: pages.count, geo) }

  /// Self-check for tests: the kept tally equals a recount, and every known count equals
  /// E1 (`NR − freed` for a cursor-made page, `1 − freed` for a race loser).
  func consistencyViolations() -> [String] {
    var out: [String] = []
    var t = FragTally()
    for (k, p) in pages {
      t.add(FragTally(p, nr: nr))
      var counted = [Int](repeating: 0, count: 6)
      for s in p.slots { counted[Int(s.rawValue)] += 1 }
      if counted != p.counts {
        out.append("\(hex(k)): slot counts \(p.counts) ≠ (\(counted.map(String.init).joined(separator: ", ")))")
      }
      guard p.refKnown, !p.rcu, !p.pgste else { continue }
      // E1: every slot not freed is counted, except a race loser's never-handed ones.
      let expected = p.outstanding + (p.unhandedCounted ? p.count(.unhanded) : 0)
      if p.ref != expected { out.append("\(hex(k)) \(describe(k)): ref \(p.ref) ≠ outstanding \(expected)") }
      if p.ref <= 0 { out.append("\(hex(k)): held with ref \(p.ref)") }
    }
    if t != tally { out.append("occupancy tally \(tally) ≠ recount \(t)") }
    // The per-mm book: each owned page's share counted for its owner.
    if ctx.mmBook.enabled {
      var byMM: [Int32: Occupancy] = [:]
      for p in pages.values where p.owner >= 0 { byMM[p.owner, default: Occupancy()].add(share(p)) }
      let kept = ctx.mmBook.currentByMM
      if byMM.filter({ !$0.value.isEmpty }) != kept { out.append("per-mm book \(kept.count) mms ≠ recount \(byMM.count)") }
    }
    for m in mms {
      if let c = m.cursor {
        let key = geo.page(c)
        if pages[key]?.cursorOf != m.serial { out.append("mm \(hex(m.address)): cursor page \(hex(key)) not marked") }
        if pages[key]?.slots[geo.index(c)] != .unhanded {
          out.append("mm \(hex(m.address)): cursor \(hex(c)) is not an unhanded fragment")
        }
        if geo.index(c) == 0 { out.append("mm \(hex(m.address)): cursor at fragment 0") }
      }
    }
    return out
  }
}

// MARK: - Replay helpers (what a capture showed that the procedures above would not do)

/// Why an allocation is not what pgtable-frag.c returns: neither the cursor fragment, nor a
/// fragment a concurrent allocation took, nor a legal fresh page.
enum FragSurprise: Equatable {
  /// The fragment is handed out and not freed.
  case busy
  /// The fragment was freed (or is in a tlb batch): E3, never handed out again before its
  /// page goes back to the buddy allocator.
  case freedReused
  /// The page waits for its RCU callback (`pte_free_now`).
  case rcuPending
  /// An unhanded fragment that is not the cursor.
  case notCursor
  /// A fresh page although the cursor was never NULL during the allocation.
  case freshWhileCursor
  /// A fragment other than the first of a page the mm's cursor never pointed to.
  case foreignPage
  /// The page came back fresh while it still counts fragments (E1/E4).
  case releasedWithRefs
  /// The page came back fresh and only fragments in a tlb batch kept it: their
  /// `__tlb_remove_table` hits were probably missed (kprobe silent misses).
  case missedExec
  /// The page came back fresh and the capture cannot show its release (a count not known,
  /// an RCU callback not seen): follow the kernel, nothing to report.
  case releaseUnseen
}

extension PgtableFrag {
  /// Classifies an allocation of fragment `i` of page `key` that the procedures would not
  /// make (see `FragSurprise`). Fragment 0 always means a fresh page.
  func surprise(_ key: UInt64, _ i: Int) -> FragSurprise {
    guard let p = pages[key] else { return i == 0 ? .freshWhileCursor : .foreignPage }
    if p.slots[i] == .handed || p.slots[i] == .inFlight { return .busy }
    if p.rcu {
      if headsSeen { return .rcuPending }
      return rcuSeen == 0 || rcuSeen > p.rcuSeenAtEntry ? .releaseUnseen : .rcuPending
    }
    if i == 0 {
      if !p.refKnown { return .releaseUnseen }
      let counted = p.count(.handed) + p.count(.inFlight) + p.count(.unknown)
        + (p.unhandedCounted ? p.count(.unhanded) : 0)
      return p.count(.queued) > 0 && counted == 0 ? .missedExec : .releasedWithRefs
    }
    switch p.slots[i] {
    case .freed, .queued: return .freedReused
    default: return .notCursor
    }
  }

  /// Resynchronises on what the kernel returned: fragment 0 of a page → a fresh page (the
  /// model drops what it held there); another fragment → handed out, with the count kept
  /// exact where it is known, and, if it was never handed out before, the mm's cursor
  /// moved behind it (the kernel's cursor was there).
  func adopt(_ m: FragMM?, _ key: UInt64, _ i: Int) {
    if i == 0 {
      drop(key)
      allocFresh(m, key)
      return
    }
    if pages[key] == nil {
      var p = FragPage(nr: nr, fill: .unhanded, ref: 0, owner: m?.serial ?? -1)
      for j in 0..<i { p.set(j, .unknown) }
      p.refKnown = false
      insert(key, p)
    }
    // Only a fragment never handed out shows where the kernel's cursor was.
    let fromCursor = [.unhanded, .unknown].contains(pages[key]!.slots[i])
    handOut(m, key, i)
    guard fromCursor, let m, nr > 1 else { return }
    let next = key + UInt64(i + 1) * geo.fragBytes
    setCursor(m, next & (geo.pageBytes - 1) == 0 ? nil : next)
    if let c = m.cursor, !(pages[key]?.unhandedCounted ?? false) {
      // The kernel's cursor is in a page whose count the model did not raise: unknown.
      update(geo.page(c)) { $0.refKnown = false }
    }
  }

  /// Fragment `i` of held page `key` is handed out to `m` although the procedures would
  /// not: the count rises by one unless the fragment was still counted (an unhanded one of
  /// a cursor-made page); a cursor pointing at it moves on (to NULL).
  func handOut(_ m: FragMM?, _ key: UInt64, _ i: Int) {
    guard let p = pages[key] else { return }
    let t = key + UInt64(i) * geo.fragBytes
    if p.cursorOf >= 0, let cm = mms[serial: p.cursorOf], cm.cursor == t { setCursor(cm, nil) }
    if p.slots[i] != .handed && p.slots[i] != .inFlight { m?.liveTables += 1 }
    update(key) { p in
      switch p.slots[i] {
      case .freed: p.ref += 1
      case .unhanded: if !p.unhandedCounted { p.ref += 1 }
      case .handed, .inFlight, .queued, .unknown: break
      }
      p.set(i, .handed)
      if let m { p.owner = m.serial }
    }
  }
}

extension PgtableFrag {
  /// The rule and one-line reason for a surprise (nil: nothing to report). `busyRule` is
  /// the model's id for a fragment handed out twice.
  func explain(_ kind: FragSurprise, _ key: UInt64, _ i: Int, busyRule: RuleID)
    -> (rule: RuleID, why: String)?
  {
    switch kind {
    case .busy: (busyRule, "fragment \(i) of \(hex(key)) is handed out and not freed")
    case .freedReused:
      (.reuseBeforeRelease, "fragment \(i) of \(hex(key)) was freed and its page has not gone back to the buddy allocator")
    case .rcuPending:
      (.reuseBeforeGrace, "page \(hex(key)) waits for its RCU callback (pte_free_now), which has not run")
    case .notCursor: (.allocNotCursor, "fragment \(i) of \(hex(key)) is not the cursor")
    case .freshWhileCursor:
      (.allocFreshWhileCursor, "a fresh page although the cursor was not NULL during the call")
    case .foreignPage: (.allocDivergence, "fragment \(i) of a page the mm's cursor never pointed to")
    case .releasedWithRefs, .missedExec:
      (.releaseWithRefs, "page \(hex(key)) came back fresh while the model counts \(pages[key]?.ref ?? 0) reference(s) on it (\(describe(key)))")
    case .releaseUnseen: nil
    }
  }

  /// The fragments of page `key` (`p`) the kernel has still to free: handed out (or in
  /// flight), or in a tlb batch (`queued`), as tables.
  func unfreed(_ key: UInt64, _ p: FragPage) -> [(index: Int, table: UInt64, queued: Bool)] {
    p.slots.indices.compactMap { j in
      [.handed, .inFlight, .queued].contains(p.slots[j])
        ? (j, key + UInt64(j) * geo.fragBytes, p.slots[j] == .queued) : nil
    }
  }

  /// Whether a surprise is about the allocator's choices (cursor order, release count)
  /// rather than one fragment's life.
  static func isChoice(_ kind: FragSurprise) -> Bool {
    [.notCursor, .freshWhileCursor, .foreignPage, .releasedWithRefs].contains(kind)
  }
}

// MARK: - The models' common part

extension ModelDescriptor {
  /// A pgtable-frag model's two groups of checks: the life of each table (`life`, on every
  /// replay) and the allocator's choices (`choices`, on its own allocator only).
  mutating func fragChecks(life: [RuleID], _ lifeWhy: String, choices: [RuleID], _ choicesWhy: String) {
    checks = [ModelCheck(.everyReplay, life, lifeWhy), ModelCheck(.ownAllocator, choices, choicesWhy)]
  }
}

/// What the pgtable-frag.c models (powerpc E, s390 C3a) share as allocator models: the
/// allocator state, its occupancy, the RCU callbacks a simulation feeds back, self-checks,
/// and the replay of what pgtable-frag.c does the same behind either arch's entry points —
/// the nested free, the return of `pte_fragment_alloc`, the checks of a free, `pte_free_defer`,
/// the mm's life, lost events. A model adds its entry points (`dispatch`) and checks. The
/// words of a report are pgtable-frag.c's (powerpc); C3a names s390's tables and functions.
public class PgtableFragModel: RCUCallbackSource, FindingReporter, MMLifetimes {
  let ctx: ReplayContext
  let frag: PgtableFrag
  /// The model's rules by id.
  let ruleByID: [RuleID: Rule]
  /// pid → table: the `pte_fragment_free(table, 0)` that `pte_free_defer` (powerpc: also
  /// `__tlb_remove_table`) calls in the same task, absorbed when its own probe shows it.
  var nested: [Int32: UInt64] = [:]

  init(context: ReplayContext, geometry: FragGeometry, destroyClearsActive: Bool, rules: [RuleID: Rule]) {
    ctx = context
    frag = PgtableFrag(geometry: geometry, destroyClearsActive: destroyClearsActive, context: context)
    ruleByID = rules
  }

  var geo: FragGeometry { frag.geo }

  public var occupancy: Occupancy { frag.occupancy }

  public var dueRCUCallbacks: [(kind: Event.Kind, table: UInt64)] {
    frag.rcuPending.map { (.rcuFree, $0) }
  }

  /// Broken invariants (E1, cursor, tallies), described; empty when all hold. O(pages).
  public func invariantViolations() -> [String] { frag.consistencyViolations() }

  public func finish(lastLine: Int) {
    ctx.stats.pagesAtEnd = frag.pages.count
    ctx.stats.tablesLiveAtEnd = frag.pages.values.reduce(0) {
      $0 + ($1.pgste ? ($1.slots[0] == .handed ? 1 : 0) : $1.count(.handed) + $1.count(.inFlight))
    }
  }

  // MARK: The arch's names (powerpc's; C3a overrides)

  /// The allocation entry point.
  var allocFunction: KernelFunction { .pteFragmentAlloc }
  /// The event of the free that `pte_free_defer` nests.
  var nestedFreeKind: Event.Kind { .fragmentFree }
  /// What an aligned table is, in "… is not a \(tableNoun)".
  var tableNoun: String { "\(geo.fragBytes)-byte fragment" }
  /// Findings locate a table as a fragment (or, false, as an s390 half).
  var locatesFragments: Bool { true }
  /// The allocator's choices (cursor order, release count) are the captured kernel's, so
  /// allocations are predicted and checked.
  var checksChoices: Bool { true }
  /// Slot `i` of page `key` in a message.
  func slotName(_ p: FragPage, _ key: UInt64, _ i: Int) -> String { "fragment \(i) of \(hex(key))" }
  /// A slot never handed out, after `slotName`.
  var neverHandedOut: String { "was never handed out" }
  /// The message of a free (`what`) of a misaligned `table`.
  func notATable(_ what: String, _ e: Event, _ table: UInt64) -> String {
    "\(what)(\(hex(e.table))): \(hex(table)) is not a \(tableNoun)"
  }

  /// `pte_fragment_alloc` as a simulation asks it: the cursor, else a fresh page (a pgste
  /// mm's tables are whole pages).
  public func simulateAlloc(mm address: UInt64, fresh: () -> UInt64) -> UInt64 {
    guard geo.nr > 1, let m = frag.mms[address: address], m.pgste != true, let c = m.cursor else {
      return fresh()
    }
    return c
  }

  // MARK: Events

  public func apply(_ e: Event) {
    ctx.count(e.kind)
    if e.kind != nestedFreeKind, !nested.isEmpty { nested[e.pid] = nil }  // no hashing when none waits
    switch e.kind {
    case .allocUnreturned: allocUnreturned(e)
    case .lost: lost(e)
    default: dispatch(e)
    }
  }

  /// The model's entry points: every event but `.allocUnreturned` and `.lost`.
  func dispatch(_ e: Event) {}

  /// The free `e` is the one the same task's `pte_free_defer` (or `__tlb_remove_table`) made.
  func isNested(_ e: Event) -> Bool {
    guard let t = nested.removeValue(forKey: e.pid) else { return false }
    return t == e.table
  }

  // The findings (`FindingReporter`) with the state before as a page copy.
  func rule(_ id: RuleID) -> Rule { ruleByID[id]! }
  func describe(_ key: UInt64) -> String { frag.describe(key) }

  func makeFinding(
    _ id: RuleID, _ e: Event, mm: UInt64?, page: UInt64?, half: Int?, before: FragState,
    after: String? = nil, _ message: String, related: [Int] = []
  ) -> Finding {
    makeFinding(id, e, mm: mm, page: page, half: half, before: frag.describe(before), after: after, message, related: related)
  }

  func finding(
    _ id: RuleID, _ e: Event, mm: UInt64?, page: UInt64?, half: Int?, before: FragState,
    after: String? = nil, _ message: String, related: [Int] = []
  ) {
    ctx.report(makeFinding(id, e, mm: mm, page: page, half: half, before: before, after: after, message, related: related))
  }

  // MARK: pte_fragment_alloc

  /// The entry was seen, the return is missing (see `reportUnreturnedAlloc`).
  func allocUnreturned(_ e: Event) {
    guard let m = frag.mm(at: e.mm, knownIfNew: ctx.simulating) else { return }
    m.windows[e.pid] = nil
    let wasKnown = m.known
    if e.count == 0 { m.known = false }
    reportUnreturnedAlloc(
      ctx, e, mm: m.address, symbol: allocFunction.symbol, function: allocFunction,
      wasPredicted: wasKnown && checksChoices, rule: rule(.allocWithoutReturn))
  }

  /// The return of an allocation: its mm, the window its entry opened, the page and index,
  /// recorded, and the page's state before. nil when nothing is left to replay: the
  /// allocation failed, or returned no aligned table (`alloc-divergence`).
  func allocReturned(_ e: Event)
    -> (m: FragMM?, window: (line: Int, sawNull: Bool)?, key: UInt64, i: Int, before: FragState)?
  {
    let t = e.table
    let m = frag.mm(at: e.mm, knownIfNew: ctx.simulating)
    let window = m?.windows.removeValue(forKey: e.pid)
    if t == 0 {
      ctx.stats.allocationsFailed += 1
      return nil
    }
    let (key, i) = geo.split(t)
    ctx.record(page: key, e, mm: m?.address)
    let before = frag.state(key)
    guard geo.aligned(t) else {
      finding(
        .allocDivergence, e, mm: m?.address, page: key, half: i, before: before,
        "\(allocFunction.symbol) returned \(hex(t)), which is not a \(tableNoun)")
      return nil
    }
    return (m, window, key, i, before)
  }

  /// Whether `t` (page `key`, fragment `i`) is what `pte_fragment_alloc` returns to `m`: the
  /// cursor fragment (`get_pte_from_cache`, taken), or with the cursor NULL fragment 0 of a
  /// fresh page (`__alloc_for_ptecache`, allocated; a pgste mm takes a fresh page each time).
  func allocPredicted(_ m: FragMM, _ t: UInt64, _ key: UInt64, _ i: Int) -> Bool {
    let cursor = m.pgste == true ? nil : m.cursor
    if let c = cursor, t == c {
      frag.takeFromCursor(m)
    } else if cursor == nil, i == 0, frag.pages[key] == nil {
      frag.allocFresh(m, key)
    } else {
      return false
    }
    return true
  }

  // MARK: pte_fragment_free

  /// Checks a free of `table` (`what` names the path; `m`, the mm it names, when the arch's
  /// entry point names one: a known mm frees no table it was not given, nor another mm's);
  /// returns its page and index when the free applies, after recording it. `accept`: the
  /// slot states this path frees.
  func checkedFree(_ e: Event, _ table: UInt64, _ what: String, _ m: FragMM?, accept: [FragSlot])
    -> (UInt64, Int)?
  {
    let (key, i) = geo.split(table)
    ctx.record(page: key, e, mm: e.mm ?? frag.owner(key)?.address)
    let before = frag.state(key)
    guard geo.aligned(table), table != 0 else {
      finding(.freeUnknown, e, mm: e.mm, page: key, half: i, before: before, notATable(what, e, table))
      return nil
    }
    guard let p = frag.pages[key] else {
      if let m, m.known {
        finding(
          .freeUnknown, e, mm: m.address, page: key, half: i, before: before,
          "\(what) of \(hex(e.table)), which no allocation of mm \(hex(m.address)) returned")
        return nil
      }
      // Allocated before the capture.
      ctx.stats.freesUntracked += 1
      var np = FragPage(nr: geo.nr, fill: .unknown, ref: 0, owner: m?.serial ?? -1)
      np.refKnown = false
      frag.insert(key, np)
      return (key, i)
    }
    if let m, p.owner >= 0, p.owner != m.serial {
      finding(
        .crossMm, e, mm: m.address, page: key, half: i, before: before,
        "\(what) names mm \(hex(m.address)), but \(hex(key)) was allocated to mm \(frag.owner(key).map { hex($0.address) } ?? "(gone)")")
    }
    let s = p.rcu ? .freed : p.slots[i]
    if accept.contains(s) || s == .unknown {
      if s == .unknown { ctx.stats.freesUntracked += 1 }
      return (key, i)
    }
    // Every path accepts a handed-out slot: `s` is freed, queued, unhanded or in flight.
    finding(
      s == .freed || s == .queued ? .doubleFree : .freeUnknown, e, mm: e.mm ?? frag.owner(key)?.address,
      page: key, half: i, before: before,
      "\(what)(\(hex(e.table))): \(slotName(p, key, i)) \(s == .freed ? "is already freed" : s == .queued ? "is already in a tlb batch" : neverHandedOut)")
    return nil
  }

  /// `pte_fragment_free(table, kernel)` of a checked fragment, and what the release shows.
  func free(_ e: Event, _ key: UInt64, _ i: Int, kernel: Bool) {
    let owner = frag.owner(key)
    if [.handed, .queued].contains(frag.pages[key]?.slots[i]) { owner?.liveTables -= 1 }
    let before = frag.state(key)
    if case .releasedNow(withActive: true) = frag.fragmentFree(key, i, kernel: kernel) {
      finding(
        .releasedWithActive, e, mm: owner?.address, page: key, half: i, before: before,
        "pte_fragment_free(\(hex(e.table)), kernel=1) dropped the last reference of \(hex(key)) and freed it with PG_active still set (pte_free_defer marked it): \"BUG: Bad page state\"")
    }
  }

  /// `pte_free_defer(mm, table)`: `folio_set_active`, then `pte_fragment_free(table, 0)`
  /// (`m` as for `checkedFree`).
  func deferFree(_ e: Event, _ m: FragMM?) {
    nested[e.pid] = e.table
    guard let (key, i) = checkedFree(e, e.table, "pte_free_defer", m, accept: [.handed]) else { return }
    frag.update(key) { $0.active = true }
    free(e, key, i, kernel: false)
  }

  /// Page `key`, still held, came back from the buddy allocator as `e` shows: `missed`
  /// reports what kept it in the model (the kernel did it unseen) from the page and its
  /// state; then the page leaves the model (resynchronised).
  func cameBack(_ key: UInt64, _ e: Event, _ missed: (FragPage, FragState) -> Void) {
    guard let p = frag.pages[key] else { return }
    ctx.record(page: key, e, mm: e.mm)
    missed(p, frag.state(key))
    frag.drop(key)
  }

  // MARK: The mm's life

  /// The registry (`MMLifetimes`): a new mm has `mm->context.pte_frag = NULL`, so every
  /// allocation of it is predicted from its birth (`mmBorn`).
  var mms: MMRegistry<FragMM> {
    get { frag.mms }
    _modify { yield &frag.mms }
  }

  /// The mm is gone (`destroy_context`).
  func death(_ e: Event) { mmDied(e) }

  /// Mm `m` leaves the model (`seen`: its death, else its address born again). Its pages stay
  /// until their last fragment is freed (tlb batches and RCU may outlive it).
  func bury(_ m: FragMM, _ e: Event, seen: Bool) { frag.forget(m) }

  /// `LOST EVENTS`: no mm's cursor is known any more, nor its allocations in flight.
  func lost(_ e: Event) {
    countLost(e)
    for m in frag.mms {
      m.known = false
      m.windows.removeAll()
      m.race = nil
    }
  }
}
