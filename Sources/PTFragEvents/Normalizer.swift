/// Turns probe hits into normalized `Event`s:
/// - pairs each `page_table_alloc` / `crst_table_alloc` / `pte_fragment_alloc` /
///   `pte_free_defer` return with the pending entry of the same pid (kretprobes fire in the
///   task that entered; a task is in at most one of these calls at a time);
/// - recognizes mm birth (`crst_table_alloc` returning into `mm_init`) and mm death
///   (`crst_table_free` of that mm's pgd);
/// - reports hits that lack a value the event needs.
///
/// State is proportional to tasks inside a call and to live mms, never to trace length.
public struct Normalizer {
  struct Pending {
    var line: LineNumber
    var ns: UInt64
    var mm: UInt64?
    var cpu: Int32
    var comm: Comm
    var kernel: UInt64? = nil
  }

  /// A hit that could not become an event (a needed value is missing).
  public struct Issue: Sendable {
    public var line: LineNumber
    public var message: String
  }

  /// Calls in flight, by pid (`pidKey`).
  private var allocPending = AddressMap<Pending>()
  private var crstPending = AddressMap<Pending>()
  private var deferPending = AddressMap<Pending>()
  private var pmdPending = AddressMap<Pending>()
  /// mm → its pgd, for every mm whose birth was seen.
  private var pgdOf = AddressMap<UInt64>()

  @inline(__always) private func pidKey(_ pid: Int32) -> UInt64 { UInt64(UInt32(bitPattern: pid)) }

  /// Hits of functions outside the fragment model (pgste/gmap tables), by function.
  public private(set) var ignoredHits: [KernelFunction: Int] = [:]
  /// Return probes with no pending entry (the capture started inside the call).
  public private(set) var orphanReturns = 0
  public private(set) var issues: [Issue] = []
  public private(set) var issueCount = 0
  public var maxIssuesKept = 50

  public init() {}

  private mutating func issue(_ line: LineNumber, _ message: @autoclosure () -> String) {
    issueCount += 1
    if issues.count < maxIssuesKept { issues.append(Issue(line: line, message: message())) }
  }

  @inline(__always)
  private func event(_ kind: Event.Kind, _ h: ProbeHit) -> Event {
    Event(
      kind: kind, line: h.line, timestampNs: h.timestampNs, cpu: h.cpu, pid: h.pid,
      comm: h.comm, mm: h.mm, table: h.table ?? 0, tlb: h.tlb, vmaddr: h.vmaddr,
      kernel: h.kernel.map { $0 != 0 })
  }

  /// Feeds one record; calls `emit` zero, one or two times.
  public mutating func feed(_ record: TraceRecord, emit: (Event) -> Void) {
    switch record {
    case .lost(let m):
      emit(Event(kind: .lost, line: m.line, cpu: m.cpu, count: m.count))
    case .hit(let h):
      feed(h, emit: emit)
    }
  }

