import PTFragEvents
import PTFragRead
import PTFragReplay

/// Settings of one synthetic capture.
public struct SynthOptions: Sendable {
  /// The model that decides every address (`ModelRegistry` id).
  public var modelID = ModelRegistry.defaultModel.descriptor.id
  /// Probe lines to print (events lost by `lostBursts` come on top).
  public var events = 10_000
  public var seed: UInt64 = 1
  /// mms alive at once in steady state (each shell's own, plus its child's).
  public var mms = 8
  public var cpus = 2
  /// `CPU:N [LOST M EVENTS]` markers (ring-buffer overruns); 0 for a complete capture.
  public var lostBursts = 0
  public init() {}
}

/// What a synthesis produced.
public struct SynthSummary: Sendable {
  /// Probe lines printed.
  public var events = 0
  /// Lines printed in total (header and LOST markers included).
  public var lines = 0
  public var bytes: UInt64 = 0
  /// Events the kernel "did" but the capture lost, and the markers saying so.
  public var lostEvents = 0
  public var lostMarkers = 0
  /// mms born in the capture, and those that died.
  public var mmsBorn = 0
  public var mmsDied = 0
  public var allocations = 0
  /// Findings the synthesizer's own model reported (a correct synthesizer has none).
  public var modelFindings = 0
}

public enum SynthError: Error, Sendable, Equatable {
  case unknownModel(String)
  /// The model's kernel frees tables in a way the synthesizer cannot print yet.
  case unsupportedModel(String)
  case badOption(String)
  case write(WriteError)

  public var message: String {
    switch self {
    case .unknownModel(let m):
      "unknown model '\(m)'; known: \(ModelRegistry.ids.joined(separator: ", "))"
    case .unsupportedModel(let m):
      "synth cannot print captures for model '\(m)' yet (it knows: \(SynthDialect.supportedModels.joined(separator: ", ")))"
    case .badOption(let m): m
    case .write(let e): e.message
    }
  }
}

/// How a kernel variant's page-table events look in a capture (the probes it fires, their
/// sizes and tags). The model decides *which* table; the dialect decides how it prints.
public struct SynthDialect: Sendable {
  /// pte_free_tlb goes through `page_table_free_rcu` and tags the queued table with its
  /// half (1 lower, 2 upper); CRST tables are queued untagged (variant A, v5.17 … v6.5).
  public var taggedHalves: Bool

  /// The models whose descriptor says how their captures print (`ModelDescriptor.synth`).
  public static var supportedModels: [String] {
    ModelRegistry.all.filter { $0.descriptor.synth != nil }.map { $0.descriptor.id }
  }

  public static func dialect(forModel id: String) -> SynthDialect? {
    ModelRegistry.model(id: id)?.descriptor.synth.map { SynthDialect(taggedHalves: $0.taggedHalves) }
  }
}

/// Writes a realistic synthetic capture in the kernel's ftrace text format, deterministic
/// for a seed (docs/benchmark.md has the workload):
///
/// - shells (mms born before the capture) fork children: the child's mm is born
///   (`crst_table_alloc` returning into `mm_init`) and gets its tables in `copy_page_range`;
/// - children fault a little, exec (a new mm is born; the forked mm's tables are freed
///   through `page_table_free_rcu` + tagged `tlb_remove_table`, its CRSTs queued untagged,
///   its pgd freed with `crst_table_free`, at once or by the next task on that CPU), run
///   (faults, munmaps) and exit (the same teardown);
/// - the tlb batches execute later (`__tlb_remove_table`, same tags, same order) in softirq
///   context on the CPU that handed the batch to call_rcu, after that CPU's earlier batches
///   (RCU's per-CPU callback order; a task migrated while it gathered flushes, and goes on,
///   on its new CPU), from `<idle>-0`, `ksoftirqd/N` or the running task; a few run synchronously (the batch-allocation fallback), and a few tables are
///   freed at once with `page_table_free` (the `__pte_alloc` race);
/// - two or more CPUs interleave by timestamp; comms include dashes and spaces.
///
/// Every allocation's table comes from the model: the synthesizer asks
/// `simulateAlloc(mm:fresh:)`, prints the return line and feeds the same events to the model
/// (through the `Normalizer`), so the capture replays clean under that model unless LOST
/// markers were asked for. Pages come back to the pool of fresh pages when the model's
/// `occupancy.pagesHeld` drops on an event of that page. Memory is bounded by live tasks,
/// mms and tables, not by the capture's length.
public final class Synthesizer {
  public let options: SynthOptions
  let dialect: SynthDialect
  let modelType: any AllocatorModel.Type
  var rng: SynthRandom

