import PTFragEvents

/// One step of a what-if workload: what happened to which table, independent of addresses
/// (every strategy chooses its own). Tables are named by a serial (`id`, 1-based, one per
/// allocation in the capture).
public enum WorkloadOp: Sendable, Equatable {
  case birth(mm: UInt64)
  /// `exit_mmap` starts (powerpc `arch_exit_mmap`: `pte_frag_destroy` runs here, before the
  /// mm's tables are freed).
  case exit(mm: UInt64)
  case death(mm: UInt64)
  case alloc(id: UInt64, mm: UInt64)
  /// Freed at once (`pte_free`, `pte_fragment_free`).
  case freeNow(id: UInt64)
  /// Queued in an mmu_gather batch (`pte_free_tlb`).
  case freeTLB(id: UInt64)
  /// The batch entry ran (`__tlb_remove_table`), seen or inferred.
  case exec(id: UInt64)
  /// `pte_free_defer`.
  case deferFree(id: UInt64)
}

/// What the recorder saw, for the report.
public struct WorkloadCounts: Sendable, Equatable {
  /// Tables allocated in the capture (each is one `alloc` op).
  public var tables = 0
  public var freesNow = 0
  public var freesTLB = 0
  public var defers = 0
  /// `__tlb_remove_table` runs of recorded tables: seen in the capture / inferred by the
  /// replay where it resynchronised over a silent miss.
  public var execs = 0
  public var execsInferred = 0
  /// Frees the replay inferred (a table whose page came back while it was still live).
  public var freesInferred = 0
  /// Frees (now, tlb, defer) of tables the capture never showed allocated: allocated before
  /// the capture. Left out of the workload.
  public var freesBeforeCapture = 0
  /// `__tlb_remove_table` runs of values the workload does not hold: CRST (region/segment)
  /// tables, and tables allocated before the capture. Left out.
  public var execsNotRecorded = 0
  /// A table handed out again while the workload still held it live (a divergence the replay
  /// reports): the old one is taken as freed then (`freeNow`).
  public var resynchronised = 0
  public var mmsBorn = 0
  public var mmsDied = 0
  /// Allocations whose entry (hence mm) the capture did not show: given mm 0.
  public var allocsWithoutMM = 0
  public init() {}
}

/// Turns a capture's normalized events (and what its own model's replay infers) into the
/// sequence of table lifetimes: `WorkloadOp`s, grouped per captured event. Generic: it reads
/// only the event kinds, never a model's state.
///
/// - alloc: a new table id for `(mm, table)`; a table address live again is resynchronised.
/// - `page_table_free` / `pte_fragment_free`: free now; but the `pte_fragment_free` nested in
///   `__tlb_remove_table` or `pte_free_defer`, and the `page_table_free` nested in
///   `pte_free_defer` (same task, same table, before the task's next event) are that call.
/// - `page_table_free_rcu` (≤ v6.6): free through the tlb batch; its `tlb_remove_table` is the
///   same free. A `tlb_remove_table` of a live table (v6.7+, powerpc) is the free.
/// - `__tlb_remove_table`: the batch entry runs (tag bits `& ~0xf` cleared: s390 tags 0–3 on
///   2 KiB-aligned tables, powerpc level index on ≥ 256 B fragments); of a live table (its
///   queue unseen): free through the batch and run.
/// - `pte_free_defer`: deferred free.
/// - mm birth / death.
/// Everything else (CRST tables, `pte_free_now`, returns, LOST) adds no op.
///
/// State: one entry per table recorded and not yet gone (live, or queued for the batch).
public struct WorkloadRecorder: Sendable {
  enum State: Sendable { case live, queued }
  struct Table: Sendable {
    var id: UInt64
    var state: State
  }

  private var tables: [UInt64: Table] = [:]
  private var nextID: UInt64 = 1
  /// pid → table: a free nested in the call this task is in.
  private var nested: [Int32: UInt64] = [:]
  public private(set) var counts = WorkloadCounts()

  public init() {}

