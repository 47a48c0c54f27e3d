import PTFragEvents

/// How bad a finding is. Ordered: `info < warning < error`.
public enum Severity: Int, Comparable, Sendable, CaseIterable, CustomStringConvertible {
  case info = 0, warning = 1, error = 2
  public static func < (a: Severity, b: Severity) -> Bool { a.rawValue < b.rawValue }
  public var description: String {
    switch self {
    case .info: "info"
    case .warning: "warning"
    case .error: "error"
    }
  }
}

/// What a rule needs from a capture before it can be checked at all.
public enum RuleRequirement: Sendable, Hashable {
  /// The rule judges predicted allocations: it needs an mm born in the capture (its list
  /// state known). Without one, the rule is skipped, not passed.
  case predictedAllocations
}

/// A rule a model checks: a stable kebab-case id, its severity, and what it means.
public struct Rule: Sendable, Hashable {
  public var key: RuleID
  /// The stable kebab-case id users see.
  public var id: String { key.rawValue }
  public var severity: Severity
  /// One line: what firing means.
  public var summary: String
  /// What the capture must hold for the rule to be checked (nil: always checked).
  public var requires: RuleRequirement?
  public init(_ id: RuleID, _ severity: Severity, _ summary: String, requires: RuleRequirement? = nil) {
    self.key = id
    self.severity = severity
    self.summary = summary
    self.requires = requires
  }
}

/// One earlier event of a page, as kept in its history ring.
public struct HistoryEntry: Sendable, Equatable {
  /// 1-based input line.
  public var line: Int
  public var timestampNs: UInt64
  public var cpu: Int32
  public var pid: Int32
  public var kind: Event.Kind
  public var table: UInt64
  public var mm: UInt64?
  public init(
    line: Int, timestampNs: UInt64, cpu: Int32, pid: Int32, kind: Event.Kind, table: UInt64,
    mm: UInt64?
  ) {
    self.line = line
    self.timestampNs = timestampNs
    self.cpu = cpu
    self.pid = pid
    self.kind = kind
    self.table = table
    self.mm = mm
  }
}

/// Where in its page a finding's table lies.
public enum TableLocation: Sendable, Hashable {
  /// An s390 2 KiB half: 0 the lower (page + 0), 1 the upper (page + 2048).
  case half(Int)
  /// A pgtable-frag.c fragment (powerpc), by index in its page.
  case fragment(Int)

  /// The index: the half or the fragment.
  public var index: Int {
    switch self {
    case .half(let h), .fragment(let h): h
    }
  }

  /// "lower half", "upper half", "fragment 7".
  public var text: String {
    switch self {
    case .half(let h): h == 0 ? "lower half" : "upper half"
    case .fragment(let i): "fragment \(i)"
    }
  }
}

/// Something the replay found: the log shows what the model says cannot happen.
public struct Finding: Sendable {
  public var rule: Rule
  /// Where: 1-based line of the event that forced the divergence.
  public var line: Int
  public var timestampNs: UInt64
  public var cpu: Int32
  public var pid: Int32
  public var comm: Comm
  public var mm: UInt64?
  /// Base address of the page (4 KiB on s390).
  public var page: UInt64?
  /// The table's place in its page (nil: the whole page, or not a table).
  public var location: TableLocation?
  /// The index of `location` (the half on s390, the fragment on powerpc).
  public var half: Int? { location?.index }
  /// What the event was (its kernel function), for the baseline signature.
  public var kind: Event.Kind
  /// Model state of the page (or the mm's list) before and after the event, in the
  /// notation of docs/kernel-models.md ("Letters and model ids", e.g. `AP L`, `PF –`).
  public var stateBefore: String
  public var stateAfter: String
  /// One line: what happened and why the model forbids it.
  public var message: String
  /// The page's earlier events (oldest first), with their lines.
  public var history: [HistoryEntry]
  /// Other lines that matter (the entry of an alloc, the free that made a half pending…).
  public var relatedLines: [Int]
  /// Listed in the `--baseline` given: reported as known, never fails the verdict.
  public var known = false

