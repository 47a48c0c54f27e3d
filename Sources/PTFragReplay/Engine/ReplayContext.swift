import PTFragEvents

/// The architecture whose kernel a model encodes: what its reports call the functions and the
/// upper-level tables, and which probe sets fit its captures.
public enum Architecture: String, Sendable {
  case s390
  case powerpc
}

/// What a model is, for `ptfrag models`, reports and JUnit test cases — and the one place
/// that says which mainline kernels it encodes, so the probe sets and the default follow it.
public struct ModelDescriptor: Sendable {
  /// Stable id used on the command line (`s390-6.1`).
  public var id: String
  /// Kernel versions whose allocator the model encodes.
  public var kernels: String
  /// Kernel commits the model encodes (short id and title).
  public var commits: [String]
  /// Kernel functions whose decisions the model reproduces.
  public var functions: [String]
  /// One line.
  public var summary: String
  /// Every rule the model can report.
  public var rules: [Rule]
  /// No kernel ever ran this allocator (the 2023 proposals): its allocation choices can be
  /// checked only on its own simulation (`ReplayContext.simulating`), never on a capture.
  public var simulationOnly = false
  /// Ids of the models whose kernels' captures this model can replay (its own id for a
  /// model of a real kernel). See `ModelCheck` and `checksNotApplicable(toCaptureOf:)`.
  public var replayableOn: [String] = []
  /// What the model checks, and where each check applies (empty: every rule, everywhere).
  public var checks: [ModelCheck] = []
  /// What a reader of its figures must know (e.g. a proposal modelled as posted, bug and
  /// all); printed by `ptfrag models` and beside its `compare` row.
  public var notes: [String] = []
  public var architecture: Architecture = .s390
  /// How `ptfrag synth` prints this model's captures (nil: synth cannot): `taggedHalves`,
  /// `pte_free_tlb` goes through `page_table_free_rcu` and tags the queued table with its
  /// half (1 lower, 2 upper), CRST tables untagged (A, v5.17 … v6.5).
  public var synth: SynthFormat? = nil
  public struct SynthFormat: Sendable {
    public var taggedHalves: Bool
  }
  /// The mainline versions whose allocator this model is, `(major, minor)` from … through
  /// (nil: a proposal, or a preset not tied to versions). `ptfrag probes --kernel V` names the
  /// s390 model whose range holds V.
  public var mainline: (from: (Int, Int), through: (Int, Int))? = nil
  /// Whether the version (major, minor) is one of `mainline`'s.
  public func encodes(_ major: Int, _ minor: Int) -> Bool {
    guard let r = mainline else { return false }
    return (major, minor) >= r.from && (major, minor) <= r.through
  }
  public init(
    id: String, kernels: String, commits: [String], functions: [String], summary: String,
    rules: [Rule], architecture: Architecture = .s390,
    mainline: (from: (Int, Int), through: (Int, Int))? = nil
  ) {
    self.architecture = architecture
    self.mainline = mainline
    self.id = id
    self.kernels = kernels
    self.commits = commits
    self.functions = functions
    self.summary = summary
    self.rules = rules
  }
}

/// Counters every replay keeps.
public struct ReplayStats: Sendable {
  /// Allocations whose result the model predicted and checked.
  public var allocationsPredicted = 0
  /// Allocations the model could not predict (mm born before the capture, state unknown).
  public var allocationsUnverified = 0
  /// Allocations that returned NULL (ENOMEM).
  public var allocationsFailed = 0
  /// Frees (now/tlb) of tables the capture never saw allocated.
  public var freesUntracked = 0
  /// tlb executions of tables the capture never saw freed.
  public var execsUntracked = 0
  /// mms whose birth the capture holds / mms seen in total.
  public var mmsBorn = 0
  public var mmsSeen = 0
  public var mmsDied = 0
  /// Peak of pages the model held at once.
  public var peakPages = 0
  /// Pages held at the end of the capture.
  public var pagesAtEnd = 0
  /// Tables live (allocated, not freed) at the end.
  public var tablesLiveAtEnd = 0
  /// Events seen by kind.
  public var eventsByKind: [Event.Kind: Int] = [:]
  /// `LOST` markers and the events they count.
  public var lostMarkers = 0
  public var lostEvents: UInt64 = 0
  /// Allocation outcomes accepted only because a concurrent operation was in flight.
  public var concurrencyResolved = 0
  /// Pages held and tables live over time (peaks, time-weighted means, waste ratio).
  public var occupancy = OccupancyTimeline()
  /// The same, bounded, for plots.
  public var series = OccupancySeries()
  /// Per mm (set when the replay ends; see `MMOccupancyBook`): sorted by peak pages held.
  public var perMM: [MMOccupancyRecord] = []
  /// mm records left out of `perMM` (beyond its cap).
  public var perMMDropped = 0
  public init() {}
}