  public init(_ options: SynthOptions) throws(SynthError) {
    guard let type = ModelRegistry.model(id: options.modelID) else {
      throw .unknownModel(options.modelID)
    }
    guard let d = SynthDialect.dialect(forModel: options.modelID) else {
      throw .unsupportedModel(options.modelID)
    }
    guard options.events >= 0 else { throw .badOption("--events must be 0 or more") }
    guard options.cpus >= 1 && options.cpus <= 512 else {
      throw .badOption("--cpus must be between 1 and 512")
    }
    guard options.mms >= 1 && options.mms <= 100_000 else {
      throw .badOption("--mms must be between 1 and 100000")
    }
    guard options.lostBursts >= 0 else { throw .badOption("--lost must be 0 or more") }
    self.options = options
    self.modelType = type
    self.dialect = d
    self.rng = SynthRandom(seed: options.seed)
  }

  /// Writes the whole capture to `sink` (and flushes it).
  public func write(to sink: ByteSink) throws(SynthError) -> SynthSummary {
    let run = SynthRun(options: options, dialect: dialect, model: modelType, rng: rng, out: sink)
    do {
      try run.header()
      try run.simulate()
      try sink.flush()
    } catch {
      throw .write(error)
    }
    var s = run.summary
    s.bytes = sink.total
    s.modelFindings = run.replayer.context.countsByRule.values.reduce(0, +)
    return s
  }
}

// MARK: - The simulation

/// Kernel-side state of one mm.
final class SimMM {
  let address: UInt64
  var pgd: UInt64 = 0
  /// Live PTE tables and the virtual address each maps (1 MiB apart).
  var tables: [(table: UInt64, vmaddr: UInt64)] = []
  /// Live pmd (CRST) tables.
  var pmds: [UInt64] = []
  var nextVM: UInt64 = 0
  init(address: UInt64) { self.address = address }
}

/// One line-producing step of a task (or of softirq work).
enum Step {
  case crstEntry(SimMM)
  case crstReturn(SimMM, birth: Bool)
  case pteEntry(SimMM)
  case pteReturn(SimMM, caller: Int)
  case freeRCU(SimMM, UInt64, UInt64)
  case queue(UInt64)
  case queueCRST(UInt64)
  case syncExec(UInt64)
  /// `page_table_free` of the table the task just got (the `__pte_alloc` race).
  case freeNow(SimMM)
  case pgdFree(SimMM)
  /// No line: hand the gathered batch to RCU.
  case flush
  /// No line: the pgd is freed by the next task switched in on this CPU (lazy mmdrop).
  case lazyDrop(SimMM)
  /// No line: the forked child becomes runnable.
  case wakeChild(Int)
  /// No line: the task ends; its parent wakes.
  case exit
}

final class SimTask {
  let pid: Int32
  var comm: [UInt8]
  var mm: SimMM?
  let isShell: Bool
  var parent: Int = -1
  var cpu: Int
  var steps: [Step] = []
  var next = 0
  var waiting = false
  /// Children: how far into its life (0 = just forked, 1 = exec'd).
  var phase = 0
  var opsLeft = 0
  /// mmu_gather: tables queued since the last flush.
  var batch: [UInt64] = []
  var tlb: UInt64
  /// The task ended (its slot may be reused by a new task).
  var exited = false
  init(pid: Int32, comm: String, mm: SimMM?, isShell: Bool, cpu: Int, tlb: UInt64) {
    self.pid = pid
    self.comm = Array(comm.utf8.prefix(15))
    self.mm = mm
    self.isShell = isShell
    self.cpu = cpu
    self.tlb = tlb
  }
}

struct SoftirqBatch {
  var due: UInt64
  var tables: [UInt64]
  var next = 0
  /// -1: ksoftirqd, -2: idle or the running task (decided when it runs).
  var context: Int
}

final class SimCPU {
  let index: Int
  var clock: UInt64
  var runqueue: [Int] = []
  var current = -1
  var slice = 0
  var softirq: [SoftirqBatch] = []
  /// Due time of the last batch this CPU handed to call_rcu: RCU invokes one CPU's callbacks
  /// in the order they were queued, so a later batch is never due before an earlier one.
  var lastBatchDue: UInt64 = 0
  var pendingDrops: [SimMM] = []
  /// Lost-event burst: events of this CPU still to drop, and the count for the marker.
  var dropping = 0
  var dropped = 0
  init(index: Int, clock: UInt64) {
    self.index = index
    self.clock = clock
  }
}

