/// A normalized page-table event: what happened, independent of the input format and of
/// which probe names the user chose. Entry and return probes of allocations are already
/// paired; mm birth and death are already recognized.
///
/// All addresses are kernel virtual addresses as the probe printed them. `table` keeps any
/// tag bits the kernel put in the low bits (tlb queue/exec on ≤ 6.6).
public struct Event: Sendable {
  public enum Kind: UInt8, Sendable, CaseIterable {
    /// `page_table_alloc` entered for `mm`: the decision window opens (by `pid`).
    case allocBegin
    /// `page_table_alloc` returned `table` (0 = NULL) to `pid`; `beginLine`/`beginNs` give the
    /// matching entry. `mm` is nil when the entry was not seen (trace started inside the call).
    case alloc
    /// A `page_table_alloc` entry that never got its return: `pid` entered again, or the
    /// capture ended. `line` is the entry's line.
    case allocUnreturned
    /// `page_table_free(mm, table)` (`pte_free`): immediate free.
    case freeNow
    /// `page_table_free_rcu(tlb, table, vmaddr)` (`pte_free_tlb`): the half becomes pending.
    case freeTLB
    /// `tlb_remove_table(tlb, table)`: queued in the mmu_gather batch (tag in low bits ≤ 6.6).
    case tlbQueue
    /// `__tlb_remove_table(table)`: the batch entry executes (tag in low bits ≤ 6.6).
    case tlbExec
    /// `pte_free_defer(mm, table)` entered (6.6+).
    case deferBegin
    /// `pte_free_defer` returned (only with a return probe on it).
    case deferEnd
    /// `pte_free_now(head)`: RCU-delayed release; `table` holds the rcu_head address.
    case rcuFree
    /// `crst_table_alloc` returned `table` for `mm` (not into `mm_init`).
    case crstAlloc
    /// `crst_table_free(mm, table)` of a table that is not a known pgd.
    case crstFree
    /// `crst_table_alloc` returned into `mm_init`: a new mm with pgd `table`; powerpc
    /// `init_new_context(tsk, mm)` (`table` 0).
    case mmBirth
    /// `crst_table_free(mm, pgd)` of the mm's own pgd: the mm is gone; powerpc
    /// `destroy_context(mm)`.
    case mmDeath
    /// `CPU:N [LOST M EVENTS]`: `cpu` lost `count` events before its next printed one.
    case lost
    /// powerpc `pte_fragment_free(table, kernel)`.
    case fragmentFree
    /// powerpc `pte_frag_destroy(frag)` at mm teardown.
    case fragDestroy
    /// powerpc `pmd_fragment_alloc(mm, vmaddr)` returned `table` (a PMD fragment) for `mm`.
    case pmdAlloc
    /// powerpc `pmd_fragment_free(table)`.
    case pmdFree
    /// powerpc `arch_exit_mmap(mm)`: `exit_mmap` starts; `pte_frag_destroy` of the mm's
    /// cursor runs now, before its tables are unmapped and freed.
    case mmExit
  }

  public var kind: Kind
  /// 1-based line (text) or record (JSON) in the input.
  public var line: LineNumber
  /// Nanoseconds on the trace clock.
  public var timestampNs: UInt64
  public var cpu: Int32
  public var pid: Int32
  public var comm: Comm
  public var table: UInt64
  // `mm`, `tlb`, `vmaddr`, `kernel`: plain words and a presence mask (not optionals, 16
  // bytes each), read and written through the optional properties below.
  @usableFromInline var present: UInt8 = 0
  @usableFromInline var rawMM: UInt64 = 0
  @usableFromInline var rawTLB: UInt64 = 0
  @usableFromInline var rawVMAddr: UInt64 = 0
  public var mm: UInt64? {
    @inlinable get { present & 1 != 0 ? rawMM : nil }
    @inlinable set {
      if let v = newValue { present |= 1; rawMM = v } else { present &= ~1; rawMM = 0 }
    }
  }
  public var tlb: UInt64? {
    @inlinable get { present & 2 != 0 ? rawTLB : nil }
    @inlinable set {
      if let v = newValue { present |= 2; rawTLB = v } else { present &= ~2; rawTLB = 0 }
    }
  }
  public var vmaddr: UInt64? {
    @inlinable get { present & 4 != 0 ? rawVMAddr : nil }
    @inlinable set {
      if let v = newValue { present |= 4; rawVMAddr = v } else { present &= ~4; rawVMAddr = 0 }
    }
  }
  /// For `.alloc`: the entry's line and timestamp (== `line`/`timestampNs` if unseen).
  public var beginLine: LineNumber
  public var beginNs: UInt64
  /// For `.lost`: how many events were lost. For `.allocUnreturned`: 1 when the capture
  /// ended inside the call, 0 when the same pid entered the function again.
  public var count: UInt64
  /// powerpc `pte_fragment_alloc`/`pte_fragment_free` `kernel` argument: true for kernel
  /// (init_mm) tables; nil when the probe did not fetch it.
  public var kernel: Bool? {
    @inlinable get { present & 8 != 0 ? present & 16 != 0 : nil }
    @inlinable set {
      present &= ~24
      if let k = newValue { present |= k ? 24 : 8 }
    }
  }

  public init(
    kind: Kind, line: LineNumber, timestampNs: UInt64 = 0, cpu: Int32 = 0, pid: Int32 = 0,
    comm: Comm = Comm(), mm: UInt64? = nil, table: UInt64 = 0, tlb: UInt64? = nil,
    vmaddr: UInt64? = nil, beginLine: LineNumber? = nil, beginNs: UInt64? = nil,
    count: UInt64 = 0, kernel: Bool? = nil
  ) {
    self.kind = kind
    self.line = line
    self.timestampNs = timestampNs
    self.cpu = cpu
    self.pid = pid
    self.comm = comm
    self.table = table
    self.beginLine = beginLine ?? line
    self.beginNs = beginNs ?? timestampNs
    self.count = count
    self.mm = mm
    self.tlb = tlb
    self.vmaddr = vmaddr
    self.kernel = kernel
  }
}

/// `CPU:N [LOST M EVENTS]` as read from a capture.
public struct LostMarker: Sendable {
  public var line: LineNumber
  public var cpu: Int32
  public var count: UInt64
  public init(line: LineNumber, cpu: Int32, count: UInt64) {
    self.line = line
    self.cpu = cpu
    self.count = count
  }
}

/// One record of a capture, in input order.
public enum TraceRecord: Sendable {
  case hit(ProbeHit)
  case lost(LostMarker)
}
