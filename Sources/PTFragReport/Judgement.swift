import PTFragEvents
import PTFragReplay

/// The gate a run is judged by: `--fail-on`, `--max-waste-ratio`, `--baseline`.
public struct Gate: Sendable, Equatable {
  /// Findings at or above this severity fail (nil: `--fail-on never`).
  public var failOn: Severity?
  /// An input whose waste ratio is above it fails (nil: not gated).
  public var maxWasteRatio: Double?
  /// The `--baseline` file whose findings were marked known (for the reports; the marking
  /// itself is `Finding.known`, set while analysing).
  public var baselinePath: String?

  public init(failOn: Severity?, maxWasteRatio: Double? = nil, baselinePath: String? = nil) {
    self.failOn = failOn
    self.maxWasteRatio = maxWasteRatio
    self.baselinePath = baselinePath
  }

  /// `ptfrag compare` judges each replay at `--fail-on error`, without a waste gate.
  public static let compare = Gate(failOn: .error)
}

/// The one judgement of one input under a gate: its verdict, its exit code, the outcome of
/// every rule, of the conclusiveness check and of the waste gate. Computed once, from the
/// replay result and the gate; the text, JSON, HTML and JUnit reports only read it.
public struct Judgement: Sendable {
  /// The verdict. The raw value is what every report prints (`fail` for findings).
  public enum Verdict: String, Sendable, CaseIterable {
    /// No finding at or above the threshold, nothing unexplained left open.
    case clean
    /// A finding at or above `--fail-on` not known from the baseline, or the waste ratio
    /// above `--max-waste-ratio`.
    case findings = "fail"
    /// Nothing failed, but the capture cannot support a clean verdict (lost events,
    /// unexplained misses, open concurrency, nothing replayed).
    case inconclusive
    /// The replay does not cover the whole capture (malformed lines beyond the tolerance, a
    /// capture cut inside its last record).
    case incomplete
    /// The input could not be replayed (missing, unreadable, not a capture, bad usage).
    case error
  }

  /// One rule of the model on this input.
  public struct RuleJudgement: Sendable {
    public enum Outcome: Sendable, Equatable {
      /// Findings not in the baseline at or above `--fail-on`: the rule fails the gate.
      case failed
      /// It fired, and every finding kept is known from the baseline: not failing.
      case known
      /// It fired with findings below `--fail-on` (or `--fail-on never`): not failing.
      case belowThreshold
      /// The capture cannot exercise the rule (`Rule.requires`): neither passed nor failed.
      case notApplicable(reason: String)
      /// It did not fire, but would-be findings of it are inconclusive (not decidable).
      case undecided(reason: String)
      /// It did not fire, and nothing left it undecided.
      case passed
    }
    public var rule: Rule
    public var outcome: Outcome
    /// Its findings kept in detail: not known from the baseline / known.
    public var fresh: [Finding]
    public var known: [Finding]
    /// Findings beyond the replay's detail cap (counted, not kept).
    public var dropped: Int
    /// Every finding of the rule, also those beyond the cap.
    public var total: Int
    /// Unexplained inconclusive items that would be findings of this rule.
    public var undecided: [Inconclusive]
  }

  /// Whether the capture supports a verdict at all.
  public struct Conclusiveness: Sendable {
    /// Why it does not (empty: it does), one phrase each.
    public var reasons: [String]
    /// The unexplained inconclusive items.
    public var open: [Inconclusive]
    /// Inconclusive items explained (by the kprobe_profile): they do not count.
    public var explained: Int
    public var conclusive: Bool { reasons.isEmpty }
  }

  /// The `--max-waste-ratio` gate on this input.
  public enum WasteGate: Sendable, Equatable {
    /// No `--max-waste-ratio` given.
    case notGated
    /// The ratio is undefined (no table was live): it never exceeds.
    case undefined(max: Double)
    case within(ratio: Double, max: Double)
    case exceeded(ratio: Double, max: Double)
  }

  public var gate: Gate
  public var verdict: Verdict
  public var exitCode: ExitCode
  /// One per rule of the model (first listed wins a repeated id), then one per rule a finding
  /// names that the model does not list. Empty when nothing was replayed.
  public var rules: [RuleJudgement]
  /// nil when nothing was replayed.
  public var conclusiveness: Conclusiveness?
  public var waste: WasteGate

  /// Judges `input` under `gate`.
  public init(_ input: InputReport, gate: Gate) {
    self.init(result: input.result, read: input.read, error: input.error, gate: gate)
  }

  /// Judges a replay result alone, as if read completely and without error.
  public init(result: ReplayResult, gate: Gate) {
    self.init(result: result, read: ReadSummary(), error: nil, gate: gate)
  }