  public mutating func feed(_ h: ProbeHit, emit: (Event) -> Void) {
    switch (h.function, h.kind) {
    case (.pageTableAlloc, .entry), (.pteFragmentAlloc, .entry):
      if let old = allocPending[pidKey(h.pid)] {
        emit(
          Event(
            kind: .allocUnreturned, line: old.line, timestampNs: old.ns, cpu: old.cpu,
            pid: h.pid, comm: old.comm, mm: old.mm, beginLine: old.line, beginNs: old.ns))
      }
      allocPending[pidKey(h.pid)] = Pending(
        line: h.line, ns: h.timestampNs, mm: h.mm, cpu: h.cpu, comm: h.comm, kernel: h.kernel)
      emit(event(.allocBegin, h))

    case (.pageTableAlloc, .ret), (.pteFragmentAlloc, .ret):
      guard let value = h.retval ?? h.table else {
        issue(h.line, "return probe of \(h.function.symbol) carries no value")
        return
      }
      var e = event(.alloc, h)
      e.table = value
      if let p = allocPending.removeValue(forKey: pidKey(h.pid)) {
        e.mm = p.mm
        e.beginLine = p.line
        e.beginNs = p.ns
        e.kernel = p.kernel.map { $0 != 0 }
      } else {
        orphanReturns += 1
        e.mm = nil
      }
      emit(e)

    case (.pageTableFree, .entry):
      guard h.table != nil else { return issue(h.line, "page_table_free without a table value") }
      emit(event(.freeNow, h))
    case (.pageTableFreeRCU, .entry):
      guard h.table != nil else {
        return issue(h.line, "page_table_free_rcu without a table value")
      }
      emit(event(.freeTLB, h))
    case (.tlbRemoveTable, .entry):
      guard h.table != nil else { return issue(h.line, "tlb_remove_table without a table value") }
      emit(event(.tlbQueue, h))
    case (.tlbRemoveTableExec, .entry):
      guard h.table != nil else {
        return issue(h.line, "__tlb_remove_table without a table value")
      }
      emit(event(.tlbExec, h))
    case (.pteFreeDefer, .entry):
      guard h.table != nil else { return issue(h.line, "pte_free_defer without a table value") }
      deferPending[pidKey(h.pid)] = Pending(
        line: h.line, ns: h.timestampNs, mm: h.mm, cpu: h.cpu, comm: h.comm)
      emit(event(.deferBegin, h))
    case (.pteFreeDefer, .ret):
      var e = event(.deferEnd, h)
      if let p = deferPending.removeValue(forKey: pidKey(h.pid)) {
        e.mm = p.mm
        e.beginLine = p.line
        e.beginNs = p.ns
      }
      emit(e)
    case (.pteFreeNow, .entry):
      emit(event(.rcuFree, h))
    case (.pteFragmentFree, .entry):
      guard h.table != nil else { return issue(h.line, "pte_fragment_free without a table value") }
      emit(event(.fragmentFree, h))
    case (.pteFragDestroy, .entry):
      emit(event(.fragDestroy, h))

    // powerpc lifecycle (book3s64/mmu_context.c) and PMD fragments (book3s64/pgtable.c).
    case (.initNewContext, .entry):
      guard h.mm != nil else { return issue(h.line, "init_new_context without an mm value") }
      emit(event(.mmBirth, h))
    case (.archExitMmap, .entry):
      guard h.mm != nil else { return issue(h.line, "arch_exit_mmap without an mm value") }
      emit(event(.mmExit, h))
    case (.destroyContext, .entry):
      guard h.mm != nil else { return issue(h.line, "destroy_context without an mm value") }
      emit(event(.mmDeath, h))
    case (.pmdFragmentAlloc, .entry):
      pmdPending[pidKey(h.pid)] = Pending(
        line: h.line, ns: h.timestampNs, mm: h.mm, cpu: h.cpu, comm: h.comm)
    case (.pmdFragmentAlloc, .ret):
      let p = pmdPending.removeValue(forKey: pidKey(h.pid))
      guard let value = h.retval ?? h.table else {
        return issue(h.line, "return probe of pmd_fragment_alloc carries no value")
      }
      var e = event(.pmdAlloc, h)
      e.table = value
      e.mm = p?.mm
      if let p { e.beginLine = p.line; e.beginNs = p.ns }
      emit(e)
    case (.pmdFragmentFree, .entry):
      guard h.table != nil else { return issue(h.line, "pmd_fragment_free without a table value") }
      emit(event(.pmdFree, h))

    case (.crstTableAlloc, .entry):
      crstPending[pidKey(h.pid)] = Pending(
        line: h.line, ns: h.timestampNs, mm: h.mm, cpu: h.cpu, comm: h.comm)
    case (.crstTableAlloc, .ret):
      let p = crstPending.removeValue(forKey: pidKey(h.pid))
      guard let value = h.retval ?? h.table else {
        return issue(h.line, "return probe of crst_table_alloc carries no value")
      }
      let isBirth = h.caller == .mmInit && p?.mm != nil && value != 0
      var e = event(isBirth ? .mmBirth : .crstAlloc, h)
      e.table = value
      e.mm = p?.mm
      if let p { e.beginLine = p.line; e.beginNs = p.ns }
      if let mm = p?.mm, value != 0 {
        if isBirth { pgdOf[mm] = value }
        // After an upgrade, pgd_free at death frees the upgrade's table.
        if h.caller == .crstUpgrade { pgdOf[mm] = value }
      }
      emit(e)
    case (.crstTableFree, .entry):
      guard let table = h.table else {
        return issue(h.line, "crst_table_free without a table value")
      }
      if let mm = h.mm, pgdOf[mm] == table {
        pgdOf[mm] = nil
        emit(event(.mmDeath, h))
      } else {
        emit(event(.crstFree, h))
      }

    case (.pageTableAllocPgste, _), (.pageTableFreePgste, _):
      ignoredHits[h.function, default: 0] += 1
    case (_, .ret):
      // Return probes of functions whose return carries nothing we model.
      ignoredHits[h.function, default: 0] += 1
    }
  }

  /// Call at end of input: every alloc still pending becomes `.allocUnreturned`, in line order.
  public mutating func finish(emit: (Event) -> Void) {
    for (key, p) in allocPending.sorted(by: { $0.value.line < $1.value.line }) {
      let pid = Int32(bitPattern: UInt32(truncatingIfNeeded: key))
      emit(
        Event(
          kind: .allocUnreturned, line: p.line, timestampNs: p.ns, cpu: p.cpu, pid: pid,
          comm: p.comm, mm: p.mm, beginLine: p.line, beginNs: p.ns, count: 1))
    }
    allocPending.removeAll()
  }
}
