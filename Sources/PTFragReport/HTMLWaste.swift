import PTFragReplay

extension OccupancySeries {
  /// The series as plot points: (seconds since `originNs`, value of each point).
  func points(originNs: UInt64, _ value: (Point) -> Double) -> [(Double, Double)] {
    points.map { (Double($0.ns &- originNs) / 1e9, value($0)) }
  }
}

extension OccupancySeries {
  /// Where most samples lie, when they crowd into a small part of the capture: the 2nd to
  /// 98th percentile of the points' times (s since `originNs`), widened by 5%, if that is
  /// under a quarter of `spanS`. nil when the samples spread out (nothing to zoom into).
  func busyRange(originNs: UInt64, spanS: Double) -> ClosedRange<Double>? {
    let xs = points.map { Double($0.ns &- originNs) / 1e9 }
    guard xs.count >= 20, spanS > 0 else { return nil }
    let sorted = xs.sorted()
    let lo = sorted[sorted.count * 2 / 100]
    let hi = sorted[sorted.count * 98 / 100]
    guard hi - lo < spanS / 4, hi > lo else { return nil }
    let pad = (hi - lo) * 0.05
    return max(0, lo - pad)...min(spanS, hi + pad)
  }
}

extension HTMLReport {
  /// `p`, and a copy zoomed into `range` (when there is one).
  func plotWithZoom(_ p: Plot, _ range: ClosedRange<Double>?, spanS: Double) -> String {
    var o = svg(p)
    if let range {
      var z = p
      z.title += " — zoomed into \(formatMean(range.lowerBound))–\(formatMean(range.upperBound)) s"
      z.xRange = range
      z.note = "Most events fall between \(formatMean(range.lowerBound)) s and \(formatMean(range.upperBound)) s of the \(formatMean(spanS)) s capture; the plot above shows all of it."
      o += svg(z)
    }
    return o
  }

  /// One input's waste statistics (docs/kernel-models.md §8): the table of peaks and means, the
  /// mms with the highest peaks, and the occupancy over time.
  func wasteSection(_ i: InputReport) -> String {
    guard let r = i.result, r.stats.occupancy.samples > 0 else { return "" }
    let t = r.stats.occupancy
    var o = "<h2>Page-table memory: \(esc(r.model.id)) on \(esc(i.path))</h2>\n"
    o += "<p class=\"lead\">"
    if let m = t.mean, let hl = t.heldLiveRatio {
      o += "The allocator held <b>\(formatMean(m.pagesHeld)) pages</b> (\(esc(formatBytes(m.pagesHeld * Double(t.pageBytes))))) on average, peak \(t.peak.pagesHeld); "
      o += "its \(formatMean(m.live)) live tables fill \(formatMean(m.live / Double(max(t.slotsPerPage, 1)))) pages packed perfectly (mean live tables / \(t.slotsPerPage) per page; the ideal lower bound ⌈live/\(t.slotsPerPage)⌉ averages \(formatMean(m.idealPages))): <b>waste ratio (held/live) \(formatRatio(hl))</b> = mean pages held / (mean live tables / \(t.slotsPerPage)) "
      o += "(\(t.slotsPerPage) slots of \(esc(formatBytes(Double(t.slotBytes)))) per \(esc(formatBytes(Double(t.pageBytes)))) page; 1.000 = every held slot holds a table)."
    }
    o += "</p>\n"
    o += table(
      HTMLTable(
        caption: "Waste statistics over \(formatSeconds(t.spanNs)) (peak and time-weighted mean)",
        header: ["quantity", "unit", "peak", "mean", "peak bytes", "mean bytes"],
        rows: t.wasteFigures.map {
          [$0.label, $0.unit.rawValue, String($0.peak), formatMean($0.mean), formatBytes(Double($0.peakBytes)), formatBytes($0.meanBytes)]
        }))
    if !r.stats.perMM.isEmpty {
      let shown = r.stats.perMM.prefix(20)
      o += table(
        HTMLTable(
          caption: "mms by peak pages held (\(shown.count) of \(r.stats.perMM.count + r.stats.perMMDropped); means over each mm's life)",
          header: ["mm", "life (trace clock)", "peak pages", "mean pages", "peak live", "mean live", "reusable now", "reusable later", "stranded", "held/live"],
          rows: shown.map { rec in
            let t = rec.timeline
            let m = t.mean
            return [
              hexAddress(rec.mm),
              "\(formatTimestamp(t.firstNs ?? 0))–\(formatTimestamp(t.lastNs))\(rec.lifeNote)",
              String(t.peak.pagesHeld), formatMean(m?.pagesHeld ?? 0), String(t.peak.live),
              formatMean(m?.live ?? 0), formatMean(m?.reusableNow ?? 0), formatMean(m?.reusableLater ?? 0),
              formatMean(m?.stranded ?? 0), t.heldLiveRatio.map(formatRatio) ?? "–",
            ]
          }))
    }
    let s = r.stats.series
    let origin = t.firstNs ?? 0
    let spp = Double(max(t.slotsPerPage, 1))
    let spanS = Double(t.spanNs) / 1e9
    let zoom = s.busyRange(originNs: origin, spanS: spanS)
    o += plotWithZoom(
      Plot(
        title: "Pages held over time (\(esc(r.model.id)), \(formatBytes(Double(t.pageBytes))) pages)",
        yUnit: "pages",
        lines: [
          PlotLine(label: "pages held", points: s.points(originNs: origin) { Double($0.maxPagesHeld) }),
          PlotLine(label: "ideal lower bound ⌈live/\(t.slotsPerPage)⌉", points: s.points(originNs: origin) { (Double($0.maxLive) / spp).rounded(.up) }, dashed: true),
          PlotLine(label: "no sharing (1 page per table)", points: s.points(originNs: origin) { Double($0.maxLive) }, dashed: true),
        ]), zoom, spanS: spanS)
    o += plotWithZoom(
      Plot(
        title: "Tables live, pending and waste over time (\(formatBytes(Double(t.slotBytes))) slots)",
        yUnit: "table slots",
        lines: [
          PlotLine(label: "tables live", points: s.points(originNs: origin) { Double($0.maxLive) }),
          PlotLine(label: "pending (tlb batch or RCU)", points: s.points(originNs: origin) { Double($0.pending) }),
          PlotLine(label: "waste (reusable + stranded)", points: s.points(originNs: origin) { Double($0.waste) }),
        ]), zoom, spanS: spanS)
    return o
  }

