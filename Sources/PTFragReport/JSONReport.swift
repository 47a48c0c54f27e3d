import PTFragEvents
import PTFragReplay

/// A JSON value with ordered object keys (deterministic output, schema order).
public indirect enum JSON: Sendable {
  case null
  case bool(Bool)
  case int(Int)
  case double(Double)
  case string(String)
  case array([JSON])
  case object([(String, JSON)])
  /// Already serialized (at its depth, pretty): a part rendered on its own thread.
  case raw(String)

  public static func str(_ s: String?) -> JSON { s.map { .string($0) } ?? .null }
  public static func addr(_ v: UInt64?) -> JSON { v.map { .string(hexAddress($0)) } ?? .null }
  public static func num(_ v: Int?) -> JSON { v.map { .int($0) } ?? .null }

  /// Serializes with two-space indentation. Strings are escaped per RFC 8259; control
  /// characters as \u00XX; invalid UTF-8 never reaches here (Swift strings are valid).
  public func serialized(indent: Int = 0, pretty: Bool = true) -> String {
    var out = ""
    write(into: &out, indent: indent, pretty: pretty)
    return out
  }

  func write(into o: inout String, indent: Int, pretty: Bool) {
    let nl = pretty ? "\n" : ""
    let pad = pretty ? String(repeating: "  ", count: indent + 1) : ""
    let endPad = pretty ? String(repeating: "  ", count: indent) : ""
    switch self {
    case .null: o += "null"
    case .raw(let text): o += text
    case .bool(let b): o += b ? "true" : "false"
    case .int(let i): o += String(i)
    case .double(let d):
      if d.isFinite { o += String(d) } else { o += "null" }
    case .string(let s): JSON.escape(s, into: &o)
    case .array(let a):
      if a.isEmpty {
        o += "[]"
        return
      }
      o += "[" + nl
      for (i, v) in a.enumerated() {
        o += pad
        v.write(into: &o, indent: indent + 1, pretty: pretty)
        o += (i + 1 < a.count ? "," : "") + nl
      }
      o += endPad + "]"
    case .object(let kv):
      if kv.isEmpty {
        o += "{}"
        return
      }
      o += "{" + nl
      for (i, (k, v)) in kv.enumerated() {
        o += pad
        JSON.escape(k, into: &o)
        o += pretty ? ": " : ":"
        v.write(into: &o, indent: indent + 1, pretty: pretty)
        o += (i + 1 < kv.count ? "," : "") + nl
      }
      o += endPad + "}"
    }
  }

  static func escape(_ s: String, into o: inout String) {
    o += "\""
    for u in s.unicodeScalars {
      switch u {
      case "\"": o += "\\\""
      case "\\": o += "\\\\"
      case "\n": o += "\\n"
      case "\r": o += "\\r"
      case "\t": o += "\\t"
      default:
        if u.value < 0x20 || u.value == 0x7f {
          let h = String(u.value, radix: 16)
          o += "\\u" + String(repeating: "0", count: 4 - h.count) + h
        } else {
          o.unicodeScalars.append(u)
        }
      }
    }
    o += "\""
  }
}

/// The machine-readable report. Schema documented in the README ("JSON report").
public enum JSONReport {
  /// Bumped on any incompatible change; additions keep the version.
  public static let schemaVersion = 1

  public static func render(_ run: RunReport) -> String {
    document(run).serialized() + "\n"
  }

  public static func document(_ run: RunReport) -> JSON {
    .object([
      ("schemaVersion", .int(schemaVersion)),
      ("tool", .string("ptfrag")),
      ("toolVersion", .string(run.toolVersion)),
      ("failOn", .str(run.failOn?.description ?? "never")),
      ("maxWasteRatio", run.maxWasteRatio.map { .double($0) } ?? .null),
      ("baseline", .str(run.baselinePath)),
      ("exitCode", .int(Int(run.exitCode.rawValue))),
      // Each input serialized on its own (they are independent), at its depth in the document.
      ("inputs", .array(concurrentMap(Array(run.judged)) { .raw(input($0.0, $0.1).serialized(indent: 2)) })),
    ])
  }

  static func occupancy(_ t: OccupancyTimeline) -> JSON { .object(occupancyFields(t)) }

  static func history(_ h: [HistoryEntry]) -> JSON {
    .array(
      h.map {
        .object([
          ("line", .int($0.line)), ("timestamp", .string(formatTimestamp($0.timestampNs))),
          ("cpu", .int(Int($0.cpu))), ("pid", .int(Int($0.pid))),
          ("event", .string($0.kind.label)), ("table", .addr($0.table)), ("mm", .addr($0.mm)),
        ])
      })
  }

