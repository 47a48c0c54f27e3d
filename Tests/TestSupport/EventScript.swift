import PTFragEvents

/// The one builder of normalized `Event`s in the tests (model tests, property drivers, report
/// tests): one event per line, in the order of the calls.
///
/// - Lines: each event takes the line after `line` (so the first is 1), unless the call names
///   a `line:`, which the next events then continue from.
/// - Timestamps: `originNs + line × nsPerLine` (1 µs apart from 0 unless told), unless the
///   call names `ns:`. An `.alloc` given a `beginLine:` gets that line's timestamp as
///   `beginNs`; without one, `Event`'s own default (the event's line and time).
/// - `pid`, `cpu`: the script's unless the call names one. `comm`: as `commName` says (by
///   default `t<pid>`), unless the call names one.
/// - Everything else (`mm`, `table`, `tlb`, `vmaddr`, `count`, `kernel`) as the call says,
///   absent or 0 by default, as in `Event.init`.
///
/// `make` returns the event; `add` also keeps it in `events` and returns its line. The
/// helpers below (`birth`, `alloc`, `freeTLB`, …) are the s390 operations as `add` calls.
public struct EventScript: Sendable {
  /// The comm an event gets when the call does not name one.
  public enum CommName: Sendable {
    /// `t<pid>` of the event's pid.
    case taskPID
    /// The same comm for every event.
    case fixed(Comm)
    /// The empty comm (`Comm()`).
    case empty
  }

  /// The events `add` made, in order.
  public private(set) var events: [Event] = []
  /// The line of the last event made (0 before the first).
  public var line: Int = 0
  public var pid: Int32
  public var cpu: Int32
  public var commName: CommName
  public var originNs: UInt64
  public var nsPerLine: UInt64

  public init(
    pid: Int32 = 100, cpu: Int32 = 0, comm: CommName = .taskPID, originNs: UInt64 = 0,
    nsPerLine: UInt64 = 1000
  ) {
    self.pid = pid
    self.cpu = cpu
    self.commName = comm
    self.originNs = originNs
    self.nsPerLine = nsPerLine
  }

  /// The line the next event gets (unless it names one).
  public var nextLine: Int { line + 1 }

  /// The timestamp of an event at `line` that does not name one.
  public func ns(atLine line: Int) -> UInt64 { originNs + UInt64(line) * nsPerLine }

  /// The next event (see the type's notes for what each field defaults to).
  public mutating func make(
    _ kind: Event.Kind, line: Int? = nil, ns: UInt64? = nil, mm: UInt64? = nil, table: UInt64 = 0,
    pid: Int32? = nil, cpu: Int32? = nil, comm: Comm? = nil, tlb: UInt64? = nil,
    vmaddr: UInt64? = nil, beginLine: Int? = nil, count: UInt64 = 0, kernel: Bool? = nil
  ) -> Event {
    self.line = line ?? self.line + 1
    let pid = pid ?? self.pid
    let comm =
      comm
      ?? {
        switch commName {
        case .taskPID: Comm("t\(pid)")
        case .fixed(let c): c
        case .empty: Comm()
        }
      }()
    return Event(
      kind: kind, line: self.line, timestampNs: ns ?? self.ns(atLine: self.line), cpu: cpu ?? self.cpu,
      pid: pid, comm: comm, mm: mm, table: table, tlb: tlb, vmaddr: vmaddr, beginLine: beginLine,
      beginNs: beginLine.map { self.ns(atLine: $0) }, count: count, kernel: kernel)
  }

  /// `make`, keeping the event in `events`; returns its line.
  @discardableResult
  public mutating func add(
    _ kind: Event.Kind, line: Int? = nil, ns: UInt64? = nil, mm: UInt64? = nil, table: UInt64 = 0,
    pid: Int32? = nil, cpu: Int32? = nil, comm: Comm? = nil, tlb: UInt64? = nil,
    vmaddr: UInt64? = nil, beginLine: Int? = nil, count: UInt64 = 0, kernel: Bool? = nil
  ) -> Int {
    events.append(
      make(
        kind, line: line, ns: ns, mm: mm, table: table, pid: pid, cpu: cpu, comm: comm, tlb: tlb,
        vmaddr: vmaddr, beginLine: beginLine, count: count, kernel: kernel))
    return self.line
  }

