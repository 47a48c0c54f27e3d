import Foundation
#if canImport(FoundationXML)
  import FoundationXML
#endif
import PTFragKit
import PTFragReport
import PTFragTestSupport
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
    if stdout == nil { _ = FileManager.default.createFile(atPath: outURL.path, contents: nil) }
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
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

  // MARK: A. not a capture, an empty capture

  /// Lines, none of them a probe line (`hello world`, README.md, /bin/ls): not a capture,
  /// exit 65 with the reason, on stdout, stderr and in JSON; no model is named as detected.
  func testInputWithoutAProbeLineIsNotACapture() throws {
    let hello = try write("hello.txt", Array("hello world\nfoo\n".utf8))
    for path in [hello, "README.md", "/bin/ls"] {
      let r = try ptfrag(["analyze", path])
      XCTAssertEqual(r.code, 65, "\(path)\n" + r.all)
      XCTAssertTrue(r.out.contains("\(path): not a capture: none of its"), r.out)
      XCTAssertTrue(r.err.contains("\(path): not a capture"), "stderr: " + r.err)
      XCTAssertFalse(r.all.contains("auto-detected"), r.all)
      XCTAssertFalse(r.all.contains("cut while being written"), r.all)
      XCTAssertFalse(r.all.contains("lost events"), r.all)
      let js = try ptfrag(["analyze", path, "--format", "json"])
      XCTAssertEqual(js.code, 65)
      let input = try firstInput(try json(js.out))
      XCTAssertEqual(input["verdict"] as? String, "error")
      XCTAssertEqual(input["complete"] as? Bool, false)
      XCTAssertTrue(input["model"] is NSNull, "\(input["model"] ?? "nil")")
      let err = try XCTUnwrap(input["error"] as? [String: Any])
      XCTAssertEqual(err["exitCode"] as? Int, 65)
      XCTAssertTrue((err["message"] as? String ?? "").contains("not a capture"))
      XCTAssertEqual(input["modelSelection"] as? String, "auto: not a capture, no model chosen")
      // JUnit: an error case, never "0 tests" or a pass.
      let junit = scratch.appendingPathComponent("nac.xml").path
      XCTAssertEqual(try ptfrag(["analyze", path, "--junit", junit]).code, 65)
      let xml = try String(contentsOfFile: junit, encoding: .utf8)
      XCTAssertTrue(xml.contains("errors=\"1\""), xml)
      XCTAssertTrue(xml.contains("not a capture"), xml)
    }
    // With a model given, the same.
    XCTAssertEqual(try ptfrag(["analyze", hello] + cleanArgs).code, 65)
  }

  /// An empty file, or a capture of its header only (a probe setup that recorded nothing):
  /// exit 2, "nothing was replayed", no model named as detected; never clean.
  func testEmptyCaptureIsNothingReplayedNotAPass() throws {
    let empty = try write("empty.trace", [])
    let header = try write(
      "header.trace", Array("# tracer: nop\n#\n# entries-in-buffer/entries-written: 0/0   #P:2\n#\n".utf8))
    for path in [empty, header] {
      let r = try ptfrag(["analyze", path])
      XCTAssertEqual(r.code, 2, "\(path)\n" + r.all)
      XCTAssertTrue(r.out.contains("verdict: INCONCLUSIVE"), r.out)
      XCTAssertTrue(r.out.contains("nothing was replayed"), r.out)
      XCTAssertTrue(r.out.contains("model: none — auto: nothing to detect"), r.out)
      XCTAssertFalse(r.out.contains("auto-detected"), r.out)
      let js = try ptfrag(["analyze", path, "--format", "json"])
      XCTAssertEqual(js.code, 2)
      let input = try firstInput(try json(js.out))
      XCTAssertEqual(input["verdict"] as? String, "inconclusive")
      XCTAssertTrue(input["model"] is NSNull)
      XCTAssertFalse((input["modelSelection"] as? String ?? "").contains("auto-detected"))
      // A model given: still nothing replayed, exit 2.
      let given = try ptfrag(["analyze", path] + cleanArgs)
      XCTAssertEqual(given.code, 2, given.all)
      XCTAssertTrue(given.out.contains("model: s390-6.1"), given.out)
      XCTAssertTrue(given.out.contains("nothing was replayed"), given.out)
    }
  }

  // MARK: B. compare of nothing, of a non-capture, of a cut capture

  /// compare never says "the workload reproduces the capture" of an input analyze would not
  /// pass: an empty file is exit 2 (nothing to compare), README.md 65 (not a capture), a cut
  /// capture 65 (incomplete); text, JSON and stderr say so.
  func testCompareOfNothingOrNotACaptureOrACutCaptureIsNotExit0() throws {
    let whole = try bytes(sample61)
    let cut = try write("cut.trace", Array(whole[0..<40000]))
    let empty = try write("empty.trace", [])
    let cases: [(path: String, code: Int32, says: String)] = [
      (empty, 2, "nothing to compare: the capture holds no page-table events"),
      ("README.md", 65, "README.md: not a capture"),
      (cut, 65, "incomplete: \(cut):"),
    ]
    for c in cases {
      let args = ["compare", c.path, "--models", "s390-6.1,s390-6.7"]
      let t = try ptfrag(args)
      XCTAssertEqual(t.code, c.code, "\(c.path)\n" + t.all)
      XCTAssertTrue(t.out.contains(c.says), t.out)
      XCTAssertTrue(t.err.contains(c.says), t.err)
      XCTAssertFalse(t.out.contains("reproduces the capture"), t.out)
      let j = try ptfrag(args + ["--format", "json"])
      XCTAssertEqual(j.code, c.code)
      let doc = try json(j.out)
      XCTAssertEqual(doc["exitCode"] as? Int, Int(c.code))
      let input = try firstInput(doc)
      XCTAssertEqual(input["compared"] as? Bool, false)
      XCTAssertEqual(input["exitCode"] as? Int, Int(c.code))
      XCTAssertNil(input["strategies"])
      XCTAssertTrue(j.out.contains(c.says), j.out)
      let html = scratch.appendingPathComponent("nc.html").path
      XCTAssertEqual(try ptfrag(args + ["--html", html]).code, c.code)
      let page = try String(contentsOfFile: html, encoding: .utf8)
      XCTAssertTrue(page.contains(c.says), "HTML says why")
      XCTAssertFalse(page.contains("reproduces the capture"), "HTML")
    }
    // The whole sample is still compared, exit 0.
    let ok = try ptfrag(["compare", sample61, "--kprobe-profile", profile61, "--models", "s390-6.1", "--format", "json"])
    XCTAssertEqual(ok.code, 0, ok.err)
    XCTAssertEqual(try firstInput(try json(ok.out))["compared"] as? Bool, true)
  }

  // MARK: C. a missing file

  func testMissingFileSaysSoOnStandardError() throws {
    let r = try ptfrag(["analyze", "/nonexist"])
    XCTAssertEqual(r.code, 66)
    XCTAssertTrue(r.out.contains("/nonexist: no such file"), r.out)
    XCTAssertTrue(r.err.contains("ptfrag: /nonexist: no such file"), "stderr: " + r.err)
    let c = try ptfrag(["compare", "/nonexist"])
    XCTAssertEqual(c.code, 66)
    XCTAssertTrue(c.err.contains("/nonexist: no such file"), "stderr: " + c.err)
  }

  // MARK: D. a baseline that is not one

  /// `--baseline README.md` (and other files that are not baselines): exit 65, one line
  /// naming file:line, no DecodingError dump.
  func testBaselineThatIsNotABaselineIsACleanMessage() throws {
    let notObject = try write("list.json", Array("\n\n[1, 2]\n".utf8))
    let noFindings = try write("nofindings.json", Array("{\"schemaVersion\": 1}\n".utf8))
    let badType = try write("badtype.json", Array("{\"schemaVersion\": \"one\", \"findings\": []}\n".utf8))
    let cases: [(path: String, line: Int, why: String)] = [
      ("README.md", 1, "it does not start with '{'"),
      (notObject, 3, "it does not start with '{'"),
      (noFindings, 1, "no .findings field"),
      (badType, 1, ".schemaVersion is not an integer"),
    ]
    for c in cases {
      let r = try ptfrag(["analyze", sample61, "--kprobe-profile", profile61, "--baseline", c.path])
      XCTAssertEqual(r.code, 65, r.all)
      XCTAssertEqual(r.out, "", "nothing is analyzed with a bad baseline")
      XCTAssertTrue(r.err.hasPrefix("ptfrag: baseline: \(c.path):\(c.line): not a ptfrag baseline"), r.err)
      XCTAssertTrue(r.err.contains(c.why), r.err)
      for leak in ["DecodingError", "Debug description", "CodingKeys", "codingPath"] {
        XCTAssertFalse(r.err.contains(leak), r.err)
      }
      XCTAssertEqual(r.err.split(separator: "\n").count, 1, r.err)
    }
  }

  // MARK: E. tlb-exec-missing keeps who queued the table

  func testTLBExecMissingNamesTheTaskThatQueuedTheTable() throws {
    let r = try ptfrag(
      ["analyze", "Fixtures/rules/tlb-exec-missing.trace", "--format", "json"] + cleanArgs)
    XCTAssertEqual(r.code, 1, r.all)
    let input = try firstInput(try json(r.out))
    let f = try XCTUnwrap(
      (input["findings"] as? [[String: Any]])?.first { $0["rule"] as? String == "tlb-exec-missing" }, r.out)
    XCTAssertEqual(f["line"] as? Int, 14)
    XCTAssertEqual(f["pid"] as? Int, 9)
    XCTAssertEqual(f["comm"] as? String, "sh")
    XCTAssertEqual(f["cpu"] as? Int, 0)
    let t = try ptfrag(["analyze", "Fixtures/rules/tlb-exec-missing.trace"] + cleanArgs)
    XCTAssertTrue(t.out.contains("cpu 0 pid 9 comm sh"), t.out)
  }

  // MARK: F. the verdict line counts what it names

  /// 230 free-unknown errors, 200 kept in detail: the verdict line counts all 230 as errors,
  /// and its counts add up to the findings in all.
  func testVerdictLineCountsEveryFindingBySeverity() throws {
    var lines = [
      "# tracer: nop",
      "            init-1       [001] .....   100.000013: crst_table_alloc: (crst_table_alloc+0x0/0x70) mm=0x20c0800",
      "            init-1       [001] .....   100.000026: crst_table_alloc_ret: (mm_init+0x166/0x3a8 <- crst_table_alloc) table=0x3820000",
    ]
    for k in 0..<230 {
      let us = 100 + k
      lines.append(
        "              sh-9       [000] .....   100.000\(us): page_table_free: (page_table_free+0x0/0x1a0) mm=0x20c0800 table=0x\(String(0x37b9400 + k * 0x1000, radix: 16))")
    }
    let path = try write("many.trace", Array((lines.joined(separator: "\n") + "\n").utf8))
    let r = try ptfrag(["analyze", path] + cleanArgs)
    XCTAssertEqual(r.code, 1, r.all)
    let verdict = try XCTUnwrap(r.out.split(separator: "\n").first { $0.hasPrefix("verdict:") })
    XCTAssertTrue(
      verdict.contains("230 error, 0 warning, 0 info of 230 findings (200 kept in detail)"), String(verdict))
    XCTAssertTrue(r.out.contains("free-unknown: 230"), r.out)
  }

  // MARK: H. the waste ratio is named for what it is

  /// The ratio printed is mean pages held / (mean tables live / tables per page), and the
  /// text says so; JSON's `wasteRatio` is that number (not held over the mean of ⌈live/2⌉).
  func testWasteRatioIsMeanHeldOverMeanLivePerSlots() throws {
    let r = try ptfrag(["analyze", sample61, "--kprobe-profile", profile61])
    XCTAssertEqual(r.code, 0, r.all)
    let line = try XCTUnwrap(r.out.split(separator: "\n").first { $0.contains("occupancy: pages held") }, r.out)
    XCTAssertTrue(line.contains("= mean pages held / (mean tables live / 2 tables per page)"), String(line))
    XCTAssertFalse(r.out.contains("mean ideal pages"), r.out)
    func number(after label: String) throws -> Double {
      let rest = try XCTUnwrap(line.range(of: label).map { line[$0.upperBound...] }, "\(label) in \(line)")
      return try XCTUnwrap(Double(String(rest.prefix { $0.isNumber || $0 == "." })))
    }
    let held = try number(after: "pages held peak 14, mean ")
    let live = try number(after: "tables live peak 9, mean ")
    let ratio = try number(after: "waste ratio ")
    XCTAssertEqual(ratio, held / (live / 2), accuracy: 0.002, String(line))
    let js = try ptfrag(["analyze", sample61, "--kprobe-profile", profile61, "--format", "json"])
    let occ = try XCTUnwrap(((try firstInput(try json(js.out)))["stats"] as? [String: Any])?["occupancy"] as? [String: Any])
    let w = try XCTUnwrap(occ["wasteRatio"] as? Double)
    let mh = try XCTUnwrap(occ["meanPagesHeld"] as? Double)
    let ml = try XCTUnwrap(occ["meanTablesLive"] as? Double)
    let spp = try XCTUnwrap(occ["slotsPerPage"] as? Double)
    XCTAssertEqual(w, mh / (ml / spp), accuracy: 1e-9)
    XCTAssertEqual(occ["heldLiveRatio"] as? Double, w)
    // The HTML page names it the same way.
    let html = scratch.appendingPathComponent("w.html").path
    _ = try ptfrag(["analyze", sample61, "--kprobe-profile", profile61, "--html", html])
    let page = try String(contentsOfFile: html, encoding: .utf8)
    XCTAssertTrue(page.contains("= mean pages held / (mean live tables / 2)"), "HTML")
    // And --help.
    let help = try ptfrag(["analyze", "--help"])
    let words = help.out.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
    XCTAssertTrue(words.contains("mean pages held / (mean live tables / tables per page)"), help.out)
  }

  /// The text report's waste table has a plain heading (issue 12 item 5: the result cites no
  /// section of a doc), the line the README's excerpt shows.
  func testWasteHeadingIsPlainAndTheTextCitesNoDocSection() throws {
    let r = try ptfrag(["analyze", sample61, "--kprobe-profile", profile61])
    XCTAssertEqual(r.code, 0, r.all)
    let lines = r.out.split(separator: "\n")
    XCTAssertTrue(
      lines.contains("  waste: 2 slots of 2 KiB per 4 KiB page; peak and time-weighted mean over 2.259 s"), r.out)
    XCTAssertFalse(r.out.contains("§"), r.out)
    XCTAssertFalse(r.out.contains("kernel-models.md"), r.out)
    let readme = try String(contentsOfFile: root + "/README.md", encoding: .utf8)
    XCTAssertTrue(readme.contains("\n  waste: 2 slots of 2 KiB per 4 KiB page; peak and time-weighted mean over 2.259 s\n"))
  }

  // MARK: I. the README's CI snippet

  /// The README's CI step, run as written (the release binary, captures/ and ci/ swapped for
  /// this build, each bundled sample with its profile, an empty baseline): its
  /// `--max-waste-ratio` passes both real samples (exit 0), and an inconclusive run (an empty
  /// capture, exit 2) fails the step unless PTFRAG_ALLOW_INCONCLUSIVE=1.
  func testREADMECISnippetPassesTheSamplesAndStopsOnInconclusive() throws {
    let readme = try String(contentsOfFile: root + "/README.md", encoding: .utf8)
    let ci = try XCTUnwrap(readme.range(of: "\n## CI\n"), "README has a CI section")
    let rest = readme[ci.upperBound...]
    let start = try XCTUnwrap(rest.range(of: "mkdir -p reports\n"))
    let end = try XCTUnwrap(rest.range(of: "esac\n", range: start.lowerBound..<rest.endIndex))
    let snippet = String(rest[start.lowerBound..<end.upperBound])
    XCTAssertTrue(snippet.contains("--max-waste-ratio"), snippet)
    XCTAssertTrue(snippet.contains(".build/release/ptfrag analyze"), snippet)
    let script = snippet.replacingOccurrences(of: ".build/release/ptfrag", with: "'\(PTFragProcess.executable.path)'")
    func runStep(trace: String?, profile: String, env: [String: String] = [:]) throws -> Int32 {
      let dir = scratch.appendingPathComponent(UUID().uuidString)
      let fm = FileManager.default
      try fm.createDirectory(at: dir.appendingPathComponent("captures"), withIntermediateDirectories: true)
      try fm.createDirectory(at: dir.appendingPathComponent("ci"), withIntermediateDirectories: true)
      try "{\"schemaVersion\": 1, \"findings\": []}\n".write(
        to: dir.appendingPathComponent("ci/ptfrag-baseline.json"), atomically: true, encoding: .utf8)
      try fm.copyItem(atPath: root + "/" + profile, toPath: dir.appendingPathComponent("captures/kprobe_profile").path)
      let dest = dir.appendingPathComponent("captures/run.trace").path
      if let trace { try fm.copyItem(atPath: root + "/" + trace, toPath: dest) } else { try Data().write(to: URL(fileURLWithPath: dest)) }
      let p = Process()
      p.executableURL = URL(fileURLWithPath: "/bin/sh")
      p.arguments = ["-e", "-c", script]
      p.currentDirectoryURL = dir
      var environment = ProcessInfo.processInfo.environment
      for (k, v) in env { environment[k] = v }
      p.environment = environment
      p.standardOutput = FileHandle.nullDevice
      p.standardError = FileHandle.nullDevice
      try p.run()
      p.waitUntilExit()
      return p.terminationStatus
    }
    XCTAssertEqual(try runStep(trace: sample61, profile: profile61), 0, "the 6.1 sample under the README's gate")
    XCTAssertEqual(try runStep(trace: sample612, profile: profile612), 0, "the 6.12 sample under the README's gate")
    XCTAssertEqual(try runStep(trace: nil, profile: profile61), 2, "an inconclusive run must fail the step")
    XCTAssertEqual(try runStep(trace: nil, profile: profile61, env: ["PTFRAG_ALLOW_INCONCLUSIVE": "1"]), 0)
    // Findings fail it (the double-free fixture, with a profile that fits it).
    XCTAssertEqual(
      try runStep(trace: "Fixtures/rules/double-free.trace", profile: "Fixtures/rules/zero-misses.kprobe_profile"), 1)
  }

  // MARK: M. one verdict in every format

  /// With --max-waste-ratio below the sample's ratio (2.648) the run fails: exit 1, and the
  /// text, JSON, HTML and JUnit all say so; above it, all say clean. No format decides alone.
  func testWasteGateVerdictAgreesInEveryFormat() throws {
    for (max, code, verdict) in [("2.0", Int32(1), "fail"), ("3.0", Int32(0), "clean")] {
      let junit = scratch.appendingPathComponent("w\(max).xml").path
      let html = scratch.appendingPathComponent("w\(max).html").path
      let jsonPath = scratch.appendingPathComponent("w\(max).json").path
      let r = try ptfrag(
        ["analyze", sample61, "--kprobe-profile", profile61, "--max-waste-ratio", max, "--junit", junit,
         "--html", html, "--json", jsonPath])
      XCTAssertEqual(r.code, code, r.all)
      XCTAssertTrue(r.out.contains("verdict: \(verdict.uppercased()) "), r.out)
      let doc = try json(try String(contentsOfFile: jsonPath, encoding: .utf8))
      XCTAssertEqual(doc["exitCode"] as? Int, Int(code))
      let input = try firstInput(doc)
      XCTAssertEqual(input["verdict"] as? String, verdict)
      XCTAssertEqual(input["exitCode"] as? Int, Int(code))
      let page = try String(contentsOfFile: html, encoding: .utf8)
      XCTAssertTrue(page.contains("<span class=\"verdict \(verdict)\">\(verdict.uppercased())</span>"), "HTML verdict for \(max)")
      XCTAssertFalse(page.contains(">\(verdict == "fail" ? "CLEAN" : "FAIL")</span>"), "HTML says the other verdict")
      XCTAssertTrue(page.contains("exit code \(code)"), "HTML exit code")
      XCTAssertEqual(page.contains("waste ratio 2.648 is above --max-waste-ratio 2.000"), code == 1, "HTML says why")
      let xml = try String(contentsOfFile: junit, encoding: .utf8)
      XCTAssertTrue(xml.contains("<property name=\"verdict\" value=\"\(verdict)\""), xml)
      XCTAssertEqual(xml.contains("waste ratio 2.648 is above --max-waste-ratio 2.000"), code == 1, xml)
    }
  }

  /// Issue 12: each verdict kind — clean, findings, inconclusive, incomplete, error — from the
  /// built executable: the exit code, the text, JSON, HTML and JUnit all say the same, because
  /// all of them read the one `Judgement`.
  func testEveryVerdictKindAgreesInEveryFormatAndTheExitCode() throws {
    let whole = try bytes(sample61)
    let cut = try write("cut.trace", Array(whole[0..<40000]))
    let notACapture = try write("hello.txt", Array("hello world\nfoo\n".utf8))
    let cases: [(verdict: String, code: Int32, args: [String], junit: String)] = [
      ("clean", 0, [sample61, "--kprobe-profile", profile61], "failures=\"0\" errors=\"0\""),
      ("fail", 1, ["Fixtures/junit/findings.trace", "--model", "s390-6.1"], "<failure "),
      ("inconclusive", 2, ["Fixtures/rules/lost-events.trace", "--model", "s390-6.1"], "inconclusive: the capture lost events"),
      ("incomplete", 65, [cut, "--kprobe-profile", profile61], "type=\"malformed-input\""),
      ("error", 65, [notACapture], "<error "),
    ]
    for c in cases {
      let junit = scratch.appendingPathComponent("\(c.verdict).xml").path
      let html = scratch.appendingPathComponent("\(c.verdict).html").path
      let jsonPath = scratch.appendingPathComponent("\(c.verdict).json").path
      let r = try ptfrag(["analyze"] + c.args + ["--junit", junit, "--html", html, "--json", jsonPath])
      XCTAssertEqual(r.code, c.code, "\(c.verdict)\n" + r.all)
      XCTAssertTrue(r.out.contains("verdict: \(c.verdict.uppercased())"), "\(c.verdict) text\n" + r.out)
      let doc = try json(try String(contentsOfFile: jsonPath, encoding: .utf8))
      XCTAssertEqual(doc["exitCode"] as? Int, Int(c.code), c.verdict)
      let input = try firstInput(doc)
      XCTAssertEqual(input["verdict"] as? String, c.verdict)
      XCTAssertEqual(input["exitCode"] as? Int, Int(c.code), c.verdict)
      let page = try String(contentsOfFile: html, encoding: .utf8)
      XCTAssertTrue(
        page.contains("<span class=\"verdict \(c.verdict)\">\(c.verdict.uppercased())</span>"), "HTML verdict \(c.verdict)")
      for other in cases where other.verdict != c.verdict {
        XCTAssertFalse(page.contains("<span class=\"verdict \(other.verdict)\">"), "HTML of \(c.verdict) says \(other.verdict)")
      }
      XCTAssertTrue(page.contains("exit code \(c.code)"), "HTML exit code \(c.verdict)")
      let xml = try String(contentsOfFile: junit, encoding: .utf8)
      XCTAssertTrue(xml.contains("<property name=\"verdict\" value=\"\(c.verdict)\""), xml)
      XCTAssertTrue(xml.contains("<property name=\"exit-code\" value=\"\(c.code)\""), xml)
      XCTAssertTrue(xml.contains(c.junit), "\(c.verdict) JUnit\n" + xml.prefix(3000))
      if c.code == 0 || c.code == 2 {
        XCTAssertFalse(xml.contains("<failure") || xml.contains("<error"), "\(c.verdict): JUnit fails\n" + xml.prefix(3000))
      }
    }
  }

  // MARK: J. help texts

  /// Every command's help is printed (on standard output, exit 0), no line is wider than
  /// 80 columns, and no paragraph ends in a one-word line (text hard-wrapped by hand and
  /// wrapped again by ArgumentParser leaves orphans).
  func testHelpTextsFit80ColumnsWithoutOrphanWords() throws {
    for command in [[], ["analyze"], ["compare"], ["models"], ["probes"], ["convert"], ["synth"]] {
      for args in [command + ["--help"], ["help"] + command] {
        let r = try ptfrag(args)
        XCTAssertEqual(r.code, 0, "\(args): \(r.err)")
        XCTAssertTrue(r.out.hasPrefix("OVERVIEW: "), "\(args) printed no help: \(r.out.prefix(200))")
        let lines = r.out.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertGreaterThan(lines.count, 8, "\(args)")
        for (i, line) in lines.enumerated() {
          XCTAssertLessThanOrEqual(line.count, 80, "\(args): line \(i + 1) is \(line.count) columns: \(line)")
          let words = line.split(separator: " ")
          guard words.count == 1, i > 0, !lines[i - 1].trimmingCharacters(in: .whitespaces).isEmpty else { continue }
          let w = words[0]
          // Headings (`OPTIONS:`, `EXIT CODES`), flags and placeholders stand alone by design.
          if w.hasSuffix(":") || w.uppercased() == w || w.hasPrefix("-") || w.hasPrefix("<") { continue }
          XCTFail("\(args): line \(i + 1) is an orphan word: '\(line)' after '\(lines[i - 1])'")
        }
      }
    }
  }

  // MARK: K. compare's table fits a terminal

  /// compare's text table (two tables: pages held, then where the slots go, with a legend)
  /// fits ~100 columns on an s390 and a powerpc capture, and is the same bytes run to run.
  func testCompareTextTableFitsAbout100Columns() throws {
    let cases = [
      ["compare", sample61, "--kprobe-profile", profile61],
      ["compare", "Fixtures/corpus/ppc64/6.1.0-50-powerpc64le-hash-medium.trace.gz", "--models",
       "s390-6.1,s390-6.7,powerpc-hash64k,powerpc-radix64k,powerpc-8xx16k"],
    ]
    for args in cases {
      let a = try ptfrag(args)
      XCTAssertEqual(a.code, 0, a.all)
      let lines = a.out.split(separator: "\n", omittingEmptySubsequences: false)
      let start = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("the same workload through each strategy") }, a.out)
      let end = lines[start...].firstIndex { $0.hasPrefix("note: ") } ?? lines.endIndex
      let table = lines[start..<end]
      XCTAssertGreaterThan(table.count, 12)
      for line in table {
        XCTAssertLessThanOrEqual(line.count, 102, "\(args[1]): \(line.count) columns: \(line)")
      }
      // Both tables, their headings and legends.
      XCTAssertTrue(table.contains { $0.hasPrefix("  strategy") && $0.contains("held/live") && $0.contains("Δ mean held") })
      XCTAssertTrue(table.contains { $0.hasPrefix("  strategy") && $0.contains("free now") && $0.contains("stranded") })
      XCTAssertTrue(table.contains { $0.contains("held/live: the waste ratio") })
      XCTAssertEqual(try ptfrag(args).out, a.out, "deterministic")
    }
  }

  // MARK: L. the compare page

  /// Legend entries of every plot of an HTML page: (plot title, colour, label).
  func legends(_ page: String) throws -> [(plot: String, color: String, label: String)] {
    var out: [(String, String, String)] = []
    let plots = page.components(separatedBy: "<h2>").dropFirst()
    let entry = try NSRegularExpression(
      pattern: "<line [^>]*stroke=\"(#[0-9a-f]+)\" stroke-width=\"2.5\"[^>]*/><text [^>]*>([^<]*)</text>")
    for p in plots where p.contains("<svg ") {
      let title = String(p.prefix { $0 != "<" })
      let ns = p as NSString
      for m in entry.matches(in: p, range: NSRange(location: 0, length: ns.length)) {
        out.append((title, ns.substring(with: m.range(at: 1)), ns.substring(with: m.range(at: 2))))
      }
    }
    return out
  }

  /// compare --html of two captures: a summary (verdict per input) before the first input's
  /// section; each strategy in one colour in every plot of the page; memory held and waste
  /// plotted apart per page size, so no s390 line shares a scale with the 64 KiB presets.
  func testComparePageKeepsColoursSeparatesPageSizesAndSummarises() throws {
    let html = scratch.appendingPathComponent("compare.html").path
    let r = try ptfrag(["compare", sample61, sample612, "--html", html])
    XCTAssertEqual(r.code, 0, r.all)
    let page = try String(contentsOfFile: html, encoding: .utf8)
    let summary = try XCTUnwrap(page.range(of: "<caption>Summary: 2 inputs, exit code 0"), "summary table")
    let firstSection = try XCTUnwrap(page.range(of: "<h2>\(sample61)</h2>"))
    XCTAssertLessThan(summary.lowerBound, firstSection.lowerBound, "the summary is at the top")
    let top = String(page[summary.lowerBound..<firstSection.lowerBound])
    // Without their profiles: the 6.1 sample's silent misses leave it inconclusive.
    for (path, verdict) in [(sample61, "INCONCLUSIVE"), (sample612, "CLEAN")] {
      XCTAssertTrue(top.contains("<td>\(path)</td><td class=\"num\">\(verdict)</td><td class=\"num\">yes</td>"), top)
    }
    let entries = try legends(page)
    XCTAssertGreaterThan(entries.count, 20)
    var colour: [String: String] = [:]
    for e in entries where !e.label.hasPrefix("ideal lower bound") {
      // A line shared by coinciding strategies is drawn in its first strategy's colour.
      let first = String(e.label.components(separatedBy: " = ")[0].replacingOccurrences(of: " (ran)", with: ""))
      if let c = colour[first] {
        XCTAssertEqual(c, e.color, "\(first) changes colour in '\(e.plot)'")
      } else {
        colour[first] = e.color
      }
    }
    XCTAssertGreaterThanOrEqual(Set(colour.values).count, 5, "\(colour)")
    XCTAssertEqual(Set(colour.values).count, colour.count, "two strategies share a colour: \(colour)")
    for kind in ["Page-table memory held over time", "Waste over time"] {
      let s390 = entries.filter { $0.plot.hasPrefix("\(kind): strategies on 4 KiB pages") }
      XCTAssertFalse(s390.isEmpty, kind)
      XCTAssertFalse(s390.contains { $0.label.contains("powerpc-") }, "\(kind): a powerpc preset on the 4 KiB plot")
      let big = entries.filter { $0.plot.hasPrefix("\(kind): strategies on 64 KiB pages") }
      XCTAssertFalse(big.isEmpty, kind)
      XCTAssertTrue(big.allSatisfy { $0.label.hasPrefix("powerpc-") }, "\(big.map(\.label))")
    }
    // analyze --html of several inputs has its summary too.
    let a = scratch.appendingPathComponent("analyze.html").path
    let ar = try ptfrag(["analyze", sample61, "Fixtures/rules/double-free.trace", "--html", a])
    XCTAssertEqual(ar.code, 1, ar.all)
    let ap = try String(contentsOfFile: a, encoding: .utf8)
    let asum = try XCTUnwrap(ap.range(of: "<caption>Summary: 2 inputs, exit code 1"))
    XCTAssertLessThan(asum.lowerBound, try XCTUnwrap(ap.range(of: "<h2>\(sample61)</h2>")).lowerBound)
    XCTAssertTrue(ap.contains("<td>Fixtures/rules/double-free.trace</td><td class=\"num\">FAIL</td><td class=\"num\">1</td>"), "analyze summary")
  }
}
