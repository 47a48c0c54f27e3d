import Foundation
import PTFragEvents
import PTFragTestSupport
import XCTest

@testable import PTFragRead

final class JSONReaderTests: XCTestCase {
  // MARK: Same capture, three layouts

  func testTextJSONLinesAndArrayOfTheRealCapturesGiveTheSameRecords() throws {
    for name in ["s390x-6.1-fork-exec.trace", "s390x-6.12-fork-exec.trace"] {
      let text = try sampleBytes(name)
      let (textRecords, td) = try readAll(text)
      XCTAssertEqual(td.format.name, "ftrace-text")
      XCTAssertGreaterThan(textRecords.count, 500)
      for target in [ConvertTarget.json, .jsonArray] {
        let (json, summary) = try convert(text, to: target)
        XCTAssertTrue(summary.lossless, "\(name) → \(target): \(summary.notes)")
        let (jsonRecords, jd) = try readAll(json)
        XCTAssertEqual(jd.format.format, target == .json ? .jsonLines : .jsonArray)
        XCTAssertEqual(jsonRecords, textRecords, "\(name) as \(target)")
        XCTAssertEqual(jd.lines, td.lines)
        XCTAssertEqual(jd.malformedCount, td.malformedCount)
        XCTAssertEqual(jd.entriesInBuffer, td.entriesInBuffer)
        XCTAssertEqual(jd.entriesWritten, td.entriesWritten)
        XCTAssertEqual(Set(jd.eventNames.keys), Set(td.eventNames.keys))
        XCTAssertEqual(jd.backwardsTimestamps, td.backwardsTimestamps)
      }
    }
  }

  // MARK: Record numbers

  func testJSONLinesRecordNumberIsTheLineTheObjectStartsOn() throws {
    let jsonl = """

      {"ts":1.5,"cpu":0,"pid":7,"comm":"a","function":"page_table_alloc","values":{"mm":"0x10"}}

      {
        "ts": 2.000001, "cpu": 1, "pid": 7, "comm": "a",
        "function": "page_table_alloc", "probe": "return", "values": {"table": 4096}
      }
      {"type":"lost","cpu":1,"events":12}
      """
    let (records, d) = try readAll(Array(jsonl.utf8))
    XCTAssertEqual(d.format.format, .jsonLines)
    XCTAssertEqual(records.count, 3)
    XCTAssertTrue(records[0].hasPrefix("hit line=2 ts=1500000000 cpu=0 pid=7"), records[0])
    XCTAssertTrue(records[0].contains("mm=10"))
    XCTAssertTrue(records[1].hasPrefix("hit line=4 ts=2000001000 cpu=1"), records[1])
    XCTAssertTrue(records[1].contains("kind=ret") && records[1].contains("retval=1000"))
    XCTAssertEqual(records[2], "lost line=8 cpu=1 count=12")
    XCTAssertEqual(d.lines, 8)
    XCTAssertEqual(d.malformedCount, 0)
  }

  func testArrayRecordNumberIsTheElementIndex() throws {
    let array = """
      [
        {"ts": 1, "cpu": 0, "pid": 1, "function": "page_table_alloc", "values": {"mm": "10"}},

        {"ts": 2, "cpu": 0, "pid": 1,
         "function": "page_table_free", "values": {"mm": "10", "table": "0x800"}}
        ,{"type": "lost", "cpu": 0, "events": 1}
      ]
      """
    let (records, d) = try readAll(Array(array.utf8))
    XCTAssertEqual(d.format.format, .jsonArray)
    XCTAssertEqual(records.map { String($0.prefix(11)) }, ["hit line=1 ", "hit line=2 ", "lost line=3"])
    XCTAssertEqual(d.lines, 3)
  }

  // MARK: Values and fields

