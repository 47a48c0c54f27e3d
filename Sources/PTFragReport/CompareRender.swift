import PTFragReplay

/// The strategy comparison as one table (text and HTML render the same rows): one row per
/// strategy, then the replayed figures of the capture's own model and the two bounds.
public struct ComparisonTable: Sendable {
  public var header: [String]
  public var rows: [[String]]
  /// The row of the strategy the kernel ran.
  public var highlight: Int?

  public init(_ c: CompareReport) {
    header = [
      "strategy", "page", "peak pages", "mean pages", "mean held", "peak live", "held/live",
      "per live table", "reusable now", "reusable later", "stranded", "pending",
      "Δ mean held vs \(c.ranStrategy?.descriptor.id ?? "ran")",
    ]
    rows = []
    let ranBytes = c.ranMeanBytesHeld
    for s in c.strategies {
      if s.ran { highlight = rows.count }
      rows.append(Self.row(s.descriptor.id + (s.ran ? " (ran)" : ""), s.timeline, ranBytes: ranBytes, isRan: s.ran))
    }
    if let r = c.input.result {
      rows.append(Self.row("as replayed: \(r.model.id)", r.stats.occupancy, ranBytes: ranBytes, isRan: false))
      let t = (c.ranStrategy?.timeline ?? r.stats.occupancy)
      if let m = t.mean {
        let pb = Double(t.pageBytes)
        let page = formatBytes(pb)
        rows.append(
          ["ideal lower bound ⌈live/\(t.slotsPerPage)⌉", page, String(t.peak.idealPages), formatMean(m.idealPages),
           formatBytes(m.idealPages * pb), String(t.peak.live), "", "", "", "", "", "",
           Self.delta(m.idealPages * pb, ranBytes)])
        rows.append(
          ["no sharing (page per table)", page, String(t.peak.live), formatMean(m.live),
           formatBytes(m.live * pb), String(t.peak.live), "", "", "", "", "", "",
           Self.delta(m.live * pb, ranBytes)])
      }
    }
  }

  static func row(_ name: String, _ t: OccupancyTimeline, ranBytes: Double?, isRan: Bool) -> [String] {
    guard let m = t.mean else { return [name] + Array(repeating: "–", count: 12) }
    let pb = Double(t.pageBytes)
    let sb = Double(t.slotBytes)
    let held = m.pagesHeld * pb
    return [
      name, formatBytes(pb), String(t.peak.pagesHeld), formatMean(m.pagesHeld),
      formatBytes(held), String(t.peak.live),
      t.heldLiveRatio.map(formatRatio) ?? "–",
      m.live > 0 ? formatBytes(held / m.live) : "–",
      formatBytes(m.reusableNow * sb), formatBytes(m.reusableLater * sb), formatBytes(m.stranded * sb),
      formatBytes(m.pending * sb), isRan ? "—" : delta(held, ranBytes),
    ]
  }

  /// `+12.3 KiB (+58%)`.
  static func delta(_ v: Double, _ base: Double?) -> String {
    guard let base else { return "–" }
    let d = v - base
    let sign = d > 0 ? "+" : d < 0 ? "−" : "±"
    var s = sign + formatBytes(abs(d))
    if base > 0 {
      let pct = abs(d) / base * 100
      s += pct > 0 && pct < 0.1 ? " (\(sign)<0.1%)" : " (\(sign)\(formatMean((pct * 10).rounded() / 10))%)"
    }
    return s
  }

  /// The columns of the text tables: the pages held (`held`) and where the slots go
  /// (`waste`), each with the strategy column, so a terminal of ~100 columns shows them.
  static let heldColumns = [0, 1, 2, 3, 4, 5, 6, 12]
  static let wasteColumns = [0, 7, 8, 9, 10, 11]