  public init(
    rule: Rule, event: Event, mm: UInt64?, page: UInt64?, half: Int?, fragment: Bool = false,
    stateBefore: String, stateAfter: String, message: String, relatedLines: [Int] = []
  ) {
    self.kind = event.kind
    self.rule = rule
    self.line = event.line
    self.timestampNs = event.timestampNs
    self.cpu = event.cpu
    self.pid = event.pid
    self.comm = event.comm
    self.mm = mm
    self.page = page
    self.location = half.map { fragment ? .fragment($0) : .half($0) }
    self.stateBefore = stateBefore
    self.stateAfter = stateAfter
    self.message = message
    self.history = []
    self.relatedLines = relatedLines
  }
}

/// Why the replay cannot decide (never a false alarm, never silence).
public enum InconclusiveReason: String, Sendable, CaseIterable {
  /// A `__tlb_remove_table` probably fired while another kprobe ran (kprobe_profile misses).
  case missedTLBExec = "missed-tlb-exec"
  /// Another probe's silent misses could explain what was seen.
  case missedProbe = "missed-probe"
  /// `CPU:N [LOST M EVENTS]`, or overwritten entries in the header.
  case lostEvents = "lost-events"
  /// Concurrent operations inside an alloc's entry→return window leave the order open.
  case concurrency = "concurrency"
  /// The capture ended (or the task entered again) while an allocation was in flight.
  case unreturnedAlloc = "unreturned-alloc"
  /// A divergence on state established before the capture started.
  case beforeCapture = "before-capture"
  /// The capture holds no page-table events at all.
  case noEvents = "no-events"
  /// `--model auto` chose a model the rest of the capture contradicts (evidence past the
  /// detection look-ahead, e.g. `pte_free_defer` under s390-6.1).
  case modelMismatch = "model-mismatch"
  /// A reading the replay inferred (an mm's tables are pgste, whole pages) that a later event
  /// refutes: events of that mm are probably missing from the capture.
  case inferenceRefuted = "inference-refuted"
}

/// An item the replay could not decide, with what would explain it.
public struct Inconclusive: Sendable {
  public var reason: InconclusiveReason
  /// 1-based line.
  public var line: Int
  public var mm: UInt64?
  public var page: UInt64?
  public var message: String
  /// The rule that would have fired had the capture been complete (if any).
  public var wouldBeRule: String?
  /// Evidence that explains the item (e.g. "kprobe_profile: __tlb_remove_table missed 7").
  /// Explained items do not make the verdict inconclusive.
  public var explainedBy: String?
  public var history: [HistoryEntry]
  /// The probe whose silent misses would explain the item. When a kprobe_profile shows no
  /// misses of it, the item is settled as `asFinding`; when it shows misses, as explained.
  public var hingesOn: KernelFunction?
  /// Other probes whose silent miss explains the item as well (a table released with its A
  /// bit set: its free may have gone through any of the free functions). The item is a
  /// finding only when the profile shows no miss of any of them; explained, it is charged to
  /// the first with misses left in the budget, which becomes `hingesOn`.
  public var alternatives: [KernelFunction] = []
  /// What the item becomes when the capture provably missed nothing.
  public var asFinding: Finding?

  public init(
    reason: InconclusiveReason, line: Int, mm: UInt64? = nil, page: UInt64? = nil,
    message: String, wouldBeRule: RuleID? = nil, hingesOn: KernelFunction? = nil,
    alternatives: [KernelFunction] = [], asFinding: Finding? = nil, explainedBy: String? = nil
  ) {
    self.hingesOn = hingesOn
    self.alternatives = alternatives
    self.asFinding = asFinding
    self.reason = reason
    self.line = line
    self.mm = mm
    self.page = page
    self.message = message
    self.wouldBeRule = wouldBeRule?.rawValue
    self.explainedBy = explainedBy
    self.history = []
  }

  /// The item for `finding` that a silent miss of `probe` (or of one of `alternatives`)
  /// would explain: the finding's line, mm, page and rule. With `carry` (the first item a
  /// probe explains at one event) the finding travels with the item and is reported as it
  /// when the kprobe_profile shows that the probe missed nothing.
  public init(
    _ reason: InconclusiveReason, missOf probe: KernelFunction, _ finding: Finding,
    _ message: String, alternatives: [KernelFunction] = [], carry: Bool = true
  ) {
    self.init(
      reason: reason, line: finding.line, mm: finding.mm, page: finding.page, message: message,
      wouldBeRule: finding.rule.key, hingesOn: probe, alternatives: alternatives,
      asFinding: carry ? finding : nil)
  }
}
