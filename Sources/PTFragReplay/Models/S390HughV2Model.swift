import PTFragEvents

/// # s390 HH bits, pages off the list while pending — Hugh Dickins' v2 (proposal C1, never merged)
///
/// Encodes "[PATCH v2 07/12] s390: add pte_free_defer() for pgtables sharing page"
/// (Hugh Dickins, 2023-06-20, <a722dbec-bd9e-1213-1edd-53cd547aa4f@google.com>) on the
/// v6.4-rc `arch/s390/mm/pgalloc.c` (blob 66ab68db9842), with the "prospective 13/12"
/// (2023-06-22, <a69a26c0-ec93-3ad-a443-6655b5e49df2@google.com>), which only moves the list
/// and its lock into a `SLAB_TYPESAFE_BY_RCU` object: the same behaviour. Functions:
/// `page_table_alloc`, `page_table_free`, `page_table_free_rcu`, `__tlb_remove_table`,
/// `pte_free_defer`, `pte_free_half` (`pte_free_now0/1`), `pte_free_pgste`.
/// docs/kernel-models.md §4 C1. Never ran in a kernel: see "Replaying a capture" below.
///
/// ## States
/// Byte 3 of `page->_refcount`, "PPHHAA" (76543210): A(h) 0x01 << h allocated, H(h)
/// 0x04 << h waiting for or using `page->rcu_head`, P(h) 0x10 << h pending free by any
/// method. A half is F, A, P (tlb batch) or D = H+P (`pte_free_defer`, waiting for its RCU
/// callback). `page->pt_mm` records the allocating mm. Lists as in variant A, under one
/// global `mm_pgtable_list_lock`, because `__tlb_remove_table` has no stable mm.
/// **New rule**: a page is not on its mm's list while either half is pending (P or D); the
/// P half is made available again, or the page freed, by `__tlb_remove_table`.
///
/// ## Transitions (per half h, other half o; docs/kernel-models.md §4 C1 table)
/// - alloc: the list head must have exactly one A and no P/H (WARN_ON_ONCE otherwise);
///   `bit = mask & 1` (the upper half if the lower is A), set A, `list_del`. Empty list:
///   fresh page, `pt_mm = mm`, A0, `list_add` (front); the lower half is returned.
/// - free_now (`page_table_free`): `xor 0x01 << h` (A off; **single step**, no transient P);
///   o A → `list_add`; else if o not P → `list_del`; byte 0 → release now.
/// - free_tlb (`page_table_free_rcu`): `xor 0x11 << h` (A→P); o neither A nor P →
///   `list_del` (o A: page was full, unlisted; o P: unlisted by the rule); queue `h+1`.
/// - exec (`__tlb_remove_table`, tag h+1): if o is A (read first): under the lock clear
///   P(h) and, if o is still A, `list_add` to `pt_mm`'s list (front); else clear P(h).
///   Byte 0 → release.
/// - defer (`pte_free_defer`): pgste → `call_rcu(pte_free_pgste)` (tag 3 exec later).
///   Else `xor 0x15 << h` (A off, H and P on); o neither A nor P → `list_del`; unless o's H
///   is set, `call_rcu(pte_free_now<h>)` on the page's one rcu_head.
/// - rcu callback `pte_free_half(h)`: clear H(h), `__tlb_remove_table(table | (0x01 << h))`
///   (an exec as above; it shows in a capture as that exec), and if o's H is set,
///   `call_rcu(pte_free_now<o>)`: the rcu_head is handed on.
///
/// ## Invariants
/// listed ⇔ exactly one A and no P or H on the page; per half not (A and P/H), H ⇒ P; a
/// deferred half's callback holds the rcu_head or waits for the other's; release exactly
/// when the byte reaches 0.
///
/// ## Replaying a capture
/// No kernel ran this code, so allocation choices are checked only on the model's own
/// simulation (`ReplayContext.simulating`). On an s390 6.1 capture (variant A's choices)
/// the model checks each table's life (see `descriptor.checks`) and follows what the kernel
/// handed out. A capture with `pte_free_defer` is v6.6's protocol (PG_active), replayed as
/// that kernel did it; the H/D protocol itself is then not checked.
public final class S390HughV2Model: S390HalfPagesModel, AllocatorModel {
  public static let descriptor = s390ProposalDescriptor(
    id: "s390-hugh-v2",
    kernels: "never merged: proposal of 2023-06-20/22 on v6.4-rc (docs/kernel-models.md §4 C1)",
    commits: [
      "<a722dbec-bd9e-1213-1edd-53cd547aa4f@google.com> [PATCH v2 07/12] s390: add pte_free_defer() for pgtables sharing page (Hugh Dickins, 2023-06-20)",
      "<a69a26c0-ec93-3ad-a443-6655b5e49df2@google.com> prospective 13/12 s390 pgtable_list patch (Hugh Dickins, 2023-06-22)",
      "c2c224932fd0 s390/mm: fix 2KB pgtable release race (its two-step P is dropped here)",
    ],
    summary:
      "A plus HH bits; pages off the list while a half is pending, relinked by __tlb_remove_table; per-half RCU callbacks chained on the shared rcu_head",
    listInvariant: listInvariant)

