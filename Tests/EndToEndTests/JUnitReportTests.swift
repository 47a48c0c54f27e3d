import Foundation
#if canImport(FoundationXML)
  import FoundationXML
#endif
import PTFragEvents
import PTFragJUnit
import PTFragKit
@testable import PTFragReplay
import PTFragReport
import PTFragTestSupport
import XCTest

/// The JUnit writer, its sanitizer, the occupancy timeline behind `--max-waste-ratio` and the
/// baseline signature, at library level. Every JUnit document produced here goes through
/// `JUnitCheck.check` (XSD + counts).
final class JUnitReportTests: XCTestCase {
  /// Every character class the sanitizer knows, in one string.
  static let hostile =
    "ESC\u{1B}[31m NUL\u{0} BEL\u{7} VT\u{B} FFFE\u{FFFE} FFFF\u{FFFF} DEL\u{7F} C1\u{9B} CDATA]]> lt< amp& quot\" apos' tab\t lf\n cr\r é ∑ 🙂 \u{E000} \u{FFFD}"

  func testSanitizerReplacesWhatXML10ForbidsAndKeepsTheRest() {
    let clean = XMLSanitizer.sanitize(Self.hostile)
    XCTAssertTrue(clean.unicodeScalars.allSatisfy(XMLSanitizer.isClean))
    XCTAssertEqual(
      clean,
      "ESC\u{241B}[31m NUL\u{2400} BEL\u{2407} VT\u{240B} FFFE\u{FFFD} FFFF\u{FFFD} DEL\u{2421} C1\u{FFFD} CDATA]]> lt< amp& quot\" apos' tab\t lf\n cr\r é ∑ 🙂 \u{E000} \u{FFFD}"
    )
    // Each of the 32 C0 controls but TAB, LF, CR maps to its Control Picture.
    for v in UInt32(0)..<32 {
      let u = Unicode.Scalar(v)!
      let out = XMLSanitizer.sanitize(String(Character(u)))
      if v == 9 || v == 10 || v == 13 {
        XCTAssertEqual(out, String(Character(u)))
      } else {
        XCTAssertEqual(out.unicodeScalars.map(\.value), [0x2400 + v])
      }
    }
    XCTAssertEqual(XMLSanitizer.sanitize("plain <&> text"), "plain <&> text")
  }

  /// One escaper: the HTML page writes a hostile string as the JUnit file does (the same
  /// sanitizer), with only markup escaped on top, and the result parses as XML.
  func testHTMLEscapesWithTheJUnitSanitizer() throws {
    let html = esc(Self.hostile)
    XCTAssertEqual(
      html,
      "ESC\u{241B}[31m NUL\u{2400} BEL\u{2407} VT\u{240B} FFFE\u{FFFD} FFFF\u{FFFD} DEL\u{2421} C1\u{FFFD} CDATA]]&gt; lt&lt; amp&amp; quot&quot; apos&#39; tab\t lf\n cr\r é ∑ 🙂 \u{E000} \u{FFFD}"
    )
    let unescaped = html.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
      .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
      .replacingOccurrences(of: "&amp;", with: "&")
    XCTAssertEqual(unescaped, XMLSanitizer.sanitize(Self.hostile))
    let doc = Data("<p title=\"\(html)\">\(html)</p>".utf8)
    XCTAssertTrue(XMLParser(data: doc).parse())
  }

  func testInvalidUTF8BecomesReplacementCharacters() {
    // 'a', a lone 0xFF, a truncated 2-byte sequence, an encoded surrogate, a U+FFFE encoding.
    let bytes: [UInt8] = [0x61, 0xFF, 0xC3, 0x28, 0xED, 0xA0, 0x80, 0x62, 0xEF, 0xBF, 0xBE, 0x00]
    let s = XMLSanitizer.sanitize(utf8: bytes)
    XCTAssertTrue(s.unicodeScalars.allSatisfy(XMLSanitizer.isClean))
    XCTAssertEqual(s.unicodeScalars.first, "a")
    XCTAssertTrue(s.contains("("))
    XCTAssertTrue(s.contains("b"))
    XCTAssertFalse(s.unicodeScalars.contains("\u{FFFE}"))
    XCTAssertEqual(s.unicodeScalars.last, "\u{2400}")
    XCTAssertGreaterThanOrEqual(s.unicodeScalars.filter { $0 == "\u{FFFD}" }.count, 4)
  }