final class SynthRun {
  let options: SynthOptions
  let dialect: SynthDialect
  var rng: SynthRandom
  let out: ByteSink
  let replayer: Replayer
  var normalizer = Normalizer()
  var summary = SynthSummary()

  var tasks: [SimTask] = []
  var freeTasks: [Int] = []
  var cpus: [SimCPU] = []
  var nextPid: Int32 = 200
  var firstChildPid: Int32 = 200
  var line = 0
  var printed = 0

  // Address pools (LIFO, as the kernel's per-cpu lists hand back recent pages).
  var freePages: [UInt64] = []
  var nextPage: UInt64 = 0x3700000
  var freeCRSTs: [UInt64] = []
  var nextCRST: UInt64 = 0x2800000
  var freeMMs: [UInt64] = []
  var nextMM: UInt64 = 0x20c0000

  /// Planned lost bursts: (printed-event index, size), sorted.
  var bursts: [(at: Int, size: Int)] = []
  var nextBurst = 0

  init(
    options: SynthOptions, dialect: SynthDialect, model: any AllocatorModel.Type,
    rng: SynthRandom, out: ByteSink
  ) {
    self.options = options
    self.dialect = dialect
    self.rng = rng
    self.out = out
    replayer = Replayer(model: model)
    // The capture starts 100 … 1099 s after boot.
    let start = UInt64(self.rng.between(100, 1099)) * 1_000_000_000
    for c in 0..<options.cpus { cpus.append(SimCPU(index: c, clock: start + UInt64(c) * 7_000)) }
    // Shells: pid 1 is init, the others interactive shells; their mms predate the capture.
    let shells = max(1, (options.mms + 1) / 2)
    firstChildPid = max(200, Int32(100 + 7 * shells + 1))
    nextPid = firstChildPid
    for s in 0..<shells {
      let mm = SimMM(address: allocMM())
      mm.nextVM = 0x1000000
      let comm = s == 0 ? "init" : Self.shellComms[(s - 1) % Self.shellComms.count]
      let pid: Int32 = s == 0 ? 1 : Int32(100 + 7 * s)
      let t = SimTask(
        pid: pid, comm: comm, mm: mm, isShell: true, cpu: s % options.cpus,
        tlb: Self.tlbBase(pid))
      tasks.append(t)
      cpus[s % options.cpus].runqueue.append(tasks.count - 1)
    }
    // Lost bursts spread over 5 … 80 % of the capture.
    if options.lostBursts > 0 && options.events > 0 {
      let maxSize = max(1, min(200, options.events / (20 * options.lostBursts)))
      for _ in 0..<options.lostBursts {
        let at = options.events / 20 + self.rng.below(max(1, options.events * 3 / 4))
        bursts.append((at, self.rng.between(1, maxSize)))
      }
      bursts.sort { $0.at < $1.at }
    }
  }

  static let shellComms = ["sh", "bash", "systemd", "sshd", "gdm-session-wor", "tmux: server"]
  static let programs = [
    "ls", "cat", "true", "echo", "cut", "grep", "sed", "sleep", "awk", "sort", "head", "wc",
    "xargs", "find", "tar", "gzip", "make", "cc1", "as", "ld", "git", "ssh", "python3",
    "perl", "Web Content", "systemd-udevd", "(sd-pam)", "kworker-helper", "my app v2",
    "node", "x86_64-linux-gn", "run-parts", "dbus-daemon", "Isolated Web Co",
  ]
  /// Return locations of `page_table_alloc` (`caller+off/size`), by use.
  static let pteCallers: [StaticString] = [
    "copy_page_range+0xd32/0x1500", "__handle_mm_fault+0xdda/0xf38",
    "__handle_mm_fault+0xcf6/0xf38", "__do_fault+0x7e/0x100", "__pte_alloc+0x2a/0x80",
    "move_page_tables+0x51c/0x9a0",
  ]
  static func tlbBase(_ pid: Int32) -> UInt64 {
    0x380_0007_f000 + UInt64(UInt32(bitPattern: pid) & 0xfff) * 0x8000
  }

  // MARK: Pools

  func allocMM() -> UInt64 {
    if let a = freeMMs.popLast() { return a }
    let a = nextMM
    nextMM += 0x400
    return a
  }

