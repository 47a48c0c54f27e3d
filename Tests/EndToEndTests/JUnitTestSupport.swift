import Foundation
import PTFragJUnit
import PTFragJUnitCheck
import PTFragTestSupport
import XCTest

/// The counts a JUnit file must hold.
struct ExpectedCounts: Equatable, CustomStringConvertible {
  var suites: Int
  var tests: Int
  var failures: Int
  var errors: Int
  var skipped: Int
  var description: String {
    "suites \(suites), tests \(tests), failures \(failures), errors \(errors), skipped \(skipped)"
  }
}

enum JUnitCheck {
  /// The self-check every produced JUnit file goes through: valid against the XSD (libxml2's
  /// schema API), the counts each suite declares equal the cases it holds, the totals equal
  /// `expected`; then the file is kept (with its expectation) for Tests/ci/check-junit.py.
  /// Returns the census for further assertions.
  @discardableResult
  static func check(
    _ xml: [UInt8], named name: String, expect expected: ExpectedCounts,
    file: StaticString = #filePath, line: UInt = #line
  ) throws -> JUnitCensus {
    let problems = try JUnitSchema.validate(xml: xml, schemaPath: TestPaths.xsd)
    XCTAssertEqual(problems, [], "\(name) is not valid against \(TestPaths.xsd)", file: file, line: line)
    let census = try XCTUnwrap(JUnitCensus(xml: xml), "\(name) is not a JUnit document", file: file, line: line)
    for s in census.suites {
      let a = s.attributes
      XCTAssertEqual(a["tests"], String(s.cases.count), "\(name): tests of \(a["name"] ?? "?")", file: file, line: line)
      XCTAssertEqual(a["failures"], String(s.count("failure")), "\(name): failures", file: file, line: line)
      XCTAssertEqual(a["errors"], String(s.count("error")), "\(name): errors", file: file, line: line)
      XCTAssertEqual(a["skipped"], String(s.count("skipped")), "\(name): skipped", file: file, line: line)
      XCTAssertNotNil(a["time"].flatMap(threeDecimals), "\(name): suite time \(a["time"] ?? "nil")", file: file, line: line)
      XCTAssertNotNil(a["timestamp"], file: file, line: line)
      XCTAssertNotNil(a["hostname"], file: file, line: line)
      for c in s.cases {
        XCTAssertNotNil(c.time.flatMap(threeDecimals), "\(name): time of \(c.name)", file: file, line: line)
      }
    }
    let r = census.rootAttributes
    XCTAssertEqual(r["tests"], String(census.tests), "\(name): total tests", file: file, line: line)
    XCTAssertEqual(r["failures"], String(census.count("failure")), "\(name): total failures", file: file, line: line)
    XCTAssertEqual(r["errors"], String(census.count("error")), "\(name): total errors", file: file, line: line)
    let got = ExpectedCounts(
      suites: census.suites.count, tests: census.tests, failures: census.count("failure"),
      errors: census.count("error"), skipped: census.count("skipped"))
    XCTAssertEqual(got, expected, "\(name): counts", file: file, line: line)
    try keep(xml, named: name, expected: expected)
    return census
  }

  /// `12.345`: seconds with exactly three decimals.
  static func threeDecimals(_ s: String) -> Bool? {
    let parts = s.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 2, !parts[0].isEmpty, parts[1].count == 3,
      (parts[0] + parts[1]).allSatisfy({ $0.isASCII && $0.isNumber })
    else { return nil }
    return true
  }

  static func keep(_ xml: [UInt8], named name: String, expected: ExpectedCounts) throws {
    let dir = TestPaths.samplesDir
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try Data(xml).write(to: dir.appendingPathComponent("\(name).xml"))
    let e = expected
    let json =
      "{\"suites\": \(e.suites), \"tests\": \(e.tests), \"failures\": \(e.failures), \"errors\": \(e.errors), \"skipped\": \(e.skipped)}\n"
    try Data(json.utf8).write(to: dir.appendingPathComponent("\(name).expected.json"))
  }
}