  override class var listInvariant: String {
    "a page on the list with a P or H bit, or without exactly one A bit; a second use of page->rcu_head (model self-check)"
  }

  // page_table_alloc: "Cannot be on this list if either half pending free"; "One or other
  // half must be available, but not both"; bit = mask & 0x01 (=1 -> second 2K available).
  override func pickHalf(bits: UInt8, unknown: UInt8) -> Int? {
    Int(bits & 0x01)
  }

  override func procAllocFromList(_ m: MM, _ key: UInt64, _ h: Int) {
    _ = pages[key]!.xor(PPHHAA.a(h))
    unlink(key)
  }

  override func procAllocFresh(_ m: MM, _ key: UInt64) {
    pages[key]!.owner = m.serial  // page->pt_mm = mm
    _ = pages[key]!.xor(0x01)
    pushFront(m, key)
  }

  // page_table_free: "mask = atomic_xor_bits(&page->_refcount, 0x01U << (bit + 24))"
  override func freeNow(_ e: Event) {
    guard let (m, key, h) = enterFreeNow(e) else { return }
    let mask = pages[key]!.xor(PPHHAA.a(h))
    if mask & 0x03 != 0 {  // other half is allocated
      // The kernel links to the mm it was given; the two differ only after a `cross-mm`.
      if let m = owner(of: key) ?? m { pushFront(m, key) }
    } else if mask & 0x30 == 0 {  // other half not pending
      unlink(key)
    }
    if mask == 0 { release(key) }
  }

  // page_table_free_rcu: "Other half not allocated? Other half not already pending free?"
  override func freeTLB(_ e: Event) {
    guard let (_, key, h) = enterFreeTLB(e) else { return }
    let mask = pages[key]!.xor(PPHHAA.a(h) | PPHHAA.p(h))
    if mask & 0x03 == 0 && mask & 0x30 != 0x30 { unlink(key) }
  }

  // __tlb_remove_table, case 0x01/0x02: "If the other half is marked as allocated,
  // page->pt_mm must still be valid … so now make the freed half available for reuse."
  override func tlbRemoveTable(_ key: UInt64, _ h: Int) {
    let mask: UInt8
    if pages[key]!.bits & 0x03 != 0 {
      mask = pages[key]!.xor(PPHHAA.p(h))
      if mask & 0x03 != 0, let m = owner(of: key) { pushFront(m, key) }
    } else {
      mask = pages[key]!.xor(PPHHAA.p(h))
    }
    if mask == 0 { release(key) }
  }

  // pte_free_defer, non-pgste.
  override func deferBegin(_ e: Event) {
    guard let (_, key, h) = enterDefer(e) else { return }
    let mask = pages[key]!.xor(PPHHAA.a(h) | PPHHAA.hh(h) | PPHHAA.p(h))  // 0x15 << bit
    if mask & 0x03 == 0 && mask & 0x30 != 0x30 { unlink(key) }
    queueCallbackAfterDefer(key, h, mask: mask, e)
  }

  override func pageInvariantViolation(_ key: UInt64, _ p: Page) -> String? {
    let a = p.bits & 0x03
    let oneA = a == 0x01 || a == 0x02
    let pendingBits = p.bits & 0x3c != 0
    if p.listed != (oneA && !pendingBits) {
      return p.listed
        ? "on the list without exactly one A, or with a P/H bit"
        : "off the list with exactly one A and no P/H bit"
    }
    return nil
  }
}

