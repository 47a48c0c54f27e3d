import PTFragEvents

/// Fresh pages for a simulated model: a bump allocator with a LIFO free list of the pages
/// the model gave back (`ReplayContext.onRelease`), like the buddy allocator's hot pages. A
/// page is handed out only if the model does not hold it: released pages come back only
/// once, and only pages this allocator handed out.
struct SimulatedPageAllocator {
  let pageBytes: UInt64
  private var next: UInt64
  private var free: [UInt64] = []
  private var out = AddressMap<Bool>()

  /// Simulated pages start at `base` (aligned to `pageBytes`), far from any capture's tables.
  init(pageBytes: UInt64, base: UInt64 = 0x7_0000_0000) {
    self.pageBytes = pageBytes
    next = (base + pageBytes - 1) & ~(pageBytes - 1)
  }

  mutating func take() -> UInt64 {
    let p: UInt64
    if let f = free.popLast() {
      p = f
    } else {
      p = next
      next += pageBytes
    }
    out[p] = true
    return p
  }

  mutating func give(back page: UInt64) {
    if out.removeValue(forKey: page) != nil { free.append(page) }
  }

  /// Pages handed out and not given back.
  var held: Int { out.count }
}

/// One strategy driven through a workload (`WorkloadOp`s, grouped per captured event): a
/// fresh instance of its model with `ReplayContext.simulating` set, choosing every table
/// address itself (`simulateAlloc`, fresh pages from a `SimulatedPageAllocator`), fed the
/// probe events its kernel would show (`kernelEvents(for:_:)`). Each `call_rcu` the model
/// makes is delivered back as its callback's event `graceNs` later (`ReplayContext.onCallRCU`;
/// callbacks run in `call_rcu` order); callbacks due after the capture's last timestamp stay
/// pending. The occupancy is sampled after each captured event's ops and after each callback,
/// exactly as a replay samples after each event.
public final class Simulation {
  public let descriptor: ModelDescriptor
  public let context: ReplayContext
  public let model: any AllocatorModel
  public let graceNs: UInt64
  /// Pages held and tables live over time, with the waste by kind.
  public private(set) var timeline = OccupancyTimeline()
  public private(set) var series = OccupancySeries()
  /// RCU callbacks delivered, and still pending when the capture ended.
  public private(set) var callbacksRun = 0
  public var callbacksPending: Int { rcu.count - rcuHead }
  /// What the model says about this run (`AllocatorModel.simulationNotes`).
  public var notes: [String] { model.simulationNotes }

  private var pages: SimulatedPageAllocator
  /// Table id → the address this model chose, and its mm.
  private var tables = AddressMap<(table: UInt64, mm: UInt64)>()
  private var rcu: [(due: UInt64, kind: Event.Kind, table: UInt64)] = []
  private var rcuHead = 0
  /// Latest time reached (ns): groups may be stamped out of order; callbacks are queued
  /// relative to the latest time.
  private var clock: UInt64 = 0
  private var line = 0

  public init(model type: any AllocatorModel.Type, graceNs: UInt64) {
    descriptor = type.descriptor
    self.graceNs = graceNs
    let ctx = ReplayContext()
    ctx.simulating = true
    ctx.keepsHistory = false
    ctx.mmBook.enabled = false
    context = ctx
    let m = type.init(context: ctx)
    model = m
    pages = SimulatedPageAllocator(pageBytes: UInt64(m.occupancy.pageBytes))
    ctx.onRelease = { [unowned self] page in self.pages.give(back: page) }
    ctx.onCallRCU = { [unowned self] kind, table in
      self.rcu.append((self.clock &+ self.graceNs, kind, table))
    }
  }

  /// Applies the ops of one captured event stamped `ns` (possibly none), after the callbacks
  /// due by then; then samples.
  /// `ops` is a slice of a chunk of events' ops (`CompareDriver`).
  public func apply(_ ops: UnsafeBufferPointer<WorkloadOp>, atNs ns: UInt64) {
    runCallbacks(dueBy: ns)
    if ns > clock { clock = ns }
    for op in ops { apply(op, ns) }
    sample(ns)
  }

  /// The capture ended at `ns`: callbacks due by then run; the rest stay pending.
  public func finish(atNs ns: UInt64) {
    runCallbacks(dueBy: ns)
    model.finish(lastLine: line)
    context.foldKindCounts()
  }

  /// What the model reported on its own simulation (findings and inconclusive items): none
  /// when the simulator and the model agree on the kernel's rules.
  public var selfCheck: [String] {
    context.findings.map { "\($0.rule.id) at simulated event \($0.line): \($0.message)" }
      + context.inconclusive.filter { $0.reason != .unreturnedAlloc }.map {
        "inconclusive (\($0.reason.rawValue)) at simulated event \($0.line): \($0.message)"
      }
  }

  private func runCallbacks(dueBy ns: UInt64) {
    while rcuHead < rcu.count, rcu[rcuHead].due <= ns {
      let c = rcu[rcuHead]
      rcuHead += 1
      if c.due > clock { clock = c.due }
      emit(SimulatedEvent(c.kind, table: c.table), c.due)
      callbacksRun += 1
      sample(c.due)
      if rcuHead > 4096 && rcuHead * 2 > rcu.count {
        rcu.removeFirst(rcuHead)
        rcuHead = 0
      }
    }
  }

  private func apply(_ op: WorkloadOp, _ ns: UInt64) {
    let sim: SimulatedOperation
    switch op {
    case .birth(let mm): sim = .birth(mm: mm)
    case .death(let mm): sim = .death(mm: mm)
    case .exit(let mm): sim = .exit(mm: mm)
    case .alloc(let id, let mm):
      let t = model.simulateAlloc(mm: mm, fresh: { pages.take() })
      tables[id] = (t, mm)
      sim = .alloc(mm: mm, table: t)
    case .freeNow(let id):
      guard let x = tables.removeValue(forKey: id) else { return }
      sim = .freeNow(mm: x.mm, table: x.table)
    case .freeTLB(let id):
      guard let x = tables[id] else { return }
      sim = .freeTLB(mm: x.mm, table: x.table)
    case .exec(let id):
      guard let x = tables.removeValue(forKey: id) else { return }
      sim = .exec(table: x.table)
    case .deferFree(let id):
      guard let x = tables.removeValue(forKey: id) else { return }
      sim = .deferFree(mm: x.mm, table: x.table)
    }
    model.kernelEvents(for: sim) { emit($0, ns) }
  }

  private func emit(_ s: SimulatedEvent, _ ns: UInt64) {
    line += 1
    model.apply(Event(kind: s.kind, line: line, timestampNs: ns, cpu: 0, pid: 1, mm: s.mm, table: s.table))
  }

  private func sample(_ ns: UInt64) {
    let o = model.occupancy
    timeline.observe(o, atNs: ns)
    series.observe(o, atNs: ns)
  }
}