  func testValuesFollowTheTextRules() throws {
    // Numbers are decimal; strings are hex with or without 0x; "(fault)" and null are
    // absent; argN maps by the prototype; a return probe's first value is its retval.
    let jsonl = """
      {"ts_ns":5,"cpu":0,"pid":1,"comm":"x","function":"page_table_free_rcu","values":{"arg1":"0x1","arg2":"800","arg3":"(fault)"}}
      {"ts":"0.000000006","cpu":0,"pid":1,"comm":"x","function":"tlb_remove_table","values":{"tlb":null,"table":2049}}
      {"ts":7e-9,"cpu":0,"pid":1,"function":"crst_table_alloc.isra.0","probe":"return","caller":"mm_init+0x1/0x2","values":{"whatever":"0x4000"}}
      {"ts":8e-9,"cpu":0,"pid":1,"function":"page_table_alloc_noprof","values":{"mm":"0xA"},"extra":{"deep":[1,{"x":null}]}}
      """
    let (r, d) = try readAll(Array(jsonl.utf8))
    XCTAssertEqual(d.malformedCount, 0, "\(d.samples)")
    XCTAssertEqual(r.count, 4)
    XCTAssertTrue(r[0].contains("ts=5 ") && r[0].contains("fn=pageTableFreeRCU"), r[0])
    XCTAssertTrue(r[0].contains("tlb=1 ") && r[0].contains("table=800 ") && r[0].contains("vmaddr=-"), r[0])
    XCTAssertTrue(r[1].contains("ts=6 ") && r[1].contains("tlb=- ") && r[1].contains("table=801 "), r[1])
    XCTAssertTrue(r[2].contains("ts=7 ") && r[2].contains("caller=mmInit") && r[2].contains("retval=4000"), r[2])
    XCTAssertTrue(r[3].contains("fn=pageTableAlloc ") && r[3].contains("mm=a "), r[3])
    XCTAssertTrue(r[0].contains("comm=[120]"))
  }

  func testForeignFunctionsAreCountedNotReplayed() throws {
    let jsonl = #"{"ts":1,"cpu":0,"pid":1,"function":"do_exit","values":{"code":"0"}}"#
    let (r, d) = try readAll(Array(jsonl.utf8))
    XCTAssertEqual(r, [])
    XCTAssertEqual(d.foreignLines, 1)
    XCTAssertEqual(d.malformedCount, 0)
  }