/// Rules of the s390 proposals C1 and C2 (shared ids with variant A where they mean the same).
func s390ProposalRules(listInvariant: String) -> [Rule] {
  [
    Rule(.doubleFree, .error, "a free (page_table_free, page_table_free_rcu, pte_free_defer) of a half that is not allocated (F, P or D)"),
    .s390FreeUnknown,
    Rule(.execWithoutPending, .error, "__tlb_remove_table of a half that is neither pending (P) nor deferred (D)"),
    .s390QueueWithoutPending,
    .s390TagMismatch,
    Rule(.reuseBeforeGrace, .error, "alloc returned a half whose P bit is set (pending, or deferred waiting for its RCU callback)"),
    .s390AllocBusyHalf,
    Rule(.allocWrongHalf, .error, "alloc returned the other half of the head page than the model's rule picks"),
    Rule(.allocNotHead, .error, "alloc returned a half of a listed page that is not the list head"),
    Rule(.allocFreshWhileHeadUsable, .error, "alloc took a fresh page although the list head had a usable half"),
    Rule(.allocListedWhileFresh, .error, "alloc returned a listed page's half although a fresh page was due"),
    .s390AllocDivergence,
    .allocWithoutReturn("page_table_alloc"),
    Rule(.rcuCallbackNotQueued, .error, "a half's RCU callback ran (its __tlb_remove_table) while the page's one rcu_head was not queued for it: the halves share page->rcu_head"),
    Rule(.releaseWithBits, .error, "a page the model still holds (an A bit set, or a half pending) came back from the buddy allocator: its release was not seen"),
    .crossMm,
    .leak,
    Rule(.listInvariant, .error, listInvariant),
    .s390PgsteByTag,
  ]
}

/// The descriptor of a C1/C2 model: simulation-only, replaying s390 6.1 and 6.6 captures;
/// `listInvariant` says what the model's `list-invariant` self-check tests.
func s390ProposalDescriptor(
  id: String, kernels: String, commits: [String], summary: String, listInvariant: String
) -> ModelDescriptor {
  var d = ModelDescriptor(
    id: id, kernels: kernels, commits: commits,
    functions: [
      "page_table_alloc", "page_table_free", "page_table_free_rcu", "__tlb_remove_table",
      "pte_free_defer", "pte_free_half (pte_free_now0/1)", "pte_free_pgste",
    ],
    summary: summary, rules: s390ProposalRules(listInvariant: listInvariant))
  d.simulationOnly = true
  d.notes = [s390ProposalChainNote]
  d.replayableOn = ["s390-6.1", "s390-6.6"]
  d.checks = s390ProposalChecks
  return d
}

/// Both proposals' `pte_free_half` as posted (`S390HalfPagesModel.procRCUCallback`).
let s390ProposalChainNote =
  "modelled as posted: pte_free_half tests `mask & 0x0CU` on the unshifted _refcount that atomic_xor_bits() returns, so the chained call_rcu for the other half never runs and a page whose two halves are both deferred within one grace period is never freed (the intent was to chain; no kernel ran either)"

/// Where the C1/C2 rules apply (see `ModelCheck`).
let s390ProposalChecks: [ModelCheck] = [
  ModelCheck(
    .everyReplay,
    [
      .doubleFree, .freeUnknown, .execWithoutPending, .queueWithoutPending,
      .execTagMismatch, .reuseBeforeGrace, .allocBusyHalf, .allocDivergence,
      .allocWithoutReturn, .releaseWithBits, .crossMm, .leak, .pgsteInferred,
    ],
    "the life of each 2 KiB half (A, P, tlb tags, the allocating mm) is the same on variant A's kernels"),
  ModelCheck(
    .ownAllocator,
    [
      .allocWrongHalf, .allocNotHead, .allocFreshWhileHeadUsable,
      .allocListedWhileFresh, .rcuCallbackNotQueued, .listInvariant,
    ],
    "which half alloc returns depends on this proposal's list rules, and the per-half RCU callbacks exist only in it; no kernel ran it, so only its own simulation shows them"),
]
