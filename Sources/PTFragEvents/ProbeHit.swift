/// The kernel function a probe was placed on.
///
/// Events are identified by the probed function (the symbol inside the location
/// parentheses of an ftrace line), never by the user-chosen event name.
/// The raw values match the order of `KernelFunction.allCases`.
public enum KernelFunction: UInt8, CaseIterable, Sendable {
  /// `page_table_alloc(mm)` → table VA (s390, all versions; `_noprof` from 6.18).
  case pageTableAlloc
  /// `page_table_free(mm, table)`: the immediate free (`pte_free`).
  case pageTableFree
  /// `page_table_free_rcu(tlb, table, vmaddr)`: `pte_free_tlb` (≤ 6.6 with AA/PP logic).
  case pageTableFreeRCU
  /// `tlb_remove_table(tlb, table)` (mm/mmu_gather.c): the table is queued in the batch.
  case tlbRemoveTable
  /// `__tlb_remove_table(table)`: the queued table is finally executed (freed).
  case tlbRemoveTableExec
  /// `pte_free_defer(mm, table)` (6.6+, THP).
  case pteFreeDefer
  /// `pte_free_now(rcu_head)` (6.6+, static): RCU-delayed page release.
  case pteFreeNow
  /// `crst_table_alloc(mm)` → CRST (region/segment) table VA; into `mm_init` it is the pgd.
  case crstTableAlloc
  /// `crst_table_free(mm, table)`.
  case crstTableFree
  /// `page_table_alloc_pgste(mm)` (gmap shadow tables; outside the fragment model).
  case pageTableAllocPgste
  /// `page_table_free_pgste(page)` (gmap shadow tables; outside the fragment model).
  case pageTableFreePgste
  /// powerpc `pte_fragment_alloc(mm, kernel)`.
  case pteFragmentAlloc
  /// powerpc `pte_fragment_free(table, kernel)`.
  case pteFragmentFree
  /// powerpc `pte_frag_destroy(frag)`.
  case pteFragDestroy
  /// powerpc `pmd_fragment_alloc(mm, vmaddr)` → PMD fragment (book3s64/pgtable.c): PMD
  /// fragments share pages with nothing else, but take pages PTE fragments released.
  case pmdFragmentAlloc
  /// powerpc `pmd_fragment_free(pmd)` (book3s64/pgtable.c; also from `__tlb_remove_table`
  /// of a `table | PMD_INDEX` entry).
  case pmdFragmentFree
  /// powerpc `init_new_context(tsk, mm)` (book3s64/mmu_context.c): the mm's birth
  /// (`mm->context.pte_frag = NULL`); `pgd_alloc` is inline there.
  case initNewContext
  /// powerpc `arch_exit_mmap(mm)` (book3s64/mmu_context.c), at the start of `exit_mmap`:
  /// `destroy_pagetable_cache` → `pte_frag_destroy` of the cursor, before `unmap_vmas` and
  /// `free_pgtables`.
  case archExitMmap
  /// powerpc `destroy_context(mm)` (book3s64/mmu_context.c), from `__mmdrop`: the mm's death.
  case destroyContext

  /// The kernel symbol, as printed in the probe location.
  public var symbol: String {
    switch self {
    case .pageTableAlloc: "page_table_alloc"
    case .pageTableFree: "page_table_free"
    case .pageTableFreeRCU: "page_table_free_rcu"
    case .tlbRemoveTable: "tlb_remove_table"
    case .tlbRemoveTableExec: "__tlb_remove_table"
    case .pteFreeDefer: "pte_free_defer"
    case .pteFreeNow: "pte_free_now"
    case .crstTableAlloc: "crst_table_alloc"
    case .crstTableFree: "crst_table_free"
    case .pageTableAllocPgste: "page_table_alloc_pgste"
    case .pageTableFreePgste: "page_table_free_pgste"
    case .pteFragmentAlloc: "pte_fragment_alloc"
    case .pteFragmentFree: "pte_fragment_free"
    case .pteFragDestroy: "pte_frag_destroy"
    case .pmdFragmentAlloc: "pmd_fragment_alloc"
    case .pmdFragmentFree: "pmd_fragment_free"
    case .initNewContext: "init_new_context"
    case .archExitMmap: "arch_exit_mmap"
    case .destroyContext: "destroy_context"
    }
  }