  func allocCRST() -> UInt64 {
    if let a = freeCRSTs.popLast() { return a }
    let a = nextCRST
    nextCRST += 0x4000
    // Keep CRSTs out of the PTE pages' range.
    if nextCRST == 0x3700000 { nextCRST = 0x4_0000_0000 }
    return a
  }

  // MARK: Header

  func header() throws(WriteError) {
    let lost = bursts.reduce(0) { $0 + $1.size }
    let n = options.events
    try out.literal("# tracer: nop\n#\n# entries-in-buffer/entries-written: ")
    try out.decimal(UInt64(n))
    try out.byte(UInt8(ascii: "/"))
    try out.decimal(UInt64(n + lost))
    try out.literal("   #P:")
    try out.decimal(UInt64(options.cpus))
    try out.literal(
      """

      #
      #                                _-----=> irqs-off/BH-disabled
      #                               / _----=> need-resched
      #                              | / _---=> hardirq/softirq
      #                              || / _--=> preempt-depth
      #                              ||| / _-=> migrate-disable
      #                              |||| /     delay
      #           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
      #              | |         |   |||||     |         |

      """)
    line = 12
    summary.lines = 12
  }

  // MARK: Main loop

  func simulate() throws(WriteError) {
    while printed < options.events {
      // The CPU whose next step comes first.
      var best = -1
      var bestTime = UInt64.max
      for c in cpus {
        let t = nextTime(c)
        if t < bestTime {
          bestTime = t
          best = c.index
        }
      }
      guard best >= 0 else { break }  // nothing can run (cannot happen: shells never end)
      let cpu = cpus[best]
      cpu.clock = bestTime
      try step(cpu)
    }
    // A burst still open at the end is reported where the capture ends.
    for c in cpus where c.dropped > 0 {
      try lostMarker(c)
    }
    normalizer.finish { replayer.apply($0) }
    summary.lines = line
    summary.events = printed
  }

  /// When `cpu` can do something next (`.max`: nothing to do).
  func nextTime(_ cpu: SimCPU) -> UInt64 {
    if cpu.current >= 0 || !cpu.runqueue.isEmpty || !cpu.pendingDrops.isEmpty {
      return cpu.clock
    }
    if let b = cpu.softirq.first { return max(cpu.clock, b.due) }
    return .max  // idle with nothing pending
  }

  func step(_ cpu: SimCPU) throws(WriteError) {
    // Softirq work that is due runs first (at an irq exit).
    if let b = cpu.softirq.first, b.due <= cpu.clock {
      try softirqStep(cpu)
      return
    }
    // Lazy mmdrop of an exited task's mm, in whatever runs next here.
    if !cpu.pendingDrops.isEmpty && (cpu.current < 0 || cpu.slice <= 0) {
      let mm = cpu.pendingDrops.removeFirst()
      let who = cpu.current >= 0 ? cpu.current : (cpu.runqueue.first ?? -1)
      try pgdFree(mm, cpu: cpu, task: who)
      advance(cpu, 5, 40)
      return
    }
    if cpu.current < 0 {
      guard !cpu.runqueue.isEmpty else { return }
      cpu.current = cpu.runqueue.removeFirst()
      cpu.slice = rng.between(2, 24)
      advance(cpu, 5, 60)
      return
    }
    let t = tasks[cpu.current]
    if t.next >= t.steps.count {
      t.steps.removeAll(keepingCapacity: true)
      t.next = 0
      // Between operations the task may be switched out.
      if cpu.slice <= 0 && !cpu.runqueue.isEmpty {
        cpu.runqueue.append(cpu.current)
        cpu.current = -1
        advance(cpu, 5, 50)
        return
      }
      plan(t, cpu)
      advance(cpu, 20, 1500)
      return
    }
    let s = t.steps[t.next]
    t.next += 1
    try run(s, t, cpu)
    if t.waiting && cpu.current >= 0 && tasks[cpu.current] === t {
      // A shell waiting for its child leaves the CPU.
      cpu.current = -1
    }
  }

  @inline(__always)
  func advance(_ cpu: SimCPU, _ loUs: Int, _ hiUs: Int) {
    cpu.clock += UInt64(rng.between(loUs, hiUs)) * 1000
  }

  // MARK: Planning (what a task does next)

