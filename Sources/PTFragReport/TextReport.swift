import PTFragEvents
import PTFragReplay

/// Renders a run for a reviewer, top to bottom: verdict, what was replayed, findings with
/// their page history and lines, inconclusive items, counts by rule. Deterministic.
public struct TextReport {
  public var color: Bool
  /// History entries shown per finding.
  public var historyLines = 8
  /// Findings shown in full per rule (the rest are counted).
  public var maxFindingsShown = 50

  public init(color: Bool) { self.color = color }

  func paint(_ s: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }

  public func render(_ run: RunReport) -> String {
    var out = ""
    for (i, input) in run.inputs.enumerated() {
      if i > 0 { out += "\n" }
      out += render(input, failOn: run.failOn)
    }
    if run.inputs.count > 1 {
      out += "\n== total: \(run.inputs.count) inputs\n"
      var byVerdict: [String: Int] = [:]
      for i in run.inputs { byVerdict[i.verdictText(failOn: run.failOn), default: 0] += 1 }
      out +=
        byVerdict.sorted { $0.key < $1.key }.map { "   \($0.value) \($0.key)" }.joined(
          separator: "\n") + "\n"
      let errors = run.inputs.compactMap { $0.result?.findings.count }.reduce(0, +)
      out += "   \(errors) findings in all; exit code \(run.exitCode.rawValue)\n"
    }
    return out
  }

