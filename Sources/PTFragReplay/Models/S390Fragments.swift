import PTFragEvents

// Shared vocabulary of the s390 2 KiB-fragment variants (A, B, C1, C2): page geometry,
// per-half states, and the notation of kernel-models.md §2.5.

/// A 2 KiB PTE table is one half of a 4 KiB page.
@usableFromInline let s390PageMask: UInt64 = ~0xfff
@usableFromInline let s390HalfBit: UInt64 = 0x800

/// State of one 2 KiB half as the model knows it.
public enum HalfState: UInt8, Sendable {
  /// Free: never handed out, or freed and its pending bit cleared.
  case free
  /// Allocated (A bit set).
  case allocated
  /// Pending (P bit set): freed through the tlb batch, waiting for `__tlb_remove_table`.
  case pending
  /// Not known: the half's history lies before the capture (or after lost events).
  case unknown

  public var letter: Character {
    switch self {
    case .free: "F"
    case .allocated: "A"
    case .pending: "P"
    case .unknown: "?"
    }
  }
}

/// "lower"/"upper", for messages.
@inline(__always) func halfName(_ h: Int) -> String { h == 0 ? "lower" : "upper" }

/// Formats an address as the kernel prints it.
@inline(__always) public func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
@inline(__always) func hex(_ v: UInt64?) -> String { v.map { hex($0) } ?? "?" }

extension Event.Kind {
  /// The kernel function behind the kind, for messages.
  var symbol: String {
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
    }
  }
}
