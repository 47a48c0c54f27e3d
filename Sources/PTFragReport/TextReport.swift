import PTFragEvents
import PTFragReplay

/// Renders a run for a reviewer, top to bottom: verdict, what was replayed, findings with
/// their page history and lines, inconclusive items, counts by rule. Deterministic.
extension ReplayResult {
  /// Findings by severity, exact: every finding counted in `countsByRule`, also those beyond
  /// the per-rule detail cap (a rule's severity from the model's rule list).
  public var findingCountsBySeverity: [Severity: Int] {
    var severity: [String: Severity] = [:]
    for rule in model.rules { severity[rule.id] = rule.severity }
    for f in findings where severity[f.rule.id] == nil { severity[f.rule.id] = f.rule.severity }
    var out: [Severity: Int] = [:]
    for (id, n) in countsByRule where n > 0 { out[severity[id] ?? .error, default: 0] += n }
    return out
  }
}

public struct TextReport {
  public var color: Bool
  /// History entries shown per finding.
  public var historyLines = 8
  /// Findings shown in full per rule (the rest are counted).
  public var maxFindingsShown = 50

  /// Escape control characters of the capture (comms, paths) for a terminal. Off for text
  /// that goes into other documents (JUnit bodies have their own sanitizer).
  public var forTerminal = true

  public init(color: Bool, forTerminal: Bool = true) {
    self.color = color
    self.forTerminal = forTerminal
  }

  func safe(_ s: String) -> String { forTerminal ? terminalSafe(s) : s }

  func paint(_ s: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }

  public func render(_ run: RunReport) -> String {
    // Each input's part on its own (they are independent), joined in input order.
    var out = concurrentMap(Array(run.judged)) { render($0.0, $0.1) }.joined(separator: "\n")
    if run.inputs.count > 1 {
      out += "\n== total: \(run.inputs.count) inputs\n"
      var byVerdict: [String: Int] = [:]
      for j in run.judgements { byVerdict[j.verdict.rawValue, default: 0] += 1 }
      out +=
        byVerdict.sorted { $0.key < $1.key }.map { "   \($0.value) \($0.key)" }.joined(
          separator: "\n") + "\n"
      let findings = run.inputs.compactMap { $0.result?.findings.count }.reduce(0, +)
      let known = run.inputs.compactMap { $0.result?.findings.filter(\.known).count }.reduce(0, +)
      out += "   \(findings) findings in all\(known > 0 ? " (\(known) known from the baseline)" : ""); exit code \(run.exitCode.rawValue)\n"
    }
    return out
  }