  func plan(_ t: SimTask, _ cpu: SimCPU) {
    guard let mm = t.mm else { return }
    cpu.slice -= 1
    if t.isShell {
      if rng.chance(100) {
        churn(t, mm)
      } else {
        fork(t, cpu)
      }
      return
    }
    switch t.phase {
    case 0:
      // A COW fault or two in the forked mm, or none …
      for _ in 0..<rng.below(3) { alloc(t, mm, caller: 1 + rng.below(2)) }
      t.phase = 1
      if t.steps.isEmpty { fallthrough }
    case 1:
      // … then exec (planned once those tables exist: the teardown frees them).
      exec(t)
      t.phase = 2
      t.opsLeft = 2 + rng.below(1 + rng.below(60))
    default:
      if t.opsLeft <= 0 {
        teardown(t, mm)
        dropPGD(t, mm)
        t.steps.append(.exit)
        return
      }
      t.opsLeft -= 1
      if !mm.tables.isEmpty && rng.chance(250) {
        munmap(t, mm)
      } else {
        if mm.pmds.count < 4 && rng.chance(60) {
          t.steps.append(.crstEntry(mm))
          t.steps.append(.crstReturn(mm, birth: false))
        }
        alloc(t, mm, caller: rng.chance(100) ? 5 : 1 + rng.below(4))
        if rng.chance(4) {
          // __pte_alloc lost the race: the fresh table is freed at once (page_table_free).
          t.steps.append(.freeNow(mm))
        }
      }
    }
  }

  /// A shell maps and unmaps in its own mm (born before the capture).
  func churn(_ t: SimTask, _ mm: SimMM) {
    if mm.tables.count > 2 && rng.chance(500) {
      munmap(t, mm)
    } else if mm.tables.count < 24 {
      for _ in 0...rng.below(2) { alloc(t, mm, caller: 1 + rng.below(3)) }
    } else {
      munmap(t, mm)
    }
  }

  func alloc(_ t: SimTask, _ mm: SimMM, caller: Int) {
    t.steps.append(.pteEntry(mm))
    t.steps.append(.pteReturn(mm, caller: caller))
  }

  func fork(_ parent: SimTask, _ cpu: SimCPU) {
    guard let pmm = parent.mm else { return }
    let child = SimMM(address: allocMM())
    child.nextVM = 0x1000000
    parent.steps.append(.crstEntry(child))
    parent.steps.append(.crstReturn(child, birth: true))
    let n = max(2, min(pmm.tables.count, 12)) + rng.below(3)
    for i in 0..<n {
      if i == 0 || rng.chance(150) {
        parent.steps.append(.crstEntry(child))
        parent.steps.append(.crstReturn(child, birth: false))
      }
      alloc(parent, child, caller: 0)
    }
    let comm = Self.programs[rng.below(Self.programs.count)]
    // Children's pids start above the shells' (100 + 7·s) and never repeat a live task's.
    var pid = nextPid
    while tasks.contains(where: { $0.pid == pid && !$0.exited }) {
      pid = pid >= 32767 ? firstChildPid : pid + 1
    }
    nextPid = pid >= 32767 ? firstChildPid : pid + 1
    // Forked children often start on another CPU.
    let target = options.cpus > 1 && rng.chance(600) ? (cpu.index + 1 + rng.below(options.cpus - 1)) % options.cpus : cpu.index
    let task = SimTask(pid: pid, comm: comm, mm: child, isShell: false, cpu: target, tlb: Self.tlbBase(pid))
    task.parent = tasks.firstIndex { $0 === parent } ?? -1
    let index: Int
    if let free = freeTasks.popLast() {
      tasks[free] = task
      index = free
    } else {
      tasks.append(task)
      index = tasks.count - 1
    }
    parent.steps.append(.wakeChild(index))
  }

  /// exec: the new mm is born first (bprm_mm_init), then the old one is torn down.
  func exec(_ t: SimTask) {
    guard let old = t.mm else { return }
    let mm = SimMM(address: allocMM())
    mm.nextVM = 0x1000000
    t.steps.append(.crstEntry(mm))
    t.steps.append(.crstReturn(mm, birth: true))
    t.steps.append(.crstEntry(mm))
    t.steps.append(.crstReturn(mm, birth: false))
    alloc(t, mm, caller: 2)
    teardown(t, old)
    dropPGD(t, old)
    t.mm = mm
  }

  /// exit_mmap / exec_mmap: every table through the tlb batch, CRSTs queued untagged.
  func teardown(_ t: SimTask, _ mm: SimMM) {
    mm.tables.sort { $0.vmaddr < $1.vmaddr }
    let tables = mm.tables
    mm.tables.removeAll()
    var pmds = mm.pmds
    mm.pmds.removeAll()
    for (i, e) in tables.enumerated() {
      freeTLB(t, mm, e.table, e.vmaddr)
      if !pmds.isEmpty && (rng.chance(300) || i == tables.count - 1) {
        t.steps.append(.queueCRST(pmds.removeFirst()))
      }
    }
    for p in pmds { t.steps.append(.queueCRST(p)) }
    t.steps.append(.flush)
  }