  /// The table for a terminal, ~100 columns wide: two aligned tables of the same rows (the
  /// pages held, then where the slots of the pages go), short headings and a legend that
  /// spells them out. The first column left-aligned, the rest right-aligned. Deterministic.
  public func text(indent: String = "") -> String {
    let ran = header[12].hasPrefix("Δ mean held vs ") ? String(header[12].dropFirst("Δ mean held vs ".count)) : "ran"
    var o = ""
    o += Self.aligned(
      ["strategy", "page", "peak", "mean", "mean held", "live", "held/live", "Δ mean held"],
      rows.map { r in Self.heldColumns.map { $0 < r.count ? r[$0] : "" } }, indent: indent)
    o += "\(indent)peak, mean: pages held (peak, time-weighted mean); mean held: bytes; live: peak tables live;\n"
    o += "\(indent)held/live: the waste ratio; Δ mean held: against \(ran)\n\n"
    // The bounds have no slots of their own: they are left out of the second table.
    let wasteRows = rows.map { r in Self.wasteColumns.map { $0 < r.count ? r[$0] : "" } }
      .filter { r in r.dropFirst().contains { !$0.isEmpty } }
    o += Self.aligned(["strategy", "per table", "free now", "free later", "stranded", "pending"], wasteRows, indent: indent)
    o += "\(indent)mean bytes: held per live table; slots free and reusable now (on the list), later (after\n"
    o += "\(indent)their grace period), stranded (never reusable while the page is held); pending (in a tlb\n"
    o += "\(indent)batch or RCU)\n"
    return o
  }

  static func aligned(_ header: [String], _ rows: [[String]], indent: String) -> String {
    let all = [header] + rows
    var widths = [Int](repeating: 0, count: header.count)
    for r in all { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    var o = ""
    for (ri, r) in all.enumerated() {
      var line = indent
      for (i, c) in r.enumerated() where i < widths.count {
        line += i == 0 ? pad(c, widths[i], left: true) : "  " + pad(c, widths[i])
      }
      while line.last == " " { line.removeLast() }
      o += line + "\n"
      if ri == 0 { o += indent + String(repeating: "─", count: widths.reduce(0, +) + 2 * (widths.count - 1)) + "\n" }
    }
    return o
  }
}

extension CompareReport {
  /// Mean bytes held by the strategy that ran (the base of every Δ).
  public var ranMeanBytesHeld: Double? {
    ranStrategy.flatMap { s in s.timeline.mean.map { $0.pagesHeld * Double(s.timeline.pageBytes) } }
  }

  /// The workload in one paragraph (what was driven through every strategy).
  public var workloadSummary: [String] {
    let w = workload
    var out: [String] = []
    out.append(
      "workload: \(w.tables) tables allocated — \(w.freesTLB) freed through the tlb batch, \(w.freesNow) at once, \(w.defers) by pte_free_defer; \(w.execs) __tlb_remove_table seen\(w.execsInferred > 0 ? " and \(w.execsInferred) inferred (silent kprobe misses the replay resynchronised over)" : ""); \(w.mmsBorn) mms born, \(w.mmsDied) died"
    )
    var left: [String] = []
    if w.freesBeforeCapture > 0 { left.append("\(w.freesBeforeCapture) frees of tables allocated before the capture") }
    let upper = input.result?.model.architecture == .powerpc ? "PMD/PUD tables" : "CRST tables"
    if w.execsNotRecorded > 0 { left.append("\(w.execsNotRecorded) __tlb_remove_table of \(upper) or of tables allocated before the capture") }
    if w.resynchronised > 0 { left.append("\(w.resynchronised) tables handed out again while still held (taken as freed then)") }
    if w.allocsWithoutMM > 0 { left.append("\(w.allocsWithoutMM) allocations without their entry (mm unknown: given mm 0)") }
    if w.freesInferred > 0 { left.append("\(w.freesInferred) frees inferred by the replay") }
    if !left.isEmpty { out.append("left out or adjusted: " + left.joined(separator: "; ")) }
    out.append("RCU grace period simulated: \(formatMilli(graceNs / 1000)) ms (\(graceSource)); every call_rcu's callback runs that long after it")
    return out
  }

