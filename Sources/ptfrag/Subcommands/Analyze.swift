import ArgumentParser
import PTFragJUnit
import PTFragKit
import PTFragReplay
import PTFragReport

#if canImport(Glibc)
  import Glibc
#endif

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
  case text, json
}

enum FailOn: String, ExpressibleByArgument, CaseIterable {
  case error, warning, never
  var severity: Severity? {
    switch self {
    case .error: .error
    case .warning: .warning
    case .never: nil
    }
  }
}

enum ColorMode: String, ExpressibleByArgument, CaseIterable {
  case auto, always, never
}

/// Options shared by the commands that report.
struct ReportOptions: ParsableArguments {
  @Option(help: "The standard output's format.")
  var format: OutputFormat = .text

  @Option(name: .customLong("json"), help: ArgumentHelp("Also write the JSON report to FILE.", valueName: "FILE"))
  var jsonPath: String?

  @Option(name: .customLong("junit"), help: ArgumentHelp("Also write JUnit XML to FILE (one testsuite per input and model, one testcase per rule or check).", valueName: "FILE"))
  var junitPath: String?

  @Option(help: "Exit 1 when a finding has this severity or worse ('never': findings never fail).")
  var failOn: FailOn = .error

  @Option(help: "Colour on standard output (auto: only on a terminal).")
  var color: ColorMode = .auto
}