  func munmap(_ t: SimTask, _ mm: SimMM) {
    let n = min(mm.tables.count, 1 + rng.below(3))
    for _ in 0..<n {
      let e = mm.tables.remove(at: rng.below(mm.tables.count))
      freeTLB(t, mm, e.table, e.vmaddr)
    }
    t.steps.append(.flush)
  }

  func freeTLB(_ t: SimTask, _ mm: SimMM, _ table: UInt64, _ vmaddr: UInt64) {
    t.steps.append(.freeRCU(mm, table, vmaddr))
    let tagged = dialect.taggedHalves ? table | ((table >> 11) & 1 + 1) : table
    t.steps.append(.queue(tagged))
    // tlb_remove_table_one: no batch page, the table is freed at once.
    if rng.chance(8) { t.steps.append(.syncExec(tagged)) }
  }

  func dropPGD(_ t: SimTask, _ mm: SimMM) {
    t.steps.append(rng.chance(500) ? .pgdFree(mm) : .lazyDrop(mm))
  }

  // MARK: Running steps

  func run(_ s: Step, _ t: SimTask, _ cpu: SimCPU) throws(WriteError) {
    let index = cpu.current
    switch s {
    case .crstEntry(let mm):
      try probe(
        cpu, task: index, fn: .crstTableAlloc, kind: .entry, event: "crst_table_alloc",
        site: "crst_table_alloc+0x0/0x70", mm: mm.address)
      advance(cpu, 8, 60)
    case .crstReturn(let mm, let birth):
      let table = allocCRST()
      if birth { mm.pgd = table } else { mm.pmds.append(table) }
      try probe(
        cpu, task: index, fn: .crstTableAlloc, kind: .ret, event: "crst_table_alloc_ret",
        caller: birth ? "mm_init+0x166/0x3a8" : "__pmd_alloc+0x2a/0x188", table: table,
        callerRole: birth ? .mmInit : .other)
      if birth { summary.mmsBorn += 1 }
      advance(cpu, 10, 200)
    case .pteEntry(let mm):
      try probe(
        cpu, task: index, fn: .pageTableAlloc, kind: .entry, event: "page_table_alloc",
        site: "page_table_alloc+0x0/0x2c8", mm: mm.address)
      advance(cpu, 8, 90)
    case .pteReturn(let mm, let caller):
      // The model says which table the kernel hands out now.
      var pool = freePages
      var next = nextPage
      let table = replayer.model.simulateAlloc(mm: mm.address) {
        if let p = pool.popLast() { return p }
        defer { next += 0x1000 }
        return next
      }
      freePages = pool
      nextPage = next
      mm.tables.append((table, mm.nextVM))
      mm.nextVM += rng.chance(850) ? 0x100000 : 0x100000 * UInt64(rng.between(2, 64))
      summary.allocations += 1
      try probe(
        cpu, task: index, fn: .pageTableAlloc, kind: .ret, event: "page_table_alloc_ret",
        caller: Self.pteCallers[caller], table: table)
      advance(cpu, 10, 400)
    case .freeRCU(_, let table, let vmaddr):
      try probe(
        cpu, task: index, fn: .pageTableFreeRCU, kind: .entry, event: "page_table_free_rcu",
        site: "page_table_free_rcu+0x0/0x188", table: table, tlb: t.tlb, vmaddr: vmaddr)
      advance(cpu, 3, 30)
    case .queue(let tagged), .queueCRST(let tagged):
      t.batch.append(tagged)
      try probe(
        cpu, task: index, fn: .tlbRemoveTable, kind: .entry, event: "tlb_remove_table",
        site: "tlb_remove_table+0x0/0x288", table: tagged, tlb: t.tlb)
      advance(cpu, 3, 20)
    case .syncExec(let tagged):
      t.batch.removeAll { $0 == tagged }
      executed(tagged)
      try probe(
        cpu, task: index, fn: .tlbRemoveTableExec, kind: .entry, event: "__tlb_remove_table",
        site: "__tlb_remove_table+0x0/0xe8", table: tagged)
      advance(cpu, 3, 20)
    case .freeNow(let mm):
      // The table the task just got (the last one appended).
      guard let e = mm.tables.popLast() else { return }
      try probe(
        cpu, task: index, fn: .pageTableFree, kind: .entry, event: "page_table_free",
        site: "page_table_free+0x0/0x150", mm: mm.address, table: e.table)
      advance(cpu, 5, 40)
    case .pgdFree(let mm):
      try pgdFree(mm, cpu: cpu, task: index)
      advance(cpu, 5, 60)
    case .flush:
      t.tlb = t.tlb &+ 0x10 * UInt64(rng.between(0, 3))
      guard !t.batch.isEmpty else { return }
      // tlb_finish_mmu → tlb_table_flush → call_rcu on the CPU the task runs on at that
      // moment, and RCU invokes that CPU's callbacks there, in the order they were queued.
      // Now and then the task was migrated while it gathered: it flushes on another CPU (and
      // goes on there), so its entries, queued here, run there, after that CPU's earlier
      // batches. (A batch once went to another CPU's queue while its task stayed here: it
      // could run before an earlier batch of this CPU that then never ran, which no kernel
      // does.)
      let migrate = options.cpus > 1 && rng.chance(300)
      let target = migrate ? (cpu.index + 1 + rng.below(options.cpus - 1)) % options.cpus : cpu.index
      let q = cpus[target]
      let grace = UInt64(rng.between(3_000, 40_000)) * 1000
      let due = max(cpu.clock + grace, q.lastBatchDue + 1)
      q.lastBatchDue = due
      let b = SoftirqBatch(due: due, tables: t.batch, context: rng.chance(250) ? -1 : -2)
      t.batch.removeAll(keepingCapacity: true)
      let at = q.softirq.firstIndex { $0.due > b.due } ?? q.softirq.count
      q.softirq.insert(b, at: at)
      if migrate && cpu.current == index {
        // The task goes on on the other CPU (its next line is printed there).
        cpu.current = -1
        t.cpu = target
        q.runqueue.append(index)
        if q.current < 0 && q.runqueue.count == 1 { q.clock = max(q.clock, cpu.clock + 10_000) }
      }
    case .lazyDrop(let mm):
      cpu.pendingDrops.append(mm)
    case .wakeChild(let child):
      t.waiting = true  // the shell waits for it
      let c = tasks[child]
      let q = cpus[c.cpu]
      q.runqueue.append(child)
      if q.current < 0 && q.runqueue.count == 1 { q.clock = max(q.clock, cpu.clock + 30_000) }
    case .exit:
      cpu.current = -1
      t.exited = true
      freeTasks.append(index)
      if t.parent >= 0 {
        let p = tasks[t.parent]
        p.waiting = false
        let q = cpus[p.cpu]
        q.runqueue.append(t.parent)
        q.clock = max(q.clock, cpu.clock + 20_000)
      }
    }
  }