  /// Argument names in prototype order, used when a probe names its values
  /// `arg1`, `arg2`, … instead of `mm=`, `table=`, ….
  public var argumentRoles: [ValueRole] {
    switch self {
    case .pageTableAlloc, .crstTableAlloc, .pageTableAllocPgste: [.mm]
    case .pageTableFree, .crstTableFree, .pteFreeDefer: [.mm, .table]
    case .pageTableFreeRCU: [.tlb, .table, .vmaddr]
    case .tlbRemoveTable: [.tlb, .table]
    case .tlbRemoveTableExec, .pageTableFreePgste, .pteFragDestroy: [.table]
    case .pteFragmentFree: [.table, .kernel]
    case .pteFreeNow: [.table]
    case .pteFragmentAlloc: [.mm, .kernel]
    case .pmdFragmentAlloc: [.mm, .vmaddr]
    case .pmdFragmentFree: [.table]
    // init_new_context(struct task_struct *tsk, struct mm_struct *mm): the task is no role.
    case .initNewContext: [.tlb, .mm]
    case .archExitMmap, .destroyContext: [.mm]
    }
  }

  /// Looks a symbol up by its bytes. Compiler suffixes (`.isra.0`, `.constprop.0`, `.part.0`)
  /// and the 6.18 `_noprof` suffix are ignored. No allocation; a switch on the length.
  @inlinable
  public static func lookup(_ bytes: UnsafeBufferPointer<UInt8>) -> KernelFunction? {
    guard let p = bytes.baseAddress else { return nil }
    var n = bytes.count
    // Most symbols come bare: try the whole name first (a symbol holds no '.').
    if let f = exact(p, n) { return f }
    // Strip a compiler suffix: everything from the first '.'.
    var k = 0
    while k < n && p[k] != UInt8(ascii: ".") { k += 1 }
    if k < n, let f = exact(p, k) { return f }
    n = k
    // "_noprof" (7 bytes) suffix from 6.18.
    if n > 7, p[n - 7] == UInt8(ascii: "_"), p[n - 6] == UInt8(ascii: "n"),
      p[n - 1] == UInt8(ascii: "f"), p[n - 2] == UInt8(ascii: "o")
    {
      return exact(p, n - 7)
    }
    return nil
  }

  /// The function whose symbol is exactly `p[0..<n]`.
  @inlinable
  static func exact(_ p: UnsafePointer<UInt8>, _ n: Int) -> KernelFunction? {
    @inline(__always) func eq(_ lit: StaticString) -> Bool {
      // n == lit's length here.
      bytesEqual(UnsafeRawPointer(p), UnsafeRawPointer(lit.utf8Start), n)
    }
    switch n {
    case 12: return eq("pte_free_now") ? .pteFreeNow : nil
    case 14:
      if p[0] == UInt8(ascii: "a") { return eq("arch_exit_mmap") ? .archExitMmap : nil }
      return eq("pte_free_defer") ? .pteFreeDefer : nil
    case 15:
      switch p[0] {
      case UInt8(ascii: "p"): return eq("page_table_free") ? .pageTableFree : nil
      case UInt8(ascii: "d"): return eq("destroy_context") ? .destroyContext : nil
      default: return eq("crst_table_free") ? .crstTableFree : nil
      }
    case 16:
      switch p[0] {
      case UInt8(ascii: "p"):
        if eq("page_table_alloc") { return .pageTableAlloc }
        return eq("pte_frag_destroy") ? .pteFragDestroy : nil
      case UInt8(ascii: "t"): return eq("tlb_remove_table") ? .tlbRemoveTable : nil
      case UInt8(ascii: "c"): return eq("crst_table_alloc") ? .crstTableAlloc : nil
      case UInt8(ascii: "i"): return eq("init_new_context") ? .initNewContext : nil
      default: return nil
      }
    case 17:
      if eq("pte_fragment_free") { return .pteFragmentFree }
      return eq("pmd_fragment_free") ? .pmdFragmentFree : nil
    case 18:
      if p[0] == UInt8(ascii: "_") { return eq("__tlb_remove_table") ? .tlbRemoveTableExec : nil }
      if eq("pte_fragment_alloc") { return .pteFragmentAlloc }
      return eq("pmd_fragment_alloc") ? .pmdFragmentAlloc : nil
    case 19: return eq("page_table_free_rcu") ? .pageTableFreeRCU : nil
    case 21: return eq("page_table_free_pgste") ? .pageTableFreePgste : nil
    case 22: return eq("page_table_alloc_pgste") ? .pageTableAllocPgste : nil
    default: return nil
    }
  }
}

