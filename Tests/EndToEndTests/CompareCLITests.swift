import Foundation
import PTFragJUnit
import PTFragJUnitCheck
import PTFragTestSupport
import XCTest

/// `ptfrag compare` and the HTML pages, run as a user runs them: exit codes, the JSON schema
/// the README documents, and the pages parsed by libxml2.
extension CLITests {
  func scratch() throws -> URL {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("ptfrag-compare-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    return d
  }

  /// The page is well-formed XML (libxml2), self-contained (no script, no external
  /// reference), and holds `svgs` inline SVG plots.
  func assertSelfContainedPage(_ path: String, svgs: Int, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    XCTAssertEqual(JUnitSchema.wellFormedProblems(xml: bytes, name: path), [], "\(path) is not well-formed", file: file, line: line)
    let text = String(decoding: bytes, as: UTF8.self)
    XCTAssertFalse(text.contains("<script"), file: file, line: line)
    XCTAssertFalse(text.contains(" src="), file: file, line: line)
    XCTAssertFalse(text.contains(" href="), file: file, line: line)
    XCTAssertFalse(text.contains("@import") || text.contains("url("), file: file, line: line)
    let external = text.components(separatedBy: "http").count - 1
    let namespaces = text.components(separatedBy: "http://www.w3.org/").count - 1
    XCTAssertEqual(external, namespaces, "only XML namespace names may name a URL", file: file, line: line)
    XCTAssertEqual(text.components(separatedBy: "<svg ").count - 1, svgs, file: file, line: line)
    return text
  }

  func testCompareCLITextReportsEveryStrategyAndExitsZero() throws {
    let r = try ptfrag(["compare", "Fixtures/samples/s390x-6.1-fork-exec.trace", "--kprobe-profile", "Fixtures/samples/s390x-6.1-fork-exec.kprobe_profile"])
    XCTAssertEqual(r.code, 0, r.out + r.err)
    for id in ["s390-6.1 (ran)", "s390-6.6", "s390-6.7", "s390-hugh-v2", "s390-gerald", "s390-ppc-style", "powerpc-hash64k", "powerpc-radix64k", "powerpc-8xx16k", "as replayed: s390-6.1", "ideal lower bound", "no sharing"] {
      XCTAssertTrue(r.out.contains("\n  \(id)"), "row \(id) missing:\n\(r.out)")
    }
    XCTAssertTrue(r.out.contains("note: s390-6.1 simulated equals the replay"), r.out)
    XCTAssertTrue(r.out.contains("2 inferred"), r.out)
    XCTAssertEqual(r.err, "", "no progress line when stderr is not a terminal")
  }

  func testCompareCLIJSONHasTheDocumentedFieldsPerStrategy() throws {
    let r = try ptfrag(["compare", "Fixtures/compare/reuse.trace", "--models", "s390-6.1,s390-6.7", "s390-ppc-style", "--format", "json"])
    XCTAssertEqual(r.code, 0, r.err)
    let doc = try json(r.out)
    XCTAssertEqual(doc["command"] as? String, "compare")
    XCTAssertEqual(doc["schemaVersion"] as? Int, 1)
    let input = try XCTUnwrap((doc["inputs"] as? [[String: Any]])?.first)
    XCTAssertEqual(input["model"] as? String, "s390-6.1")
    XCTAssertEqual(input["rcuGraceNs"] as? Int, 10_000_000)
    let workload = try XCTUnwrap(input["workload"] as? [String: Any])
    XCTAssertEqual(workload["tables"] as? Int, 3)
    let strategies = try XCTUnwrap(input["strategies"] as? [[String: Any]])
    XCTAssertEqual(strategies.map { $0["model"] as? String }, ["s390-6.1", "s390-6.7", "s390-ppc-style"])
    for s in strategies {
      for key in ["model", "peakPagesHeld", "meanPagesHeld", "peakTablesLive", "heldLiveRatio", "waste", "pending", "idealPages", "noSharingPages", "meanBytesHeld", "deltaVsRan", "selfCheck"] {
        XCTAssertNotNil(s[key], "\(s["model"] ?? "?") lacks \(key)")
      }
      let waste = try XCTUnwrap(s["waste"] as? [String: Any])
      for kind in ["reusableNow", "reusableLater", "stranded", "unknown"] {
        let k = try XCTUnwrap(waste[kind] as? [String: Any], kind)
        XCTAssertNotNil(k["peak"] as? Int)
        XCTAssertNotNil(k["mean"] as? Double)
        XCTAssertNotNil(k["meanBytes"] as? Double)
      }
    }
    // Hand-computed in CompareFixtureTests: 6.7 holds 120/90 pages on average, 6.1 80/90.
    // (JSONSerialization may read the last digit differently: compare to 1e-12.)
    XCTAssertEqual(try XCTUnwrap(strategies[1]["meanPagesHeld"] as? Double), 120.0 / 90.0, accuracy: 1e-12)
    XCTAssertEqual(try XCTUnwrap(strategies[0]["meanPagesHeld"] as? Double), 80.0 / 90.0, accuracy: 1e-12)
    XCTAssertEqual(strategies[0]["ran"] as? Bool, true)
    let delta = try XCTUnwrap(strategies[1]["deltaVsRan"] as? [String: Any])
    XCTAssertEqual(try XCTUnwrap(delta["meanBytesHeld"] as? Double), (120.0 - 80.0) / 90.0 * 4096, accuracy: 1e-9)
    let replayed = try XCTUnwrap(input["replayed"] as? [String: Any])
    XCTAssertEqual(try XCTUnwrap(replayed["meanPagesHeld"] as? Double), 80.0 / 90.0, accuracy: 1e-12)
  }

  func testCompareCLIExitCodes() throws {
    XCTAssertEqual(try ptfrag(["compare"]).code, 64, "no FILE")
    XCTAssertEqual(try ptfrag(["compare", "-"]).code, 64, "standard input cannot be read twice")
    let bad = try ptfrag(["compare", "Fixtures/compare/reuse.trace", "--models", "s390-9.9"])
    XCTAssertEqual(bad.code, 64)
    XCTAssertTrue(bad.err.contains("unknown strategy 's390-9.9'"), bad.err)
    XCTAssertEqual(try ptfrag(["compare", "Fixtures/compare/reuse.trace", "--rcu-grace", "-1"]).code, 64)
    let missing = try ptfrag(["compare", "Fixtures/compare/no-such.trace"])
    XCTAssertEqual(missing.code, 66)
    XCTAssertTrue(missing.err.contains("no-such.trace"), missing.err)
  }

  func testCompareCLIHTMLIsAWellFormedSelfContainedPage() throws {
    let d = try scratch()
    let html = d.appendingPathComponent("compare.html").path
    let r = try ptfrag(["compare", "Fixtures/samples/s390x-6.1-fork-exec.trace", "--html", html])
    XCTAssertEqual(r.code, 0, r.err)
    // Memory held (4 KiB strategies, zoomed too; 64 KiB; 16 KiB), tables live (and zoomed),
    // waste (4, 64, 16 KiB): 9 plots.
    let text = try assertSelfContainedPage(html, svgs: 9)
    XCTAssertTrue(text.contains("<tr class=\"hl\"><td>s390-6.1 (ran)</td>"), "the strategy that ran is highlighted")
    XCTAssertTrue(text.contains("KiB held (pages × page size)"), "the y axis names its unit")
    XCTAssertTrue(text.contains("time since the first event (s)"), "the x axis names its unit")
  }

  func testCompareCLIAnalyzeHTMLHasVerdictFindingsWasteAndPlots() throws {
    let d = try scratch()
    let html = d.appendingPathComponent("analyze.html").path
    let r = try ptfrag(["analyze", "Fixtures/rules/double-free.trace", "--html", html])
    XCTAssertEqual(r.code, 1, r.err)
    let text = try assertSelfContainedPage(html, svgs: 2)
    XCTAssertTrue(text.contains("class=\"verdict fail\""), "the verdict")
    XCTAssertTrue(text.contains("<td class=\"mono\">double-free</td>"), "the finding")
    XCTAssertTrue(text.contains("Waste statistics over"), "the waste table")
    XCTAssertTrue(text.contains("ideal lower bound"), "the bound")
  }

  func testCompareCLIHostileCommAndPathStayWellFormed() throws {
    // Comms with <, &, quotes and control characters end up in findings' histories.
    let d = try scratch()
    let html = d.appendingPathComponent("hostile.html").path
    let r = try ptfrag(["analyze", "Fixtures/junit/hostile.trace", "--html", html, "--model", "s390-6.1"])
    XCTAssertNotEqual(r.code, 74, r.err)
    _ = try assertSelfContainedPage(html, svgs: 2)
  }

  func testCompareCLIJUnitCarriesTheWasteStatistics() throws {
    let d = try scratch()
    let junit = d.appendingPathComponent("j.xml").path
    let r = try ptfrag(["analyze", "Fixtures/compare/reuse.trace", "--junit", junit])
    XCTAssertEqual(r.code, 0, r.err)
    let xml = try [UInt8](Data(contentsOf: URL(fileURLWithPath: junit)))
    let census = try XCTUnwrap(JUnitCensus(xml: xml))
    let suite = try XCTUnwrap(census.suites.first)
    // Hand-computed (WasteStatisticsTests): mean pages 80/90 = 0.889, reusable now 1/3.
    XCTAssertEqual(suite.property("waste.pagesHeld.peak"), "1")
    XCTAssertEqual(suite.property("waste.pagesHeld.mean"), "0.889")
    XCTAssertEqual(suite.property("waste.reusableNow.mean"), "0.333")
    XCTAssertEqual(suite.property("waste.stranded.mean"), "0.111")
    XCTAssertEqual(suite.property("waste.idealPages.mean"), "0.778")
    XCTAssertEqual(suite.property("waste.held-live-ratio"), "1.778")
  }
}
