import ArgumentParser
import PTFragKit
import PTFragReplay
import PTFragReport

#if canImport(Glibc)
  import Glibc
#endif

struct Compare: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "What-if: the capture's table lifetimes through every allocator strategy, side by side.",
    usage: "ptfrag compare [<options>] <FILE> ...",
    discussion: """
      Replays FILE through its own model (--model, auto-detected by default) and records its \
      workload: every table's allocation (with its mm), its free (at once, through the tlb \
      batch, or by pte_free_defer), its __tlb_remove_table (seen, or inferred where the \
      replay resynchronised over a silent kprobe miss), and mm births and deaths, each at its \
      timestamp. Then drives the same workload through each strategy (--models, default all): \
      a fresh model that chooses its own pages and hears what its kernel would probe, RCU \
      callbacks delivered one grace period after each call_rcu (the capture's median \
      free → __tlb_remove_table delay, or --rcu-grace). One row per strategy: peak and mean \
      pages held, bytes, held/live, waste by kind, Δ against the strategy that ran; the \
      replayed figures and the ideal and no-sharing bounds below.

      The input is read twice (it must be a file, not '-'). Exit 0 when every input was compared; otherwise the worst input's code: 2 nothing to compare (no page-table event), 64 usage (or --model auto could not tell), 65 not a capture, cut inside its last record or malformed beyond --max-malformed, 66 missing, 74 I/O.
      """)

  @Argument(help: ArgumentHelp("Captures (files; each is read twice).", valueName: "FILE"))
  var files: [String] = []

  @Option(
    name: .customLong("models"), parsing: .upToNextOption,
    help: ArgumentHelp("Strategies to compare, in order, as ids separated by spaces or commas (default: every model, \(ModelRegistry.ids.joined(separator: ", ")), in this order).", valueName: "ID"))
  var models: [String] = []

  @Option(help: "The capture's own model: auto (detect), \(ModelRegistry.ids.joined(separator: ", ")).")
  var model: String = Analyzer.autoModelID

  @Option(name: .customLong("kprobe-profile"), help: ArgumentHelp("The capture's kprobe_profile: a copy of /sys/kernel/tracing/kprobe_profile saved with it.", valueName: "FILE"))
  var kprobeProfile: String?

  @Option(name: .customLong("max-malformed"), help: "Malformed lines tolerated per input; beyond it the input is not compared (exit 65).")
  var maxMalformed: Int = 1000

  @Option(name: .customLong("rcu-grace"), help: ArgumentHelp("RCU grace period to simulate, in ms (default: the capture's median free → __tlb_remove_table delay).", valueName: "MS"))
  var rcuGraceMs: Double?

  @Option(help: "The standard output's format.")
  var format: OutputFormat = .text

  @Option(name: .customLong("json"), help: ArgumentHelp("Also write the JSON comparison to FILE.", valueName: "FILE"))
  var jsonPath: String?

  @Option(name: .customLong("html"), help: ArgumentHelp("Also write a self-contained HTML page (table and plots) to FILE.", valueName: "FILE"))
  var htmlPath: String?

  @Option(help: "Colour on standard output (auto: only on a terminal).")
  var color: ColorMode = .auto

  @Option(
    name: .customLong("kernel-fix"),
    help: ArgumentHelp("The captured kernel has this fix (repeatable; fda4d71651f7: the powerpc strategies and replay run with pte_frag_destroy clearing PG_active).", valueName: "COMMIT"))
  var kernelFix: [String] = []

  @OptionGroup var jobs: JobsOption

  var strategyIDs: [String] {
    models.flatMap { $0.split(separator: ",").map { String($0).trimmingSpaces } }.filter { !$0.isEmpty }
  }

  func validate() throws {
    if files.isEmpty { throw ValidationError("give a capture FILE to compare") }
    if files.contains("-") { throw ValidationError("compare reads its input twice: give a file, not '-'") }
    if model != Analyzer.autoModelID && ModelRegistry.model(id: model) == nil {
      throw ValidationError("unknown model '\(model)'; known: \(Analyzer.autoModelID), \(ModelRegistry.ids.joined(separator: ", "))")
    }
    for id in strategyIDs where ModelRegistry.model(id: id) == nil {
      throw ValidationError("unknown strategy '\(id)' in --models; known: \(ModelRegistry.ids.joined(separator: ", "))")
    }
    if let g = rcuGraceMs, !(g.isFinite && g >= 0 && g < 1e9) {
      throw ValidationError("--rcu-grace must be a number of milliseconds, 0 or more")
    }
    if maxMalformed < 0 { throw ValidationError("--max-malformed must be 0 or more") }
    if !kernelFix.isEmpty {
      do { _ = try ModelRegistry.id(model == Analyzer.autoModelID ? "powerpc-auto" : model, withKernelFixes: kernelFix) } catch {
        throw ValidationError(error.message)
      }
    }
  }

  func run() throws {
    var reports: [CompareReport] = []
    var analyze = AnalyzeOptions(
      modelID: model, modelSelection: "given with --model", profilePath: kprobeProfile,
      malformedTolerance: maxMalformed)
    analyze.kernelFixes = kernelFix
    // Several inputs at once (--jobs): each replay on one thread when they keep every CPU busy.
    analyze.pipelined = ManyInputs.pipelined(inputs: files.count, jobs: jobs.value)
    let shared = CompareOptions(
      analyze: analyze, models: strategyIDs, graceNs: rcuGraceMs.map { UInt64(($0 * 1e6).rounded()) })
    let paths = files
    for outcome in runInputs(paths, jobs: jobs.value, { (i, progress) throws(AnalyzeError) in
      var options = shared
      options.analyze.progress = progress.reporter
      return try Comparer.compare(path: paths[i], options: options, pass: progress.pass)
    }) {
      switch outcome {
      case .done(let r): reports.append(r)
      case .failed(let error):
        FileHandleOutput.stderr("ptfrag: \(error.message)\n")
        throw ExitCode(error.exitCode.rawValue)
      case .skipped: break  // never before a failure (runInputs stops there)
      }
    }
    // Each input judged as analyze judges it: not a capture or unreadable (its code),
    // incomplete (65), nothing replayed (2: nothing to compare); the worst one decides.
    let code =
      reports.compactMap { $0.notCompared?.code }.max { $0.badness < $1.badness } ?? PTFragReport.ExitCode.clean
    for r in reports {
      if let n = r.notCompared { FileHandleOutput.stderr("ptfrag: \(r.input.path): not compared: \(n.reason) (exit \(n.code.rawValue))\n") }
    }
    if let path = jsonPath {
      try write(JSONReport.compareDocument(reports, toolVersion: ptfragVersion, exitCode: code.rawValue).serialized() + "\n", to: path)
    }
    if let path = htmlPath {
      try write(HTMLReport(title: "ptfrag compare — \(files.joined(separator: ", "))").renderCompare(reports, toolVersion: ptfragVersion), to: path)
    }
    switch format {
    case .json:
      FileHandleOutput.stdout(JSONReport.compareDocument(reports, toolVersion: ptfragVersion, exitCode: code.rawValue).serialized() + "\n")
    case .text:
      FileHandleOutput.stdout(CompareText.render(reports, color: useColor(color)))
    }
    throw ExitCode(code.rawValue)
  }
}