  func testMalformedRecordsAreCountedWithTheirRecordNumbersAndTheReadGoesOn() throws {
    let lines = [
      #"{"ts":1,"cpu":0,"pid":1,"function":"page_table_alloc"}"#,  // 1 ok
      #"{"cpu":0,"pid":1,"function":"page_table_alloc"}"#,  // 2 no ts
      #"{"ts":1,"cpu":-1,"pid":1,"function":"page_table_alloc"}"#,  // 3 bad cpu
      #"{"ts":1,"cpu":0,"function":"page_table_alloc"}"#,  // 4 no pid
      #"{"ts":1,"cpu":0,"pid":1}"#,  // 5 no function
      #"{"ts":1,"cpu":0,"pid":1,"function":"page_table_alloc","probe":"exit"}"#,  // 6 bad probe
      #"{"ts":1,"cpu":0,"pid":1,"function":"page_table_alloc","values":{"mm":"0x1ffffffffffffffff"}}"#,  // 7 overflow
      #"{"ts":1,"cpu":0,"pid":1,"function":"page_table_alloc","values":{"mm":-1}}"#,  // 8 bad value
      #"{"ts":1,"cpu":0,"pid":1,"function":"page_table_alloc",,}"#,  // 9 syntax
      #"{"type":"bogus"}"#,  // 10 unknown type
      #"{"ts":1,"cpu":0,"pid":1,"function":"page_table_alloc"} {"ts":2}"#,  // 11 trailing data
      #"not json"#,  // 12 not an object
      #"{"ts":2,"cpu":0,"pid":1,"function":"page_table_alloc"}"#,  // 13 ok
      #"{"ts":3,"cpu":0,"pid":1,"function":"page_"#,  // 14 cut off
    ]
    let (r, d) = try readAll(Array(lines.joined(separator: "\n").utf8))
    XCTAssertEqual(r.count, 2)
    XCTAssertTrue(r[0].hasPrefix("hit line=1 ") && r[1].hasPrefix("hit line=13 "))
    XCTAssertEqual(d.malformedCount, 12)
    XCTAssertEqual(d.samples.map(\.line), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    XCTAssertEqual(d.samples[0].reason, JSONRecordIssue.noTimestamp.text)
    XCTAssertEqual(d.samples[1].reason, JSONRecordIssue.badCPU.text)
    XCTAssertEqual(d.samples[5].reason, JSONRecordIssue.valueOverflow.text)
    XCTAssertEqual(d.samples[7].reason, JSONSyntax.expectedKey.text)
    XCTAssertEqual(d.samples[9].reason, JSONRecordIssue.trailingData.text)
    XCTAssertEqual(d.truncatedLastLine, 14)
  }

  func testArraySyntaxErrorEndsTheReadWithItsLine() throws {
    let array = "[\n{\"ts\":1,\"cpu\":0,\"pid\":1,\"function\":\"page_table_alloc\"},\n{\"ts\":2 \"cpu\":0}\n]"
    var input = try CaptureInput(sniffing: MemorySource(Array(array.utf8), name: "a.json"))
    XCTAssertThrowsError(try CaptureReader.read(&input) { _ in }) { e in
      guard case .malformed(let path, let line, let reason) = e as? ReadError else {
        return XCTFail("\(e)")
      }
      XCTAssertEqual(path, "a.json")
      XCTAssertEqual(line, 3)
      XCTAssertTrue(reason.contains("array element 2"), reason)
      XCTAssertEqual((e as? ReadError)?.exitCode, 65)
    }
  }

  func testAnArrayCutWhileBeingWrittenKeepsItsWholeElements() throws {
    let array = "[{\"ts\":1,\"cpu\":0,\"pid\":1,\"function\":\"page_table_alloc\"},\n{\"ts\":2,\"cpu\":0,\"pi"
    let (r, d) = try readAll(Array(array.utf8))
    XCTAssertEqual(r.count, 1)
    XCTAssertEqual(d.truncatedLastLine, 2)
    XCTAssertEqual(d.malformedCount, 1)
  }

  func testRecordsSplitAcrossReadsParseTheSame() throws {
    let text = try sampleBytes("s390x-6.1-fork-exec.trace")
    let (json, _) = try convert(text, to: .jsonArray)
    let (expected, _) = try readAll(json)
    for step in [1, 7, 4093] {
      var input = try CaptureInput(sniffing: TrickleSource(base: MemorySource(json), step: step))
      var got: [String] = []
      _ = try CaptureReader.read(&input) { got.append(describe($0)) }
      XCTAssertEqual(got, expected, "reads of \(step) bytes")
    }
    // A record straddling the reader's buffer boundary: a small buffer forces it.
    var reader = JSONCaptureReader()
    reader.maxRecordBytes = 512
    var src = MemorySource(json)
    var got: [String] = []
    _ = try reader.read(&src) { got.append(describe($0)) }
    XCTAssertEqual(got, expected)
  }

  // MARK: Differential test against Foundation

  /// Random records, written with random layout, escapes, key order, unknown keys and
  /// number forms, some of them then damaged: the scanner must accept exactly what
  /// JSONSerialization accepts, and decode what JSONDecoder decodes to the same fields.
  func testDifferentialAgainstFoundationOnRandomInputs() throws {
    var rng = SplitMix(seed: 0x5eed)
    var accepted = 0
    var rejected = 0
    for trial in 0..<3000 {
      let g = GeneratedRecord.random(&rng)
      var line = g.json(&rng)
      let damaged = rng.below(4) == 0
      if damaged { line = damage(line, &rng) }
      let bytes = Array(line.utf8)
      let foundationValid =
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] != nil
      var input = try CaptureInput(sniffing: MemorySource(bytes))
      guard input.detected.format == .jsonLines else { continue }  // damage hit the '{'
      var records: [TraceRecord] = []
      let d = try CaptureReader.read(&input) { records.append($0) }
      let syntaxRejected =
        d.samples.contains { s in
          syntaxReasons.contains { s.reason.hasPrefix($0) }
        }
      XCTAssertEqual(
        !syntaxRejected, foundationValid,
        "trial \(trial): scanner \(syntaxRejected ? "rejects" : "accepts") what Foundation \(foundationValid ? "accepts" : "rejects"): \(line) \(d.samples)")
      guard foundationValid, !damaged else {
        rejected += syntaxRejected ? 1 : 0
        continue
      }
      accepted += 1
      // Decode with JSONDecoder and compare field by field.
      let ref = try JSONDecoder().decode(ReferenceRecord.self, from: Data(bytes))
      switch (g.kind, records.first) {
      case (.probe, .hit(let h)?):
        XCTAssertEqual(h.timestampNs, g.ns, line)
        XCTAssertEqual(UInt64(h.cpu), ref.cpu, line)
        XCTAssertEqual(UInt64(h.pid), ref.pid, line)
        XCTAssertEqual(h.comm, Comm(ref.comm ?? ""), line)
        XCTAssertEqual(h.kind == .ret, ref.probe == "return", line)
        XCTAssertEqual(h.function.symbol, g.symbol, line)
        if h.kind == .ret {
          XCTAssertEqual(h.caller == .mmInit, ref.caller?.hasPrefix("mm_init") == true, line)
          XCTAssertEqual(h.retval, g.firstValueNumber(ref), line)
        } else {
          XCTAssertEqual(h.mm, g.expected("mm", ref), line)
          XCTAssertEqual(h.table, g.expected("table", ref), line)
          XCTAssertEqual(h.tlb, g.expected("tlb", ref), line)
        }
      case (.foreign, nil):
        XCTAssertEqual(d.foreignLines, 1)
      case (.lost, .lost(let m)?):
        XCTAssertEqual(UInt64(m.cpu), ref.cpu)
        XCTAssertEqual(m.count, ref.events)
      case (.text, _):
        XCTAssertEqual(ref.type, "text")
      default:
        XCTFail("trial \(trial): \(line) gave \(records.map(describe)) \(d.samples)")
      }
    }
    XCTAssertGreaterThan(accepted, 1500)
    XCTAssertGreaterThan(rejected, 200)
  }