  func testPrefixCutsAtAScalarBoundary() {
    let s = "ab🙂cd"  // 🙂 is 4 bytes: a b [4] c d = 8 bytes
    XCTAssertEqual(XMLSanitizer.prefix(s, maxBytes: 8).0, s)
    XCTAssertFalse(XMLSanitizer.prefix(s, maxBytes: 8).cut)
    XCTAssertEqual(XMLSanitizer.prefix(s, maxBytes: 5).0, "ab")
    XCTAssertTrue(XMLSanitizer.prefix(s, maxBytes: 5).cut)
    XCTAssertEqual(XMLSanitizer.prefix(s, maxBytes: 6).0, "ab🙂")
  }

  /// Findings whose message, comm, states, path and read samples hold every hostile
  /// character: the document validates, holds no forbidden byte or character reference, and
  /// reads back with the characters libxml2 escaped (`<`, `&`, quotes, `]]>`) intact.
  func testHostileStringsEverywhereStillGiveValidJUnit() throws {
    let rule = S390v61Model.rules.first { $0.id == "double-free" }!
    var commBytes: [UInt8] = [0x1B, 0x5D, 0x5D, 0x3E, 0x00, 0xFF, 0xEF, 0xBF, 0xBE, 0x26, 0x22]
    let comm = commBytes.withUnsafeMutableBufferPointer { Comm(UnsafeBufferPointer($0)) }
    var script = EventScript()
    let e = script.make(.freeTLB, line: 13, ns: 100_001_200_000, table: 0x37b9000, pid: 179, comm: comm)
    var f = Finding(
      rule: rule, event: e, mm: 0x20c0800, page: 0x37b9000, half: 0, stateBefore: "P\u{1B}A <L>",
      stateAfter: "\"&'", message: "msg " + Self.hostile)
    f.history = [
      HistoryEntry(line: 8, timestampNs: 100_000_400_000, cpu: 1, pid: 1, kind: .alloc, table: 0x37b9000, mm: 0x20c0800)
    ]
    let path = "dir/trace \u{1B}]]><&\"'\u{FFFE}.trace"
    var input = report(path: path, findings: [f])
    input.read.malformed = 1
    input.read.malformedSamples = [.init(line: 3, reason: "reason " + Self.hostile)]
    input.sha256 = String(repeating: "ab", count: 32)
    let run = RunReport(inputs: [input], failOn: .error, toolVersion: "test\u{0}")
    let xml = try JUnitReport(timestamp: "2026-01-02T03:04:05", hostname: "host\u{1B}").render(run)

    let rules = S390v61Model.rules.count
    let census = try JUnitCheck.check(
      xml, named: "library-hostile",
      expect: ExpectedCounts(suites: 1, tests: rules + 2, failures: 1, errors: 0, skipped: 0))
    for b in xml where b < 0x20 { XCTAssertTrue(b == 0x09 || b == 0x0A || b == 0x0D, "raw control byte \(b)") }
    let text = String(decoding: xml, as: UTF8.self)
    XCTAssertFalse(text.unicodeScalars.contains("\u{FFFE}"))
    XCTAssertFalse(text.unicodeScalars.contains("\u{FFFF}"))
    for ref in ["&#0;", "&#27;", "&#x1B;", "&#x1b;", "&#7;", "&#xFFFE;", "&#65534;"] {
      XCTAssertFalse(text.contains(ref), "character reference \(ref) written")
    }
    let suite = census.suites[0]
    XCTAssertEqual(suite.attributes["name"], "dir/trace \u{241B}]]><&\"'\u{FFFD}.trace [s390-6.1]")
    XCTAssertEqual(suite.attributes["hostname"], "host\u{241B}")
    XCTAssertEqual(suite.property("ptfrag.version"), "test\u{2400}")
    let failure = try XCTUnwrap(suite.testcase("double-free"))
    XCTAssertEqual(failure.outcome, "failure")
    XCTAssertEqual(failure.type, "double-free")
    let sanitizedHostile = XMLSanitizer.sanitize(Self.hostile)
    XCTAssertTrue(failure.body.contains("msg " + sanitizedHostile.replacingOccurrences(of: "\r", with: "\r")))
    XCTAssertTrue(failure.body.contains("comm \u{241B}]]>\u{2400}\u{FFFD}\u{FFFD}&\""), failure.body)
    XCTAssertTrue(failure.body.contains("state: P\u{241B}A <L> → \"&'"))
    XCTAssertTrue(failure.body.contains("line 8: 100.000400 cpu 1 pid 1 page_table_alloc(0x37b9000)"))
    XCTAssertTrue(try XCTUnwrap(failure.message).hasPrefix("1 error finding(s) [double-free]; first at dir/trace \u{241B}]]><&\"'\u{FFFD}.trace:13: msg ESC\u{241B}"))
    let read = try XCTUnwrap(suite.testcase("read"))
    XCTAssertTrue(try XCTUnwrap(read.systemOut).contains(":3: reason " + sanitizedHostile))
  }