  /// One input as its judgement `j` judged it.
  public func render(_ input: InputReport, _ j: Judgement) -> String {
    let path = safe(input.path)
    var o = "== \(path)\n"
    if let err = input.error {
      o += paint("verdict: ERROR", "1;31") + " — \(err.message) (exit \(err.code.rawValue))\n"
      return o
    }
    guard let r = input.result else { return o }
    let verdict = j.verdict.rawValue
    // Exact counts (beyond the per-rule detail cap too), so the line adds up to the total.
    let bySeverity = r.findingCountsBySeverity
    let errors = bySeverity[.error] ?? 0
    let warnings = bySeverity[.warning] ?? 0
    let infos = bySeverity[.info] ?? 0
    let totalFindings = r.countsByRule.values.reduce(0, +)
    let unexplained = r.unexplainedInconclusive
    let vcol: String =
      switch j.verdict {
      case .clean: "1;32"
      case .findings, .incomplete, .error: "1;31"
      case .inconclusive: "1;33"
      }
    o += paint("verdict: \(verdict.uppercased())", vcol)
    o += " — \(errors) error, \(warnings) warning, \(infos) info"
    if totalFindings > r.findings.count {
      o += " of \(totalFindings) findings (\(r.findings.count) kept in detail)"
    }
    o += "; \(r.inconclusive.count + r.droppedInconclusive) inconclusive (\(unexplained) unexplained)"
    let known = r.findings.filter(\.known).count
    if known > 0 { o += "; \(known) known from the baseline (not failing)" }
    o += "\n"
    if case .exceeded(let ratio, let max) = j.waste {
      o += "waste ratio \(formatRatio(ratio)) is above --max-waste-ratio \(formatRatio(max))\n"
    }
    for why in input.read.incompleteReasons(path: path) { o += "incomplete: \(why)\n" }
    if let loss = r.lossReason { o += "lost events: \(loss); divergences are reported as inconclusive\n" }
    if input.modelChosen {
      o += "model: \(r.model.id) (\(r.model.kernels)) — \(input.modelSelection)\n"
    } else {
      o += "model: none — \(input.modelSelection)\n"
    }
    if r.events == 0 { o += "nothing was replayed: the capture holds no page-table events (a probe setup that recorded nothing is not a pass)\n" }
    if let pp = input.profilePath, !input.profileMismatch.isEmpty {
      o += paint(
        "kprobe_profile: \(pp) does not fit this capture (\(input.profileMismatch.joined(separator: "; ")): it is from another kernel or run, so it is not used (silent misses assumed possible)",
        "1;33") + "\n"
    } else if let pp = input.profilePath {
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
    o += "\nreplayed: \(input.read.lines) lines, \(input.read.bytes) bytes, \(r.events) events"
    if let sha = input.sha256 { o += ", sha256 \(sha)" }
    o += "\n"
    if r.model.architecture == .powerpc {
      // powerpc's own functions (arch/powerpc/mm/pgtable-frag.c, book3s64).
      o +=
        "  allocs \(n(.alloc)), pte_fragment_free \(n(.fragmentFree)), tlb_remove_table \(n(.tlbQueue)), __tlb_remove_table \(n(.tlbExec)), pte_frag_destroy \(n(.fragDestroy))"
      if n(.deferBegin) > 0 { o += ", pte_free_defer \(n(.deferBegin))" }
      if n(.rcuFree) > 0 { o += ", pte_free_now \(n(.rcuFree))" }
      if n(.pmdAlloc) > 0 { o += ", pmd_fragment_alloc \(n(.pmdAlloc))" }
    } else {
      o +=
        "  allocs \(n(.alloc)), page_table_free \(n(.freeNow)), page_table_free_rcu \(n(.freeTLB)), tlb_remove_table \(n(.tlbQueue)), __tlb_remove_table \(n(.tlbExec))"
      if n(.deferBegin) > 0 { o += ", pte_free_defer \(n(.deferBegin))" }
    }
    o += "\n"
    o +=
      "  mms: \(s.mmsBorn) born in the capture, \(s.mmsSeen) seen, \(s.mmsDied) died; pages: peak \(s.peakPages), \(s.pagesAtEnd) held at end with \(s.tablesLiveAtEnd) live tables\n"
    o +=
      "  allocations: \(s.allocationsPredicted) predicted and checked, \(s.allocationsUnverified) unverified (mm born before the capture or not synchronized)"
    if s.allocationsFailed > 0 { o += ", \(s.allocationsFailed) returned NULL" }
    o += "\n"
    o += "  \(occupancyLine(s.occupancy))\n"
    o += wasteBlock(s.occupancy, indent: "  ")
    o += mmBlock(s, indent: "  ")
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
      for smp in rd.malformedSamples { o += "    \(path):\(smp.line): \(smp.reason)\n" }
      if rd.malformed > rd.malformedSamples.count {
        o += "    … \(rd.malformed - rd.malformedSamples.count) more\n"
      }
    }
    if rd.incompleteHits > 0 {
      o += "  probe lines lacking a needed value: \(rd.incompleteHits)\n"
      for smp in rd.incompleteSamples { o += "    \(path):\(smp.line): \(smp.reason)\n" }
    }
    if rd.foreignLines > 0 { o += "  lines of other probes/tracers ignored: \(rd.foreignLines)\n" }
    if let t = rd.truncatedLastLine, t != rd.cutLine { o += "  last line (\(t)) has no newline: the capture may be cut\n" }
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
      o += finding(f, path: path, indent: "  ", modelID: r.model.id)
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
      o += "  \(path):\(i.line): \(i.reason.rawValue)"
      if let w = i.wouldBeRule { o += " (would be [\(w)])" }
      o += ": \(i.message)\n"
      if let e = i.explainedBy { o += "    explained by \(e)\n" }
      o += history(i.history, modelID: r.model.id)
    }
    if r.inconclusive.count > 200 { o += "  … \(r.inconclusive.count - 200) more\n" }

