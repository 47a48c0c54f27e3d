import Foundation
import PTFragJUnit
import PTFragReplay
import PTFragJUnitCheck
import PTFragTestSupport
import XCTest

/// The CI gate end to end: the built `ptfrag` executable run on fixture captures, its exit
/// code, its text and its JUnit file (validated against the XSD by `JUnitCheck`).
///
/// Fixtures (Fixtures/junit, replayed with the s390-6.1 model):
/// - clean.trace: one mm born, two tables allocated, freed through the tlb batch, executed,
///   the mm dies. No finding.
/// - findings.trace: double-free at line 13, exec-without-pending at line 14, cross-mm at
///   line 22, nothing else.
/// - hostile.trace: findings.trace with comms holding ESC, NUL, U+FFFE, U+FFFF, `]]>`, `<`,
///   `&`, quotes and invalid UTF-8 on the three finding lines, plus a malformed binary line.
/// - lost.trace: findings.trace with `CPU:0 [LOST 3 EVENTS]` before line 13: every finding
///   becomes inconclusive (exit 2).
final class JUnitGateTests: XCTestCase {
  var scratch: URL!

  override func setUpWithError() throws {
    scratch = try TestPaths.scratch()
    XCTAssertTrue(
      FileManager.default.isExecutableFile(atPath: PTFragProcess.executable.path),
      "ptfrag is not built at \(PTFragProcess.executable.path)")
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: scratch)
  }

  /// Rules of the model plus the checks `read` and `conclusive`.
  var casesPerSuite: Int { S390v61Model.rules.count + 2 }

  func out(_ name: String) -> String { scratch.appendingPathComponent(name).path }

  func ptfrag(_ args: [String]) throws -> PTFragProcess.Result {
    try PTFragProcess.run(["analyze", "--model", "s390-6.1", "--color", "never"] + args, in: scratch)
  }

  func junit(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

  /// Runs Fixtures/junit/NAME.trace with `--junit`, checks the exit status and the counts of
  /// its single suite, and returns the run and the suite.
  func analyzeFixture(
    _ name: String, status: Int32, failures: Int, skipped: Int, line: UInt = #line
  ) throws -> (PTFragProcess.Result, JUnitCensus.Suite) {
    let r = try ptfrag([TestPaths.fixture("\(name).trace"), "--junit", out("\(name).xml")])
    XCTAssertEqual(r.status, status, r.stderr, line: line)
    let census = try JUnitCheck.check(
      try junit(out("\(name).xml")), named: "e2e-\(name)",
      expect: ExpectedCounts(suites: 1, tests: casesPerSuite, failures: failures, errors: 0, skipped: skipped),
      line: line)
    return (r, census.suites[0])
  }

  // MARK: One input

  func testCleanTrace() throws {
    let (r, s) = try analyzeFixture("clean", status: 0, failures: 0, skipped: 0)
    XCTAssertTrue(r.stdout.contains("verdict: CLEAN"))
    XCTAssertEqual(s.attributes["name"], "\(TestPaths.fixture("clean.trace")) [s390-6.1]")
    XCTAssertEqual(s.cases.map(\.classname), Array(repeating: "s390-6.1", count: casesPerSuite))
    XCTAssertEqual(s.cases.map(\.name), ["read", "conclusive"] + S390v61Model.rules.map(\.id))
    XCTAssertEqual(s.property("model"), "s390-6.1")
    XCTAssertEqual(s.property("input"), TestPaths.fixture("clean.trace"))
    XCTAssertEqual(s.property("input.sha256"), try sha256sum(TestPaths.fixture("clean.trace")))
    XCTAssertEqual(s.property("lost.events"), "0")
    XCTAssertEqual(s.property("missed"), "unknown (no kprobe_profile given)")
    XCTAssertEqual(s.property("verdict"), "clean")
    XCTAssertEqual(s.property("events"), "12")
    // Time-weighted by hand (µs after 100.000100, span 2900): the page is held 400…2100 →
    // 1700/2900 pages; live 1×200 + 2×400 + 1×200 = 1200/2900 tables, 2 per page →
    // ratio (1700/2900) / (600/2900) = 2.833.
    XCTAssertEqual(s.property("waste-ratio"), "2.833")
    XCTAssertTrue(s.property("variant")?.hasPrefix("s390-6.1: v5.17") ?? false)
    XCTAssertNotNil(s.attributes["timestamp"].flatMap { $0.count == 19 && $0.contains("T") ? $0 : nil })
  }

  func testSeveralRulesFire() throws {
    let (_, s) = try analyzeFixture("findings", status: 1, failures: 3, skipped: 0)
    let failed = s.cases.filter { $0.outcome == "failure" }
    XCTAssertEqual(failed.map(\.name), ["double-free", "exec-without-pending", "cross-mm"])
    let path = TestPaths.fixture("findings.trace")
    for (c, line) in zip(failed, [13, 14, 22]) {
      XCTAssertEqual(c.type, c.name)
      XCTAssertTrue(c.message?.hasPrefix("1 error finding(s) [\(c.name)]; first at \(path):\(line): ") ?? false, c.message ?? "")
      XCTAssertTrue(c.body.hasPrefix("\(path):\(line): error [\(c.name)] "), c.body)
    }
    let df = failed[0].body
    XCTAssertTrue(df.contains("at 100.001200 cpu 0 pid 179 comm cut mm 0x20c0800 page 0x37b9000 half lower"))
    XCTAssertTrue(df.contains("state: PA L → PA L"))
    XCTAssertTrue(df.contains("line 11: 100.001000 cpu 0 pid 179 page_table_free_rcu(0x37b9000)"))
    XCTAssertEqual(s.property("findings"), "3")
    XCTAssertEqual(s.property("verdict"), "fail")
    XCTAssertEqual(s.property("exit-code"), "1")
  }

  func testUnreadableInputsAreErrors() throws {
    try FileManager.default.createDirectory(at: scratch.appendingPathComponent("adir"), withIntermediateDirectories: true)
    let r = try ptfrag(["no-such.trace", "adir", "--junit", out("unreadable.xml")])
    XCTAssertEqual(r.status, 66, r.stderr)
    let census = try JUnitCheck.check(
      try junit(out("unreadable.xml")), named: "e2e-unreadable",
      expect: ExpectedCounts(suites: 2, tests: 2, failures: 0, errors: 2, skipped: 0))
    let missing = census.suites[0].cases[0]
    XCTAssertEqual(missing.classname, "ptfrag")
    XCTAssertEqual(missing.name, "read")
    XCTAssertEqual(missing.type, "input-missing")
    XCTAssertEqual(missing.message, "no-such.trace: no such file")
    XCTAssertEqual(census.suites[1].cases[0].message, "adir: is a directory, not a capture")
    XCTAssertEqual(census.suites[0].property("input.sha256"), "(not read)")
  }

  /// Comms with ESC, NUL, U+FFFE/U+FFFF, `]]>`, `<`, `&`, quotes and invalid UTF-8, in a file
  /// whose name holds markup and ESC: the same three findings, a valid document, no forbidden
  /// character in it, and the comms readable with their replacements.
  func testHostileCommsAndPath() throws {
    let name = "hostile ]]><&\"'\u{1B}\u{FFFE}.trace"
    let copy = scratch.appendingPathComponent(name)
    try FileManager.default.copyItem(at: URL(fileURLWithPath: TestPaths.fixture("hostile.trace")), to: copy)
    let r = try ptfrag([name, "--junit", out("hostile.xml"), "--json", out("hostile.json")])
    XCTAssertEqual(r.status, 1, r.stderr)
    let xml = try junit(out("hostile.xml"))
    let census = try JUnitCheck.check(
      xml, named: "e2e-hostile",
      expect: ExpectedCounts(suites: 1, tests: casesPerSuite, failures: 3, errors: 0, skipped: 0))
    for b in xml where b < 0x20 { XCTAssertTrue(b == 0x09 || b == 0x0A || b == 0x0D, "raw control byte \(b)") }
    let text = String(decoding: xml, as: UTF8.self)
    XCTAssertFalse(text.unicodeScalars.contains { $0 == "\u{FFFE}" || $0 == "\u{FFFF}" || $0 == "\u{1B}" })
    XCTAssertFalse(text.contains("&#"), "a character reference was written")
    let s = census.suites[0]
    let shownName = "hostile ]]><&\"'\u{241B}\u{FFFD}.trace"
    XCTAssertEqual(s.property("input"), shownName)
    let failed = s.cases.filter { $0.outcome == "failure" }
    XCTAssertEqual(failed.map(\.name), ["double-free", "exec-without-pending", "cross-mm"])
    XCTAssertTrue(failed[0].body.hasPrefix("\(shownName):13: error [double-free] "))
    XCTAssertTrue(failed[0].body.contains("pid 179 comm \u{241B}[1m]]><&\"'\u{2400} mm"), failed[0].body)
    XCTAssertTrue(failed[1].body.contains("pid 0 comm \u{FFFD}\u{FFFD}\u{FFFD}<&>\u{241B} mm"), failed[1].body)
    XCTAssertTrue(failed[2].body.contains("pid 180 comm q\"'\u{2400}]]>\u{FFFD}(\u{FFFD} mm"), failed[2].body)
    let read = try XCTUnwrap(s.testcase("read"))
    XCTAssertEqual(read.outcome, "passed")
    XCTAssertTrue(read.systemOut?.contains("\(shownName):24: binary data (control bytes) in a text line") ?? false, read.systemOut ?? "")
  }

  func testLostEventsMakeSkippedNotFailed() throws {
    let (_, s) = try analyzeFixture("lost", status: 2, failures: 0, skipped: 4)
    XCTAssertEqual(s.cases.filter { $0.outcome == "skipped" }.map(\.name), ["conclusive", "double-free", "exec-without-pending", "cross-mm"])
    XCTAssertEqual(
      s.testcase("conclusive")?.message,
      "inconclusive: the capture lost events (1 LOST marker(s), 3 events lost); 3 unexplained inconclusive item(s)")
    XCTAssertEqual(s.testcase("double-free")?.message, "1 would-be finding(s) the capture cannot decide (lost-events)")
    XCTAssertEqual(s.property("lost.events"), "3")
    XCTAssertEqual(s.property("lost.markers"), "1")
  }

  // MARK: Several inputs

  func testSeveralInputsReportEachAndTheWorstDecides() throws {
    let clean = TestPaths.fixture("clean.trace")
    let lost = TestPaths.fixture("lost.trace")
    let findings = TestPaths.fixture("findings.trace")
    XCTAssertEqual(try ptfrag([clean, clean]).status, 0)
    XCTAssertEqual(try ptfrag([clean, lost]).status, 2)
    XCTAssertEqual(try ptfrag([lost, clean, findings]).status, 1)
    XCTAssertEqual(try ptfrag([findings, "missing.trace", clean]).status, 66)

    let r = try ptfrag([clean, lost, findings, "--junit", out("multi.xml")])
    XCTAssertEqual(r.status, 1)
    for p in [clean, lost, findings] { XCTAssertTrue(r.stdout.contains("== \(p)\n"), "no section for \(p)") }
    XCTAssertTrue(r.stdout.contains("== total: 3 inputs\n   1 clean\n   1 fail\n   1 inconclusive\n   3 findings in all; exit code 1\n"), r.stdout)
    let census = try JUnitCheck.check(
      try junit(out("multi.xml")), named: "e2e-multi",
      expect: ExpectedCounts(suites: 3, tests: 3 * casesPerSuite, failures: 3, errors: 0, skipped: 4))
    XCTAssertEqual(census.suites.map { $0.property("exit-code") }, ["0", "2", "1"])
  }

  // MARK: Gate options

  func testFailOnThreshold() throws {
    let findings = TestPaths.fixture("findings.trace")
    let never = try ptfrag([findings, "--fail-on", "never", "--junit", out("never.xml")])
    XCTAssertEqual(never.status, 0)
    let census = try JUnitCheck.check(
      try junit(out("never.xml")), named: "e2e-fail-on-never",
      expect: ExpectedCounts(suites: 1, tests: casesPerSuite, failures: 0, errors: 0, skipped: 0))
    let df = try XCTUnwrap(census.suites[0].testcase("double-free"))
    XCTAssertTrue(df.systemOut?.hasPrefix("1 finding(s) (error); --fail-on never: not failing\n\n\(findings):13: error [double-free]") ?? false, df.systemOut ?? "")
    XCTAssertEqual(try ptfrag([findings, "--fail-on", "warning"]).status, 1)
    XCTAssertEqual(try ptfrag([findings, "--fail-on", "error"]).status, 1)
  }

  func testMaxWasteRatio() throws {
    let clean = TestPaths.fixture("clean.trace")
    let over = try ptfrag([clean, "--max-waste-ratio", "2.5", "--junit", out("waste-over.xml")])
    XCTAssertEqual(over.status, 1)
    XCTAssertTrue(over.stdout.contains("waste ratio 2.833 is above --max-waste-ratio 2.500"), over.stdout)
    let o = try JUnitCheck.check(
      try junit(out("waste-over.xml")), named: "e2e-waste-over",
      expect: ExpectedCounts(suites: 1, tests: casesPerSuite + 1, failures: 1, errors: 0, skipped: 0))
    let w = try XCTUnwrap(o.suites[0].testcase("waste-ratio"))
    XCTAssertEqual(w.outcome, "failure")
    XCTAssertEqual(w.message, "waste ratio 2.833 is above --max-waste-ratio 2.500")

    let under = try ptfrag([clean, "--max-waste-ratio", "3", "--junit", out("waste-under.xml")])
    XCTAssertEqual(under.status, 0)
    try JUnitCheck.check(
      try junit(out("waste-under.xml")), named: "e2e-waste-under",
      expect: ExpectedCounts(suites: 1, tests: casesPerSuite + 1, failures: 0, errors: 0, skipped: 0))

    // No table ever live: the ratio is undefined and the check is skipped, not failed.
    let empty = scratch.appendingPathComponent("empty.trace")
    try "# tracer: nop\n".write(to: empty, atomically: true, encoding: .utf8)
    let e = try ptfrag([empty.path, "--max-waste-ratio", "1", "--junit", out("waste-undefined.xml")])
    XCTAssertEqual(e.status, 2)  // no events: inconclusive
    // Skipped: waste-ratio, conclusive (no events) and the rules that need a prediction.
    let predictionRules = S390v61Model.rules.filter { $0.requires == .predictedAllocations }.count
    let u = try JUnitCheck.check(
      try junit(out("waste-undefined.xml")), named: "e2e-waste-undefined",
      expect: ExpectedCounts(suites: 1, tests: casesPerSuite + 1, failures: 0, errors: 0, skipped: 2 + predictionRules))
    XCTAssertEqual(u.suites[0].testcase("waste-ratio")?.outcome, "skipped")
    XCTAssertEqual(u.suites[0].testcase("waste-ratio")?.message, "waste ratio undefined: no table was live")
    XCTAssertEqual(u.suites[0].testcase("conclusive")?.message, "inconclusive: 1 unexplained inconclusive item(s); no page-table events")
    XCTAssertEqual(try ptfrag([clean, "--max-waste-ratio", "0"]).status, 64)
  }

  func testBaselineKnownFindingsDoNotFail() throws {
    let findings = TestPaths.fixture("findings.trace")
    let w = try ptfrag([findings, "--write-baseline", out("baseline.json")])
    XCTAssertEqual(w.status, 1)  // writing a baseline does not change the gate
    let written = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out("baseline.json")))) as! [String: Any]
    let entries = written["findings"] as! [[String: Any]]
    XCTAssertEqual(entries.map { $0["rule"] as! String }, ["cross-mm", "double-free", "exec-without-pending"])
    XCTAssertEqual(
      entries[1]["signature"] as? String,
      "page_table_free_rcu lower half | PA L → PA L")

    // The same bugs, five lines further down and at other addresses: all known.
    var moved = try String(contentsOfFile: findings, encoding: .utf8)
    moved = moved.replacingOccurrences(of: "0x37b9", with: "0x41a2").replacingOccurrences(of: "0x20c0800", with: "0x2aa0400")
      .replacingOccurrences(of: "#              | |", with: "#              | |\n\n\n\n\n")
    try moved.write(toFile: out("moved.trace"), atomically: true, encoding: .utf8)
    let known = try ptfrag(["moved.trace", "--baseline", out("baseline.json"), "--junit", out("baseline-known.xml"), "--json", out("known.json")])
    XCTAssertEqual(known.status, 0, known.stdout)
    XCTAssertTrue(known.stdout.contains("moved.trace:18: known error [double-free] page_table_free_rcu of 0x41a2000"), known.stdout)
    XCTAssertTrue(known.stdout.contains("3 known from the baseline (not failing)"))
    let k = try JUnitCheck.check(
      try junit(out("baseline-known.xml")), named: "e2e-baseline-known",
      expect: ExpectedCounts(suites: 1, tests: casesPerSuite, failures: 0, errors: 0, skipped: 0))
    XCTAssertEqual(k.suites[0].property("findings.known"), "3")
    XCTAssertTrue(k.suites[0].testcase("double-free")?.systemOut?.hasPrefix("1 finding(s), all known from the baseline: not failing") ?? false)
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out("known.json")))) as! [String: Any]
    let input = (json["inputs"] as! [[String: Any]])[0]
    XCTAssertEqual((input["findings"] as! [[String: Any]]).map { $0["known"] as! Bool }, [true, true, true])

    // A baseline without cross-mm: only cross-mm fails.
    var partial = written
    partial["findings"] = entries.filter { $0["rule"] as? String != "cross-mm" }
    try JSONSerialization.data(withJSONObject: partial).write(to: URL(fileURLWithPath: out("partial.json")))
    let p = try ptfrag([findings, "--baseline", out("partial.json"), "--junit", out("baseline-partial.xml")])
    XCTAssertEqual(p.status, 1)
    let pc = try JUnitCheck.check(
      try junit(out("baseline-partial.xml")), named: "e2e-baseline-partial",
      expect: ExpectedCounts(suites: 1, tests: casesPerSuite, failures: 1, errors: 0, skipped: 0))
    XCTAssertEqual(pc.suites[0].cases.filter { $0.outcome == "failure" }.map(\.name), ["cross-mm"])
  }

  func testBadBaselineAndUnwritableJUnit() throws {
    let clean = TestPaths.fixture("clean.trace")
    let missing = try ptfrag([clean, "--baseline", "nope.json"])
    XCTAssertEqual(missing.status, 66)
    XCTAssertEqual(missing.stderr, "ptfrag: baseline: nope.json: no such file\n")
    try "{\"findings\": 3}".write(toFile: out("bad.json"), atomically: true, encoding: .utf8)
    let bad = try ptfrag([clean, "--baseline", out("bad.json")])
    XCTAssertEqual(bad.status, 65)
    XCTAssertTrue(bad.stderr.hasPrefix("ptfrag: baseline: \(out("bad.json")):1: not a ptfrag baseline"), bad.stderr)
    let unwritable = try ptfrag([clean, "--junit", out("no/such/dir/x.xml")])
    XCTAssertEqual(unwritable.status, 74)
    XCTAssertTrue(unwritable.stderr.contains("cannot write JUnit XML to"))
  }

  // MARK: Helpers

  /// The digest `sha256sum` (coreutils) prints: an implementation independent of ptfrag's.
  func sha256sum(_ path: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["sha256sum", path]
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(String(decoding: data, as: UTF8.self).prefix(64))
  }
}
