import PTFragReplay

/// One line of a plot: a strategy's occupancy over the capture.
public struct PlotLine: Sendable {
  public var label: String
  /// (seconds since the capture's first event, value).
  public var points: [(Double, Double)]
  public var dashed: Bool
  /// Drawn wide and translucent on top (the strategy that ran), so that lines it coincides
  /// with stay visible under it.
  public var emphasis: Bool
  /// The line's colour (CSS); nil: the palette's, by the line's place in its plot.
  public var color: String?
  public init(
    label: String, points: [(Double, Double)], dashed: Bool = false, emphasis: Bool = false, color: String? = nil
  ) {
    self.label = label
    self.points = points
    self.dashed = dashed
    self.emphasis = emphasis
    self.color = color
  }
}

/// A plot: lines over the capture's time, with axes and units.
public struct Plot: Sendable {
  public var title: String
  public var yUnit: String
  public var lines: [PlotLine]
  /// The part of the time axis to show (s); nil: from 0 to the last point.
  public var xRange: ClosedRange<Double>?
  /// A line under the plot.
  public var note: String?
  public init(title: String, yUnit: String, lines: [PlotLine], xRange: ClosedRange<Double>? = nil, note: String? = nil) {
    self.title = title
    self.yUnit = yUnit
    self.lines = lines
    self.xRange = xRange
    self.note = note
  }
}

/// A table of rows for the page (comparison, statistics).
public struct HTMLTable: Sendable {
  public var caption: String
  public var header: [String]
  public var rows: [[String]]
  /// Row index to emphasise (the strategy that actually ran).
  public var highlight: Int?
  public init(caption: String, header: [String], rows: [[String]], highlight: Int? = nil) {
    self.caption = caption
    self.header = header
    self.rows = rows
    self.highlight = highlight
  }
}

/// One self-contained HTML page (inline CSS and SVG; no scripts, fonts or anything fetched):
/// the verdict, what was replayed, the findings, tables and plots. The page is well-formed
/// XML (XHTML syntax), so any XML parser reads it.
public struct HTMLReport {
  public var title: String
  public init(title: String) { self.title = title }

  public func render(run: RunReport, tables: [HTMLTable] = [], plots: [Plot] = []) -> String {
    var o = head()
    o += "<p class=\"muted\">ptfrag \(esc(run.toolVersion)) · fail-on \(esc(run.failOn?.description ?? "never")) · exit code \(run.exitCode.rawValue)</p>\n"
    if run.inputs.count > 1 {
      // Several inputs: the verdict of each at the top, as the exit code judged it.
      o += table(
        HTMLTable(
          caption: "Summary: \(run.inputs.count) inputs, exit code \(run.exitCode.rawValue) (the worst decides)",
          header: ["input", "verdict", "exit code", "model", "errors", "inconclusive (open)"],
          rows: run.judged.map { i, j in
            [
              i.path, j.verdict.rawValue.uppercased(), String(j.exitCode.rawValue),
              i.modelChosen ? (i.result?.model.id ?? "–") : "none",
              i.result.map { String($0.findingCountsBySeverity[.error] ?? 0) } ?? "–",
              i.result.map { "\($0.inconclusive.count) (\($0.unexplainedInconclusive))" } ?? "–",
            ]
          }))
    }
    for (input, j) in run.judged {
      o += section(input, j)
      o += wasteSection(input)
    }
    for t in tables { o += table(t) }
    for p in plots { o += svg(p) }
    o += "</body>\n</html>\n"
    return o
  }

  /// The document up to the title (the style sheet, `<h1>`).
  func head() -> String {
    """
      <!DOCTYPE html>
      <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
      <head>
      <meta charset="utf-8"/>
      <title>\(esc(title))</title>
      <style>
      body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1240px;color:#1d2430;padding:0 16px}
      h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
      .muted{color:#5b6576} code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:12.5px}
      .verdict{display:inline-block;padding:3px 10px;border-radius:4px;font-weight:600;color:#fff;margin-right:8px}
      .clean{background:#1f7a3a} .fail,.error,.incomplete{background:#b42318} .inconclusive{background:#b7791f}
      table{border-collapse:collapse;margin:6px 0 12px;width:100%} caption{text-align:left;font-weight:600;padding:4px 0}
      th,td{border-bottom:1px solid #e3e7ee;padding:4px 8px;text-align:left;vertical-align:top}
      th{background:#f3f5f9;font-weight:600} td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
      table.wide{font-size:12.5px} table.wide td:first-child{white-space:nowrap} .scroll{overflow-x:auto}
      tr.hl td{background:#fff7e0;font-weight:600}
      .sev-error{color:#b42318;font-weight:600} .sev-warning{color:#b7791f;font-weight:600} .sev-info{color:#3b5b9a}
      details{margin:2px 0} summary{cursor:pointer}
      .cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
      .card{border:1px solid #e3e7ee;border-radius:6px;padding:8px 12px;min-width:150px}
      .card b{display:block;font-size:20px}
      svg text{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif}
      .note{background:#f3f5f9;border-left:3px solid #9aa5b8;padding:6px 10px;margin:8px 0}
      .lead{font-size:15px}
      </style>
      </head>
      <body>
      <h1>\(esc(title))</h1>

      """
  }