/// The services the replay engine offers a model: findings, inconclusive items, page
/// histories, counters, and what the kprobe_profile says about silent misses.
/// Models know nothing of formats or reports; they talk to this.
public final class ReplayContext {
  // @exclusivity(unchecked): single-threaded, no overlapping access; the runtime checks
  // cost a measurable share of the per-event path.
  @exclusivity(unchecked) public var stats = ReplayStats()
  public private(set) var findings: [Finding] = []
  public private(set) var inconclusive: [Inconclusive] = []
  /// Findings beyond the per-rule cap: counted, not kept.
  public private(set) var droppedFindings: [String: Int] = [:]
  /// Findings kept per rule (the count is exact; detail is capped).
  public var maxFindingsPerRule = 200
  public var maxInconclusiveKept = 2000
  public private(set) var droppedInconclusive = 0
  /// Items beyond the cap, still settled exactly at the end (by the profile, as kept items
  /// are): those that hinge on probes, grouped by their probes and the rule they would be
  /// (the first one's finding kept, so a zero-miss profile still fails on them), and the
  /// others, which stay unexplained.
  public private(set) var droppedHinging: [DroppedItems.Key: DroppedItems] = [:]
  public private(set) var droppedOpen = 0
  private var perRule: [String: Int] = [:]
  /// Count of findings by rule id (exact, including dropped).
  public private(set) var countsByRule: [String: Int] = [:]

  @exclusivity(unchecked) private var histories = AddressMap<HistoryRing>()
  /// Released pages' histories, for a while (reuse-as-fresh findings cite them).
  @exclusivity(unchecked) private var recentlyReleased = AddressMap<HistoryRing>()
  @exclusivity(unchecked) private var releasedOrder: [UInt64] = []
  @exclusivity(unchecked) private var releasedHead = 0
  private let recentlyReleasedCap = 4096

  /// The events come from this model's own `simulateAlloc` (what-if, synthetic workloads),
  /// not from a kernel: a simulation-only model checks its allocation choices only then.
  public var simulating = false
  /// Page histories are kept for findings (off in `compare`'s simulations, whose findings
  /// are self-checks printed without one).
  public var keepsHistory = true

  /// Per-mm occupancy, kept by the model, sampled by the engine after each event.
  public var mmBook = MMOccupancyBook()

  // MARK: Simulation hooks (a model calls them; they do nothing unless a driver listens)

  /// A what-if driver (`Simulation`): receives every `call_rcu` a simulated model makes, as
  /// the event its callback will be (`.rcuFree` with the `pte_free_now` argument, or
  /// `.tlbExec` with the tagged table for a per-half callback), and delivers it later.
  public var onCallRCU: ((Event.Kind, UInt64) -> Void)?
  /// A workload recorder: receives what the replay infers the kernel did without the
  /// capture showing it (a missed `__tlb_remove_table` when it resynchronises).
  public var onInferred: ((InferredOperation) -> Void)?
  /// A simulated page allocator: receives every page the model gives back to the buddy
  /// allocator (`released(page:)`).
  public var onRelease: ((UInt64) -> Void)?

  /// `call_rcu` during a simulation: `kind`/`table` is the callback's event.
  @inline(__always)
  public func callRCU(_ kind: Event.Kind, _ table: UInt64) { onCallRCU?(kind, table) }

  /// The replay resynchronised on an operation the capture did not show.
  @inline(__always)
  public func inferred(_ op: InferredOperation) { onInferred?(op) }

  public init() {}

  /// Events by `Event.Kind.rawValue` (an array: the per-event count needs no hashing),
  /// folded into `stats.eventsByKind` by `foldKindCounts()` at the end.
  @exclusivity(unchecked) private var kindCounts = [Int](repeating: 0, count: Event.Kind.allCases.count)

  @inline(__always)
  public func count(_ kind: Event.Kind) { kindCounts[Int(kind.rawValue)] += 1 }