/// Whether `n` bytes at `a` and `b` are equal: 8 bytes a step (inline; for the short
/// names of the per-line path, where a memcmp call costs more than the compare).
@inlinable @inline(__always)
public func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
  var i = 0
  while i + 8 <= n {
    if a.loadUnaligned(fromByteOffset: i, as: UInt64.self)
      != b.loadUnaligned(fromByteOffset: i, as: UInt64.self)
    {
      return false
    }
    i += 8
  }
  while i < n {
    if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) {
      return false
    }
    i += 1
  }
  return true
}

/// The caller a return probe returned into, where it tells something.
public enum CallerRole: UInt8, Sendable {
  case other
  /// `mm_init` (or an out-of-line `mm_alloc_pgd`/`pgd_alloc`): the new mm's pgd.
  case mmInit
  /// `crst_table_upgrade`: the mm's new top-level table (replaces the pgd; the old one is
  /// later freed through the tlb path, tag 0, and `pgd_free` frees the new one at death).
  case crstUpgrade

  /// Classifies a caller symbol (compiler suffixes such as `.isra.0` ignored).
  @inlinable
  public static func classify(_ bytes: UnsafeBufferPointer<UInt8>) -> CallerRole {
    guard let p = bytes.baseAddress else { return .other }
    var n = 0
    while n < bytes.count && p[n] != UInt8(ascii: ".") { n += 1 }
    @inline(__always) func eq(_ lit: StaticString) -> Bool {
      let q = lit.utf8Start
      for i in 0..<n where p[i] != q[i] { return false }
      return true
    }
    // mm_init, mm_alloc_pgd, pgd_alloc → the pgd of a new mm; crst_table_upgrade.
    switch n {
    case 7: return eq("mm_init") ? .mmInit : .other
    case 9: return eq("pgd_alloc") ? .mmInit : .other
    case 12: return eq("mm_alloc_pgd") ? .mmInit : .other
    case 18: return eq("crst_table_upgrade") ? .crstUpgrade : .other
    default: return .other
    }
  }
}

/// What a named value of a probe line means.
public enum ValueRole: UInt8, Sendable {
  case mm, table, tlb, vmaddr, retval
  /// powerpc `pte_fragment_alloc(mm, kernel)` / `pte_fragment_free(table, kernel)`: 1 for
  /// kernel (init_mm) tables, 0 for user tables.
  case kernel
}

/// Up to 16 bytes of a task's `comm`, stored inline (TASK_COMM_LEN is 16, NUL included, so
/// real comms fit; longer ones from hand-made input are cut and marked with a trailing `…`).
public struct Comm: Hashable, Sendable, CustomStringConvertible {
  public var bytes: (UInt64, UInt64) = (0, 0)
  public var count: UInt8 = 0
  public var truncated: Bool = false

  public init() {}

  @inlinable
  public init(_ buffer: UnsafeBufferPointer<UInt8>) {
    let n = Swift.min(buffer.count, 16)
    // Little-endian words, byte by byte (cheaper than a memcpy call for ≤ 16 bytes; the
    // layout equals a copy of the bytes into the tuple).
    var a: UInt64 = 0
    var b: UInt64 = 0
    var i = 0
    while i < n {
      let v = UInt64(buffer[i])
      if i < 8 { a |= v << UInt64(8 * i) } else { b |= v << UInt64(8 * (i - 8)) }
      i += 1
    }
    bytes = (a.littleEndian, b.littleEndian)
    count = UInt8(n)
    truncated = buffer.count > 16
  }

  public init(_ string: String) {
    var s = string
    self = s.withUTF8 { Comm($0) }
  }