    // Counts.
    o += "\ncounts by rule\n"
    let counts = r.countsByRule.filter { $0.value > 0 }
    if counts.isEmpty { o += "  none\n" }
    for (rule, c) in counts.sorted(by: { $0.key < $1.key }) { o += "  \(rule): \(c)\n" }
    return o
  }

  /// Pages held and tables live over time, and the waste ratio they give.
  public func occupancyLine(_ t: OccupancyTimeline) -> String {
    guard let held = t.meanPagesHeld, let live = t.meanLiveTables else { return "occupancy: no events" }
    var o =
      "occupancy: pages held peak \(t.peakPagesHeld), mean \(formatRatio(held)); tables live peak \(t.peakLiveTables), mean \(formatRatio(live)); "
    if let r = t.wasteRatio {
      // The denominator is the pages the mean live tables fill packed perfectly, not the mean
      // of the ideal lower bound ⌈live/slots⌉ (rounded up at every event) that the waste
      // table prints: docs/kernel-models.md §8.
      o += "waste ratio \(formatRatio(r)) = mean pages held / (mean tables live / \(t.slotsPerPage) tables per page)"
    } else {
      o += "waste ratio undefined (no live tables)"
    }
    return o
  }

  /// One finding with its context, as lines: `path:line: severity [rule] message`, where and
  /// who (timestamp, cpu, pid, comm, mm, page, half), the model state before → after, related
  /// lines and the page's history. Known (baseline) findings are marked `known`.
  public func finding(_ f: Finding, path: String, indent: String, modelID: String = "") -> String {
    let sev =
      f.rule.severity == .error
      ? paint("error", "31") : f.rule.severity == .warning ? paint("warning", "33") : "info"
    var o = "\(indent)\(path):\(f.line): \(f.known ? "known " : "")\(sev) [\(f.rule.id)] \(f.message)\n"
    var ctx = "\(indent)  at \(formatTimestamp(f.timestampNs)) cpu \(f.cpu) pid \(f.pid) comm \(safe(f.comm.description))"
    if let mm = f.mm { ctx += " mm \(hexAddress(mm))" }
    if let p = f.page { ctx += " page \(hexAddress(p))" }
    if let l = f.location {
      // s390 halves; powerpc fragments (pgtable-frag.c), by index.
      if case .half(let h) = l { ctx += " half \(h == 0 ? "lower" : "upper")" } else { ctx += " \(l.text)" }
    }
    o += ctx + "\n"
    o += "\(indent)  state: \(f.stateBefore) → \(f.stateAfter)\n"
    if !f.relatedLines.isEmpty {
      o += "\(indent)  see lines: \(f.relatedLines.map(String.init).joined(separator: ", "))\n"
    }
    o += history(f.history, indent: indent, modelID: modelID)
    return o
  }

  func history(_ h: [HistoryEntry], indent: String = "  ", modelID: String = "") -> String {
    guard !h.isEmpty else { return "" }
    var o = "\(indent)  history:\n"
    for e in h.suffix(historyLines) {
      o +=
        "\(indent)    line \(e.line): \(formatTimestamp(e.timestampNs)) cpu \(e.cpu) pid \(e.pid) \(e.kind.label(modelID: modelID))(\(hexAddress(e.table)))"
      if let mm = e.mm { o += " mm \(hexAddress(mm))" }
      o += "\n"
    }
    return o
  }
}

/// Text safe to print on a terminal: C0 controls (ESC among them), DEL and C1 controls from
/// the capture become visible `\xNN` escapes, so a hostile comm cannot drive the terminal.
public func terminalSafe(_ s: String) -> String {
  var o = ""
  for u in s.unicodeScalars {
    let v = u.value
    if v < 0x20 || v == 0x7f || (v >= 0x80 && v < 0xa0) {
      let h = String(v, radix: 16)
      o += "\\x" + (h.count < 2 ? "0" : "") + h
    } else {
      o.unicodeScalars.append(u)
    }
  }
  return o
}