/// Writes a report file (atomically, see `FileHandleOutput.write`); exit 74 when it cannot.
/// `what` names the report in the message (`JUnit XML`).
func write(_ s: String, to path: String, what: String? = nil) throws {
  do {
    try FileHandleOutput.write(s, to: path)
  } catch {
    FileHandleOutput.stderr("ptfrag: \(what.map { "cannot write \($0) to \(error.path): \(error.reason)" } ?? error.description)\n")
    throw ExitCode(PTFragReport.ExitCode.ioError.rawValue)
  }
}

func useColor(_ mode: ColorMode) -> Bool {
  switch mode {
  case .always: true
  case .never: false
  case .auto: isatty(1) != 0 && getenv("NO_COLOR") == nil
  }
}

extension String {
  var trimmingSpaces: String {
    var s = Substring(self)
    while s.first == " " { s = s.dropFirst() }
    while s.last == " " { s = s.dropLast() }
    return String(s)
  }
}

/// Progress of a long read on standard error, only when it is a terminal: one line
/// rewritten in place (`ptfrag: FILE: pass 1/2: 42% of 131.7 MiB`), at most every 0.2 s.
final class ProgressLine: @unchecked Sendable {
  let path: String
  let total: UInt64?
  let enabled: Bool
  var pass = 0
  private var lastNs: UInt64 = 0
  private var shown = false

  init(path: String) {
    self.path = path
    enabled = isatty(2) != 0
    var st = stat()
    total = path != "-" && stat(path, &st) == 0 && st.st_size > 0 ? UInt64(st.st_size) : nil
  }

  /// nil when standard error is not a terminal (nothing to show).
  var reporter: (@Sendable (UInt64) -> Void)? {
    guard enabled else { return nil }
    return { @Sendable [self] bytes in self.show(bytes) }
  }

  func show(_ bytes: UInt64) {
    let now = Stopwatch.monotonicNs()
    guard now - lastNs >= 200_000_000 else { return }
    lastNs = now
    var s = "\rptfrag: \(path): "
    if pass > 0 { s += "pass \(pass)/2: " }
    if let total { s += "\(min(100, bytes * 100 / total))% of \(formatBytes(Double(total)))" } else { s += formatBytes(Double(bytes)) }
    FileHandleOutput.stderr(s + "\u{1B}[K")
    shown = true
  }

  func clear() {
    if shown { FileHandleOutput.stderr("\r\u{1B}[K") }
    shown = false
  }
}