  // MARK: - s390 operations (each returns the line named)

  /// `crst_table_alloc` returning `pgd` into `mm_init`.
  @discardableResult
  public mutating func birth(_ mm: UInt64, pgd: UInt64) -> Int { add(.mmBirth, mm: mm, table: pgd) }
  /// `crst_table_free` of the mm's own pgd.
  @discardableResult
  public mutating func death(_ mm: UInt64, pgd: UInt64) -> Int { add(.mmDeath, mm: mm, table: pgd) }

  /// `page_table_alloc` entry and return; returns the return's line.
  @discardableResult
  public mutating func alloc(_ mm: UInt64, _ table: UInt64, pid: Int32? = nil) -> Int {
    let b = add(.allocBegin, mm: mm, pid: pid)
    return add(.alloc, mm: mm, table: table, pid: pid, beginLine: b)
  }

  /// `page_table_free`.
  @discardableResult
  public mutating func freeNow(_ mm: UInt64, _ table: UInt64, pid: Int32? = nil) -> Int {
    add(.freeNow, mm: mm, table: table, pid: pid)
  }

  /// `page_table_free_rcu` and its tagged `tlb_remove_table` (≤ 6.6); returns the first line.
  @discardableResult
  public mutating func freeTLB(_ mm: UInt64, _ table: UInt64) -> Int {
    let l = add(.freeTLB, mm: mm, table: table)
    add(.tlbQueue, table: table | (table & 0x800 != 0 ? 2 : 1))
    return l
  }

  /// `__tlb_remove_table` of a tagged (≤ 6.6) half.
  @discardableResult
  public mutating func exec(_ table: UInt64) -> Int {
    add(.tlbExec, table: table | (table & 0x800 != 0 ? 2 : 1))
  }

  /// `tlb_remove_table(table)`, the value as given.
  @discardableResult
  public mutating func queue(_ table: UInt64) -> Int { add(.tlbQueue, table: table) }
  /// `__tlb_remove_table(table)`, the value as given.
  @discardableResult
  public mutating func execRaw(_ table: UInt64) -> Int { add(.tlbExec, table: table) }

  /// `pte_free_defer` entered.
  @discardableResult
  public mutating func deferBegin(_ mm: UInt64, _ table: UInt64, pid: Int32? = nil) -> Int {
    add(.deferBegin, mm: mm, table: table, pid: pid)
  }
  /// `pte_free_defer` returned.
  @discardableResult
  public mutating func deferEnd(pid: Int32? = nil) -> Int { add(.deferEnd, pid: pid) }

  /// `pte_free_defer` with its inner `page_table_free` and its return (6.6, fully probed).
  @discardableResult
  public mutating func deferFull(_ mm: UInt64, _ table: UInt64, pid: Int32? = nil) -> Int {
    let l = deferBegin(mm, table, pid: pid)
    freeNow(mm, table, pid: pid)
    deferEnd(pid: pid)
    return l
  }

  /// `pte_free_now(head)` for `page` with a vmemmap bias (pid 0: a softirq).
  @discardableResult
  public mutating func rcuFree(page: UInt64, bias: UInt64 = testVmemmapBias, cpu: Int32? = nil) -> Int {
    add(.rcuFree, table: rcuHead(page, bias: bias), pid: 0, cpu: cpu)
  }
}

/// A vmemmap-like bias for synthetic `pte_free_now` heads.
public let testVmemmapBias: UInt64 = 0x3d0_8000_0000

/// `&page->rcu_head` for a table page: bias + pfn × 64 + 8.
public func rcuHead(_ page: UInt64, bias: UInt64 = testVmemmapBias) -> UInt64 {
  bias + (page >> 12) * 64 + 8
}
