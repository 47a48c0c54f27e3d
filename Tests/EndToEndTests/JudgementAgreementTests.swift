import Foundation
import PTFragEvents
import PTFragJUnit
import PTFragKit
import PTFragReplay
import PTFragReport
import PTFragTestSupport
import XCTest

/// Issue 12, item 1: one judgement per input. The text, JSON, HTML and JUnit reports only
/// read it, so under every gate they say the same verdict and the same exit code, and a JUnit
/// case fails exactly when the gate fails.
final class JudgementAgreementTests: XCTestCase {
  var root: String { TestPaths.root.path }

  /// The documented exit code of each verdict (an error has its own: 64, 66 or 74).
  func expectedCode(_ v: Judgement.Verdict) -> [ExitCode] {
    switch v {
    case .clean: [.clean]
    case .findings: [.findings]
    case .inconclusive: [.inconclusive]
    case .incomplete: [.malformedInput]
    case .error: [.usage, .inputMissing, .ioError, .malformedInput]
    }
  }

  /// Checks that every format says what the run's judgements say.
  func assertFormatsAgree(_ run: RunReport, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
    // Exit code and verdict are one mapping.
    for j in run.judgements {
      XCTAssertTrue(expectedCode(j.verdict).contains(j.exitCode), "\(what): \(j.verdict) exit \(j.exitCode)", file: file, line: line)
    }
    XCTAssertEqual(run.exitCode, ExitCode.worst(run.judgements.map(\.exitCode)), what, file: file, line: line)
    // JSON.
    let doc = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(JSONReport.render(run).utf8)) as? [String: Any], what)
    XCTAssertEqual(doc["exitCode"] as? Int, Int(run.exitCode.rawValue), what, file: file, line: line)
    let inputs = try XCTUnwrap(doc["inputs"] as? [[String: Any]])
    XCTAssertEqual(inputs.count, run.inputs.count)
    for (i, j) in zip(inputs, run.judgements) {
      XCTAssertEqual(i["verdict"] as? String, j.verdict.rawValue, what, file: file, line: line)
      XCTAssertEqual(i["exitCode"] as? Int, Int(j.exitCode.rawValue), what, file: file, line: line)
    }
    // Text.
    let text = TextReport(color: false).render(run)
    for (input, j) in run.judged {
      let block = text.components(separatedBy: "== \(input.path)\n").dropFirst().first ?? ""
      XCTAssertTrue(block.hasPrefix("verdict: \(j.verdict.rawValue.uppercased())"), "\(what): text\n\(block.prefix(300))", file: file, line: line)
    }
    // HTML.
    let page = HTMLReport(title: "t").render(run: run)
    XCTAssertTrue(page.contains("exit code \(run.exitCode.rawValue)"), what, file: file, line: line)
    for j in run.judgements {
      let v = j.verdict.rawValue
      XCTAssertTrue(page.contains("<span class=\"verdict \(v)\">\(v.uppercased())</span>"), "\(what): HTML", file: file, line: line)
    }
    let others = Set(Judgement.Verdict.allCases).subtracting(run.judgements.map(\.verdict))
    for v in others {
      XCTAssertFalse(page.contains("<span class=\"verdict \(v.rawValue)\">"), "\(what): HTML says \(v)", file: file, line: line)
    }
    // JUnit: the properties, and a failing case exactly when the gate fails.
    let junit = JUnitReport(timestamp: "2026-01-01T00:00:00", hostname: "h").document(run)
    XCTAssertEqual(junit.suites.count, run.inputs.count)
    for (s, j) in zip(junit.suites, run.judgements) {
      func prop(_ n: String) -> String? { s.properties.first { $0.name == n }?.value }
      XCTAssertEqual(prop("verdict"), j.verdict.rawValue, what, file: file, line: line)
      XCTAssertEqual(prop("exit-code"), String(j.exitCode.rawValue), what, file: file, line: line)
      switch j.verdict {
      case .clean:
        XCTAssertEqual(s.failures + s.errors, 0, "\(what): clean suite with a failure", file: file, line: line)
      case .inconclusive:
        XCTAssertEqual(s.failures + s.errors, 0, "\(what): inconclusive suite with a failure", file: file, line: line)
        XCTAssertTrue(
          s.cases.contains { if case .skipped = $0.outcome { $0.name == "conclusive" } else { false } },
          "\(what): inconclusive without a skipped conclusive case", file: file, line: line)
      case .findings:
        XCTAssertGreaterThan(s.failures, 0, "\(what): failing verdict without a failing case", file: file, line: line)
        XCTAssertEqual(s.errors, 0, what, file: file, line: line)
      case .incomplete:
        XCTAssertTrue(
          s.cases.contains { if case .failure = $0.outcome { $0.name == "read" } else { false } },
          "\(what): incomplete without a failing read case", file: file, line: line)
      case .error:
        XCTAssertEqual(s.errors, 1, "\(what): error without an error case", file: file, line: line)
      }
      // The failing rule cases are the judgement's failed rules.
      let failedCases = s.cases.filter { if case .failure = $0.outcome { true } else { false } }
        .map(\.name).filter { $0 != "read" && $0 != "waste-ratio" }
      XCTAssertEqual(Set(failedCases), Set(j.failedRules.map(\.rule.id)), what, file: file, line: line)
    }
  }

  /// Every rule fixture under every gate: `--fail-on` never/info/warning/error ×
  /// `--max-waste-ratio` none/1.0/100 × with and without a baseline of its own findings.
  func testRuleFixturesAgreeInEveryFormatUnderEveryGate() throws {
    let dir = root + "/Fixtures/rules"
    let traces = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".trace") }.sorted()
    XCTAssertGreaterThan(traces.count, 20)
    var seen = Set<Judgement.Verdict>()
    for name in traces {
      // The model the fixture names in its `# model: ID` line (default s390-6.1).
      let head = try String(contentsOfFile: dir + "/" + name, encoding: .utf8).split(separator: "\n").prefix(20)
      let model = head.first { $0.hasPrefix("# model: ") }.map { String($0.dropFirst("# model: ".count)) } ?? "s390-6.1"
      let input: InputReport
      do {
        input = try Analyzer.analyze(path: dir + "/" + name, options: AnalyzeOptions(modelID: model))
      } catch {
        input = InputReport(
          path: dir + "/" + name, modelSelection: "given", profilePath: nil, profileMisses: nil,
          read: ReadSummary(), result: nil, error: (error.exitCode, error.message))
      }
      for baseline in [false, true] {
        var inp = input
        if baseline {
          Baseline.of(RunReport(inputs: [input], failOn: .error, toolVersion: "t")).apply(to: &inp)
          XCTAssertTrue(inp.result?.findings.allSatisfy(\.known) ?? true)
        }
        for failOn in [nil, Severity.info, .warning, .error] {
          for waste in [nil, 1.0, 100.0] {
            let run = RunReport(
              inputs: [inp], failOn: failOn, toolVersion: "t", maxWasteRatio: waste,
              baselinePath: baseline ? "b.json" : nil)
            try assertFormatsAgree(run, "\(name) fail-on \(failOn?.description ?? "never") waste \(waste ?? -1) baseline \(baseline)")
            seen.insert(run.judgements[0].verdict)
            if baseline || failOn == nil, waste != 1.0 {
              XCTAssertTrue(run.judgements[0].failedRules.isEmpty, "\(name): a known or ungated finding fails")
            }
          }
        }
      }
    }
    XCTAssertTrue(seen.isSuperset(of: [.clean, .findings, .inconclusive]), "\(seen)")
  }

  /// Several inputs of every verdict in one run: each format says each input's verdict, and
  /// the run's exit code is the worst.
  func testOneRunOfEveryVerdictAgreesInEveryFormat() throws {
    let rules = root + "/Fixtures/rules/"
    func analyzed(_ path: String, model: String = "s390-6.1") throws -> InputReport {
      try Analyzer.analyze(path: path, options: AnalyzeOptions(modelID: model))
    }
    let clean = try analyzed(rules + "clean.trace")
    let findings = try analyzed(root + "/Fixtures/junit/findings.trace")
    let lost = try analyzed(rules + "lost-events.trace")
    var cut = clean
    cut.read.cutLine = 3
    cut.path = "cut.trace"
    let missing = InputReport(
      path: "missing.trace", modelSelection: "given", profilePath: nil, profileMisses: nil, read: ReadSummary(),
      result: nil, error: (.inputMissing, "missing.trace: no such file"))
    let run = RunReport(inputs: [clean, findings, lost, cut, missing], failOn: .error, toolVersion: "t")
    XCTAssertEqual(run.judgements.map(\.verdict), [.clean, .findings, .inconclusive, .incomplete, .error])
    XCTAssertEqual(run.judgements.map(\.exitCode), [.clean, .findings, .inconclusive, .malformedInput, .inputMissing])
    XCTAssertEqual(run.exitCode, .inputMissing)
    try assertFormatsAgree(run, "five inputs")
    // The judgement follows its gate when the gate changes.
    var never = run
    never.gate.failOn = nil
    XCTAssertEqual(never.judgements[1].verdict, .clean)
    XCTAssertEqual(never.judgements[1].rules.first { $0.outcome == .belowThreshold } != nil, true)
    try assertFormatsAgree(never, "five inputs, --fail-on never")
  }

  /// The rule outcomes a JUnit case renders: failed, known, below threshold, not applicable,
  /// passed.
  func testRuleOutcomesFollowTheGateAndTheBaseline() throws {
    var input = try Analyzer.analyze(
      path: root + "/Fixtures/junit/findings.trace", options: AnalyzeOptions(modelID: "s390-6.1"))
    let fired = try XCTUnwrap(input.result?.findings.first?.rule)
    func outcome(_ gate: Gate, _ i: InputReport) -> Judgement.RuleJudgement.Outcome? {
      Judgement(i, gate: gate).rules.first { $0.rule.id == fired.id }?.outcome
    }
    XCTAssertEqual(outcome(Gate(failOn: fired.severity), input), .failed)
    XCTAssertEqual(outcome(Gate(failOn: nil), input), .belowThreshold)
    Baseline.of(RunReport(inputs: [input], failOn: .error, toolVersion: "t")).apply(to: &input)
    XCTAssertEqual(outcome(Gate(failOn: .info), input), .known)
    XCTAssertEqual(Judgement(input, gate: Gate(failOn: .info)).failedRules.count, 0)
    // A rule nobody fired passes; waste ungated is not a case.
    let j = Judgement(input, gate: Gate(failOn: .info))
    XCTAssertTrue(j.rules.contains { $0.outcome == .passed })
    XCTAssertEqual(j.waste, .notGated)
    let w = Judgement(input, gate: Gate(failOn: .info, maxWasteRatio: 0.5))
    if case .exceeded = w.waste { XCTAssertEqual(w.verdict, .findings) }
  }
}
