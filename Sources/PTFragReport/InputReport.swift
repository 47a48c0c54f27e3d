import PTFragEvents
import PTFragReplay

/// Exit codes, as documented in `--help` and the README (sysexits where one fits).
public enum ExitCode: Int32, Sendable, CaseIterable {
  /// No finding at or above `--fail-on`, nothing unexplained.
  case clean = 0
  /// Findings at or above `--fail-on`.
  case findings = 1
  /// Inconclusive only: lost events, unexplained misses, open concurrency, no events.
  case inconclusive = 2
  /// Bad command line (EX_USAGE).
  case usage = 64
  /// Malformed input beyond the tolerance (EX_DATAERR).
  case malformedInput = 65
  /// Input missing or unreadable (EX_NOINPUT).
  case inputMissing = 66
  /// I/O error while reading or writing (EX_IOERR).
  case ioError = 74

  /// Rank for "the worst input wins": I/O < missing < malformed < findings < inconclusive < clean.
  public var badness: Int {
    switch self {
    case .clean: 0
    case .inconclusive: 1
    case .findings: 2
    case .malformedInput: 3
    case .inputMissing: 4
    case .ioError: 5
    case .usage: 6
    }
  }
}

/// What was read, for the report (format-independent summary of the read layer).
public struct ReadSummary: Sendable {
  public struct Sample: Sendable {
    public var line: Int
    public var reason: String
    public init(line: Int, reason: String) {
      self.line = line
      self.reason = reason
    }
  }
  public var format: String = "ftrace-text"
  public var lines = 0
  public var bytes: UInt64 = 0
  public var malformed = 0
  public var malformedTolerance = 0
  public var malformedSamples: [Sample] = []
  public var foreignLines = 0
  public var truncatedLastLine: Int? = nil
  /// The input ends inside a record at this 1-based line (JSON array: element): cut.
  public var cutLine: Int? = nil
  public var backwardsTimestamps = 0
  public var firstBackwardsLine: Int? = nil
  public var incompleteHits = 0
  public var incompleteSamples: [Sample] = []
  public var orphanReturns = 0
  public init() {}
  /// Malformed lines beyond the tolerance: the replay is incomplete.
  public var beyondTolerance: Bool { malformed > malformedTolerance }
  /// The replay does not cover the whole capture: malformed lines beyond the tolerance, or a
  /// capture cut inside its last record. Verdict "incomplete", exit 65.
  public var incomplete: Bool { beyondTolerance || cutLine != nil }
  /// Why the replay is incomplete (empty when it is not), one sentence each, for every report.
  public func incompleteReasons(path: String) -> [String] {
    var out: [String] = []
    if beyondTolerance {
      out.append(
        "\(malformed) malformed lines, more than the tolerance of \(malformedTolerance); the replay covers only the lines that parsed")
    }
    if let c = cutLine {
      out.append(
        "\(path):\(c): the capture ends inside this record (cut while being written); the replay covers only what came before")
    }
    return out
  }
}

/// One input's whole analysis, ready to render.
public struct InputReport: Sendable {
  public var path: String
  /// How the model was chosen, and why (e.g. "given with --model", or the detection).
  public var modelSelection: String
  public var profilePath: String?
  /// Misses per probed function from the profile, for the report (nil: no profile, or one
  /// that does not fit the capture).
  public var profileMisses: [KernelFunction: UInt64]?
  /// Why the kprobe_profile does not fit the capture (empty: it fits, or none was given); a
  /// profile that does not fit is not used.
  public var profileMismatch: [String] = []
  public var read: ReadSummary
  /// nil when the input could not be read at all (`error` says why).
  public var result: ReplayResult?
  public var error: (code: ExitCode, message: String)?
  /// SHA-256 of the input bytes, hex (when computed).
  public var sha256: String?
  /// When the analysis of this input started (seconds since the Unix epoch, UTC) and how
  /// long it took (ns, monotonic clock); nil when not measured.
  public var startedAtUnix: Int64?
  public var elapsedNs: UInt64?
  /// A model was given or detected. False when `--model auto` saw no event (nothing to
  /// detect) or the input is not a capture: reports then name no model.
  public var modelChosen = true

  public init(
    path: String, modelSelection: String, profilePath: String?,
    profileMisses: [KernelFunction: UInt64]?, read: ReadSummary, result: ReplayResult?,
    error: (code: ExitCode, message: String)? = nil
  ) {
    self.path = path
    self.modelSelection = modelSelection
    self.profilePath = profilePath
    self.profileMisses = profileMisses
    self.read = read
    self.result = result
    self.error = error
  }
}