  /// Tag and level-index bits of a tlb batch value.
  @inline(__always) static func untagged(_ v: UInt64) -> UInt64 { v & ~0xf }

  /// The ops of one captured event: first what the replay inferred while applying it (the
  /// kernel did it before this event), then the event's own.
  public mutating func record(
    _ e: Event, inferred: [InferredOperation], _ emit: (WorkloadOp) -> Void
  ) {
    for op in inferred {
      switch op {
      case .exec(let t):
        let key = Self.untagged(t)
        if let x = tables[key], x.state == .queued {
          tables[key] = nil
          counts.execsInferred += 1
          emit(.exec(id: x.id))
        }
      case .free(let t):
        if let x = tables[t], x.state == .live {
          tables[t] = nil
          counts.freesInferred += 1
          emit(.freeNow(id: x.id))
        }
      }
    }
    if let n = nested[e.pid] {
      let isNestedFree = (e.kind == .freeNow || e.kind == .fragmentFree) && e.table == n
      if isNestedFree {
        nested[e.pid] = nil
        return
      }
      if e.kind != .deferEnd { nested[e.pid] = nil }
    }
    switch e.kind {
    case .alloc:
      guard e.table != 0 else { return }
      if let old = tables.removeValue(forKey: e.table) {
        // Handed out again while the workload holds it: the replay reports this; the old
        // table went somehow. Take it as freed now.
        counts.resynchronised += 1
        emit(old.state == .live ? .freeNow(id: old.id) : .exec(id: old.id))
      }
      let id = nextID
      nextID += 1
      tables[e.table] = Table(id: id, state: .live)
      counts.tables += 1
      if e.mm == nil { counts.allocsWithoutMM += 1 }
      emit(.alloc(id: id, mm: e.mm ?? 0))
    case .freeNow, .fragmentFree:
      guard let x = tables[e.table] else { return untracked(e.table) }
      guard x.state == .live else { return }  // a double free: the replay reports it
      tables[e.table] = nil
      counts.freesNow += 1
      emit(.freeNow(id: x.id))
    case .freeTLB:
      guard let x = tables[e.table] else { return untracked(e.table) }
      guard x.state == .live else { return }
      tables[e.table]!.state = .queued
      counts.freesTLB += 1
      emit(.freeTLB(id: x.id))
    case .tlbQueue:
      let t = Self.untagged(e.table)
      guard let x = tables[t], x.state == .live else { return }
      tables[t]!.state = .queued
      counts.freesTLB += 1
      emit(.freeTLB(id: x.id))
    case .tlbExec:
      let t = Self.untagged(e.table)
      nested[e.pid] = t
      guard let x = tables.removeValue(forKey: t) else {
        counts.execsNotRecorded += 1
        return
      }
      if x.state == .live {
        counts.freesTLB += 1
        emit(.freeTLB(id: x.id))
      }
      counts.execs += 1
      emit(.exec(id: x.id))
    case .deferBegin:
      nested[e.pid] = e.table
      guard let x = tables[e.table] else { return untracked(e.table) }
      guard x.state == .live else { return }
      tables[e.table] = nil
      counts.defers += 1
      emit(.deferFree(id: x.id))
    case .mmBirth:
      guard let mm = e.mm else { return }
      counts.mmsBorn += 1
      emit(.birth(mm: mm))
    case .mmDeath:
      guard let mm = e.mm else { return }
      counts.mmsDied += 1
      emit(.death(mm: mm))
    case .mmExit:
      guard let mm = e.mm else { return }
      emit(.exit(mm: mm))
    case .allocBegin, .allocUnreturned, .deferEnd, .rcuFree, .crstAlloc, .crstFree, .lost,
      .fragDestroy, .pmdAlloc, .pmdFree:
      return
    }
  }

  private mutating func untracked(_ t: UInt64) {
    if t != 0 { counts.freesBeforeCapture += 1 }
  }

  /// Tables recorded and still held at the end (live or queued).
  public var tablesHeld: Int { tables.count }
}
