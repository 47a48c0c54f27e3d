import PTFragReplay

/// One line of the waste statistics (docs/kernel-models.md §8): a quantity's peak and
/// time-weighted mean, in its unit and in bytes.
public struct WasteFigure: Sendable {
  public enum Unit: String, Sendable { case pages, tables, slots }
  /// Stable key (JSON) and label (text, HTML).
  public var key: String
  public var label: String
  public var unit: Unit
  public var peak: Int
  public var mean: Double
  /// Bytes per unit (a page, a table slot; a table counts one slot).
  public var bytesPerUnit: Int
  public var peakBytes: Int { peak * bytesPerUnit }
  public var meanBytes: Double { mean * Double(bytesPerUnit) }
}

extension OccupancyTimeline {
  /// Every figure of the waste statistics, in report order: pages held, tables live,
  /// pending, reusable now, reusable later, stranded, unknown (only when some slot was), the
  /// ideal lower bound and the no-sharing baseline. Empty without samples.
  public var wasteFigures: [WasteFigure] {
    guard let m = mean else { return [] }
    let pb = pageBytes
    let sb = slotBytes
    var out: [WasteFigure] = [
      WasteFigure(key: "pagesHeld", label: "pages held", unit: .pages, peak: peak.pagesHeld, mean: m.pagesHeld, bytesPerUnit: pb),
      WasteFigure(key: "tablesLive", label: "tables live", unit: .tables, peak: peak.live, mean: m.live, bytesPerUnit: sb),
      WasteFigure(key: "pending", label: "pending (tlb batch or RCU)", unit: .slots, peak: peak.pending, mean: m.pending, bytesPerUnit: sb),
      WasteFigure(key: "reusableNow", label: "waste: reusable now", unit: .slots, peak: peak.reusableNow, mean: m.reusableNow, bytesPerUnit: sb),
      WasteFigure(key: "reusableLater", label: "waste: reusable later", unit: .slots, peak: peak.reusableLater, mean: m.reusableLater, bytesPerUnit: sb),
      WasteFigure(key: "stranded", label: "waste: stranded", unit: .slots, peak: peak.stranded, mean: m.stranded, bytesPerUnit: sb),
    ]
    if peak.unknown > 0 {
      out.append(WasteFigure(key: "unknown", label: "unknown (before the capture)", unit: .slots, peak: peak.unknown, mean: m.unknown, bytesPerUnit: sb))
    }
    out.append(WasteFigure(key: "idealPages", label: "ideal lower bound ⌈live/\(slotsPerPage)⌉", unit: .pages, peak: peak.idealPages, mean: m.idealPages, bytesPerUnit: pb))
    out.append(WasteFigure(key: "noSharingPages", label: "no sharing (1 page per table)", unit: .pages, peak: peak.live, mean: m.live, bytesPerUnit: pb))
    return out
  }

  /// Mean waste of all three kinds, in bytes; nil without samples.
  public var meanWasteBytes: Double? {
    guard let m = mean else { return nil }
    return (m.reusableNow + m.reusableLater + m.stranded) * Double(slotBytes)
  }
}

/// Bytes as `12 KiB`, `1.5 MiB` (binary units, at most one decimal).
public func formatBytes(_ b: Double) -> String {
  let units = ["B", "KiB", "MiB", "GiB", "TiB"]
  var v = b
  var i = 0
  while abs(v) >= 1024 && i < units.count - 1 {
    v /= 1024
    i += 1
  }
  let r = (v * 10).rounded() / 10
  let s = r == r.rounded() ? String(Int(r)) : String(r)
  return "\(s) \(units[i])"
}

/// A mean with up to 3 decimals, trailing zeros dropped (`5.302`, `4`, `0.5`).
public func formatMean(_ v: Double) -> String {
  let s = formatRatio(v)
  guard s.contains(".") else { return s }
  var t = Substring(s)
  while t.last == "0" { t = t.dropLast() }
  if t.last == "." { t = t.dropLast() }
  return String(t)
}

/// Seconds with 3 decimals, from ns.
public func formatSeconds(_ ns: UInt64) -> String { formatMilli(ns / 1_000_000) + " s" }

extension TextReport {
  /// The waste statistics of one timeline, as an indented table (peak, mean, mean bytes).
  public func wasteBlock(_ t: OccupancyTimeline, indent: String = "  ") -> String {
    let figures = t.wasteFigures
    guard !figures.isEmpty else { return "" }
    var o =
      "\(indent)waste: \(t.slotsPerPage) slots of \(formatBytes(Double(t.slotBytes))) per \(formatBytes(Double(t.pageBytes))) page; peak and time-weighted mean over \(formatSeconds(t.spanNs))\n"
    let w = figures.map(\.label.count).max() ?? 0
    for f in figures {
      let label = f.label + String(repeating: " ", count: w - f.label.count)
      let peak = String(f.peak)
      let mean = formatMean(f.mean)
      o += "\(indent)  \(label)  peak \(pad(peak, 6)) \(pad(f.unit.rawValue, 6))  mean \(pad(mean, 9))  (\(formatBytes(f.meanBytes)))\n"
    }
    if let r = t.heldLiveRatio {
      o += "\(indent)  held/live \(formatRatio(r)) (slots held per live table, time-weighted; 1.000 = every held slot holds a table)\n"
    }
    return o
  }

