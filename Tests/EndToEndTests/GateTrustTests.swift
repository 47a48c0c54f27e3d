import Foundation
#if canImport(FoundationXML)
  import FoundationXML
#endif
import PTFragKit
import PTFragReport
import XCTest

/// Issue 13: a CI gate that cannot go falsely green — cut captures, piped input, failed
/// writes, mismatched kprobe profiles, honest diagnoses. Runs the built executable (as a CI
/// job does) and, for the exhaustive cut test, the pipeline in-process.
final class GateTrustTests: XCTestCase {
  var root: String { TestPaths.root.path }
  var scratch: URL!

  override func setUpWithError() throws { scratch = try TestPaths.scratch() }
  override func tearDownWithError() throws {
    if let scratch { try? FileManager.default.removeItem(at: scratch) }
  }

  struct Run {
    var code: Int32
    var out: String
    var err: String
    var all: String { out + err }
  }

  /// Runs `ptfrag args` in the package root. Standard input: the file `stdin` (default
  /// /dev/null); standard output: the file `stdout` (default a scratch file, read back).
  /// Killed after 120 s (a hang fails the test).
  func ptfrag(
    _ args: [String], stdin: String = "/dev/null", stdout: String? = nil, shell: Bool = false,
    file: StaticString = #filePath, line: UInt = #line
  ) throws -> Run {
    let p = Process()
    p.executableURL = shell ? URL(fileURLWithPath: "/bin/sh") : PTFragProcess.executable
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: root)
    let id = UUID().uuidString
    let outURL = URL(fileURLWithPath: stdout ?? scratch.appendingPathComponent("\(id).out").path)
    let errURL = scratch.appendingPathComponent("\(id).err")
    if stdout == nil { FileManager.default.createFile(atPath: outURL.path, contents: nil) }
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)
    let inp = try XCTUnwrap(FileHandle(forReadingAtPath: stdin), "cannot open \(stdin)")
    p.standardOutput = out
    p.standardError = err
    p.standardInput = inp
    let done = DispatchSemaphore(value: 0)
    p.terminationHandler = { _ in done.signal() }
    try p.run()
    if done.wait(timeout: .now() + 120) == .timedOut {
      kill(p.processIdentifier, SIGKILL)
      done.wait()
      XCTFail("ptfrag \(args.joined(separator: " ")): hang", file: file, line: line)
    }
    try out.close()
    try err.close()
    try inp.close()
    XCTAssertNotEqual(p.terminationReason, .uncaughtSignal, "ptfrag \(args) died of a signal", file: file, line: line)
    let o = stdout == nil ? String(decoding: try Data(contentsOf: outURL), as: UTF8.self) : ""
    return Run(
      code: p.terminationStatus, out: o, err: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
  }

  func json(_ s: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any], "not JSON:\n\(s.prefix(2000))",
      file: file, line: line)
  }
  func firstInput(_ doc: [String: Any]) throws -> [String: Any] {
    try XCTUnwrap((doc["inputs"] as? [[String: Any]])?.first)
  }
  /// Error findings in a JSON input report.
  func errorFindings(_ input: [String: Any]) -> [String] {
    ((input["findings"] as? [[String: Any]]) ?? []).filter { $0["severity"] as? String == "error" }
      .map { "\($0["rule"] ?? "?"):\($0["line"] ?? "?")" }
  }

  func write(_ name: String, _ bytes: [UInt8]) throws -> String {
    let url = scratch.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url.path
  }
  func bytes(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path.hasPrefix("/") ? path : root + "/" + path)))
  }

  let sample61 = "Fixtures/samples/s390x-6.1-fork-exec.trace"
  let profile61 = "Fixtures/samples/s390x-6.1-fork-exec.kprobe_profile"
  let sample612 = "Fixtures/samples/s390x-6.12-fork-exec.trace"
  let profile612 = "Fixtures/samples/s390x-6.12-fork-exec.kprobe_profile"
  let cleanArgs = ["--model", "s390-6.1", "--kprobe-profile", "Fixtures/rules/zero-misses.kprobe_profile"]

  // MARK: 1. cut captures

  /// `head -c N` of the 6.1 sample with its profile, N as in the issue: inside `mm=0x20c2`
  /// (40000), inside `table=0x388f8` (88000, a false free-unknown before), and two more.
  func testSampleCutInsideItsLastLineIsIncompleteInEveryFormat() throws {
    let whole = try bytes(sample61)
    for n in [30000, 40000, 50000, 88000] {
      XCTAssertNotEqual(whole[n - 1], 0x0A, "the cut at \(n) must fall inside a line")
      let cutLine = whole[0..<n].filter { $0 == 0x0A }.count + 1
      let path = try write("head-\(n).trace", Array(whole[0..<n]))
      let junit = scratch.appendingPathComponent("head-\(n).xml").path
      let html = scratch.appendingPathComponent("head-\(n).html").path
      let text = try ptfrag(["analyze", path, "--kprobe-profile", profile61, "--junit", junit, "--html", html])
      XCTAssertEqual(text.code, 65, "cut at \(n)\n" + text.all)
      XCTAssertTrue(text.out.contains("verdict: INCOMPLETE"), text.out)
      XCTAssertTrue(text.out.contains("incomplete: \(path):\(cutLine): the capture ends inside this record"), text.out)
      XCTAssertFalse(text.out.contains(": error ["), "no error finding from a cut line\n" + text.out)
      XCTAssertFalse(text.out.contains("free-unknown"), text.out)
      // JSON: complete false, the cut line, no error finding.
      let js = try ptfrag(["analyze", path, "--kprobe-profile", profile61, "--format", "json"])
      XCTAssertEqual(js.code, 65)
      let input = try firstInput(try json(js.out))
      XCTAssertEqual(input["complete"] as? Bool, false)
      XCTAssertEqual(input["cutLine"] as? Int, cutLine)
      XCTAssertEqual(input["verdict"] as? String, "incomplete")
      XCTAssertEqual(errorFindings(input), [])
      // JUnit: the read case fails and says why.
      let xml = try String(contentsOfFile: junit, encoding: .utf8)
      XCTAssertTrue(xml.contains("type=\"malformed-input\""), xml)
      XCTAssertTrue(xml.contains("\(path):\(cutLine): the capture ends inside this record"), xml)
      // HTML: the verdict and the reason.
      let page = try String(contentsOfFile: html, encoding: .utf8)
      XCTAssertTrue(page.contains("INCOMPLETE"), "HTML verdict")
      XCTAssertTrue(page.contains("incomplete: \(path):\(cutLine): the capture ends inside this record"), "HTML reason")
    }
  }

  /// Every prefix of a small clean capture (in-process, the same pipeline the executable runs):
  /// one that ends inside a line is incomplete (65, `complete: false`); one that ends at a line
  /// boundary is a shorter capture. Neither ever has an error finding.
  func testCutAtEveryByteOffsetNeverPassesAndNeverAccuses() throws {
    let whole = try bytes("Fixtures/rules/clean.trace")
    XCTAssertEqual(whole.last, 0x0A)
    let path = scratch.appendingPathComponent("prefix.trace").path
    var insideLine = 0
    for model in ["s390-6.1", "auto"] {
      for n in 0..<whole.count {
        try Data(whole[0..<n]).write(to: URL(fileURLWithPath: path))
        let report = try Analyzer.analyze(
          path: path,
          options: AnalyzeOptions(
            modelID: model, profilePath: root + "/Fixtures/rules/zero-misses.kprobe_profile", pipelined: false))
        let run = RunReport(inputs: [report], failOn: .error, toolVersion: ptfragVersion)
        let input = try firstInput(try json(JSONReport.render(run)))
        XCTAssertEqual(errorFindings(input), [], "\(model), prefix of \(n) bytes")
        if n > 0 && whole[n - 1] != 0x0A {
          insideLine += 1
          // Incomplete (65); under auto, a prefix too short to choose a model is refused (64).
          let expected: Set<PTFragReport.ExitCode> = model == "auto" ? [.malformedInput, .usage] : [.malformedInput]
          XCTAssertTrue(expected.contains(run.exitCode), "\(model), prefix of \(n) bytes: \(run.exitCode)")
          XCTAssertEqual(input["complete"] as? Bool, false, "\(model), prefix of \(n) bytes")
        } else if run.exitCode == .clean {
          XCTAssertEqual(input["complete"] as? Bool, true)
        }
        XCTAssertFalse(
          run.exitCode == .clean && input["complete"] as? Bool != true, "\(model), prefix of \(n) bytes")
      }
    }
    XCTAssertGreaterThan(insideLine, whole.count)
  }

  /// A probe line that lost a value (`page_table_alloc_ret` without `table=`) is a damaged
  /// event: what it leaves open is inconclusive, not a definite alloc-without-return.
  func testLineWithoutItsValueIsADamagedEventNotAnError() throws {
    var lines = try String(contentsOfFile: root + "/Fixtures/rules/clean.trace", encoding: .utf8)
      .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let i = try XCTUnwrap(lines.firstIndex { $0.contains("page_table_alloc_ret:") })
    lines[i] = try XCTUnwrap(lines[i].components(separatedBy: " table=").first)
    let path = try write("no-table.trace", Array(lines.joined(separator: "\n").utf8))
    let r = try ptfrag(["analyze", path, "--format", "json"] + cleanArgs)
    XCTAssertEqual(r.code, 2, r.all)
    let input = try firstInput(try json(r.out))
    XCTAssertEqual(errorFindings(input), [])
    let inc = try XCTUnwrap(input["inconclusive"] as? [[String: Any]])
    XCTAssertTrue(inc.contains { $0["wouldBeRule"] as? String == "alloc-without-return" }, "\(inc)")
    XCTAssertTrue((input["lossReason"] as? String ?? "").contains("lack a value"), "\(input["lossReason"] ?? "nil")")
  }

  // MARK: 2. piped input without '-'

  /// `ptfrag analyze --junit x.xml < capture` and `cat capture | ptfrag analyze`: the capture
  /// on standard input is analyzed (a failing one fails), never the bundled sample.
  func testStandardInputIsReadWithoutDash() throws {
    let failing = "Fixtures/rules/double-free.trace"
    let junit = scratch.appendingPathComponent("stdin.xml").path
    let r = try ptfrag(["analyze", "--junit", junit] + cleanArgs, stdin: root + "/" + failing)
    XCTAssertEqual(r.code, 1, r.all)
    XCTAssertTrue(r.out.hasPrefix("== -\n"), r.out)
    XCTAssertTrue(r.out.contains("-:14: error [double-free]"), r.out)
    XCTAssertFalse(r.all.contains("bundled"), r.all)
    XCTAssertTrue(r.err.contains("reading the capture from standard input"), r.err)
    let xml = try String(contentsOfFile: junit, encoding: .utf8)
    XCTAssertTrue(xml.contains("<failure type=\"double-free\""), xml)
    // Through a pipe, as `trace-cmd report | ptfrag analyze` gives it.
    let piped = try ptfrag(
      ["-c", "cat '\(failing)' | '\(PTFragProcess.executable.path)' analyze --format json " + cleanArgs.joined(separator: " ")],
      shell: true)
    XCTAssertEqual(piped.code, 1, piped.all)
    let input = try firstInput(try json(piped.out))
    XCTAssertEqual(input["path"] as? String, "-")
    XCTAssertEqual(errorFindings(input), ["double-free:14"])
    // Empty standard input (/dev/null): nothing was checked, never clean.
    let empty = try ptfrag(["analyze"] + cleanArgs)
    XCTAssertEqual(empty.code, 2, empty.all)
    XCTAssertTrue(empty.out.contains("no page-table events"), empty.out)
  }

  // MARK: 3. failed writes, atomic files

  /// Each output to /dev/full (no space left) is exit 74 with a message, whatever the
  /// verdict: standard output as text and JSON, --json, --junit, --html, --write-baseline,
  /// and compare's outputs.
  func testEveryOutputToAFullDeviceIsExit74() throws {
    let analyze = ["analyze", sample61, "--kprobe-profile", profile61]
    let clean = try ptfrag(analyze)
    XCTAssertEqual(clean.code, 0, "the sample is clean; 74 below is the write's doing\n" + clean.all)
    let cases: [(args: [String], stdout: String?)] = [
      (analyze, "/dev/full"),
      (analyze + ["--format", "json"], "/dev/full"),
      (analyze + ["--json", "/dev/full"], nil),
      (analyze + ["--junit", "/dev/full"], nil),
      (analyze + ["--html", "/dev/full"], nil),
      (analyze + ["--write-baseline", "/dev/full"], nil),
      (["compare", sample61, "--kprobe-profile", profile61, "--models", "s390-6.1"], "/dev/full"),
      (["compare", sample61, "--kprobe-profile", profile61, "--models", "s390-6.1", "--format", "json"], "/dev/full"),
      (["compare", sample61, "--kprobe-profile", profile61, "--models", "s390-6.1", "--json", "/dev/full"], nil),
      (["compare", sample61, "--kprobe-profile", profile61, "--models", "s390-6.1", "--html", "/dev/full"], nil),
      (["models"], "/dev/full"),
    ]
    for c in cases {
      let r = try ptfrag(c.args, stdout: c.stdout)
      XCTAssertEqual(r.code, 74, "\(c.args) > \(c.stdout ?? "scratch")\n" + r.err)
      XCTAssertTrue(r.err.contains("No space left on device"), "\(c.args): \(r.err)")
    }
  }

  /// Report files are replaced, never rewritten in place: a hard link to the old JUnit file
  /// keeps the old bytes (an in-place rewrite would have truncated them), and no temporary
  /// file is left beside it.
  func testReportFilesAreReplacedAtomically() throws {
    let dir = scratch.appendingPathComponent("reports")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let old = Array("<testsuites name=\"old\"/>\n".utf8)
    for name in ["junit.xml", "report.json", "page.html", "baseline.json"] {
      let path = dir.appendingPathComponent(name).path
      try Data(old).write(to: URL(fileURLWithPath: path))
      try FileManager.default.linkItem(atPath: path, toPath: path + ".link")
    }
    let r = try ptfrag(
      ["analyze", sample61, "--kprobe-profile", profile61, "--junit", dir.path + "/junit.xml",
       "--json", dir.path + "/report.json", "--html", dir.path + "/page.html",
       "--write-baseline", dir.path + "/baseline.json"])
    XCTAssertEqual(r.code, 0, r.all)
    for name in ["junit.xml", "report.json", "page.html", "baseline.json"] {
      let path = dir.appendingPathComponent(name).path
      XCTAssertEqual(try bytes(path + ".link"), old, "\(name) was rewritten in place")
      XCTAssertNotEqual(try bytes(path), old, "\(name) was not written")
    }
    let junit = try String(contentsOfFile: dir.path + "/junit.xml", encoding: .utf8)
    XCTAssertTrue(junit.contains("<testsuite name=\"\(sample61) [s390-6.1]\""), junit)
    let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
    XCTAssertEqual(left, [], "temporary files left behind")
  }

  /// A run killed while it writes the JUnit file (SIGXFSZ at a 2 KiB file-size limit, after
  /// part of the file is out) leaves the old file whole: a CI system never reads a truncated
  /// file as "0 tests".
  func testRunKilledWhileWritingLeavesTheOldJUnitFile() throws {
    let junit = scratch.appendingPathComponent("gate.xml").path
    let old = Array(
      "<?xml version=\"1.0\"?>\n<testsuites name=\"ptfrag\" tests=\"1\" failures=\"1\"><testsuite name=\"previous run\" tests=\"1\" failures=\"1\"><testcase name=\"read\"><failure/></testcase></testsuite></testsuites>\n".utf8)
    try Data(old).write(to: URL(fileURLWithPath: junit))
    let cmd =
      "ulimit -f 2; exec '\(PTFragProcess.executable.path)' analyze '\(sample61)' --kprobe-profile '\(profile61)' --junit '\(junit)' >/dev/null"
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = ["-c", cmd]
    p.currentDirectoryURL = URL(fileURLWithPath: root)
    try p.run()
    p.waitUntilExit()
    XCTAssertEqual(p.terminationReason, .uncaughtSignal, "the run must have been killed while writing")
    XCTAssertEqual(p.terminationStatus, SIGXFSZ)
    XCTAssertEqual(try bytes(junit), old, "the old JUnit file must survive a killed run")
  }
}
