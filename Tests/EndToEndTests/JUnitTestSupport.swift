import Foundation
import PTFragJUnit
import XCTest

/// Where things are, relative to the package root (found from this file's path).
enum TestPaths {
  /// <root>/Tests/EndToEndTests/JUnitTestSupport.swift → <root>
  static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  static func fixture(_ name: String) -> String { root.appendingPathComponent("Fixtures/junit/\(name)").path }
  static func sample(_ name: String) -> String { root.appendingPathComponent("Fixtures/samples/\(name)").path }

  /// The JUnit XSD: the copy in Fixtures/junit, else ../shared/junit beside the package.
  static var xsd: String {
    let candidates = [
      root.appendingPathComponent("Fixtures/junit/junit-10.xsd").path,
      root.deletingLastPathComponent().appendingPathComponent("shared/junit/junit-10.xsd").path,
    ]
    return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
  }

  /// Where the JUnit files the tests produce are kept for `.ci/run`'s second opinion
  /// (`Tests/ci/check-junit.py`): `$PTFRAG_JUNIT_SAMPLES`, else `<root>/.build/junit-samples`.
  static var samplesDir: URL {
    if let d = ProcessInfo.processInfo.environment["PTFRAG_JUNIT_SAMPLES"], !d.isEmpty {
      return URL(fileURLWithPath: d)
    }
    return root.appendingPathComponent(".build/junit-samples")
  }

  /// A fresh scratch directory.
  static func scratch() throws -> URL {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("ptfrag-junit-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    return d
  }
}

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

/// Runs the built `ptfrag` executable.
enum PTFragProcess {
  struct Result {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  /// The executable beside the test bundle (same build directory), else `.build/debug/ptfrag`.
  static var executable: URL {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var dir = exe.deletingLastPathComponent()
    // macOS-style bundles: <build>/X.xctest/Contents/MacOS/X
    while dir.pathExtension == "xctest" || dir.lastPathComponent == "MacOS" || dir.lastPathComponent == "Contents" {
      dir = dir.deletingLastPathComponent()
    }
    let candidates = [
      dir.appendingPathComponent("ptfrag"), TestPaths.root.appendingPathComponent(".build/debug/ptfrag"),
    ]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
  }

  static func run(_ arguments: [String], in directory: URL? = nil) throws -> Result {
    let scratch = try TestPaths.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let outURL = scratch.appendingPathComponent("stdout")
    let errURL = scratch.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)
    let p = Process()
    p.executableURL = executable
    p.arguments = arguments
    if let directory { p.currentDirectoryURL = directory }
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    try out.close()
    try err.close()
    return Result(
      status: p.terminationStatus,
      stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
      stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
  }
}