  /// The raw bytes (not necessarily valid UTF-8: comm is whatever the task set).
  public var byteArray: [UInt8] {
    withUnsafeBytes(of: bytes) { Array($0.prefix(Int(count))) }
  }

  /// The comm as text; invalid UTF-8 is repaired with U+FFFD.
  public var description: String {
    String(decoding: byteArray, as: UTF8.self) + (truncated ? "…" : "")
  }

  public static func == (a: Comm, b: Comm) -> Bool {
    a.bytes == b.bytes && a.count == b.count && a.truncated == b.truncated
  }
  public func hash(into h: inout Hasher) {
    h.combine(bytes.0)
    h.combine(bytes.1)
    h.combine(count)
  }
}

/// Where a probe hit came from in its input (1-based line, or 1-based record for JSON).
public typealias LineNumber = Int

/// One probe hit, as read from any input format: the format-independent record that the
/// normalizer pairs and classifies. Values the probe did not carry are `nil`.
public struct ProbeHit: Sendable {
  public enum Kind: UInt8, Sendable {
    /// `p:` probe at function entry.
    case entry
    /// `r:` probe at function return; `retval` holds the return value.
    case ret
  }

  /// 1-based line (text) or record (JSON) in the input.
  public var line: LineNumber
  /// Trace timestamp in nanoseconds (the trace clock's unit, `seconds.micros` scaled).
  public var timestampNs: UInt64
  public var cpu: Int32
  public var pid: Int32
  public var comm: Comm
  public var function: KernelFunction
  public var kind: Kind
  /// For a return probe: what the caller it returned into tells (a pgd for `mm_init`).
  public var caller: CallerRole
  // The values, when the line had them: plain words and a presence mask, not `UInt64?`
  // (9 bytes padded to 16 each), so a hit is ~50 bytes smaller on its way through the
  // pipeline. The optional properties below read and write them.
  @usableFromInline var present: UInt8 = 0
  @usableFromInline var values: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)

  @inlinable @inline(__always) func value(_ bit: UInt8, _ v: UInt64) -> UInt64? {
    present & bit != 0 ? v : nil
  }
  @inlinable @inline(__always) mutating func mark(_ bit: UInt8, _ on: Bool) {
    if on { present |= bit } else { present &= ~bit }
  }

  public var mm: UInt64? {
    @inlinable get { value(1, values.0) }
    @inlinable set { mark(1, newValue != nil); values.0 = newValue ?? 0 }
  }
  public var table: UInt64? {
    @inlinable get { value(2, values.1) }
    @inlinable set { mark(2, newValue != nil); values.1 = newValue ?? 0 }
  }
  public var tlb: UInt64? {
    @inlinable get { value(4, values.2) }
    @inlinable set { mark(4, newValue != nil); values.2 = newValue ?? 0 }
  }
  public var vmaddr: UInt64? {
    @inlinable get { value(8, values.3) }
    @inlinable set { mark(8, newValue != nil); values.3 = newValue ?? 0 }
  }
  public var retval: UInt64? {
    @inlinable get { value(16, values.4) }
    @inlinable set { mark(16, newValue != nil); values.4 = newValue ?? 0 }
  }
  /// powerpc's `kernel` argument (nonzero: a kernel page table), when probed.
  public var kernel: UInt64? {
    @inlinable get { value(32, values.5) }
    @inlinable set { mark(32, newValue != nil); values.5 = newValue ?? 0 }
  }

  public init(
    line: LineNumber, timestampNs: UInt64, cpu: Int32, pid: Int32, comm: Comm,
    function: KernelFunction, kind: Kind, caller: CallerRole = .other,
    mm: UInt64? = nil, table: UInt64? = nil, tlb: UInt64? = nil, vmaddr: UInt64? = nil,
    retval: UInt64? = nil, kernel: UInt64? = nil
  ) {
    self.line = line
    self.timestampNs = timestampNs
    self.cpu = cpu
    self.pid = pid
    self.comm = comm
    self.function = function
    self.kind = kind
    self.caller = caller
    self.mm = mm
    self.table = table
    self.tlb = tlb
    self.vmaddr = vmaddr
    self.retval = retval
    self.kernel = kernel
  }
}
