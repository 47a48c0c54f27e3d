import ArgumentParser
import PTFragJUnit
import PTFragKit
import PTFragReport

#if canImport(Glibc)
  import Glibc
#endif

/// The CI gate beyond `--fail-on`: a waste limit and a baseline of known findings.
struct GateOptions: ParsableArguments {
  @Option(
    name: .customLong("max-waste-ratio"),
    help: ArgumentHelp(
      "Fail (exit 1) an input whose waste ratio is above R: mean pages held / (mean live tables / tables per page), 1.0 = perfect packing.",
      valueName: "R"))
  var maxWasteRatio: Double?

  @Option(
    help: ArgumentHelp(
      "Findings already known (JSON, see docs/reports.md): reported as known, they do not fail the gate.",
      valueName: "FILE"))
  var baseline: String?

  @Option(
    name: .customLong("write-baseline"),
    help: ArgumentHelp("Write every finding of this run as a baseline to FILE.", valueName: "FILE"))
  var writeBaseline: String?

  func validate() throws {
    if let r = maxWasteRatio, !(r.isFinite && r > 0) {
      throw ValidationError("--max-waste-ratio must be a positive number")
    }
  }

  /// Loads `--baseline` (before any input is read, so a bad file stops the run early).
  func loadBaseline() throws -> Baseline? {
    guard let path = baseline else { return nil }
    do {
      return try Baseline.load(path: path)
    } catch {
      FileHandleOutput.stderr("ptfrag: \(error.message)\n")
      throw ExitCode(error.exitCode.rawValue)
    }
  }

  /// Writes `--write-baseline` (every finding of the run, known or not).
  func writeBaseline(of run: RunReport) throws {
    guard let path = writeBaseline else { return }
    try write(Baseline.of(run).rendered(toolVersion: run.toolVersion), to: path)
  }
}

/// Wall-clock start and monotonic duration of one input's analysis.
enum Stopwatch {
  static func monotonicNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
  }

  /// Runs `body`, stamping its report with when it started and how long it took.
  static func timed<E: Error>(_ body: () throws(E) -> InputReport) throws(E) -> InputReport {
    let started = JUnitReport.now()
    let t0 = monotonicNs()
    var report = try body()
    report.startedAtUnix = started
    report.elapsedNs = monotonicNs() - t0
    return report
  }
}