  /// `ptfrag compare --html`: per input, the replay's verdict and findings, the workload, the
  /// comparison table (the strategy that ran highlighted), and plots of memory held, tables
  /// live and waste over time, one line per strategy (strategies whose lines coincide share
  /// one, named together).
  public func renderCompare(_ reports: [CompareReport], toolVersion: String) -> String {
    var o = head()
    o += "<p class=\"muted\">ptfrag \(esc(toolVersion)) · compare: the same table lifetimes through every allocator strategy</p>\n"
    if reports.count > 1 {
      // Several inputs: what became of each at the top.
      let code = reports.compactMap { $0.notCompared?.code }.max { $0.badness < $1.badness } ?? .clean
      o += table(
        HTMLTable(
          caption: "Summary: \(reports.count) inputs, exit code \(code.rawValue) (the worst decides)",
          header: ["input", "verdict", "compared", "ran", "mean held by the kernel's strategy", "least held"],
          rows: reports.map { c in
            var least = "–"
            if c.notCompared == nil, let m = c.strategies.map({ ($0.timeline.meanPagesHeld ?? 0) * Double($0.timeline.pageBytes) }).min() {
              let ids = c.strategies.filter { ($0.timeline.meanPagesHeld ?? 0) * Double($0.timeline.pageBytes) == m }.map(\.descriptor.id)
              least = "\(ids.joined(separator: ", ")): \(formatBytes(m))"
            }
            return [
              c.input.path, c.input.judgement(.compare).verdict.rawValue.uppercased(),
              c.notCompared.map { "no (exit \($0.code.rawValue)): \($0.reason)" } ?? "yes",
              c.ranStrategy?.descriptor.id ?? "–", c.ranMeanBytesHeld.map(formatBytes) ?? "–", least,
            ]
          }))
    }
    for c in reports {
      o += section(c.input, c.input.judgement(.compare))
      if let n = c.notCompared, c.input.error == nil {
        o += "<p class=\"sev-error\">not compared: \(esc(n.reason)) (exit \(n.code.rawValue))</p>\n"
      }
      guard c.input.result != nil, !c.strategies.isEmpty else { continue }
      o += compareSection(c)
    }
    o += "</body>\n</html>\n"
    return o
  }