  public func render(_ input: InputReport, failOn: Severity?) -> String {
    var o = "== \(input.path)\n"
    if let err = input.error {
      o += paint("verdict: ERROR", "1;31") + " — \(err.message) (exit \(err.code.rawValue))\n"
      return o
    }
    guard let r = input.result else { return o }
    let verdict = input.verdictText(failOn: failOn)
    let errors = r.findings.filter { $0.rule.severity == .error }.count
    let warnings = r.findings.filter { $0.rule.severity == .warning }.count
    let infos = r.findings.filter { $0.rule.severity == .info }.count
    let totalFindings = r.countsByRule.values.reduce(0, +)
    let unexplained = r.unexplainedInconclusive
    let vcol: String =
      switch verdict {
      case "clean": "1;32"
      case "fail", "incomplete", "error": "1;31"
      default: "1;33"
      }
    o += paint("verdict: \(verdict.uppercased())", vcol)
    o +=
      " — \(errors) error, \(warnings) warning, \(infos) info; \(r.inconclusive.count) inconclusive (\(unexplained) unexplained)"
    if totalFindings > r.findings.count { o += "; \(totalFindings) findings in all" }
    o += "\n"
    if input.read.beyondTolerance {
      o +=
        "incomplete: \(input.read.malformed) malformed lines, more than the tolerance of \(input.read.malformedTolerance); the replay covers only the lines that parsed\n"
    }
    if let loss = r.lossReason { o += "lost events: \(loss); divergences are reported as inconclusive\n" }
    o += "model: \(r.model.id) (\(r.model.kernels)) — \(input.modelSelection)\n"
    if let pp = input.profilePath {
      let m = input.profileMisses ?? [:]
      let missed = m.filter { $0.value > 0 }.sorted { $0.key.rawValue < $1.key.rawValue }
        .map { "\($0.key.symbol) missed \($0.value)" }
      o += "kprobe_profile: \(pp): \(missed.isEmpty ? "no missed probes" : missed.joined(separator: ", "))\n"
    } else {
      o += "kprobe_profile: none given (silent misses of __tlb_remove_table assumed possible)\n"
    }

    // What was replayed.
    let s = r.stats
    let k = s.eventsByKind
    func n(_ kk: Event.Kind) -> Int { k[kk] ?? 0 }
    o += "\nreplayed: \(input.read.lines) lines, \(input.read.bytes) bytes, \(r.events) events\n"
    o +=
      "  allocs \(n(.alloc)), page_table_free \(n(.freeNow)), page_table_free_rcu \(n(.freeTLB)), tlb_remove_table \(n(.tlbQueue)), __tlb_remove_table \(n(.tlbExec))"
    if n(.deferBegin) > 0 { o += ", pte_free_defer \(n(.deferBegin))" }
    o += "\n"
    o +=
      "  mms: \(s.mmsBorn) born in the capture, \(s.mmsSeen) seen, \(s.mmsDied) died; pages: peak \(s.peakPages), \(s.pagesAtEnd) held at end with \(s.tablesLiveAtEnd) live tables\n"
    o +=
      "  allocations: \(s.allocationsPredicted) predicted and checked, \(s.allocationsUnverified) unverified (mm born before the capture or not synchronized)"
    if s.allocationsFailed > 0 { o += ", \(s.allocationsFailed) returned NULL" }
    o += "\n"
    if s.freesUntracked + s.execsUntracked > 0 {
      o +=
        "  untracked: \(s.freesUntracked) frees and \(s.execsUntracked) tlb executions of tables allocated before the capture\n"
    }
    if s.concurrencyResolved > 0 {
      o += "  concurrency: \(s.concurrencyResolved) outcomes accepted inside an in-flight window\n"
    }
    let rd = input.read
    if rd.malformed > 0 {
      o += "  malformed lines: \(rd.malformed) (tolerance \(rd.malformedTolerance))\n"
      for smp in rd.malformedSamples { o += "    \(input.path):\(smp.line): \(smp.reason)\n" }
      if rd.malformed > rd.malformedSamples.count {
        o += "    … \(rd.malformed - rd.malformedSamples.count) more\n"
      }
    }
    if rd.incompleteHits > 0 {
      o += "  probe lines lacking a needed value: \(rd.incompleteHits)\n"
      for smp in rd.incompleteSamples { o += "    \(input.path):\(smp.line): \(smp.reason)\n" }
    }
    if rd.foreignLines > 0 { o += "  lines of other probes/tracers ignored: \(rd.foreignLines)\n" }
    if let t = rd.truncatedLastLine { o += "  last line (\(t)) has no newline: the capture may be cut\n" }
    if rd.backwardsTimestamps > 0 {
      o +=
        "  timestamps going backwards on a CPU: \(rd.backwardsTimestamps) (first at line \(rd.firstBackwardsLine ?? 0))\n"
    }

    // Findings.
    o += "\nfindings (\(totalFindings))\n"
    if r.findings.isEmpty { o += "  none\n" }
    var shown: [String: Int] = [:]
    for f in r.findings {
      let c = shown[f.rule.id, default: 0]
      shown[f.rule.id] = c + 1
      if c >= maxFindingsShown { continue }
      let sev =
        f.rule.severity == .error
        ? paint("error", "31") : f.rule.severity == .warning ? paint("warning", "33") : "info"
      o += "  \(input.path):\(f.line): \(sev) [\(f.rule.id)] \(f.message)\n"
      var ctx = "    at \(formatTimestamp(f.timestampNs)) cpu \(f.cpu) pid \(f.pid) comm \(f.comm)"
      if let mm = f.mm { ctx += " mm \(hexAddress(mm))" }
      if let p = f.page { ctx += " page \(hexAddress(p))" }
      if let h = f.half { ctx += " half \(h == 0 ? "lower" : "upper")" }
      o += ctx + "\n"
      o += "    state: \(f.stateBefore) → \(f.stateAfter)\n"
      if !f.relatedLines.isEmpty {
        o += "    see lines: \(f.relatedLines.map(String.init).joined(separator: ", "))\n"
      }
      o += history(f.history)
    }
    for (rule, c) in shown.sorted(by: { $0.key < $1.key }) where c > maxFindingsShown {
      o += "  … \(c - maxFindingsShown) more [\(rule)] findings (see --format json)\n"
    }
    for (rule, c) in r.droppedFindings.sorted(by: { $0.key < $1.key }) {
      o += "  … \(c) more [\(rule)] findings beyond the detail cap\n"
    }

    // Inconclusive.
    o += "\ninconclusive (\(r.inconclusive.count + r.droppedInconclusive))\n"
    if r.inconclusive.isEmpty { o += "  none\n" }
    for i in r.inconclusive.prefix(200) {
      o += "  \(input.path):\(i.line): \(i.reason.rawValue)"
      if let w = i.wouldBeRule { o += " (would be [\(w)])" }
      o += ": \(i.message)\n"
      if let e = i.explainedBy { o += "    explained by \(e)\n" }
      o += history(i.history)
    }
    if r.inconclusive.count > 200 { o += "  … \(r.inconclusive.count - 200) more\n" }

    // Counts.
    o += "\ncounts by rule\n"
    let counts = r.countsByRule.filter { $0.value > 0 }
    if counts.isEmpty { o += "  none\n" }
    for (rule, c) in counts.sorted(by: { $0.key < $1.key }) { o += "  \(rule): \(c)\n" }
    return o
  }

  func history(_ h: [HistoryEntry]) -> String {
    guard !h.isEmpty else { return "" }
    var o = "    history:\n"
    for e in h.suffix(historyLines) {
      o +=
        "      line \(e.line): \(formatTimestamp(e.timestampNs)) cpu \(e.cpu) pid \(e.pid) \(e.kind.label)(\(hexAddress(e.table)))"
      if let mm = e.mm { o += " mm \(hexAddress(mm))" }
      o += "\n"
    }
    return o
  }
}