  /// Adds the counts of `count(_:)` to `stats.eventsByKind` (once, at the end of a replay).
  public func foldKindCounts() {
    for k in Event.Kind.allCases where kindCounts[Int(k.rawValue)] > 0 {
      stats.eventsByKind[k, default: 0] += kindCounts[Int(k.rawValue)]
      kindCounts[Int(k.rawValue)] = 0
    }
  }

  /// Records `event` in the history of `page`.
  @inline(__always)
  public func record(page: UInt64, _ e: Event, mm: UInt64?) {
    guard keepsHistory else { return }
    let entry = HistoryEntry(
      line: e.line, timestampNs: e.timestampNs, cpu: e.cpu, pid: e.pid, kind: e.kind,
      table: e.table, mm: mm)
    histories.modify(page, default: HistoryRing()) { $0.append(entry) }
  }

  /// The page left the allocator: its history moves to a bounded recently-released set.
  public func released(page: UInt64) {
    onRelease?(page)
    guard let h = histories.removeValue(forKey: page) else { return }
    if recentlyReleased[page] != nil {
      // Released before and still remembered: keep its slot in the order, newest history.
      recentlyReleased[page] = h
      return
    }
    if releasedOrder.count < recentlyReleasedCap {
      releasedOrder.append(page)
    } else {
      recentlyReleased[releasedOrder[releasedHead]] = nil
      releasedOrder[releasedHead] = page
      releasedHead = (releasedHead + 1) % recentlyReleasedCap
    }
    recentlyReleased[page] = h
  }

  /// Earlier events of `page`, oldest first.
  public func history(of page: UInt64) -> [HistoryEntry] {
    (histories[page] ?? recentlyReleased[page])?.entries ?? []
  }

  public func report(_ f: Finding) {
    var f = f
    countsByRule[f.rule.id, default: 0] += 1
    let n = perRule[f.rule.id, default: 0]
    if n >= maxFindingsPerRule {
      droppedFindings[f.rule.id, default: 0] += 1
      return
    }
    perRule[f.rule.id] = n + 1
    if let p = f.page { f.history = history(of: p).filter { $0.line < f.line } }
    findings.append(f)
  }

  public func report(_ i: Inconclusive) {
    if inconclusive.count >= maxInconclusiveKept {
      droppedInconclusive += 1
      if let f = i.hingesOn {
        let key = DroppedItems.Key(probes: [f] + i.alternatives, rule: i.asFinding?.rule.id)
        droppedHinging[key, default: DroppedItems(first: i.asFinding)].count += 1
      } else {
        droppedOpen += 1
      }
      return
    }
    var i = i
    if let p = i.page { i.history = history(of: p).filter { $0.line < i.line } }
    if var f = i.asFinding, let p = f.page {
      f.history = history(of: p).filter { $0.line < f.line }
      i.asFinding = f
    }
    inconclusive.append(i)
  }

  /// Findings kept so far (for a model to amend the ones its current event produced).
  public var findingCount: Int { findings.count }

  /// Sets the "after" state of the findings reported since `index` about `page`: a model
  /// reports before it applies what the kernel did, and knows the outcome only after.
  public func amendStateAfter(since index: Int, page: UInt64, _ state: String) {
    guard index < findings.count else { return }
    for i in index..<findings.count where findings[i].page == page { findings[i].stateAfter = state }
  }

  /// Settles an inconclusive item as the finding it hinged on (the profile shows no misses).
  func settle(_ f: Finding) {
    countsByRule[f.rule.id, default: 0] += 1
  }

  /// `n` more findings of `rule`, counted and not kept in detail.
  func countDropped(rule: String, _ n: Int) {
    countsByRule[rule, default: 0] += n
    droppedFindings[rule, default: 0] += n
  }

  /// The capture lost events: the findings of `rule` beyond the detail cap become inconclusive
  /// items beyond it (counted, unexplained), as the kept ones become inconclusive items.
  /// Returns how many.
  func demoteDropped(rule: String) -> Int {
    guard let n = droppedFindings.removeValue(forKey: rule) else { return 0 }
    countsByRule[rule, default: 0] -= n
    if countsByRule[rule] == 0 { countsByRule[rule] = nil }
    droppedInconclusive += n
    droppedOpen += n
    return n
  }