  let syntaxReasons: [String] =
    [
      JSONSyntax.expectedObject, .expectedKey, .expectedColon, .expectedCommaOrEnd,
      .expectedValue, .badNumber, .numberRange, .badLiteral, .badEscape, .badUnicodeEscape, .controlInString,
      .tooDeep,
    ].map(\.text) + [
      JSONRecordIssue.incomplete.text, JSONRecordIssue.trailingData.text,
      JSONRecordIssue.notOneLine.text,
    ]

  func damage(_ s: String, _ rng: inout SplitMix) -> String {
    var b = Array(s.utf8)
    let at = 1 + rng.below(b.count - 1)  // keep the leading '{' (else it is not JSON Lines)
    switch rng.below(4) {
    case 0: b.remove(at: at)
    case 1:
      let junk: [UInt8] = Array(",}]\"\\:0e-. x{[\u{01}".utf8)
      b.insert(junk[rng.below(junk.count)], at: at)
    case 2: b[at] = Array("\"{}[],:\\0".utf8)[rng.below(9)]
    default: b.removeSubrange(at..<b.count)
    }
    // A damaged line must stay one line, and valid UTF-8 for Foundation's sake.
    return String(decoding: b.filter { $0 != 0x0A }, as: UTF8.self)
  }
}

// MARK: - Generator

/// The tests' one generator (PTFragTestSupport).
typealias SplitMix = SplitMix64

struct ReferenceRecord: Decodable {
  enum Value: Decodable {
    case number(UInt64), string(String), null
    init(from decoder: Decoder) throws {
      let c = try decoder.singleValueContainer()
      if c.decodeNil() {
        self = .null
      } else if let n = try? c.decode(UInt64.self) {
        self = .number(n)
      } else {
        self = .string(try c.decode(String.self))
      }
    }
  }
  var type: String?
  var cpu: UInt64?
  var pid: UInt64?
  var comm: String?
  var function: String?
  var probe: String?
  var caller: String?
  var events: UInt64?
  var text: String?
  var values: [String: Value]?
}

struct GeneratedRecord {
  enum Kind { case probe, foreign, lost, text }
  var kind: Kind
  var ns: UInt64 = 0
  var symbol = ""
  /// Value names in written order (for the return value, which is the first one).
  var valueOrder: [String] = []
  var fields: [(String, String)] = []  // key → JSON text of the value

  static let functions = [
    "page_table_alloc", "page_table_free", "page_table_free_rcu", "tlb_remove_table",
    "__tlb_remove_table", "crst_table_alloc", "crst_table_free",
  ]
  static let comms = [
    "init", "ksoftirqd/0", "<idle>", "Web Content", "gdm-session-wor", "a\"b", "back\\slash",
    "tab\there", "ctl\u{1}x", "été", "日本語", "(sd-pam)", "tux🐧",
  ]