  /// The mms with the highest peak of pages held, at most `limit`.
  public func mmBlock(_ s: ReplayStats, limit: Int = 10, indent: String = "  ") -> String {
    guard !s.perMM.isEmpty else { return "" }
    let total = s.perMM.count + s.perMMDropped
    var o = "\(indent)mms by peak pages held (\(min(limit, s.perMM.count)) of \(total); mean over each mm's life):\n"
    o += "\(indent)  \(pad("mm", 12, left: true)) \(pad("peak pages", 10)) \(pad("mean pages", 10)) \(pad("peak live", 9)) \(pad("mean live", 9)) \(pad("waste now/later/stranded (mean slots)", 38)) \(pad("held/live", 9))  life\n"
    for r in s.perMM.prefix(limit) {
      let t = r.timeline
      guard let m = t.mean else { continue }
      let waste = "\(formatMean(m.reusableNow)) / \(formatMean(m.reusableLater)) / \(formatMean(m.stranded))"
      let life = "\(formatTimestamp(t.firstNs ?? 0))–\(formatTimestamp(t.lastNs))\(r.lifeNote)"
      o += "\(indent)  \(pad(hexAddress(r.mm), 12, left: true)) \(pad(String(t.peak.pagesHeld), 10)) \(pad(formatMean(m.pagesHeld), 10)) \(pad(String(t.peak.live), 9)) \(pad(formatMean(m.live), 9)) \(pad(waste, 38)) \(pad(t.heldLiveRatio.map(formatRatio) ?? "–", 9))  \(life)\n"
    }
    return o
  }
}

extension MMOccupancyRecord {
  /// How the mm's life in the report ended, when not by its death with nothing held.
  public var lifeNote: String {
    if !died { return " (alive at the end)" }
    return timeline.current.pagesHeld > 0 ? " (dead; pages held at the end)" : ""
  }
}

/// Right-aligns `s` in `width` columns (left-aligns with `left`).
func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
  let n = s.count
  guard n < width else { return s }
  let fill = String(repeating: " ", count: width - n)
  return left ? s + fill : fill + s
}

extension JSONReport {
  /// The occupancy and waste statistics of one timeline (docs/kernel-models.md §8). Counts are
  /// pages, tables or slots as named; `…Bytes` are bytes; means are time-weighted over
  /// `spanNs`. `peakLiveTables`/`meanLiveTables` are the schema-1 names of
  /// `peakTablesLive`/`meanTablesLive`.
  public static func occupancyFields(_ t: OccupancyTimeline) -> [(String, JSON)] {
    let m = t.mean
    func d(_ v: Double?) -> JSON { v.map { .double($0) } ?? .null }
    func fig(_ peak: Int, _ mean: Double?, _ bytes: Int) -> JSON {
      .object([
        ("peak", .int(peak)), ("mean", d(mean)), ("peakBytes", .int(peak * bytes)),
        ("meanBytes", d(mean.map { $0 * Double(bytes) })),
      ])
    }
    let sb = t.slotBytes
    let pb = t.pageBytes
    return [
      ("slotsPerPage", .int(t.slotsPerPage)),
      ("pageBytes", .int(pb)),
      ("slotBytes", .int(sb)),
      ("spanNs", .int(Int(clamping: t.spanNs))),
      ("peakPagesHeld", .int(t.peak.pagesHeld)),
      ("meanPagesHeld", d(m?.pagesHeld)),
      ("peakBytesHeld", .int(t.peak.pagesHeld * pb)),
      ("meanBytesHeld", d(m.map { $0.pagesHeld * Double(pb) })),
      ("peakTablesLive", .int(t.peak.live)),
      ("meanTablesLive", d(m?.live)),
      ("peakLiveTables", .int(t.peak.live)),
      ("meanLiveTables", d(m?.live)),
      ("heldLiveRatio", d(t.heldLiveRatio)),
      ("wasteRatio", d(t.wasteRatio)),
      ("pending", fig(t.peak.pending, m?.pending, sb)),
      ("waste",
        .object([
          ("reusableNow", fig(t.peak.reusableNow, m?.reusableNow, sb)),
          ("reusableLater", fig(t.peak.reusableLater, m?.reusableLater, sb)),
          ("stranded", fig(t.peak.stranded, m?.stranded, sb)),
          ("unknown", fig(t.peak.unknown, m?.unknown, sb)),
        ])),
      ("idealPages", fig(t.peak.idealPages, m?.idealPages, pb)),
      ("noSharingPages", fig(t.peak.live, m?.live, pb)),
    ]
  }

  /// Per-mm records (`ReplayStats.perMM`), sorted by peak pages held.
  static func mms(_ s: ReplayStats) -> JSON {
    .array(
      s.perMM.map { r in
        .object(
          [
            ("mm", .addr(r.mm)), ("died", .bool(r.died)),
            ("firstTimestamp", .string(formatTimestamp(r.timeline.firstNs ?? 0))),
            ("lastTimestamp", .string(formatTimestamp(r.timeline.lastNs))),
          ] + occupancyFields(r.timeline))
      })
  }
}