  static func input(_ i: InputReport, _ j: Judgement) -> JSON {
    var kv: [(String, JSON)] = [
      ("path", .string(i.path)),
      ("verdict", .string(j.verdict.rawValue)),
      ("exitCode", .int(Int(j.exitCode.rawValue))),
    ]
    if let e = i.error {
      kv.append(("error", .object([("exitCode", .int(Int(e.code.rawValue))), ("message", .string(e.message))])))
    }
    kv.append(("sha256", .str(i.sha256)))
    let r = i.result
    kv.append(("model", .str(i.modelChosen ? r?.model.id : nil)))
    kv.append(("modelSelection", .string(i.modelSelection)))
    kv.append(("kprobeProfile", .str(i.profilePath)))
    if !i.profileMismatch.isEmpty {
      kv.append(("kprobeProfileMismatch", .array(i.profileMismatch.map { .string($0) })))
    }
    if let pm = i.profileMisses {
      kv.append(
        ("probeMisses",
          .object(pm.sorted { $0.key.rawValue < $1.key.rawValue }.map { ($0.key.symbol, .int(Int($0.value))) })))
    }
    let rd = i.read
    kv.append(("format", .string(rd.format)))
    kv.append(("lines", .int(rd.lines)))
    kv.append(("bytes", .int(Int(rd.bytes))))
    kv.append(("events", .int(r?.events ?? 0)))
    kv.append(("complete", .bool(i.error == nil && !rd.incomplete)))
    kv.append(("cutLine", .num(rd.cutLine)))
    kv.append(
      ("malformed",
        .object([
          ("count", .int(rd.malformed)), ("tolerance", .int(rd.malformedTolerance)),
          ("samples", .array(rd.malformedSamples.map { .object([("line", .int($0.line)), ("reason", .string($0.reason))]) })),
        ])))
    kv.append(("lossReason", .str(r?.lossReason)))
    kv.append(
      ("findings",
        .array(
          (r?.findings ?? []).map { f in
            .object([
              ("rule", .string(f.rule.id)),
              ("severity", .string(f.rule.severity.description)),
              ("line", .int(f.line)),
              ("timestamp", .string(formatTimestamp(f.timestampNs))),
              ("cpu", .int(Int(f.cpu))),
              ("pid", .int(Int(f.pid))),
              ("comm", .string(f.comm.description)),
              ("mm", .addr(f.mm)),
              ("page", .addr(f.page)),
              ("half", .num(f.half)),
              ("location", .str(f.location?.text)),
              ("stateBefore", .string(f.stateBefore)),
              ("stateAfter", .string(f.stateAfter)),
              ("message", .string(f.message)),
              ("known", .bool(f.known)),
              ("signature", .string(Baseline.signature(of: f))),
              ("relatedLines", .array(f.relatedLines.map { .int($0) })),
              ("history", history(f.history)),
            ])
          })))
    kv.append(
      ("inconclusive",
        .array(
          (r?.inconclusive ?? []).map { x in
            .object([
              ("reason", .string(x.reason.rawValue)),
              ("line", .int(x.line)),
              ("mm", .addr(x.mm)),
              ("page", .addr(x.page)),
              ("message", .string(x.message)),
              ("wouldBeRule", .str(x.wouldBeRule)),
              ("explainedBy", .str(x.explainedBy)),
              ("history", history(x.history)),
            ])
          })))
    kv.append(
      ("countsByRule",
        .object((r?.countsByRule ?? [:]).filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })))
    if let s = r?.stats {
      kv.append(
        ("stats",
          .object([
            ("allocationsPredicted", .int(s.allocationsPredicted)),
            ("allocationsUnverified", .int(s.allocationsUnverified)),
            ("allocationsFailed", .int(s.allocationsFailed)),
            ("freesUntracked", .int(s.freesUntracked)),
            ("execsUntracked", .int(s.execsUntracked)),
            ("mmsBorn", .int(s.mmsBorn)),
            ("mmsSeen", .int(s.mmsSeen)),
            ("mmsDied", .int(s.mmsDied)),
            ("peakPages", .int(s.peakPages)),
            ("pagesAtEnd", .int(s.pagesAtEnd)),
            ("tablesLiveAtEnd", .int(s.tablesLiveAtEnd)),
            ("lostMarkers", .int(s.lostMarkers)),
            ("lostEvents", .int(Int(clamping: s.lostEvents))),
            ("concurrencyResolved", .int(s.concurrencyResolved)),
            ("occupancy", occupancy(s.occupancy)),
            ("mms", mms(s)),
            ("mmsNotListed", .int(s.perMMDropped)),
            ("eventsByKind",
              .object(s.eventsByKind.sorted { $0.key.rawValue < $1.key.rawValue }.map { ($0.key.label, .int($0.value)) })),
          ])))
    } else {
      kv.append(("stats", .null))
    }
    return .object(kv)
  }
}