  static func random(_ rng: inout SplitMix) -> GeneratedRecord {
    var g = GeneratedRecord(kind: .probe)
    switch rng.below(20) {
    case 0:
      g.kind = .lost
      g.fields = [
        ("type", "\"lost\""), ("cpu", String(rng.below(8))), ("events", String(rng.below(100_000))),
      ]
      return g
    case 1:
      g.kind = .text
      g.fields = [("type", "\"text\""), ("text", jsonString("# tracer: nop", &rng))]
      return g
    case 2: g.kind = .foreign
    default: break
    }
    // Timestamp: seconds with 1…9 fraction digits (or an exponent form), or ts_ns.
    let secs = UInt64(rng.below(100_000))
    let digits = 1 + rng.below(9)
    var frac: UInt64 = 0
    for _ in 0..<digits { frac = frac * 10 + UInt64(rng.below(10)) }
    var scale: UInt64 = 1
    for _ in digits..<9 { scale *= 10 }
    g.ns = secs * 1_000_000_000 + frac * scale
    let fracText = String(frac).leftPadded(to: digits)
    switch rng.below(4) {
    case 0: g.fields.append(("ts_ns", String(g.ns)))
    case 1: g.fields.append(("ts", "\"\(secs).\(fracText)\""))
    case 2: g.fields.append(("ts", "\(secs)\(fracText)e-\(digits)"))
    default: g.fields.append(("ts", "\(secs).\(fracText)"))
    }
    g.fields.append(("cpu", String(rng.below(600))))
    g.fields.append(("pid", String(rng.below(4_000_000))))
    if rng.below(3) > 0 { g.fields.append(("comm", jsonString(rng.pick(comms), &rng))) }
    if rng.below(2) == 0 { g.fields.append(("flags", "\"..s..\"")) }
    let isReturn = rng.below(3) == 0
    if g.kind == .foreign {
      g.symbol = "do_exit"
    } else {
      g.symbol = isReturn ? rng.pick(["page_table_alloc", "crst_table_alloc"]) : rng.pick(functions)
    }
    let suffix = rng.below(5) == 0 ? ".isra.0" : ""
    g.fields.append(("function", jsonString(g.symbol + suffix, &rng)))
    if isReturn {
      g.fields.append(("probe", "\"return\""))
      if rng.below(2) == 0 {
        g.fields.append(("caller", jsonString(rng.pick(["mm_init+0x166/0x3a8", "__pmd_alloc+0x2a/0x188"]), &rng)))
      }
    } else if rng.below(2) == 0 {
      g.fields.append(("probe", "\"entry\""))
    }
    var values: [(String, String)] = []
    for name in ["mm", "table", "tlb", "vmaddr"].filter({ _ in rng.below(2) == 0 }) {
      let v = UInt64(rng.below(1 << 30)) << UInt64(rng.below(20))
      let text: String
      switch rng.below(4) {
      case 0: text = String(v)
      case 1: text = "\"0x" + String(v, radix: 16) + "\""
      case 2: text = "\"" + String(v, radix: 16, uppercase: true) + "\""
      default: text = rng.below(2) == 0 ? "null" : "\"(fault)\""
      }
      values.append((name, text))
      g.valueOrder.append(name)
    }
    g.fields.append(("values", "{" + values.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"))
    if rng.below(4) == 0 {
      g.fields.append(("x-extra", rng.pick(["[1, [2, {\"a\": null}], -0.5e+3]", "{\"k\": \"\\u00e9\"}", "true", "[]", "{}"])))
    }
    return g
  }

  /// Writes the record with random key order and blanks.
  func json(_ rng: inout SplitMix) -> String {
    var f = fields
    for i in stride(from: f.count - 1, to: 0, by: -1) { f.swapAt(i, rng.below(i + 1)) }
    let blanks = ["", " ", "\t", "  "]
    return "{" + rng.pick(blanks)
      + f.map { "\"\($0.0)\"" + rng.pick(blanks) + ":" + rng.pick(blanks) + $0.1 }
      .joined(separator: rng.pick([",", " ,", ", "]))
      + rng.pick(blanks) + "}"
  }

  /// The value a name should carry per the reference decode (hex strings, decimal numbers).
  func expected(_ name: String, _ ref: ReferenceRecord) -> UInt64? {
    guard let v = ref.values?[name] else { return nil }
    switch v {
    case .number(let n): return n
    case .null: return nil
    case .string(let s):
      let h = s.hasPrefix("0x") ? String(s.dropFirst(2)) : s
      return UInt64(h, radix: 16)
    }
  }

  func firstValueNumber(_ ref: ReferenceRecord) -> UInt64? {
    guard let first = valueOrder.first else { return nil }
    return expected(first, ref)
  }

  static func jsonString(_ s: String, _ rng: inout SplitMix) -> String {
    var o = "\""
    for u in s.unicodeScalars {
      switch u {
      case "\"": o += "\\\""
      case "\\": o += "\\\\"
      case "\t": o += rng.below(2) == 0 ? "\\t" : "\\u0009"
      default:
        if u.value < 0x20 {
          o += "\\u" + String(u.value, radix: 16).leftPadded(to: 4)
        } else if u.value < 0x80 && rng.below(8) == 0 {
          o += "\\u" + String(u.value, radix: 16).leftPadded(to: 4)
        } else if u.value > 0xFFFF && rng.below(2) == 0 {
          // A surrogate pair.
          let v = u.value - 0x10000
          o += "\\u" + String(0xD800 + (v >> 10), radix: 16) + "\\u" + String(0xDC00 + (v & 0x3FF), radix: 16)
        } else if u.value >= 0x80 && u.value <= 0xFFFF && rng.below(3) == 0 {
          o += "\\u" + String(u.value, radix: 16).leftPadded(to: 4)
        } else {
          o.unicodeScalars.append(u)
        }
      }
    }
    return o + "\""
  }
}

extension String {
  func leftPadded(to n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
