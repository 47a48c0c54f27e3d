import PTFragEvents

// Shared vocabulary of the s390 2 KiB-fragment variants (A, B, C1, C2): page geometry,
// per-half states, and the notation of docs/kernel-models.md §2.5.

/// A 2 KiB PTE table is one half of a 4 KiB page.
@usableFromInline let s390PageMask: UInt64 = ~0xfff
@usableFromInline let s390HalfBit: UInt64 = 0x800

/// "lower"/"upper", for messages.
@inline(__always) func halfName(_ h: Int) -> String { h == 0 ? "lower" : "upper" }

/// Formats an address as the kernel prints it.
@inline(__always) public func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
@inline(__always) func hex(_ v: UInt64?) -> String { v.map { hex($0) } ?? "?" }

extension Event.Kind {
  /// The kernel function behind the kind, for messages and baseline signatures.
  public var symbol: String {
    switch self {
    case .allocBegin, .alloc, .allocUnreturned: "page_table_alloc"
    case .freeNow: "page_table_free"
    case .freeTLB: "page_table_free_rcu"
    case .tlbQueue: "tlb_remove_table"
    case .tlbExec: "__tlb_remove_table"
    case .deferBegin, .deferEnd: "pte_free_defer"
    case .rcuFree: "pte_free_now"
    case .crstAlloc, .mmBirth: "crst_table_alloc"
    case .crstFree, .mmDeath: "crst_table_free"
    case .lost: "LOST"
    case .fragmentFree: "pte_fragment_free"
    case .fragDestroy: "pte_frag_destroy"
    case .pmdAlloc: "pmd_fragment_alloc"
    case .pmdFree: "pmd_fragment_free"
    case .mmExit: "arch_exit_mmap"
    }
  }
}

/// One page of 2 KiB halves as occupancy (docs/kernel-models.md §8): one page; free halves on a
/// list are reusable later (the head's, reusable now, is moved by `s390HeadDelta`), the
/// others stranded.
func s390PageOccupancy(live: Int, pending: Int, unknown: Int, free: Int, freeListed: Int) -> Occupancy {
  var o = Occupancy()
  o.pagesHeld = live + pending + unknown + free > 0 ? 1 : 0
  o.live = live
  o.pending = pending
  o.unknown = unknown
  o.reusableLater = freeListed
  o.stranded = free - freeListed
  return o
}

/// Re-counts an mm's list head into its `ReplayContext.mmBook` entry: `now` is whether the
/// head has the free half the next alloc takes (0/1), `counted` what the entry holds.
func syncHeadCount(_ ctx: ReplayContext, _ serial: Int32, _ address: UInt64, now: Int, counted: inout Int) {
  guard now != counted else { return }
  ctx.mmBook.adjust(serial, address, s390HeadDelta, sign: now - counted)
  counted = now
}

/// A list head's free half moves from reusable-later to reusable-now.
let s390HeadDelta: Occupancy = {
  var o = Occupancy()
  o.reusableNow = 1
  o.reusableLater = -1
  return o
}()