  /// Used by the engine at the end (downgrades, explanations).
  func rewrite(findings: [Finding], inconclusive: [Inconclusive]) {
    self.findings = findings
    self.inconclusive = inconclusive
  }
  func forget(rule: String) {
    countsByRule[rule, default: 0] -= 1
    if countsByRule[rule] == 0 { countsByRule[rule] = nil }
  }

  public var pagesWithHistory: Int { histories.count }
}

/// Inconclusive items beyond the detail cap that hinge on the same probes and would be the
/// same rule: how many, and the first one's finding.
public struct DroppedItems: Sendable {
  public struct Key: Hashable, Sendable {
    public var probes: [KernelFunction]
    public var rule: String?
  }
  public var first: Finding?
  public var count = 0
}

/// The last few events of a page (fixed capacity, no allocation after the first).
struct HistoryRing {
  static let capacity = 8
  private var items: [HistoryEntry] = []
  private var next = 0
  mutating func append(_ e: HistoryEntry) {
    if items.count < Self.capacity {
      if items.isEmpty { items.reserveCapacity(Self.capacity) }  // one allocation per page
      items.append(e)
    } else {
      items[next] = e
      next = (next + 1) % Self.capacity
    }
  }
  var entries: [HistoryEntry] {
    items.count < Self.capacity ? items : Array(items[next...] + items[..<next])
  }
}

/// An operation the replay concludes the kernel did although the capture does not show it
/// (silent kprobe misses), reported when the model resynchronises.
public enum InferredOperation: Sendable, Equatable {
  /// `__tlb_remove_table` of `table` (the table address, tag bits cleared) ran unseen.
  case exec(table: UInt64)
  /// The table was freed unseen (no tlb batch): its page came back as a fresh page.
  case free(table: UInt64)
}

/// What the allocator holds at one moment, in table slots (s390: 2 KiB halves; powerpc:
/// fragments; one-table-per-page variants: 1 slot per page).
///
/// `slotsHeld = live + pending + unknown + reusableNow + reusableLater + stranded`
/// (docs/kernel-models.md §8: waste = held − live − pending − unknown, split three ways).
public struct Occupancy: Sendable, Equatable {
  /// Pages (of `pageBytes`) the allocator owns.
  public var pagesHeld = 0
  /// Bytes per page and slots per page of this model.
  public var pageBytes = 4096
  public var slotsPerPage = 2
  /// Tables allocated and not freed.
  public var live = 0
  /// Slots waiting for a tlb execution or an RCU grace period.
  public var pending = 0
  /// Slots whose state the capture does not show (history before the capture).
  public var unknown = 0
  /// Free slots the next allocation takes (the list head's free half; ppc cursor slots).
  public var reusableNow = 0
  /// Free slots on listed pages behind the head.
  public var reusableLater = 0
  /// Free slots that cannot be reused before their page is released.
  public var stranded = 0
  public init() {}
  public var slotsHeld: Int { pagesHeld * slotsPerPage }
  public var waste: Int { reusableNow + reusableLater + stranded }
}

/// A replayable allocator model. One instance replays one capture.
public protocol AllocatorModel: AnyObject {
  static var descriptor: ModelDescriptor { get }
  init(context: ReplayContext)
  /// Applies one event (in input order).
  func apply(_ e: Event)
  /// End of input at `line` (the last line number).
  func finish(lastLine: Int)
  /// What the allocator holds now. O(1): the engine reads it after every event.
  var occupancy: Occupancy { get }
  /// Simulation (what-if): the table this kernel would hand `mm` now, without applying it.
  /// `fresh()` returns the base of a new page from the buddy allocator when one is needed.
  /// The caller then applies the matching `.alloc` event.
  func simulateAlloc(mm: UInt64, fresh: () -> UInt64) -> UInt64
  /// Simulation (what-if): the events this model's kernel shows for one operation of a
  /// workload, in order (`SimulatedOperation`). The default is the s390 2 KiB-fragment
  /// vocabulary; one-table-per-page s390 and powerpc have their own.
  func kernelEvents(for op: SimulatedOperation, _ emit: (SimulatedEvent) -> Void)
  /// Simulation (what-if): what a reader of this strategy's figures must know about this
  /// run (e.g. pages a proposal's posted code never frees). Empty by default.
  var simulationNotes: [String] { get }
}

extension AllocatorModel {
  public var simulationNotes: [String] { [] }
}