  /// Notes a reader needs to trust the table: the simulation's self-checks, callbacks still
  /// pending at the end, and whether the ran strategy reproduces the replay.
  public var notes: [String] {
    var out: [String] = []
    if let ran = ranStrategy, let r = input.result {
      let a = ran.timeline
      let b = r.stats.occupancy
      if a.peak.pagesHeld == b.peak.pagesHeld && a.meanPagesHeld == b.meanPagesHeld && a.peak.live == b.peak.live {
        out.append("\(ran.descriptor.id) simulated equals the replay (peak and mean pages held, peak tables live): the workload reproduces the capture")
      } else {
        out.append(
          "\(ran.descriptor.id) simulated differs from the replay (peak \(a.peak.pagesHeld) vs \(b.peak.pagesHeld), mean \(formatMean(a.meanPagesHeld ?? 0)) vs \(formatMean(b.meanPagesHeld ?? 0)) pages): the simulation times RCU callbacks by the grace period, not by the capture's pte_free_now, and decides allocations sequentially (see docs/reports.md, compare)")
      }
    }
    for s in strategies {
      for n in s.descriptor.notes + s.notes { out.append("\(s.descriptor.id): \(n)") }
    }
    for s in strategies where s.callbacksPending > 0 {
      out.append("\(s.descriptor.id): \(s.callbacksPending) RCU callbacks still pending when the capture ended (counted as pending)")
    }
    // What the replay itself found (the workload carries it, e.g. a leak).
    let captured = Set((input.result?.findings.map(\.rule.id) ?? []) + (input.result?.inconclusive.compactMap(\.wouldBeRule) ?? []))
    for s in strategies where !s.selfCheck.isEmpty {
      let rules = Set(s.selfCheck.map { String($0.prefix { $0 != " " }) })
      let what: String
      if rules.isSubset(of: captured) {
        what = "the capture's own \(rules.sorted().joined(separator: ", ")), carried by the workload"
      } else if rules.isSubset(of: captured.union(["released-with-active"])) {
        what = "its kernel's own bug fires on this workload (fda4d71651f7 fixed it)"
      } else {
        what = "the simulation broke the model's rules: a ptfrag bug, please report it"
      }
      out.append("\(s.descriptor.id): \(s.selfCheck.count) finding(s) on its own simulation — \(what): \(s.selfCheck.prefix(3).joined(separator: "; "))")
    }
    return out
  }
}

/// `ptfrag compare` as text.
public enum CompareText {
  public static func render(_ reports: [CompareReport], color: Bool) -> String {
    var o = ""
    for (i, c) in reports.enumerated() {
      if i > 0 { o += "\n" }
      o += render(c)
    }
    return o
  }

  public static func render(_ c: CompareReport) -> String {
    var o = "== \(c.input.path)\n"
    if let e = c.input.error {
      return o + "error: \(e.message) (exit \(e.code.rawValue))\n"
    }
    if let n = c.notCompared {
      return o + "not compared: \(n.reason) (exit \(n.code.rawValue))\n"
    }
    guard let r = c.input.result else { return o }
    o += "replayed with \(r.model.id) (\(c.input.modelSelection)): verdict \(c.input.judgement(.compare).verdict.rawValue.uppercased()), \(r.events) events over \(formatSeconds(r.stats.occupancy.spanNs))\n"
    for l in c.workloadSummary { o += l + "\n" }
    o += "\nthe same workload through each strategy (each chooses its own pages); means are time-weighted;\n"
    o += "bytes = pages × page size, slots × slot size:\n"
    o += ComparisonTable(c).text(indent: "  ")
    for n in c.notes { o += "note: \(n)\n" }
    return o
  }
}

extension JSONReport {
  /// `ptfrag compare --format json` (schema in the README, "compare JSON").
  public static func compareDocument(_ reports: [CompareReport], toolVersion: String, exitCode: Int32) -> JSON {
    .object([
      ("schemaVersion", .int(schemaVersion)),
      ("tool", .string("ptfrag")),
      ("toolVersion", .string(toolVersion)),
      ("command", .string("compare")),
      ("exitCode", .int(Int(exitCode))),
      ("inputs", .array(reports.map(compareInput))),
    ])
  }