  /// One input as its judgement `j` judged it.
  func section(_ i: InputReport, _ j: Judgement) -> String {
    let v = j.verdict.rawValue
    var o = "<h2>\(esc(i.path))</h2>\n<p><span class=\"verdict \(v)\">\(esc(v.uppercased()))</span>"
    if let e = i.error {
      o += esc(e.message) + "</p>\n"
      return o
    }
    guard let r = i.result else { return o + "</p>\n" }
    if i.modelChosen {
      o += "model <code>\(esc(r.model.id))</code> (\(esc(r.model.kernels))) — \(esc(i.modelSelection))</p>\n"
    } else {
      o += "model: none — \(esc(i.modelSelection))</p>\n"
    }
    if r.events == 0 { o += "<p class=\"sev-warning\">nothing was replayed: the capture holds no page-table events</p>\n" }
    if case .exceeded(let ratio, let max) = j.waste {
      o += "<p class=\"sev-error\">waste ratio \(formatRatio(ratio)) is above --max-waste-ratio \(formatRatio(max))</p>\n"
    }
    for why in i.read.incompleteReasons(path: i.path) {
      o += "<p class=\"sev-error\">incomplete: \(esc(why))</p>\n"
    }
    if !i.profileMismatch.isEmpty {
      o += "<p class=\"sev-warning\">kprobe_profile \(esc(i.profilePath ?? "")) does not fit this capture (\(esc(i.profileMismatch.joined(separator: "; ")))): not used</p>\n"
    }
    if let loss = r.lossReason { o += "<p class=\"sev-warning\">lost events: \(esc(loss))</p>\n" }
    let s = r.stats
    let errors = r.findingCountsBySeverity[.error] ?? 0
    o += "<div class=\"cards\">"
    o += card("events", "\(r.events)")
    o += card("errors", "\(errors)")
    o += card("inconclusive", "\(r.inconclusive.count) (\(r.unexplainedInconclusive) open)")
    o += card("allocations checked", "\(s.allocationsPredicted) / \(s.allocationsPredicted + s.allocationsUnverified)")
    o += card("mms born", "\(s.mmsBorn)")
    o += card("peak pages", "\(s.peakPages)")
    o += "</div>\n"
    // Findings.
    o += "<table><caption>Findings (\(r.countsByRule.values.reduce(0, +)))</caption>\n"
    o += "<tr><th class=\"num\">line</th><th>severity</th><th>rule</th><th>what happened</th><th>state</th></tr>\n"
    if r.findings.isEmpty { o += "<tr><td colspan=\"5\" class=\"muted\">none</td></tr>\n" }
    for f in r.findings.prefix(500) {
      o += "<tr><td class=\"num mono\">\(f.line)</td><td class=\"sev-\(f.rule.severity)\">\(f.rule.severity)</td>"
      o += "<td class=\"mono\">\(esc(f.rule.id))</td><td>\(esc(f.message))"
      if !f.history.isEmpty {
        o += "<details><summary class=\"muted\">page history</summary><div class=\"mono\">"
        for h in f.history {
          o += "line \(h.line): \(esc(h.kind.label(modelID: r.model.id)))(\(hexAddress(h.table))) pid \(h.pid) cpu \(h.cpu)<br/>"
        }
        o += "</div></details>"
      }
      o += "</td><td class=\"mono\">\(esc(f.stateBefore)) → \(esc(f.stateAfter))</td></tr>\n"
    }
    if r.findings.count > 500 { o += "<tr><td colspan=\"5\" class=\"muted\">… \(r.findings.count - 500) more (see the JSON report)</td></tr>\n" }
    o += "</table>\n"
    if !r.inconclusive.isEmpty {
      o += "<table><caption>Inconclusive (\(r.inconclusive.count))</caption>\n"
      o += "<tr><th class=\"num\">line</th><th>reason</th><th>what</th><th>explained by</th></tr>\n"
      for x in r.inconclusive.prefix(300) {
        o += "<tr><td class=\"num mono\">\(x.line)</td><td class=\"mono\">\(esc(x.reason.rawValue))</td><td>\(esc(x.message))</td><td>\(esc(x.explainedBy ?? "— open —"))</td></tr>\n"
      }
      o += "</table>\n"
    }
    return o
  }

  func card(_ label: String, _ value: String) -> String {
    "<div class=\"card\"><span class=\"muted\">\(esc(label))</span><b>\(esc(value))</b></div>"
  }