/// The whole run: every input, the gate that judges it, and each input's judgement.
public struct RunReport: Sendable {
  /// The inputs; setting them judges them anew.
  public var inputs: [InputReport] { didSet { judge() } }
  /// The gate; setting it judges the inputs anew.
  public var gate: Gate { didSet { judge() } }
  /// One judgement per input, in the order of `inputs`: what every report prints.
  public private(set) var judgements: [Judgement] = []
  public var toolVersion: String

  public var failOn: Severity? { gate.failOn }
  /// `--max-waste-ratio`: an input whose waste ratio is above it fails (nil: not gated).
  public var maxWasteRatio: Double? { gate.maxWasteRatio }
  /// `--baseline` file whose findings were marked known, for the reports.
  public var baselinePath: String? { gate.baselinePath }

  public init(
    inputs: [InputReport], failOn: Severity?, toolVersion: String, maxWasteRatio: Double? = nil,
    baselinePath: String? = nil
  ) {
    self.inputs = inputs
    self.gate = Gate(failOn: failOn, maxWasteRatio: maxWasteRatio, baselinePath: baselinePath)
    self.toolVersion = toolVersion
    judge()
  }

  private mutating func judge() { judgements = inputs.map { Judgement($0, gate: gate) } }

  /// Each input with its judgement.
  public var judged: Zip2Sequence<[InputReport], [Judgement]> { zip(inputs, judgements) }

  /// The run's exit code: the worst input's.
  public var exitCode: ExitCode { ExitCode.worst(judgements.map(\.exitCode)) }
}

/// Seconds with microseconds, as ftrace prints them.
public func formatTimestamp(_ ns: UInt64) -> String {
  let s = ns / 1_000_000_000
  let us = (ns % 1_000_000_000) / 1000
  let frac = String(us)
  return "\(s).\(String(repeating: "0", count: 6 - frac.count))\(frac)"
}

public func hexAddress(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

/// A non-negative ratio or mean with 3 decimals (rounded half up), e.g. `1.250`.
public func formatRatio(_ v: Double) -> String {
  guard v.isFinite, v >= 0 else { return v.isNaN ? "nan" : (v < 0 ? "-" + formatRatio(-v) : "inf") }
  let milli = (v * 1000).rounded()
  guard milli < 9.0e15 else { return String(v) }
  let m = UInt64(milli)
  return formatMilli(m)
}

/// Thousandths as `units.ddd` (e.g. 1250 → `1.250`).
public func formatMilli(_ m: UInt64) -> String {
  let frac = String(m % 1000)
  return "\(m / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
}

extension Event.Kind {
  /// The kernel function (or marker) behind the event kind, for histories.
  public var label: String {
    switch self {
    case .allocBegin: "page_table_alloc entry"
    case .alloc: "page_table_alloc"
    case .allocUnreturned: "page_table_alloc (no return)"
    case .freeNow: "page_table_free"
    case .freeTLB: "page_table_free_rcu"
    case .tlbQueue: "tlb_remove_table"
    case .tlbExec: "__tlb_remove_table"
    case .deferBegin: "pte_free_defer"
    case .deferEnd: "pte_free_defer return"
    case .rcuFree: "pte_free_now"
    case .crstAlloc: "crst_table_alloc"
    case .crstFree: "crst_table_free"
    case .mmBirth: "mm birth"
    case .mmDeath: "mm death"
    case .lost: "LOST"
    case .fragmentFree: "pte_fragment_free"
    case .fragDestroy: "pte_frag_destroy"
    case .pmdAlloc: "pmd_fragment_alloc"
    case .pmdFree: "pmd_fragment_free"
    case .mmExit: "arch_exit_mmap"
    }
  }

  /// The label in the vocabulary of the model's kernel: powerpc names its own functions
  /// (`pte_fragment_alloc`, `init_new_context`, …), not s390's.
  public func label(modelID: String) -> String {
    guard ModelRegistry.model(id: modelID)?.descriptor.architecture == .powerpc else { return label }
    switch self {
    case .allocBegin: return "pte_fragment_alloc entry"
    case .alloc: return "pte_fragment_alloc"
    case .allocUnreturned: return "pte_fragment_alloc (no return)"
    case .mmBirth: return "init_new_context"
    case .mmDeath: return "destroy_context"
    default: return label
    }
  }
}