  func compareSection(_ c: CompareReport) -> String {
    var o = "<h2>Strategies on the same workload</h2>\n"
    if let ran = c.ranStrategy, let base = c.ranMeanBytesHeld {
      func held(_ s: StrategyResult) -> Double { (s.timeline.meanPagesHeld ?? 0) * Double(s.timeline.pageBytes) }
      let least = c.strategies.map(held).min() ?? base
      let best = c.strategies.filter { held($0) == least }.map(\.descriptor.id)
      o += "<p class=\"lead\">The kernel ran <b>\(esc(ran.descriptor.id))</b>, holding <b>\(esc(formatBytes(base)))</b> of page tables on average"
      if least < base {
        let pct = formatMean(((base - least) / base * 1000).rounded() / 10)
        o += "; the least on this workload: <b>\(esc(best.joined(separator: ", ")))</b> with \(esc(formatBytes(least))), \(esc(formatBytes(base - least))) (\(pct)%) less"
      } else {
        o += "; no other strategy holds less on this workload"
      }
      o += ".</p>\n"
    }
    o += "<ul>" + c.workloadSummary.map { "<li>\(esc($0))</li>" }.joined() + "</ul>\n"
    let t = ComparisonTable(c)
    o += table(
      HTMLTable(
        caption: "One row per strategy (time-weighted means; bytes = pages × page size; waste and pending as mean bytes)",
        header: t.header, rows: t.rows, highlight: t.highlight))
    for n in c.notes { o += "<p class=\"note\">\(esc(n))</p>\n" }
    let replayed = c.input.result?.stats.occupancy
    let origin = replayed?.firstNs ?? 0
    let spanS = Double(replayed?.spanNs ?? 0) / 1e9
    func pts(_ s: StrategyResult, _ v: @escaping (OccupancySeries.Point) -> Double) -> [(Double, Double)] {
      s.series.points(originNs: origin, v)
    }
    func name(_ s: StrategyResult) -> String { s.descriptor.id + (s.ran ? " (ran)" : "") }
    let ran = c.ranStrategy ?? c.strategies[0]
    let zoom = ran.series.busyRange(originNs: origin, spanS: spanS)
    let pageBytes = ran.timeline.pageBytes
    let pb = Double(pageBytes) / 1024
    let spp = Double(max(ran.timeline.slotsPerPage, 1))
    let ideal = PlotLine(
      label: "ideal lower bound (⌈live/\(ran.timeline.slotsPerPage)⌉ \(formatBytes(Double(pageBytes))) pages)",
      points: pts(ran) { (Double($0.maxLive) / spp).rounded(.up) * pb }, dashed: true, color: Self.boundColor)
    func heldLines(_ group: [StrategyResult]) -> [PlotLine] {
      merged(group.map { s in
        let b = Double(s.timeline.pageBytes) / 1024
        return (s, pts(s) { Double($0.maxPagesHeld) * b })
      }) + (group.contains { $0.timeline.pageBytes == pageBytes } ? [ideal] : [])
    }
    func wasteLines(_ group: [StrategyResult]) -> [PlotLine] {
      merged(group.map { s in
        let sb = Double(s.timeline.slotBytes) / 1024
        return (s, pts(s) { Double($0.waste) * sb })
      })
    }
    // One plot per page size, the capture's first: powerpc's 16/64 KiB pages on the scale of
    // s390's 4 KiB ones would flatten every 4 KiB line to the bottom pixels.
    var sizes = [pageBytes]
    for s in c.strategies where !sizes.contains(s.timeline.pageBytes) { sizes.append(s.timeline.pageBytes) }
    let groups = sizes.map { size in (size, c.strategies.filter { $0.timeline.pageBytes == size }) }
    for (size, group) in groups {
      let plot = Plot(
        title: "Page-table memory held over time: strategies on \(formatBytes(Double(size))) pages",
        yUnit: "KiB held (pages × page size)", lines: heldLines(group))
      o += size == pageBytes ? plotWithZoom(plot, zoom, spanS: spanS) : svg(plot)
    }
    o += plotWithZoom(
      Plot(
        title: "Tables live over time", yUnit: "tables live",
        lines: merged(c.strategies.map { s in (s, pts(s) { Double($0.maxLive) }) }, ranSuffix: false)), zoom, spanS: spanS)
    // Waste too, per page size (a 64 KiB page wastes in 4 KiB fragments).
    for (size, group) in groups {
      o += svg(
        Plot(
          title: "Waste over time: strategies on \(formatBytes(Double(size))) pages (reusable now + later + stranded)",
          yUnit: "KiB wasted", lines: wasteLines(group)))
    }
    return o
  }

  /// One plot line per distinct series; strategies with identical points share a line whose
  /// label names them all (`s390-6.1 = s390-6.6`).
  /// Each line in the colour of its (first) strategy, the same in every plot.
  func merged(_ lines: [(StrategyResult, [(Double, Double)])], ranSuffix: Bool = true) -> [PlotLine] {
    var out: [(labels: [String], color: String, ran: Bool, points: [(Double, Double)])] = []
    for (s, pts) in lines {
      let label = s.descriptor.id + (ranSuffix && s.ran ? " (ran)" : "")
      if let i = out.firstIndex(where: { same($0.points, pts) }) {
        out[i].labels.append(label)
        out[i].ran = out[i].ran || s.ran
      } else {
        out.append(([label], Self.strategyColor(s.descriptor.id), s.ran, pts))
      }
    }
    return out.map {
      PlotLine(
        label: $0.labels.joined(separator: " = "), points: $0.points,
        emphasis: ranSuffix && $0.ran, color: $0.color)
    }
  }

  func same(_ a: [(Double, Double)], _ b: [(Double, Double)]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
  }
}