  /// A table; one with many columns is set smaller and scrolls sideways on a narrow screen.
  func table(_ t: HTMLTable) -> String {
    let wide = t.header.count > 8
    var o = wide ? "<div class=\"scroll\"><table class=\"wide\">" : "<table>"
    o += "<caption>\(esc(t.caption))</caption>\n<tr>"
    for (i, h) in t.header.enumerated() { o += "<th\(i > 0 ? " class=\"num\"" : "")>\(esc(h))</th>" }
    o += "</tr>\n"
    for (ri, row) in t.rows.enumerated() {
      o += "<tr\(ri == t.highlight ? " class=\"hl\"" : "")>"
      for (i, c) in row.enumerated() { o += "<td\(i > 0 ? " class=\"num\"" : "")>\(esc(c))</td>" }
      o += "</tr>\n"
    }
    return o + (wide ? "</table></div>\n" : "</table>\n")
  }

  static let palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#a16207", "#db2777", "#4b5563"]

  /// One colour per strategy, the same in every plot of a page (and on every page): by the
  /// strategy's place among the registered models. Bounds are drawn in `boundColor`.
  static let strategyPalette = [
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#a16207", "#db2777",
    "#65a30d", "#7c3aed", "#0d9488", "#be123c",
  ]
  static let boundColor = "#111827"
  static func strategyColor(_ id: String) -> String {
    let base = id.hasSuffix("+fda4d71651f7") ? String(id.dropLast("+fda4d71651f7".count)) : id
    let i = ModelRegistry.ids.firstIndex(of: base) ?? ModelRegistry.ids.count
    return strategyPalette[i % strategyPalette.count]
  }

  /// An SVG line plot with axes, ticks, units and a legend (entries flow left to right and
  /// wrap). `p.xRange` zooms into part of the time axis: each line starts there with the
  /// value it had, and stops at its end.
  func svg(_ p: Plot) -> String {
    let w = 1000.0
    let left = 64.0
    let right = 16.0
    let bottom = 46.0
    let pw = w - left - right
    // Legend layout: (x, row) per entry, about 6.3 px per character at 11.5 px.
    var legend: [(Double, Int)] = []
    var lx = 0.0
    var row = 0
    for line in p.lines {
      let width = 34 + 6.3 * Double(line.label.count) + 14
      if lx > 0 && lx + width > pw {
        lx = 0
        row += 1
      }
      legend.append((lx, row))
      lx += width
    }
    let top = 14.0 + 16.0 * Double(row + 1)
    let h = 300.0 + top
    let ph = h - top - bottom
    let allX = p.lines.flatMap { $0.points.map(\.0) }
    let x0 = p.xRange?.lowerBound ?? 0
    let xEnd = p.xRange?.upperBound ?? max(allX.max() ?? 1, 1e-9)
    let lines = p.lines.map { clip($0.points, x0, xEnd) }
    let yMax = max(lines.flatMap { $0.map(\.1) }.max() ?? 1, 1)
    let (yTicks, yTop, yStep) = niceTicks(0, yMax)
    let (xTicks, xTop, xStep) = niceTicks(x0, xEnd)
    let xLow = p.xRange == nil ? 0 : x0
    let xHigh = p.xRange == nil ? xTop : xEnd
    func X(_ x: Double) -> Double { left + pw * (x - xLow) / max(xHigh - xLow, 1e-12) }
    func Y(_ y: Double) -> Double { top + ph * (1 - y / yTop) }
    var o = "<h2>\(esc(p.title))</h2>\n"
    o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" role=\"img\" aria-label=\"\(esc(p.title))\">\n"
    o += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"#fbfcfe\" stroke=\"#c9d0db\"/>\n"
    for t in yTicks {
      o += "<line x1=\"\(f(left))\" x2=\"\(f(left + pw))\" y1=\"\(f(Y(t)))\" y2=\"\(f(Y(t)))\" stroke=\"#e6eaf0\"/>"
      o += "<text x=\"\(f(left - 6))\" y=\"\(f(Y(t) + 4))\" font-size=\"11\" text-anchor=\"end\" fill=\"#4b5563\">\(label(t, step: yStep))</text>\n"
    }
    for t in xTicks where t >= xLow - xStep / 1e6 && t <= xHigh + xStep / 1e6 {
      o += "<line x1=\"\(f(X(t)))\" x2=\"\(f(X(t)))\" y1=\"\(f(top + ph))\" y2=\"\(f(top + ph + 4))\" stroke=\"#4b5563\"/>"
      o += "<text x=\"\(f(X(t)))\" y=\"\(f(top + ph + 17))\" font-size=\"11\" text-anchor=\"middle\" fill=\"#4b5563\">\(label(t, step: xStep))</text>\n"
    }
    o += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(h - 8))\" font-size=\"12\" text-anchor=\"middle\" fill=\"#1d2430\">time since the first event (s)</text>\n"
    o += "<text transform=\"translate(14 \(f(top + ph / 2))) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\" fill=\"#1d2430\">\(esc(p.yUnit))</text>\n"
    // Emphasised lines last (on top).
    let order = p.lines.indices.filter { !p.lines[$0].emphasis } + p.lines.indices.filter { p.lines[$0].emphasis }
    for i in order {
      let line = p.lines[i]
      let color = line.color ?? Self.palette[i % Self.palette.count]
      let dash = line.dashed ? " stroke-dasharray=\"5 4\"" : ""
      let width = line.emphasis ? "3.4\" stroke-opacity=\"0.55" : "1.6"
      if let first = lines[i].first {
        // Step line: a value holds until the next point.
        var d = "M\(f(X(first.0))) \(f(Y(first.1)))"
        var prevY = first.1
        for (x, y) in lines[i].dropFirst() {
          d += " H\(f(X(x)))"
          if y != prevY { d += " V\(f(Y(y)))" }
          prevY = y
        }
        d += " H\(f(X(xEnd)))"
        o += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(width)\"\(dash)/>\n"
      }
      let ex = left + 8 + legend[i].0
      let ey = 16.0 + Double(legend[i].1) * 16
      o += "<line x1=\"\(f(ex))\" x2=\"\(f(ex + 22))\" y1=\"\(f(ey - 4))\" y2=\"\(f(ey - 4))\" stroke=\"\(color)\" stroke-width=\"2.5\"\(dash)/>"
      o += "<text x=\"\(f(ex + 27))\" y=\"\(f(ey))\" font-size=\"11.5\" fill=\"#1d2430\">\(esc(line.label))</text>\n"
    }
    o += "</svg>\n"
    if let note = p.note { o += "<p class=\"muted\">\(esc(note))</p>\n" }
    return o
  }

  /// The points of a step line inside [x0, x1]: the value holding at x0 first.
  func clip(_ pts: [(Double, Double)], _ x0: Double, _ x1: Double) -> [(Double, Double)] {
    var out: [(Double, Double)] = []
    var before: (Double, Double)? = nil
    for (x, y) in pts {
      if x < x0 {
        before = (x0, y)
        continue
      }
      if x > x1 { break }
      if out.isEmpty, let b = before, x > x0 { out.append(b) }
      out.append((x, y))
    }
    if out.isEmpty, let b = before { out.append(b) }
    return out
  }

  func f(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return r == r.rounded() ? String(Int(r)) : String(r)
  }

  /// A tick label with as many decimals as the step needs.
  func label(_ v: Double, step: Double) -> String {
    var decimals = 0
    var st = step
    while st < 1 && decimals < 9 {
      st *= 10
      decimals += 1
    }
    if decimals == 0 { return String(Int(v.rounded())) }
    let scale = pow10(decimals)
    let n = Int((v * scale).rounded())
    let whole = n / Int(scale)
    var frac = String(abs(n) % Int(scale))
    frac = String(repeating: "0", count: decimals - frac.count) + frac
    return "\(n < 0 && whole == 0 ? "-" : "")\(whole).\(frac)"
  }

  func pow10(_ k: Int) -> Double { (0..<k).reduce(1.0) { a, _ in a * 10 } }

  /// Tick values at a 1/2/5 step covering [lo, hi], about five ticks: (ticks, top, step).
  func niceTicks(_ lo: Double, _ hi: Double) -> ([Double], Double, Double) {
    let raw = max((hi - lo) / 5, 1e-12)
    var mag = 1.0  // the power of ten at or below raw
    while mag > raw { mag /= 10 }
    while mag * 10 <= raw { mag *= 10 }
    let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
    let top = max((hi / step).rounded(.up) * step, lo + step)
    var ticks: [Double] = []
    var k = (lo / step).rounded(.up)
    while k * step <= top + step / 2 {
      ticks.append(k * step)
      k += 1
    }
    return (ticks, top, step)
  }
}

/// Escapes text for the HTML page (well-formed XML): first `XMLSanitizer`, the same gate the
/// JUnit writer uses, replaces what XML 1.0 forbids; then markup is escaped (`&`, `<`, `>`,
/// quotes), which libxml2 does for the JUnit file.
public func esc(_ s: String) -> String {
  let clean = XMLSanitizer.sanitize(s)
  var o = ""
  o.reserveCapacity(clean.utf8.count)
  for u in clean.unicodeScalars {
    switch u {
    case "&": o += "&amp;"
    case "<": o += "&lt;"
    case ">": o += "&gt;"
    case "\"": o += "&quot;"
    case "'": o += "&#39;"
    default: o.unicodeScalars.append(u)
    }
  }
  return o
}