  func testFailureBodyIsCappedAndSaysWhatWasCut() throws {
    let rule = S390v61Model.rules.first { $0.id == "double-free" }!
    let long = String(repeating: "x", count: 900)
    var script = EventScript(pid: 0, comm: .fixed(Comm("cut")))
    let findings = (0..<300).map { k in
      Finding(
        rule: rule, event: script.make(.freeTLB, line: 100 + k, ns: 1), mm: 1,
        page: 0x1000, half: 0, stateBefore: "PA L", stateAfter: "PA L", message: "\(k) \(long)")
    }
    var input = report(path: "big.trace", findings: findings)
    input.result!.droppedFindings = ["double-free": 7]
    input.result!.countsByRule = ["double-free": 307]
    let run = RunReport(inputs: [input], failOn: .error, toolVersion: "t")
    let xml = try JUnitReport().render(run)
    let census = try JUnitCheck.check(
      xml, named: "library-capped",
      expect: ExpectedCounts(suites: 1, tests: S390v61Model.rules.count + 2, failures: 1, errors: 0, skipped: 0))
    let body = try XCTUnwrap(census.suites[0].testcase("double-free")).body
    XCTAssertLessThanOrEqual(body.utf8.count, 64 << 10)
    XCTAssertGreaterThan(body.utf8.count, 60 << 10)
    XCTAssertTrue(body.hasPrefix("big.trace:100: error [double-free] 0 xxx"))
    let shown = body.components(separatedBy: ": error [double-free] ").count - 1
    XCTAssertTrue(body.contains("… \(300 - shown) more findings truncated (the body is capped at 64 KiB"), body.suffix(400).description)
    XCTAssertTrue(body.contains("… 7 more [double-free] findings beyond the replay's detail cap"))
  }

  func testOccupancyTimelineIsTimeWeighted() {
    func occ(_ held: Int, _ live: Int) -> Occupancy {
      var o = Occupancy()
      o.pagesHeld = held
      o.live = live
      o.slotsPerPage = 2
      return o
    }
    var t = OccupancyTimeline()
    XCTAssertNil(t.wasteRatio)
    t.observe(occ(1, 1), atNs: 1_000)
    t.observe(occ(2, 4), atNs: 1_010)
    t.observe(occ(3, 1), atNs: 1_005)  // stamped earlier: adds no time, sets the value
    t.observe(occ(0, 0), atNs: 1_030)
    // held: 1 for 10 ns, 3 for 20 ns → 70 / 30; live: 1×10 + 1×20 = 30 / 30.
    XCTAssertEqual(t.spanNs, 30)
    XCTAssertEqual(t.meanPagesHeld!, 70.0 / 30.0, accuracy: 1e-12)
    XCTAssertEqual(t.meanLiveTables!, 1.0, accuracy: 1e-12)
    XCTAssertEqual(t.wasteRatio!, (70.0 / 30.0) / 0.5, accuracy: 1e-12)
    XCTAssertEqual(t.peakPagesHeld, 3)
    XCTAssertEqual(t.peakLiveTables, 4)

    var one = OccupancyTimeline()
    one.observe(occ(3, 2), atNs: 5)
    XCTAssertEqual(one.wasteRatio!, 3.0, accuracy: 1e-12)  // no span: the values at the end
    var none = OccupancyTimeline()
    none.observe(occ(1, 0), atNs: 5)
    none.observe(occ(1, 0), atNs: 9)
    XCTAssertNil(none.wasteRatio)  // no live table: undefined
  }

