#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import PTFragEvents
import PTFragReplay
import PTFragReport

/// The run as JUnit XML, for CI: one `<testsuite>` per (input × model), one `<testcase>` per
/// rule of the model and per check, consistent with the exit code (a case fails exactly when
/// it makes the gate fail). Documented in the README ("JUnit XML").
///
/// Test cases of a replayed input (classname = model id):
/// - `read`: the input was read and parsed. `<failure>` when malformed lines are beyond the
///   tolerance (exit 65), with the first ones; its time is the input's whole analysis (one
///   streaming pass reads, replays and hashes).
/// - `conclusive`: `<skipped>` when the capture cannot support a verdict (lost events,
///   unexplained silent misses, no events: exit 2), with the reason; passed otherwise.
/// - one per rule of the model (name = rule id): `<failure>` when it fired with findings not in
///   the baseline at or above `--fail-on`, the findings in the body (capped, the cut stated);
///   passed with the findings in `<system-out>` when they are known or below the threshold;
///   `<skipped>` when the capture cannot exercise the rule (`Rule.requires`) or when every
///   would-be finding is inconclusive.
/// - `waste-ratio` (only with `--max-waste-ratio`): `<failure>` above the limit, `<skipped>`
///   when the ratio is undefined (no live tables).
/// An input that could not be read has one case, `read`, with `<error>` (classname `ptfrag`).
public struct JUnitReport: Sendable {
  /// Start of the run, for inputs without their own start time (ISO 8601, UTC).
  public var timestamp: String
  public var hostname: String
  /// Cap of a failure, skip or system-out body, in UTF-8 bytes (the cut is stated).
  public var maxBodyBytes = 64 << 10
  /// Cap of a `message` attribute, in UTF-8 bytes.
  public var maxMessageBytes = 1024

  public init(timestamp: String = JUnitReport.isoTimestamp(unixSeconds: JUnitReport.now()), hostname: String = JUnitReport.hostname()) {
    self.timestamp = timestamp
    self.hostname = hostname
  }

  /// The run as JUnit XML bytes.
  public func render(_ run: RunReport) throws -> [UInt8] {
    try document(run).xml()
  }

  public func document(_ run: RunReport) -> JUnitDocument {
    JUnitDocument(name: "ptfrag", suites: run.judged.map { suite($0, $1, run: run) })
  }

  // MARK: Suites

  /// One input's cases, each the rendering of a part of its judgement `j`.
  func suite(_ input: InputReport, _ j: Judgement, run: RunReport) -> JUnitSuite {
    let stamp = input.startedAtUnix.map { Self.isoTimestamp(unixSeconds: $0) } ?? timestamp
    let time = input.elapsedNs ?? 0
    guard input.error == nil, let r = input.result else {
      let (code, message) = (j.exitCode, input.error?.message ?? "the input produced no result")
      return JUnitSuite(
        name: input.path, timestamp: stamp, hostname: hostname, timeNs: time,
        properties: properties(input, j, run: run),
        cases: [
          JUnitCase(
            classname: "ptfrag", name: "read", timeNs: time,
            outcome: .error(
              type: Self.errorType(code), message: cap(message, maxMessageBytes),
              body: "\(message)\nThe input could not be replayed (exit \(code.rawValue)).\n"))
        ])
    }
    var cases: [JUnitCase] = [readCase(input, r, time: time)]
    if let c = j.conclusiveness { cases.append(conclusiveCase(c, input, r)) }
    for rule in j.rules { cases.append(ruleCase(rule, input, r, failOn: j.gate.failOn)) }
    if let w = wasteCase(j.waste, r) { cases.append(w) }
    return JUnitSuite(
      name: "\(input.path) [\(r.model.id)]", timestamp: stamp, hostname: hostname, timeNs: time,
      properties: properties(input, j, run: run), cases: cases)
  }