  /// A batch entry ran: an untagged (CRST) table goes back to its pool.
  func executed(_ tagged: UInt64) {
    if dialect.taggedHalves && tagged & 3 == 0 { freeCRSTs.append(tagged) }
  }

  func pgdFree(_ mm: SimMM, cpu: SimCPU, task: Int) throws(WriteError) {
    try probe(
      cpu, task: task, fn: .crstTableFree, kind: .entry, event: "crst_table_free",
      site: "crst_table_free+0x0/0x18", mm: mm.address, table: mm.pgd)
    freeCRSTs.append(mm.pgd)
    freeMMs.append(mm.address)
    summary.mmsDied += 1
  }

  func softirqStep(_ cpu: SimCPU) throws(WriteError) {
    var b = cpu.softirq[0]
    if b.context == -2 {
      b.context = cpu.current >= 0 ? cpu.current : -3  // -3: idle
    }
    let tagged = b.tables[b.next]
    b.next += 1
    executed(tagged)
    let task: Int
    let who: Who
    switch b.context {
    case -1: who = .ksoftirqd; task = -1
    case -3: who = .idle; task = -1
    default: who = .task; task = b.context
    }
    try probe(
      cpu, task: task, who: who, flags: .softirq, fn: .tlbRemoveTableExec, kind: .entry,
      event: "__tlb_remove_table", site: "__tlb_remove_table+0x0/0xe8", table: tagged)
    if b.context == -3 && cpu.current < 0 && !cpu.runqueue.isEmpty { b.context = -1 }
    if b.next == b.tables.count {
      cpu.softirq.removeFirst()
    } else {
      cpu.softirq[0] = b
    }
    // Execution of one entry: a few microseconds.
    advance(cpu, 2, 40)
  }

  // MARK: Printing and feeding the model