  func testBaselineSignatureIgnoresWhatChangesBetweenCaptures() throws {
    let rule = S390v61Model.rules.first { $0.id == "double-free" }!
    func finding(line: Int, page: UInt64, pid: Int32, comm: String, state: String) -> Finding {
      var script = EventScript()
      return Finding(
        rule: rule, event: script.make(.freeTLB, line: line, pid: pid, comm: Comm(comm)),
        mm: page >> 4, page: page, half: 0, stateBefore: state, stateAfter: state,
        message: "page_table_free_rcu of \(hexAddress(page)), whose lower half is pending since line \(line - 2)")
    }
    let a = finding(line: 13, page: 0x37b9000, pid: 179, comm: "cut", state: "PA L")
    let b = finding(line: 4711, page: 0x41a2000, pid: 2048, comm: "sh", state: "PA L")
    let c = finding(line: 13, page: 0x37b9000, pid: 179, comm: "cut", state: "PF -")
    // Schema 2: structured fields only (the event's function, the half, the states).
    XCTAssertEqual(Baseline.signature(of: a), "page_table_free_rcu lower half | PA L → PA L")
    XCTAssertEqual(Baseline.signature(of: a), Baseline.signature(of: b))
    XCTAssertNotEqual(Baseline.signature(of: a), Baseline.signature(of: c))
    var reworded = a
    reworded.message = "another wording of the same finding at 0x1234"
    XCTAssertEqual(Baseline.signature(of: reworded), Baseline.signature(of: a), "a reworded message keeps the signature")
    var upper = a
    upper.location = .half(1)
    XCTAssertNotEqual(Baseline.signature(of: upper), Baseline.signature(of: a))
    // Schema 1 (the message shape), as older files hold it.
    XCTAssertEqual(Baseline.signature(of: a, schema: 1), "PA L → PA L | page_table_free_rcu of 0x…, whose lower half is pending since line #")

    let run = RunReport(inputs: [report(path: "a.trace", findings: [a, b])], failOn: .error, toolVersion: "t")
    let written = Baseline.of(run)
    XCTAssertEqual(written.entries.count, 1)
    XCTAssertEqual(written.entries[0].count, 2)
    XCTAssertEqual(written.entries[0].example, "a.trace:13: \(a.message)")
    let reread = try Baseline.parse(Array(written.rendered(toolVersion: "t").utf8))
    XCTAssertTrue(reread.contains(model: "s390-6.1", b))
    XCTAssertFalse(reread.contains(model: "s390-6.1", c))
    XCTAssertFalse(reread.contains(model: "s390-6.6", b))
    XCTAssertThrowsError(try Baseline.parse(Array("{\"schemaVersion\": 3, \"findings\": []}".utf8)))
    // A schema 1 file still loads and matches by its own signature.
    let v1 = try Baseline.parse(Array("""
      {"schemaVersion": 1, "findings": [{"model": "s390-6.1", "rule": "double-free",
        "signature": "PA L → PA L | page_table_free_rcu of 0x…, whose lower half is pending since line #"}]}
      """.utf8))
    XCTAssertEqual(v1.schema, 1)
    XCTAssertTrue(v1.contains(model: "s390-6.1", b))
    XCTAssertFalse(v1.contains(model: "s390-6.1", c))
    XCTAssertThrowsError(try Baseline.parse(Array("[1, 2]".utf8)))
  }

  /// An mm born before the capture: the model cannot predict any allocation, so the rules that
  /// judge predictions are skipped with the reason, not passed.
  func testPredictionRulesAreSkippedWithoutAnMMBornInTheCapture() throws {
    let scratch = try TestPaths.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let lines = try String(contentsOfFile: TestPaths.fixture("clean.trace"), encoding: .utf8)
      .split(separator: "\n", omittingEmptySubsequences: false)
      .filter { !$0.contains("crst_table_alloc") && !$0.contains("crst_table_free") }
    let path = scratch.appendingPathComponent("unborn.trace").path
    try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
    let input = try Analyzer.analyze(path: path, options: AnalyzeOptions())
    XCTAssertEqual(input.result?.stats.allocationsPredicted, 0)
    let run = RunReport(inputs: [input], failOn: .error, toolVersion: "t")
    let needing = S390v61Model.rules.filter { $0.requires == .predictedAllocations }.map(\.id)
    XCTAssertEqual(
      Set(needing),
      ["alloc-not-head", "alloc-fresh-while-head-usable", "alloc-listed-while-fresh", "pgste-inferred"])
    let census = try JUnitCheck.check(
      try JUnitReport().render(run), named: "library-unborn",
      expect: ExpectedCounts(suites: 1, tests: S390v61Model.rules.count + 2, failures: 0, errors: 0, skipped: needing.count))
    for id in needing {
      let c = try XCTUnwrap(census.suites[0].testcase(id))
      XCTAssertEqual(c.outcome, "skipped")
      XCTAssertTrue(try XCTUnwrap(c.message).hasPrefix("not applicable to this capture: no allocation could be predicted (2 unverified)"))
    }
  }

  // MARK: Helpers

  /// An input report around `findings` replayed by the s390-6.1 model.
  func report(path: String, findings: [Finding]) -> InputReport {
    var counts: [String: Int] = [:]
    for f in findings { counts[f.rule.id, default: 0] += 1 }
    var stats = ReplayStats()
    stats.allocationsPredicted = 1
    let result = ReplayResult(
      model: S390v61Model.descriptor, findings: findings, inconclusive: [], countsByRule: counts,
      droppedFindings: [:], droppedInconclusive: 0, stats: stats, events: 10, lossReason: nil)
    var read = ReadSummary()
    read.lines = 20
    read.malformedTolerance = 1000
    return InputReport(
      path: path, modelSelection: "given with --model", profilePath: nil, profileMisses: nil, read: read,
      result: result)
  }
}
