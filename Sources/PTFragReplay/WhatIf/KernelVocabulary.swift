import PTFragEvents

/// One operation of a what-if workload, with the table address the simulated model chose
/// (`SimulatedOperation`s are what a strategy's kernel is asked to do; how its kernel shows
/// each one as probe events is the model's `kernelEvents(for:_:)`).
public enum SimulatedOperation: Sendable, Equatable {
  /// The mm is created (its pgd allocated in `mm_init`).
  case birth(mm: UInt64)
  /// `exit_mmap` starts, before any table is freed (powerpc `arch_exit_mmap`, where
  /// `pte_frag_destroy` runs; nothing on s390).
  case exit(mm: UInt64)
  /// The mm's pgd is freed (after `exit_mmap` freed or queued every table).
  case death(mm: UInt64)
  /// `page_table_alloc(mm)` returned `table` (the model's own choice, `simulateAlloc`).
  case alloc(mm: UInt64, table: UInt64)
  /// `pte_free(mm, table)`: freed at once.
  case freeNow(mm: UInt64, table: UInt64)
  /// `pte_free_tlb`: queued in the mmu_gather batch.
  case freeTLB(mm: UInt64, table: UInt64)
  /// The batch entry of `table` runs (`__tlb_remove_table`).
  case exec(table: UInt64)
  /// `pte_free_defer(mm, table)` (khugepaged's retract_page_tables, v6.6+).
  case deferFree(mm: UInt64, table: UInt64)
}

/// One probe event a simulated kernel shows: kind, mm (nil where the probe has none), value.
public struct SimulatedEvent: Sendable, Equatable {
  public var kind: Event.Kind
  public var mm: UInt64?
  public var table: UInt64
  public init(_ kind: Event.Kind, mm: UInt64? = nil, table: UInt64 = 0) {
    self.kind = kind
    self.mm = mm
    self.table = table
  }
}

/// The s390 2 KiB-fragment vocabulary (v5.17 … v6.6 and the 2023 proposals C1, C2, C3a):
/// `page_table_alloc` entry and return; `page_table_free`; `page_table_free_rcu` then
/// `tlb_remove_table(table | (h+1))` (the half's tag, docs/kernel-models.md §1.3); `__tlb_remove_table` of the same
/// tagged value; `pte_free_defer` entry and return (its `page_table_free` is the model's to
/// apply when the window closes, as in a capture that does not probe it).
extension AllocatorModel {
  public func kernelEvents(for op: SimulatedOperation, _ emit: (SimulatedEvent) -> Void) {
    s390FragmentEvents(for: op, deferAs: .deferBegin, emit)
  }

  /// The s390 fragment vocabulary; `deferAs` is `.deferBegin` for kernels with
  /// `pte_free_defer`, `.freeNow` for those without (≤ v6.5: khugepaged frees with `pte_free`).
  func s390FragmentEvents(
    for op: SimulatedOperation, deferAs: Event.Kind, _ emit: (SimulatedEvent) -> Void
  ) {
    switch op {
    case .birth(let mm): emit(SimulatedEvent(.mmBirth, mm: mm))
    case .death(let mm): emit(SimulatedEvent(.mmDeath, mm: mm))
    case .exit: break
    case .alloc(let mm, let t):
      emit(SimulatedEvent(.allocBegin, mm: mm))
      emit(SimulatedEvent(.alloc, mm: mm, table: t))
    case .freeNow(let mm, let t): emit(SimulatedEvent(.freeNow, mm: mm, table: t))
    case .freeTLB(let mm, let t):
      emit(SimulatedEvent(.freeTLB, mm: mm, table: t))
      emit(SimulatedEvent(.tlbQueue, table: s390Tagged(t)))
    case .exec(let t): emit(SimulatedEvent(.tlbExec, table: s390Tagged(t)))
    case .deferFree(let mm, let t):
      if deferAs == .deferBegin {
        emit(SimulatedEvent(.deferBegin, mm: mm, table: t))
        emit(SimulatedEvent(.deferEnd, mm: mm))
      } else {
        emit(SimulatedEvent(.freeNow, mm: mm, table: t))
      }
    }
  }
}

/// `table | (h + 1)`: the tag `page_table_free_rcu` puts on a 2 KiB half (1 lower, 2 upper).
@inline(__always) func s390Tagged(_ t: UInt64) -> UInt64 { t | (t & s390HalfBit != 0 ? 2 : 1) }
