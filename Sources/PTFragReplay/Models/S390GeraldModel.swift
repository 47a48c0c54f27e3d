import PTFragEvents

/// # s390 A plus HH bits and an on-list flag — Gerald Schaefer's variant (proposal C2, never merged)
///
/// Encodes Gerald Schaefer's "adjusted version" in "Re: [PATCH v2 07/12] s390: add
/// pte_free_defer() for pgtables sharing page" (2023-06-28,
/// <20230628211624.531cdc58@thinkpad-T15>; discussed in <ZJ2OK29zPB76i0Ga@…ibm.com> and
/// <20230629174355.222ebed0@thinkpad-T15>) on the v6.4-rc `arch/s390/mm/pgalloc.c`:
/// `page_table_alloc`, `page_table_free`, `page_table_free_rcu`, `__tlb_remove_table`
/// (unchanged from A), `pte_free_defer`, `pte_free_half` (`pte_free_now0/1`),
/// `pte_free_pgste`. docs/kernel-models.md §4 C2. Never ran in a kernel.
///
/// ## States
/// Variant A's page (A/P per half, per-mm `pgtable_list` under `mm->context.lock`, lower
/// half first, head-only lookup, two-step P in `page_table_free`), plus Hugh's HH bits
/// (0x04 << h: the half waits for or uses `page->rcu_head`) and `page->pt_frag_refcount`
/// used as a 0/1 **"page is on the list"** flag. A half is F, A, P or D = H+P.
///
/// ## Transitions (per half h, other half o; docs/kernel-models.md §4 C2 table)
/// - alloc: as A (the busy map folds P onto A; H always comes with P). Taken from the
///   list: `list_del`, flag 0. Fresh page: A0, `list_add` (front), flag 1.
/// - free_now: `xor 0x11 << h`; o A → `list_add` (front), flag 1; else if flag →
///   `list_del`, flag 0; then `xor 0x10 << h`; byte 0 → release now.
/// - free_tlb: `xor 0x11 << h`; o A → `list_add_tail`, flag 1; else if flag →
///   `list_del`, flag 0; queue `h+1`.
/// - exec (`__tlb_remove_table`): exactly as A: clear P(h); byte 0 → release.
/// - defer: pgste → `call_rcu(pte_free_pgste)`. Else `xor 0x15 << h`; o not A and flag →
///   `list_del`, flag 0; `BUG_ON(flag)`; unless o's H is set, `call_rcu(pte_free_now<h>)`.
///   **Never re-lists**: a D half has A = 0, so no later free of the sibling re-lists the
///   page either ("Other paths would also not add back such pages … because they would
///   observe cleared AA bits").
/// - rcu callback `pte_free_half(h)`: clear H(h), `__tlb_remove_table(table | (0x01 << h))`,
///   chain `call_rcu(pte_free_now<o>)` if o's H is set.
///
/// ## Invariants
/// flag = actual list membership; listed ⇒ exactly one A and no H (A's I2 for the rest);
/// per half not (A and P/H), H ⇒ P. Waste: the deferred half, and the other half once freed,
/// stay unusable until the page is released (Gerald: "expected to be insignificant").
///
/// ## Replaying a capture
/// As C1: allocation choices only on the model's own simulation; on an s390 6.1 capture,
/// the per-table checks of `descriptor.checks`; `pte_free_defer` in a capture is v6.6's.
public final class S390GeraldModel: S390HalfPagesModel, AllocatorModel {
  public static let descriptor = s390ProposalDescriptor(
    id: "s390-gerald",
    kernels: "never merged: proposal of 2023-06-28 on v6.4-rc (docs/kernel-models.md §4 C2)",
    commits: [
      "<20230628211624.531cdc58@thinkpad-T15> Re: [PATCH v2 07/12] s390: add pte_free_defer() for pgtables sharing page (Gerald Schaefer, 2023-06-28)",
      "<a722dbec-bd9e-1213-1edd-53cd547aa4f@google.com> Hugh Dickins' v2 (the HH bits and pte_free_half it copies)",
      "c2c224932fd0 s390/mm: fix 2KB pgtable release race (two-step P kept)",
    ],
    summary:
      "A plus HH bits and pt_frag_refcount as on-list flag; pte_free_defer never re-lists; per-half RCU callbacks chained on the shared rcu_head",
    listInvariant: listInvariant)