  init(result r: ReplayResult?, read: ReadSummary, error: (code: ExitCode, message: String)?, gate: Gate) {
    self.gate = gate
    rules = r.map { Self.judgeRules($0, failOn: gate.failOn) } ?? []
    conclusiveness = r.map(Self.conclusiveness)
    // Findings beyond the per-rule detail cap carry no signature: when every kept one of a
    // gated rule is known from the baseline, the dropped ones may be new. Neither a pass nor
    // a failure: the verdict cannot be clean.
    for j in rules where j.dropped > 0 && j.fresh.isEmpty && !j.known.isEmpty {
      guard let t = gate.failOn, j.rule.severity >= t else { continue }
      conclusiveness?.reasons.append(
        "\(j.dropped) \(j.rule.id) finding(s) beyond the detail cap could not be matched against the baseline")
    }
    waste = Self.wasteGate(r, max: gate.maxWasteRatio)
    // The order decides: an error, then an incomplete read, then the waste gate, then the
    // findings, then whether the capture supports a clean verdict.
    if let error {
      (verdict, exitCode) = (.error, error.code)
    } else if read.incomplete {
      (verdict, exitCode) = (.incomplete, .malformedInput)
    } else if case .exceeded = waste {
      (verdict, exitCode) = (.findings, .findings)
    } else if r == nil {
      (verdict, exitCode) = (.error, .ioError)
    } else if rules.contains(where: { $0.outcome == .failed }) {
      (verdict, exitCode) = (.findings, .findings)
    } else if conclusiveness?.conclusive == false {
      (verdict, exitCode) = (.inconclusive, .inconclusive)
    } else {
      (verdict, exitCode) = (.clean, .clean)
    }
  }

  /// Rules that fail the gate.
  public var failedRules: [RuleJudgement] { rules.filter { $0.outcome == .failed } }

  // MARK: Parts

  static func judgeRules(_ r: ReplayResult, failOn: Severity?) -> [RuleJudgement] {
    var out: [RuleJudgement] = []
    var seen = Set<String>()
    for rule in r.model.rules where seen.insert(rule.id).inserted {
      out.append(judge(rule, r, failOn: failOn))
    }
    // A rule a model reported without listing it (never expected): still judged.
    for f in r.findings where seen.insert(f.rule.id).inserted {
      out.append(judge(f.rule, r, failOn: failOn))
    }
    return out
  }

  static func judge(_ rule: Rule, _ r: ReplayResult, failOn: Severity?) -> RuleJudgement {
    let fired = r.findings.filter { $0.rule.id == rule.id }
    let fresh = fired.filter { !$0.known }
    let known = fired.filter(\.known)
    let dropped = r.droppedFindings[rule.id] ?? 0
    let total = r.countsByRule[rule.id] ?? fired.count
    let undecided = r.inconclusive.filter { $0.explainedBy == nil && $0.wouldBeRule == rule.id }
    let gated = failOn.map { rule.severity >= $0 } ?? false
    let outcome: RuleJudgement.Outcome
    if !fresh.isEmpty && gated {
      outcome = .failed
    } else if !fired.isEmpty || total > 0 {
      outcome = fresh.isEmpty ? .known : .belowThreshold
    } else if let reason = r.unmetRequirement(of: rule) {
      outcome = .notApplicable(reason: reason)
    } else if let first = undecided.first {
      outcome = .undecided(reason: first.reason.rawValue)
    } else {
      outcome = .passed
    }
    return RuleJudgement(
      rule: rule, outcome: outcome, fresh: fresh, known: known, dropped: dropped, total: total,
      undecided: undecided)
  }

  static func conclusiveness(_ r: ReplayResult) -> Conclusiveness {
    let open = r.inconclusive.filter { $0.explainedBy == nil }
    var reasons: [String] = []
    if let loss = r.lossReason { reasons.append("the capture lost events (\(loss))") }
    if !open.isEmpty || r.droppedUnexplained > 0 {
      reasons.append("\(open.count + r.droppedUnexplained) unexplained inconclusive item(s)")
    }
    if r.events == 0 { reasons.append("no page-table events") }
    return Conclusiveness(reasons: reasons, open: open, explained: r.inconclusive.count - open.count)
  }

  /// The replay's waste ratio (mean pages held / (mean live tables / slots per page), see
  /// `OccupancyTimeline.wasteRatio`) against `max`.
  static func wasteGate(_ r: ReplayResult?, max: Double?) -> WasteGate {
    guard let max else { return .notGated }
    guard let ratio = r?.stats.occupancy.wasteRatio else { return .undefined(max: max) }
    return ratio > max ? .exceeded(ratio: ratio, max: max) : .within(ratio: ratio, max: max)
  }
}

extension InputReport {
  /// This input judged under `gate`.
  public func judgement(_ gate: Gate) -> Judgement { Judgement(self, gate: gate) }
}

extension ExitCode {
  /// The worst of several (the run's exit code: the worst input decides).
  public static func worst<S: Sequence>(_ codes: S) -> ExitCode where S.Element == ExitCode {
    codes.max { $0.badness < $1.badness } ?? .clean
  }
}
