// `pte_free_now(struct rcu_head *head)` names a page by its struct page, not by its table
// address. This file maps one to the other, for the variants whose release can go through
// `call_rcu` (B: an Active page's final release; D: `pte_free_defer`).

/// Maps the `rcu_head` argument of `pte_free_now` to the 4 KiB table page it releases.
///
/// The argument is `&ptdesc->pt_rcu_head`. `struct ptdesc` overlays `struct page` and starts
/// with `unsigned long __page_flags`, followed by the union holding `pt_rcu_head`, so
/// `head − 8` is the struct page address (include/linux/mm_types.h, v6.6+;
/// `container_of(head, struct ptdesc, pt_rcu_head)` in `pte_free_now`). That address lies in
/// the vmemmap, `vmemmap + pfn × sizeof(struct page)`, and on s390 the direct map is linear
/// (VA = PA before c98d2ecae08f, VA = PA + a boot-time offset after it), so
/// `head − 8 = bias + (table VA >> 12) × 64` for one unknown constant `bias` per boot.
/// `sizeof(struct page)` is 64 bytes on s390x in every configuration we know of **[inf]**.
///
/// The bias is learnt from the capture itself: the first `pte_free_now` hit that has exactly
/// one candidate page (one page waiting in R, or the page its CPU released directly just
/// before) fixes it; so does a bias that maps two kept hits onto two waiting pages. Every
/// later hit that lands on a waiting page confirms it. Until then, hits are kept (bounded)
/// and resolved once the bias is known.
struct RCUHeadMapper {
  /// Offset of `pt_rcu_head` in `struct ptdesc` / `struct page`, bytes.
  static let headOffset: UInt64 = 8
  /// `sizeof(struct page)` on s390x, bytes **[inf]**.
  static let structPageBytes: UInt64 = 64
  /// At most this many unresolved heads are kept while the bias is unknown.
  static let maxUnresolved = 1024

  /// `head − 8 − (VA >> 12) × 64`, once known.
  private(set) var bias: UInt64? = nil
  /// Hits that landed on a page waiting for its RCU callback after calibration.
  private(set) var confirmations = 0
  /// Heads seen while the bias was unknown and the page was ambiguous (oldest first).
  private(set) var unresolved: [UInt64] = []
  /// Heads dropped because `unresolved` was full.
  private(set) var droppedUnresolved = 0

  /// Calibrated and confirmed by at least one further independent match: mismatches may be
  /// reported as the kernel's, not the mapping's.
  var trusted: Bool { bias != nil && confirmations >= 1 }

  /// The table page a head names, with the bias known.
  func page(forHead head: UInt64) -> UInt64? {
    guard let bias else { return nil }
    let d = head &- Self.headOffset &- bias
    guard d % Self.structPageBytes == 0 else { return nil }
    return (d / Self.structPageBytes) << 12
  }

  /// Fixes the bias from a head known to name `page` (a 4 KiB-aligned table VA).
  mutating func calibrate(head: UInt64, page: UInt64) {
    bias = head &- Self.headOffset &- (page >> 12) &* Self.structPageBytes
  }

  mutating func confirm() { confirmations += 1 }

  /// A simulation's `call_rcu(&ptdesc->pt_rcu_head, pte_free_now)` for `page`: the head its
  /// callback gets, mapped with bias 0 (calibrated and trusted at the first call).
  mutating func simulatedHead(for page: UInt64) -> UInt64 {
    let head = Self.headOffset + (page >> 12) * Self.structPageBytes
    if bias == nil {
      calibrate(head: head, page: page)
      confirm()
    }
    return head
  }

  mutating func keep(_ head: UInt64) {
    if unresolved.count < Self.maxUnresolved {
      unresolved.append(head)
    } else {
      droppedUnresolved += 1
    }
  }

  /// Hands out (and forgets) the heads kept before calibration.
  mutating func takeUnresolved() -> [UInt64] {
    defer { unresolved.removeAll() }
    return unresolved
  }