  override class var listInvariant: String {
    "the on-list flag (pt_frag_refcount) disagrees with list membership, a listed page has an H bit or not exactly one A, BUG_ON(onlist) in pte_free_defer, or a second use of page->rcu_head (model self-check)"
  }

  // page_table_alloc picks the half as A ("mask = (mask | (mask >> 4)) & 0x03U": the
  // engine's `pickHalf`; an H bit always comes with its P), and flags the list.
  override func procAllocFromList(_ m: MM, _ key: UInt64, _ h: Int) {
    _ = pages[key]!.xor(PPHHAA.a(h))
    unlink(key)
    pages[key]!.onlist = false  // atomic_set(&page->pt_frag_refcount, 0)
  }

  override func procAllocFresh(_ m: MM, _ key: UInt64) {
    _ = pages[key]!.xor(0x01)
    pushFront(m, key)
    pages[key]!.onlist = true
  }

  // page_table_free: A's two-step P, with the on-list flag deciding the list_del.
  override func freeNow(_ e: Event) {
    guard let (m, key, h) = enterFreeNow(e) else { return }
    var mask = pages[key]!.xor(PPHHAA.a(h) | PPHHAA.p(h))  // mark for delayed release
    if mask & 0x03 != 0 {  // other half is allocated, add to list
      if let m = owner(of: key) ?? m { pushFront(m, key) }
      pages[key]!.onlist = true
    } else if pages[key]!.onlist {  // other half not allocated, page on the list
      unlink(key)
      pages[key]!.onlist = false
    }
    mask = pages[key]!.xor(PPHHAA.p(h))
    // "Return if other half is allocated, or delayed release pending"
    if mask == 0 { release(key) }
  }

  // page_table_free_rcu: A's list_add_tail, with the on-list flag deciding the list_del.
  override func freeTLB(_ e: Event) {
    guard let (m, key, h) = enterFreeTLB(e) else { return }
    let mask = pages[key]!.xor(PPHHAA.a(h) | PPHHAA.p(h))
    if mask & 0x03 != 0 {
      // "add to end of list, as this will not immediately be re-usable"
      if let m = owner(of: key) ?? m { pushBack(m, key) }
      pages[key]!.onlist = true
    } else if pages[key]!.onlist {
      unlink(key)
      pages[key]!.onlist = false
    }
  }

  // pte_free_defer, non-pgste; __tlb_remove_table stays A's (the base's tlbRemoveTable).
  override func deferBegin(_ e: Event) {
    guard let (_, key, h) = enterDefer(e) else { return }
    let mask = pages[key]!.xor(PPHHAA.a(h) | PPHHAA.hh(h) | PPHHAA.p(h))  // 0x15 << bit
    if mask & 0x03 == 0 && pages[key]!.onlist {
      unlink(key)
      pages[key]!.onlist = false
    }
    // "Page must not be on the list, so rcu_head can be used": BUG_ON(pt_frag_refcount)
    if pages[key]!.onlist {
      finding(
        .listInvariant, e, mm: owner(of: key)?.address, page: key, half: h,
        before: describe(key),
        "pte_free_defer of \(hex(e.table)) leaves the page on the list (BUG_ON(atomic_read(&page->pt_frag_refcount))) (model self-check)")
    }
    queueCallbackAfterDefer(key, h, mask: mask, e)
  }

  override func pageInvariantViolation(_ key: UInt64, _ p: Page) -> String? {
    if p.onlist != p.listed { return "on-list flag \(p.onlist ? 1 : 0) but \(p.listed ? "" : "not ")listed" }
    let a = p.bits & 0x03
    if p.listed && (a == 0 || a == 0x03 || p.bits & 0x0c != 0) {
      return "listed without exactly one A, or with an H bit"
    }
    // Not "one A ⇒ listed": once a half was deferred, the page is never listed again.
    return nil
  }
}