  func properties(_ input: InputReport, _ j: Judgement, run: RunReport) -> [JUnitSuite.Property] {
    typealias P = JUnitSuite.Property
    let r = input.result
    var p: [P] = [
      P("ptfrag.version", run.toolVersion),
      P("model", r?.model.id ?? "(not replayed)"),
      P("variant", r.map { "\($0.model.id): \($0.model.kernels) (\(input.modelSelection))" } ?? input.modelSelection),
      P("input", input.path),
      P("input.sha256", input.sha256 ?? "(not read)"),
      P("input.bytes", String(input.read.bytes)),
      P("input.lines", String(input.read.lines)),
      P("verdict", j.verdict.rawValue),
      P("exit-code", String(j.exitCode.rawValue)),
      P("fail-on", run.failOn?.description ?? "never"),
    ]
    if let r {
      p.append(P("events", String(r.events)))
      p.append(P("lost.events", String(r.stats.lostEvents)))
      p.append(P("lost.markers", String(r.stats.lostMarkers)))
      p.append(P("lost", r.lossReason ?? "none"))
    }
    if let misses = input.profileMisses {
      p.append(P("missed", String(misses.values.reduce(0, +))))
      for (f, n) in misses.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where n > 0 {
        p.append(P("missed.\(f.symbol)", String(n)))
      }
      p.append(P("kprobe-profile", input.profilePath ?? ""))
    } else if !input.profileMismatch.isEmpty {
      p.append(P("missed", "unknown (the kprobe_profile does not fit the capture: not used)"))
      p.append(P("kprobe-profile", input.profilePath ?? ""))
      p.append(P("kprobe-profile.mismatch", input.profileMismatch.joined(separator: "; ")))
    } else {
      p.append(P("missed", "unknown (no kprobe_profile given)"))
    }
    if let r {
      let known = r.findings.filter(\.known).count
      p.append(P("findings", String(r.countsByRule.values.reduce(0, +))))
      p.append(P("findings.known", String(known)))
      p.append(P("inconclusive", String(r.inconclusive.count + r.droppedInconclusive)))
      if let ratio = r.stats.occupancy.wasteRatio { p.append(P("waste-ratio", formatRatio(ratio))) }
      // The waste statistics (docs/kernel-models.md §8): peak and time-weighted mean of each.
      for f in r.stats.occupancy.wasteFigures {
        p.append(P("waste.\(f.key).peak", String(f.peak)))
        p.append(P("waste.\(f.key).mean", formatRatio(f.mean)))
      }
      if let hl = r.stats.occupancy.heldLiveRatio { p.append(P("waste.held-live-ratio", formatRatio(hl))) }
    }
    if let max = run.maxWasteRatio { p.append(P("max-waste-ratio", formatRatio(max))) }
    if let b = run.baselinePath { p.append(P("baseline", b)) }
    return p
  }

  // MARK: Cases

  func readCase(_ input: InputReport, _ r: ReplayResult, time: UInt64) -> JUnitCase {
    let rd = input.read
    var facts = "\(rd.lines) lines, \(rd.bytes) bytes, \(r.events) events replayed; \(rd.malformed) malformed (tolerance \(rd.malformedTolerance))\n"
    if rd.incompleteHits > 0 { facts += "\(rd.incompleteHits) probe lines lacked a needed value\n" }
    if let t = rd.truncatedLastLine, t != rd.cutLine { facts += "the last line (\(t)) has no newline: the capture may be cut\n" }
    var samples = ""
    for s in rd.malformedSamples { samples += "\(input.path):\(s.line): \(s.reason)\n" }
    if rd.malformed > rd.malformedSamples.count {
      samples += "… \(rd.malformed - rd.malformedSamples.count) more malformed lines\n"
    }
    if rd.incomplete {
      let message =
        rd.beyondTolerance
        ? "\(rd.malformed) malformed lines, more than the tolerance of \(rd.malformedTolerance): the replay is incomplete"
        : "\(input.path):\(rd.cutLine ?? 0): the capture ends inside this record: the replay is incomplete"
      return JUnitCase(
        classname: r.model.id, name: "read", timeNs: time,
        outcome: .failure(type: "malformed-input", message: message, body: cap(facts + samples, maxBodyBytes)))
    }
    return JUnitCase(
      classname: r.model.id, name: "read", timeNs: time, outcome: .passed,
      systemOut: cap(facts + samples, maxBodyBytes))
  }

  func conclusiveCase(_ c: Judgement.Conclusiveness, _ input: InputReport, _ r: ReplayResult) -> JUnitCase {
    guard !c.conclusive else {
      return JUnitCase(
        classname: r.model.id, name: "conclusive", outcome: .passed,
        systemOut: c.explained > 0 ? "\(c.explained) inconclusive item(s), each explained\n" : nil)
    }
    return JUnitCase(
      classname: r.model.id, name: "conclusive",
      outcome: .skipped(
        message: cap("inconclusive: " + c.reasons.joined(separator: "; "), maxMessageBytes),
        body: inconclusiveList(c.open, input: input)))
  }

  func ruleCase(_ j: Judgement.RuleJudgement, _ input: InputReport, _ r: ReplayResult, failOn: Severity?) -> JUnitCase {
    let (rule, fresh, known) = (j.rule, j.fresh, j.known)
    switch j.outcome {
    case .failed:
      let first = fresh[0]
      let message =
        "\(fresh.count) \(rule.severity) finding(s) [\(rule.id)]\(known.isEmpty ? "" : " and \(known.count) known"); first at \(input.path):\(first.line): \(first.message)"
      return JUnitCase(
        classname: r.model.id, name: rule.id,
        outcome: .failure(
          type: rule.id, message: cap(message, maxMessageBytes),
          body: findingsBody(fresh + known, input: input, dropped: j.dropped, rule: rule)))
    case .known, .belowThreshold:
      var why: String
      if j.outcome == .known {
        why = "\(known.count) finding(s), all known from the baseline: not failing"
      } else if let failOn {
        why = "\(fresh.count) finding(s) (\(rule.severity)), below --fail-on \(failOn): not failing"
        if !known.isEmpty { why += "; \(known.count) known from the baseline" }
      } else {
        why = "\(fresh.count) finding(s) (\(rule.severity)); --fail-on never: not failing"
      }
      return JUnitCase(
        classname: r.model.id, name: rule.id, outcome: .passed,
        systemOut: why + "\n\n" + findingsBody(fresh + known, input: input, dropped: j.dropped, rule: rule))
    case .notApplicable(let reason):
      return JUnitCase(
        classname: r.model.id, name: rule.id,
        outcome: .skipped(message: cap("not applicable to this capture: \(reason)", maxMessageBytes), body: nil))
    case .undecided(let reason):
      return JUnitCase(
        classname: r.model.id, name: rule.id,
        outcome: .skipped(
          message: cap(
            "\(j.undecided.count) would-be finding(s) the capture cannot decide (\(reason))",
            maxMessageBytes),
          body: inconclusiveList(j.undecided, input: input)))
    case .passed:
      return JUnitCase(classname: r.model.id, name: rule.id, outcome: .passed)
    }
  }