  /// What one `pte_free_now(head)` hit means, given the pages waiting in R and the page the
  /// hit's CPU released directly just before (the out-of-line direct call in the non-Active
  /// path, when the compiler did not inline it).
  enum Resolution: Equatable {
    /// Releases this page (waiting in R, or the direct release just seen).
    case page(UInt64)
    /// The bias is known, but the page it names is neither waiting nor just released.
    case unexpected(UInt64)
    /// The head was kept, and the bias has just been learnt from kept heads: the caller
    /// resolves them (`takeUnresolved`).
    case calibrated
    /// Not decidable yet; the head was kept.
    case kept
    /// Not decidable and not kept (nothing is waiting, or the head does not fit the mapping).
    case unmapped
  }

  /// Resolves one hit. `waiting` lists the pages in R; `isWaiting` tests one.
  mutating func resolve(
    head: UInt64, directCandidate: UInt64?, waiting: () -> [UInt64],
    isWaiting: (UInt64) -> Bool, waitingCount: Int
  ) -> Resolution {
    let candidates = waitingCount + (directCandidate != nil ? 1 : 0)
    let single = candidates == 1 ? (waitingCount == 1 ? waiting().first : directCandidate) : nil
    if bias != nil {
      let p = page(forHead: head)
      if let p, isWaiting(p) {
        confirm()
        return .page(p)
      }
      if let p, p == directCandidate { return .page(p) }
      // A bias never confirmed may have been learnt from a coincidence: learn it again
      // from an unambiguous hit.
      if !trusted, let single {
        calibrate(head: head, page: single)
        return .page(single)
      }
      return p.map { .unexpected($0) } ?? .unmapped
    }
    // Uncalibrated: decide when exactly one page can be meant.
    if let single {
      calibrate(head: head, page: single)
      return .page(single)
    }
    if candidates == 0 { return .unmapped }
    keep(head)
    return calibrateFromKept(waiting()) ? .calibrated : .kept
  }

  /// Several pages wait and several heads were kept: the bias that maps the most kept heads
  /// onto waiting pages is taken, if it maps at least two and no other bias maps as many
  /// (pages with neighbouring pfns make shifted biases fit some heads too; they fit fewer).
  /// Bounded work: at most `maxPairs` (head, page) pairs.
  static let maxPairs = 1 << 16

  private mutating func calibrateFromKept(_ waiting: [UInt64]) -> Bool {
    guard unresolved.count >= 2, unresolved.count * waiting.count <= Self.maxPairs else {
      return false
    }
    var support: [UInt64: Int] = [:]  // bias → heads it maps onto a waiting page
    for h in Set(unresolved) {
      for p in waiting {
        support[h &- Self.headOffset &- (p >> 12) &* Self.structPageBytes, default: 0] += 1
      }
    }
    var best: (bias: UInt64, n: Int)? = nil
    var tie = false
    for (b, n) in support where n >= 2 {
      if n > best?.n ?? 0 {
        best = (b, n)
        tie = false
      } else if n == best?.n {
        tie = true
      }
    }
    guard let best, !tie else { return false }
    bias = best.bias
    confirmations += 1
    return true
  }

  /// One `pte_free_now(head)` hit, as every model with pages waiting for RCU handles it: a
  /// hit that releases a page waiting in R `end`s it, and once the bias is learnt every head
  /// kept before that names a waiting page ends it too; a trusted mapping naming a page not
  /// in R is `unexpected` (the caller judges it). Undecidable hits are kept or ignored.
  mutating func handle(
    head: UInt64, directCandidate: UInt64?, waiting: () -> [UInt64], isWaiting: (UInt64) -> Bool,
    waitingCount: Int, end: (UInt64) -> Void, unexpected: (UInt64) -> Void
  ) {
    switch resolve(
      head: head, directCandidate: directCandidate, waiting: waiting, isWaiting: isWaiting,
      waitingCount: waitingCount)
    {
    case .page(let key):
      if isWaiting(key) { end(key) }
      settleKept(isWaiting, end)
    case .calibrated:
      settleKept(isWaiting, end)
    case .unexpected(let key):
      if trusted { unexpected(key) }
    case .kept, .unmapped:
      break
    }
  }

  /// The heads kept before the bias was known: each that names a waiting page ends it.
  private mutating func settleKept(_ isWaiting: (UInt64) -> Bool, _ end: (UInt64) -> Void) {
    for head in takeUnresolved() {
      if let k = page(forHead: head), isWaiting(k) {
        confirm()
        end(k)
      }
    }
  }
}