  static func compareInput(_ c: CompareReport) -> JSON {
    var kv: [(String, JSON)] = [("path", .string(c.input.path))]
    if let e = c.input.error {
      kv.append(("compared", .bool(false)))
      kv.append(("exitCode", .int(Int(e.code.rawValue))))
      kv.append(("error", .object([("exitCode", .int(Int(e.code.rawValue))), ("message", .string(e.message))])))
      return .object(kv)
    }
    if let n = c.notCompared {
      kv.append(("compared", .bool(false)))
      kv.append(("exitCode", .int(Int(n.code.rawValue))))
      kv.append(("notCompared", .object([("exitCode", .int(Int(n.code.rawValue))), ("reason", .string(n.reason))])))
      kv.append(("complete", .bool(!c.input.read.incomplete)))
      kv.append(("cutLine", .num(c.input.read.cutLine)))
      kv.append(("events", .int(c.input.result?.events ?? 0)))
      return .object(kv)
    }
    kv.append(("compared", .bool(true)))
    kv.append(("exitCode", .int(0)))
    let r = c.input.result
    kv.append(("sha256", .str(c.input.sha256)))
    kv.append(("model", .str(r?.model.id)))
    kv.append(("modelSelection", .string(c.input.modelSelection)))
    kv.append(("verdict", .string(c.input.judgement(.compare).verdict.rawValue)))
    kv.append(("events", .int(r?.events ?? 0)))
    kv.append(("rcuGraceNs", .int(Int(clamping: c.graceNs))))
    kv.append(("rcuGraceSource", .string(c.graceSource)))
    let w = c.workload
    kv.append(
      ("workload",
        .object([
          ("tables", .int(w.tables)), ("freesNow", .int(w.freesNow)), ("freesTLB", .int(w.freesTLB)),
          ("defers", .int(w.defers)), ("execs", .int(w.execs)), ("execsInferred", .int(w.execsInferred)),
          ("freesInferred", .int(w.freesInferred)), ("freesBeforeCapture", .int(w.freesBeforeCapture)),
          ("execsNotRecorded", .int(w.execsNotRecorded)), ("resynchronised", .int(w.resynchronised)),
          ("allocsWithoutMM", .int(w.allocsWithoutMM)), ("mmsBorn", .int(w.mmsBorn)), ("mmsDied", .int(w.mmsDied)),
        ])))
    if let r { kv.append(("replayed", .object([("model", .string(r.model.id))] + occupancyFields(r.stats.occupancy)))) }
    let ranBytes = c.ranMeanBytesHeld
    kv.append(
      ("strategies",
        .array(
          c.strategies.map { s in
            var o: [(String, JSON)] = [
              ("model", .string(s.descriptor.id)),
              ("kernels", .string(s.descriptor.kernels)),
              ("ran", .bool(s.ran)),
              ("simulationOnly", .bool(s.descriptor.simulationOnly)),
            ]
            o += occupancyFields(s.timeline)
            let held = s.timeline.mean.map { $0.pagesHeld * Double(s.timeline.pageBytes) }
            if let held, let ranBytes {
              o.append(
                ("deltaVsRan",
                  .object([
                    ("meanBytesHeld", .double(held - ranBytes)),
                    ("meanBytesHeldPercent", ranBytes > 0 ? .double((held - ranBytes) / ranBytes * 100) : .null),
                  ])))
            } else {
              o.append(("deltaVsRan", .null))
            }
            o.append(("rcuCallbacksRun", .int(s.callbacksRun)))
            o.append(("rcuCallbacksPendingAtEnd", .int(s.callbacksPending)))
            o.append(("selfCheck", .array(s.selfCheck.map { .string($0) })))
            o.append(("notes", .array((s.descriptor.notes + s.notes).map { .string($0) })))
            return .object(o)
          })))
    return .object(kv)
  }
}