  enum Who { case task, idle, ksoftirqd }
  enum Flags { case normal, softirq }

  func probe(
    _ cpu: SimCPU, task: Int, who: Who = .task, flags: Flags = .normal, fn: KernelFunction,
    kind: ProbeHit.Kind, event: StaticString, site: StaticString = "",
    caller: StaticString = "", mm: UInt64? = nil, table: UInt64? = nil, tlb: UInt64? = nil,
    vmaddr: UInt64? = nil, callerRole: CallerRole = .other
  ) throws(WriteError) {
    // Lost-event bursts: this CPU's events are dropped (the kernel still did them).
    if nextBurst < bursts.count && printed >= bursts[nextBurst].at && cpu.dropping == 0
      && cpu.dropped == 0
    {
      cpu.dropping = bursts[nextBurst].size
      nextBurst += 1
    }
    let drop = cpu.dropping > 0
    if drop {
      cpu.dropping -= 1
      cpu.dropped += 1
      summary.lostEvents += 1
    } else if cpu.dropped > 0 {
      try lostMarker(cpu)
    }
    var pid: Int32 = 0
    var commBytes: [UInt8]
    switch (who, task) {
    case (.task, let i) where i >= 0:
      pid = tasks[i].pid
      commBytes = tasks[i].comm
    case (.ksoftirqd, _):
      pid = Int32(13 + 8 * cpu.index)
      commBytes = Array("ksoftirqd/\(cpu.index)".utf8)
    default:
      commBytes = Array("<idle>".utf8)
    }
    var hit = ProbeHit(
      line: line + 1, timestampNs: cpu.clock, cpu: Int32(cpu.index), pid: pid,
      comm: commBytes.withUnsafeBufferPointer { Comm($0) }, function: fn, kind: kind,
      caller: callerRole)
    if kind == .ret {
      hit.retval = table
    } else {
      hit.mm = mm
      hit.table = table
      hit.tlb = tlb
      hit.vmaddr = vmaddr
    }
    feed(hit)
    if drop { return }
    let flagBytes: StaticString =
      flags == .softirq ? (rng.chance(200) ? ".ns.." : "..s..") : "....."
    try commBytes.withUnsafeBufferPointer { (c) throws(WriteError) in
      try TextLineWriter.context(
        out, comm: c, pid: pid, cpu: Int32(cpu.index), flags: Self.view(flagBytes),
        timestampNs: cpu.clock)
    }
    if kind == .ret {
      try TextLineWriter.ret(
        out, event: Self.view(event), caller: Self.view(caller), function: Self.view(fn))
      try TextLineWriter.value(out, name: "table", table ?? 0)
    } else {
      try TextLineWriter.entry(out, event: Self.view(event), site: Self.view(site))
      if let tlb { try TextLineWriter.value(out, name: "tlb", tlb) }
      if let mm { try TextLineWriter.value(out, name: "mm", mm) }
      if let table { try TextLineWriter.value(out, name: "table", table) }
      if let vmaddr { try TextLineWriter.value(out, name: "vmaddr", vmaddr) }
    }
    try out.byte(0x0A)
    line += 1
    printed += 1
  }

  func lostMarker(_ cpu: SimCPU) throws(WriteError) {
    try TextLineWriter.lost(out, cpu: Int32(cpu.index), events: UInt64(cpu.dropped))
    try out.byte(0x0A)
    line += 1
    summary.lostMarkers += 1
    feed(LostMarker(line: line, cpu: Int32(cpu.index), count: UInt64(cpu.dropped)))
    cpu.dropped = 0
  }

  /// Feeds one hit to the model; a page the model released goes back to the fresh pool.
  func feed(_ hit: ProbeHit) {
    let before = replayer.model.occupancy.pagesHeld
    var released: UInt64? = nil
    normalizer.feed(hit) { e in
      replayer.apply(e)
      released = e.table
    }
    if let t = released, replayer.model.occupancy.pagesHeld < before {
      freePages.append((t & ~3) & ~0xfff)
    }
  }

  func feed(_ m: LostMarker) {
    normalizer.feed(.lost(m)) { replayer.apply($0) }
  }

  static func view(_ s: StaticString) -> ByteView {
    ByteView(start: s.utf8Start, count: s.utf8CodeUnitCount)
  }

  static func view(_ f: KernelFunction) -> ByteView {
    switch f {
    case .pageTableAlloc: view("page_table_alloc")
    case .crstTableAlloc: view("crst_table_alloc")
    default: view("")
    }
  }
}