  /// The `waste-ratio` case (nil: not gated).
  func wasteCase(_ w: Judgement.WasteGate, _ r: ReplayResult) -> JUnitCase? {
    let facts = TextReport(color: false).occupancyLine(r.stats.occupancy) + "\n"
    switch w {
    case .notGated:
      return nil
    case .undefined:
      return JUnitCase(
        classname: r.model.id, name: "waste-ratio",
        outcome: .skipped(message: "waste ratio undefined: no table was live", body: facts))
    case .exceeded(let ratio, let max):
      return JUnitCase(
        classname: r.model.id, name: "waste-ratio",
        outcome: .failure(
          type: "waste-ratio",
          message: "waste ratio \(formatRatio(ratio)) is above --max-waste-ratio \(formatRatio(max))",
          body: facts))
    case .within(let ratio, let max):
      return JUnitCase(
        classname: r.model.id, name: "waste-ratio", outcome: .passed,
        systemOut: "waste ratio \(formatRatio(ratio)) ≤ \(formatRatio(max))\n" + facts)
    }
  }

  // MARK: Bodies

  /// The findings with their context, new ones first, cut at `maxBodyBytes` with the number
  /// left out stated.
  func findingsBody(_ findings: [Finding], input: InputReport, dropped: Int, rule: Rule) -> String {
    let text = TextReport(color: false, forTerminal: false)
    var body = ""
    var shown = 0
    for f in findings {
      let entry = text.finding(f, path: input.path, indent: "", modelID: input.result?.model.id ?? "") + "\n"
      if body.utf8.count + entry.utf8.count > maxBodyBytes - 256 { break }
      body += entry
      shown += 1
    }
    if shown < findings.count {
      body +=
        "… \(findings.count - shown) more findings truncated (the body is capped at \(maxBodyBytes >> 10) KiB; the JSON report has them)\n"
    }
    if dropped > 0 {
      body += "… \(dropped) more [\(rule.id)] findings beyond the replay's detail cap (counted, not kept)\n"
    }
    return body
  }

  func inconclusiveList(_ items: [Inconclusive], input: InputReport) -> String {
    var body = ""
    var shown = 0
    for i in items {
      var entry = "\(input.path):\(i.line): \(i.reason.rawValue)"
      if let w = i.wouldBeRule { entry += " (would be [\(w)])" }
      entry += ": \(i.message)\n"
      if body.utf8.count + entry.utf8.count > maxBodyBytes - 256 { break }
      body += entry
      shown += 1
    }
    if shown < items.count {
      body += "… \(items.count - shown) more inconclusive items truncated (the body is capped at \(maxBodyBytes >> 10) KiB)\n"
    }
    return body
  }

  /// `s` cut to `max` bytes (after sanitizing, so the cut counts what is written), the cut
  /// stated.
  func cap(_ s: String, _ max: Int) -> String {
    let (head, cut) = XMLSanitizer.prefix(XMLSanitizer.sanitize(s), maxBytes: max - 64)
    return cut ? head + " … (truncated: \(s.utf8.count) bytes in all)" : head
  }

  static func errorType(_ code: ExitCode) -> String {
    switch code {
    case .inputMissing: "input-missing"
    case .malformedInput: "malformed-input"
    case .ioError: "io-error"
    case .usage: "usage"
    case .clean, .findings, .inconclusive: "error"
    }
  }

  // MARK: Time and host

  /// Seconds since the Unix epoch, now.
  public static func now() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec)
  }

  /// `YYYY-MM-DDTHH:MM:SS` in UTC.
  public static func isoTimestamp(unixSeconds: Int64) -> String {
    var t = time_t(unixSeconds)
    var tm = tm()
    gmtime_r(&t, &tm)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))"
  }

  /// This machine's host name (`localhost` if it cannot be read).
  public static func hostname() -> String {
    var buf = [UInt8](repeating: 0, count: 256)
    let ok = buf.withUnsafeMutableBufferPointer { p in
      p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { gethostname($0, p.count - 1) }
    }
    guard ok == 0 else { return "localhost" }
    let name = XMLSanitizer.sanitize(utf8: buf.prefix { $0 != 0 })
    return name.isEmpty ? "localhost" : name
  }
}