struct Analyze: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Replay captures through an allocator model; report each divergence.",
    discussion: """
      Each FILE is a capture: ftrace text, JSON Lines or a JSON array (docs/json-input.md), \
      plain or gzip, detected from its first bytes; '-' reads standard input. With no FILE, \
      ptfrag reads standard input when it is not a terminal (a pipe, a file, /dev/null), and \
      otherwise analyzes the real s390x 6.1 capture bundled in Fixtures/samples with its \
      kprobe_profile; it says which on standard error.

      The model predicts the table every allocation returns for each mm born in the capture \
      (crst_table_alloc returning into mm_init), checks every free and tlb execution against \
      the page's state, and names each divergence with a rule id (see docs/checks.md). What a capture \
      cannot decide (lost events, silent kprobe misses, mms born before the capture, \
      concurrent operations) is reported as inconclusive, never as an error.

      Give the kprobe_profile saved with the capture: without it, a pending half that comes \
      back is a probable missed __tlb_remove_table (inconclusive); with it, the profile says \
      whether misses happened (explained) or not (then the reuse is an error, reuse-before-grace).

      --model auto (the default) reads the kernel variant off the capture's first events \
      (at most 16384, one pass, standard input included) and says what it found and why: \
      an upper 2 KiB half or a tagged tlb value means 2 KiB fragments (s390-6.1, or \
      s390-6.6 once pte_free_defer appears or the kprobe_profile lists it); an untagged tlb \
      value naming an allocated table means one table per page (s390-6.7). It refuses to \
      guess: exit 64 when nothing decisive was seen (give --model), exit 65 when the \
      evidence contradicts itself or shows a v6.14+ tlb path (ptdesc pointers).
      """)

  @Argument(help: ArgumentHelp("Captures to analyze ('-' = standard input).", valueName: "FILE"))
  var files: [String] = []

  @Option(help: "Allocator model: auto (detect from the trace), \(ModelRegistry.ids.joined(separator: ", ")).")
  var model: String = Analyzer.autoModelID

  @Option(name: .customLong("kprobe-profile"), help: ArgumentHelp("The capture's kprobe_profile: a copy of /sys/kernel/tracing/kprobe_profile saved with it.", valueName: "FILE"))
  var kprobeProfile: String?

  @Option(name: .customLong("max-malformed"), help: "Malformed lines tolerated per input; beyond it the report is incomplete (exit 65).")
  var maxMalformed: Int = 1000

  @Option(
    name: .customLong("kernel-fix"),
    help: ArgumentHelp(
      "The captured kernel has this fix (repeatable): \(ModelRegistry.kernelFixes.map { "\($0.commit) (\($0.models)): \($0.what)" }.joined(separator: "; ")). Without it, the powerpc models replay a kernel that lacks this fix.",
      valueName: "COMMIT"))
  var kernelFix: [String] = []

  @OptionGroup var report: ReportOptions

  @Option(name: .customLong("html"), help: ArgumentHelp("Also write a self-contained HTML page (verdict, findings, waste, plots) to FILE.", valueName: "FILE"))
  var htmlPath: String?

  @OptionGroup var gate: GateOptions

  @Option(
    name: .customLong("mm-records"),
    help: ArgumentHelp(
      "Per-mm records kept for the report: the N mms with the highest peak of pages held (text lists 10, HTML 20, JSON every one kept; mmsNotListed counts the rest). 0 keeps none (no mms table).",
      valueName: "N"))
  var mmRecords: Int = AnalyzeOptions().mmRecords

  @OptionGroup var jobs: JobsOption

  func validate() throws {
    if mmRecords < 0 { throw ValidationError("--mm-records must be 0 or more") }
    if model != Analyzer.autoModelID && ModelRegistry.model(id: model) == nil {
      throw ValidationError("unknown model '\(model)'; known: \(Analyzer.autoModelID), \(ModelRegistry.ids.joined(separator: ", "))")
    }
    if maxMalformed < 0 { throw ValidationError("--max-malformed must be 0 or more") }
    if !kernelFix.isEmpty {
      do { _ = try ModelRegistry.id(model == Analyzer.autoModelID ? "powerpc-auto" : model, withKernelFixes: kernelFix) } catch {
        throw ValidationError(error.message)
      }
    }
    if files.filter({ $0 == "-" }).count > 1 { throw ValidationError("'-' (standard input) can be given once") }
  }

  func run() throws {
    var inputs = files
    var profile = kprobeProfile
    if inputs.isEmpty && isatty(0) == 0 {
      // `cat capture | ptfrag analyze`, `trace-cmd report | ptfrag analyze`: the capture is
      // on standard input, never the bundled sample (a CI job would always pass).
      inputs = ["-"]
      FileHandleOutput.stderr("ptfrag: no FILE given and standard input is not a terminal: reading the capture from standard input\n")
    } else if inputs.isEmpty {
      let sample = try BundledSample.s390x61
      inputs = [sample.trace]
      if profile == nil { profile = sample.profile }
      FileHandleOutput.stderr(
        "ptfrag: no input given: analyzing the bundled real capture \(sample.trace) (s390x, Debian 6.1) with its kprobe_profile\n")
    }
    var options = AnalyzeOptions(
      modelID: model, modelSelection: "given with --model", profilePath: profile,
      malformedTolerance: maxMalformed)
    options.kernelFixes = kernelFix
    options.mmRecords = mmRecords
    // Several inputs at once (--jobs): each on one thread when they keep every CPU busy.
    options.pipelined = ManyInputs.pipelined(inputs: inputs.count, jobs: jobs.value)
    let baseline = try gate.loadBaseline()
    var reports: [InputReport] = []
    let paths = inputs
    let shared = options
    for outcome in runInputs(paths, jobs: jobs.value, { (i, progress) throws(AnalyzeError) in
      var options = shared
      options.progress = progress.reporter
      return try Stopwatch.timed { () throws(AnalyzeError) in
        try Analyzer.analyze(path: paths[i], options: options)
      }
    }) {
      switch outcome {
      case .done(var r):
        baseline?.apply(to: &r)
        reports.append(r)
      case .failed(let error):
        FileHandleOutput.stderr("ptfrag: \(error.message)\n")
        throw ExitCode(error.exitCode.rawValue)
      case .skipped:
        break  // never before a failure (runInputs stops there)
      }
    }
    // An input that could not be analyzed (missing, unreadable, not a capture) says so on
    // standard error too: a job that keeps only stderr, or sends stdout to a file, sees it.
    for r in reports {
      if let e = r.error { FileHandleOutput.stderr("ptfrag: \(e.message) (exit \(e.code.rawValue))\n") }
    }
    let run = RunReport(
      inputs: reports, failOn: report.failOn.severity, toolVersion: ptfragVersion,
      maxWasteRatio: gate.maxWasteRatio, baselinePath: gate.baseline)
    try gate.writeBaseline(of: run)
    if let path = htmlPath {
      try write(HTMLReport(title: "ptfrag analyze — \(inputs.joined(separator: ", "))").render(run: run), to: path)
    }
    try emit(run, report)
    throw ExitCode(run.exitCode.rawValue)
  }
}

/// Writes the run in the requested formats.
func emit(_ run: RunReport, _ options: ReportOptions) throws {
  if let path = options.jsonPath { try write(JSONReport.render(run), to: path) }
  if let path = options.junitPath {
    let xml: [UInt8]
    do {
      xml = try JUnitReport().render(run)
    } catch {
      FileHandleOutput.stderr("ptfrag: cannot write JUnit XML to \(path): \(error)\n")
      throw ExitCode(PTFragReport.ExitCode.ioError.rawValue)
    }
    try write(String(decoding: xml, as: UTF8.self), to: path, what: "JUnit XML")
  }
  switch options.format {
  case .json:
    FileHandleOutput.stdout(JSONReport.render(run))
  case .text:
    let color: Bool =
      switch options.color {
      case .always: true
      case .never: false
      case .auto: isatty(1) != 0 && getenv("NO_COLOR") == nil
      }
    FileHandleOutput.stdout(TextReport(color: color).render(run))
  }
}
