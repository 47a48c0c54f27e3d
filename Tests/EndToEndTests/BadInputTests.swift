import Foundation
#if canImport(FoundationXML)
  import FoundationXML
#endif
import PTFragTestSupport
import XCTest

/// The bad-input suite (issue 7): what a CI gate gets from a broken machine. Every case runs
/// the real executable twice, bounded in time (killed after `timeLimit` and failed): once as
/// text (exit code and message, with file:line where one applies), once with `--format json
/// --junit FILE` (the JSON must parse and say the same exit code; the XML must be well-formed).
/// The expected exit codes are the table in README.md, "Bad input".
final class BadInputTests: XCTestCase {
  /// Seconds one run may take before it counts as a hang.
  static let timeLimit: TimeInterval = 60
  var root: String { TestPaths.root.path }
  var scratch: URL!

  override func setUpWithError() throws { scratch = try TestPaths.scratch() }
  override func tearDownWithError() throws {
    if let scratch {
      chmod(scratch.appendingPathComponent("unreadable.trace").path, 0o644)
      try? FileManager.default.removeItem(at: scratch)
    }
  }

  struct Run {
    var code: Int32
    var out: String
    var err: String
    var all: String { out + err }
  }

  /// Runs `ptfrag args` with stdout/stderr to files (no pipe can fill up); kills it after
  /// `timeLimit` seconds and fails the test.
  func ptfrag(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> Run {
    let p = Process()
    p.executableURL = Bundle.main.bundleURL.appendingPathComponent("ptfrag")
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: root)
    let id = UUID().uuidString
    let outURL = scratch.appendingPathComponent("\(id).out")
    let errURL = scratch.appendingPathComponent("\(id).err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    let done = DispatchSemaphore(value: 0)
    p.terminationHandler = { _ in done.signal() }
    try p.run()
    if done.wait(timeout: .now() + Self.timeLimit) == .timedOut {
      p.terminate()
      kill(p.processIdentifier, SIGKILL)
      done.wait()
      XCTFail("ptfrag \(args.joined(separator: " ")) still running after \(Self.timeLimit) s: hang", file: file, line: line)
    }
    try out.close()
    try err.close()
    if p.terminationReason == .uncaughtSignal {
      XCTFail("ptfrag \(args.joined(separator: " ")) died of signal \(p.terminationStatus)", file: file, line: line)
    }
    return Run(
      code: p.terminationStatus, out: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
      err: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
  }

  /// The two runs of one case. `messages` must all appear in the text run's stdout+stderr.
  /// Returns the parsed JSON report.
  @discardableResult
  func check(
    _ path: String, extra: [String] = [], code: Int32, messages: [String],
    file: StaticString = #filePath, line: UInt = #line
  ) throws -> [String: Any] {
    let text = try ptfrag(["analyze", path] + extra, file: file, line: line)
    XCTAssertEqual(text.code, code, "exit code\n" + text.all, file: file, line: line)
    for m in messages {
      XCTAssertTrue(text.all.contains(m), "missing \"\(m)\" in:\n\(text.all)", file: file, line: line)
    }
    let junit = scratch.appendingPathComponent("\(UUID().uuidString).xml")
    let js = try ptfrag(["analyze", path, "--format", "json", "--junit", junit.path] + extra, file: file, line: line)
    XCTAssertEqual(js.code, code, "exit code with --format json\n" + js.err, file: file, line: line)
    let doc = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(js.out.utf8)) as? [String: Any],
      "JSON report does not parse:\n\(js.out.prefix(2000))", file: file, line: line)
    XCTAssertEqual(doc["exitCode"] as? Int, Int(code), "JSON exitCode", file: file, line: line)
    let xml = try Data(contentsOf: junit)
    XCTAssertNoThrow(
      try XMLDocument(data: xml, options: []), "JUnit XML not well-formed:\n\(String(decoding: xml, as: UTF8.self))",
      file: file, line: line)
    return doc
  }

  // MARK: inputs

  func write(_ name: String, _ bytes: [UInt8]) throws -> String {
    let url = scratch.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url.path
  }
  func write(_ name: String, _ text: String) throws -> String { try write(name, Array(text.utf8)) }

  /// Fixtures/rules/clean.trace: exit 0 with the zero-misses profile and the s390-6.1 model.
  var cleanLines: [String] {
    get throws {
      let s = try String(contentsOfFile: root + "/Fixtures/rules/clean.trace", encoding: .utf8)
      return s.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }
  }
  let cleanArgs = ["--model", "s390-6.1", "--kprobe-profile", "Fixtures/rules/zero-misses.kprobe_profile"]

  /// The ftrace header `trace` writes before any event.
  let header = """
    # tracer: nop
    #
    # entries-in-buffer/entries-written: 0/0   #P:2
    #
    #                                _-----=> irqs-off/BH-disabled
    #                               / _----=> need-resched
    #                              | / _---=> hardirq/softirq
    #                              || / _--=> preempt-depth
    #                              ||| / _-=> migrate-disable
    #                              |||| /     delay
    #           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
    #              | |         |   |||||     |         |

    """

  // MARK: cases

  func testBaselineCleanFixtureIsClean() throws {
    try check("Fixtures/rules/clean.trace", extra: cleanArgs, code: 0, messages: ["verdict: CLEAN"])
  }

  func testEmptyFile() throws {
    let p = try write("empty.trace", "")
    try check(p, extra: cleanArgs, code: 2, messages: ["no events"])
  }

  func testHeaderOnly() throws {
    let p = try write("header.trace", header)
    try check(p, extra: cleanArgs, code: 2, messages: ["no events"])
  }

  func testBinaryJunk() throws {
    // Deterministic junk (xorshift), never starting like gzip or JSON.
    var x: UInt64 = 0x9E37_79B9_7F4A_7C15
    var bytes = [UInt8](repeating: 0, count: 256 << 10)
    for i in bytes.indices {
      x ^= x << 13
      x ^= x >> 7
      x ^= x << 17
      bytes[i] = UInt8(truncatingIfNeeded: x)
    }
    bytes[0] = 0x7F
    let p = try write("junk.bin", bytes)
    // Not one probe line: not a capture (65), whatever the tolerance.
    try check(p, extra: cleanArgs, code: 65, messages: ["not a capture", "junk.bin:1:"])
  }

  func testNULBytesInALine() throws {
    var lines = try cleanLines
    // A block of NULs as line 8 (what a file system leaves after a crash), no event lost.
    lines.insert(String(repeating: "\u{0}", count: 96), at: 7)
    let p = try write("nul.trace", lines.joined(separator: "\n"))
    // One malformed line (within the default tolerance) at line 8, the rest replays clean.
    let doc = try check(p, extra: cleanArgs, code: 0, messages: ["nul.trace:8:", "malformed lines: 1"])
    let input = try XCTUnwrap((doc["inputs"] as? [[String: Any]])?.first)
    XCTAssertEqual((input["malformed"] as? [String: Any])?["count"] as? Int, 1)
  }

  func testInvalidUTF8InComm() throws {
    var bytes = [UInt8]()
    for (i, l) in try cleanLines.enumerated() {
      var b = Array(l.utf8)
      if i == 7 { b = Array("          ".utf8) + [0xFF, 0xFE, 0xC3] + Array(l.utf8.drop { $0 == 0x20 }.drop { $0 != 0x2D }) }
      bytes += b + [0x0A]
    }
    bytes.removeLast()
    let p = try write("utf8.trace", bytes)
    // The comm is opaque bytes: the line parses, the capture stays clean.
    try check(p, extra: cleanArgs, code: 0, messages: ["verdict: CLEAN"])
  }

  func testTenMegabyteLine() throws {
    var lines = try cleanLines
    lines.insert(String(repeating: "x", count: 10 << 20), at: 5)
    let p = try write("long.trace", lines.joined(separator: "\n"))
    // Line 6 is over the 1 MiB line limit: one malformed line, skipped; the rest is clean.
    let doc = try check(p, extra: cleanArgs, code: 0, messages: ["long.trace:6:"])
    let input = try XCTUnwrap((doc["inputs"] as? [[String: Any]])?.first)
    XCTAssertEqual((input["malformed"] as? [String: Any])?["count"] as? Int, 1)
  }

  func testTruncatedLastLine() throws {
    var text = try cleanLines.joined(separator: "\n")
    while text.hasSuffix("\n") { text.removeLast() }
    text.removeLast(30)
    let p = try write("cut.trace", text)
    // The capture was cut while being written: the report is incomplete (exit 65).
    let doc = try check(p, extra: cleanArgs, code: 65, messages: ["cut.trace:26:", "incomplete"])
    let input = try XCTUnwrap((doc["inputs"] as? [[String: Any]])?.first)
    XCTAssertEqual(input["cutLine"] as? Int, 26)
    XCTAssertEqual(input["complete"] as? Bool, false)
  }

  func testTruncatedGzip() throws {
    let gz = scratch.appendingPathComponent("clean.trace.gz")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", "gzip -c '\(root)/Fixtures/samples/s390x-6.1-fork-exec.trace' > '\(gz.path)'"]
    try p.run()
    p.waitUntilExit()
    var bytes = [UInt8](try Data(contentsOf: gz))
    bytes.removeLast(bytes.count / 2)
    let path = try write("cut.trace.gz", bytes)
    try check(path, extra: ["--model", "s390-6.1"], code: 65, messages: ["cut.trace.gz: compressed byte"])
  }

  func testDirectory() throws {
    try check(scratch.path, code: 66, messages: ["is a directory"])
  }

  func testUnreadableFile() throws {
    guard geteuid() != 0 else { throw XCTSkip("root reads any file; see testFileThatFailsToRead") }
    let p = try write("unreadable.trace", "")
    chmod(p, 0)
    try check(p, code: 66, messages: ["cannot open"])
  }

  func testFileThatFailsToRead() throws {
    // Opens, then read(2) fails (EIO at offset 0 of a process's memory).
    try check("/proc/self/mem", code: 74, messages: ["/proc/self/mem: read error"])
  }

  func testMissingFile() throws {
    try check("Fixtures/no-such.trace", code: 66, messages: ["Fixtures/no-such.trace: no such file"])
  }

  func testOutOfOrderTimestamps() throws {
    var lines = try cleanLines
    // Two CPU 0 lines whose order is kept but whose timestamps go back.
    lines[10] = lines[10].replacingOccurrences(of: "100.000078", with: "100.000001")
    let p = try write("backwards.trace", lines.joined(separator: "\n"))
    // Replayed in file order (the order ftrace wrote them); noted, not an error.
    try check(p, extra: cleanArgs, code: 0, messages: ["timestamps going backwards on a CPU: 1 (first at line 11)", "verdict: CLEAN"])
  }

  func testDuplicatedLines() throws {
    var lines = try cleanLines
    // The first free of 0x37b9000 twice: the second is a double free at line 15.
    lines.insert(lines[13], at: 14)
    let p = try write("dup.trace", lines.joined(separator: "\n"))
    try check(p, extra: cleanArgs, code: 1, messages: ["dup.trace:15"])
  }

  func testKernelOopsInterleaved() throws {
    var lines = try cleanLines
    let splat = """
      [  100.000100] ------------[ cut here ]------------
      [  100.000101] WARNING: CPU: 0 PID: 9 at mm/pgtable-generic.c:53 pgd_clear_bad+0x2c/0x40
      [  100.000102] Modules linked in: nfsv3 nfs_acl
      [  100.000103] CPU: 0 PID: 9 Comm: sh Not tainted 6.1.15 #1
      [  100.000104] Krnl PSW : 0704c00180000000 00000000001234a4 (pgd_clear_bad+0x2c/0x40)
      [  100.000105] Call Trace:
      [  100.000106]  [<00000000001234a4>] pgd_clear_bad+0x2c/0x40
      [  100.000107] ---[ end trace 0000000000000000 ]---
      Unable to handle kernel pointer dereference in virtual kernel address space
      Oops: 0004 ilc:3 [#1] SMP
      """
    lines.insert(contentsOf: splat.split(separator: "\n").map(String.init), at: 12)
    let p = try write("oops.trace", lines.joined(separator: "\n"))
    // Not probe lines: counted and sampled as malformed (within the default tolerance, the
    // events around them replay clean); beyond a tolerance of 5 the report is incomplete.
    let doc = try check(p, extra: cleanArgs, code: 0, messages: ["verdict: CLEAN", "oops.trace:13:", "malformed lines: 10"])
    let input = try XCTUnwrap((doc["inputs"] as? [[String: Any]])?.first)
    XCTAssertEqual((input["malformed"] as? [String: Any])?["count"] as? Int, 10)
    try check(p, extra: cleanArgs + ["--max-malformed", "5"], code: 65, messages: ["incomplete", "oops.trace:13:"])
  }

  func testLostEventsAtStartAndEnd() throws {
    var lines = try cleanLines
    lines.insert("CPU:1 [LOST 12 EVENTS]", at: 5)
    while lines.last == "" { lines.removeLast() }
    lines.append("CPU:0 [LOST 3 EVENTS]")
    let p = try write("lost.trace", lines.joined(separator: "\n") + "\n")
    try check(p, extra: cleanArgs, code: 2, messages: ["lost"])
  }

  func testValuesThatOverflow64Bits() throws {
    var lines = try cleanLines
    lines[7] = lines[7].replacingOccurrences(of: "mm=0x20c0800", with: "mm=0x1ffffffffffffffff")
    lines[9] = lines[9].replacingOccurrences(of: "100.000065", with: "99999999999999999999.000065")
    let p = try write("overflow.trace", lines.joined(separator: "\n"))
    let doc = try check(p, extra: cleanArgs + ["--max-malformed", "0"], code: 65, messages: ["overflow.trace:8:", "overflow.trace:10:", "incomplete"])
    let input = try XCTUnwrap((doc["inputs"] as? [[String: Any]])?.first)
    XCTAssertEqual((input["malformed"] as? [String: Any])?["count"] as? Int, 2)
  }

  /// clean.trace as JSON Lines (through `ptfrag convert`).
  func cleanJSONLines() throws -> [String] {
    let out = scratch.appendingPathComponent("clean.jsonl")
    let r = try ptfrag(["convert", "Fixtures/rules/clean.trace", "--to", "json", "-o", out.path])
    XCTAssertEqual(r.code, 0, r.all)
    return try String(contentsOf: out, encoding: .utf8).split(separator: "\n").map(String.init)
  }

  func testJSONCutMidObject() throws {
    var lines = try cleanJSONLines()
    let last = lines.removeLast()
    lines.append(String(last.prefix(last.count / 2)))
    let p = try write("cut.jsonl", lines.joined(separator: "\n"))
    let doc = try check(p, extra: cleanArgs, code: 65, messages: ["cut.jsonl:\(lines.count):", "incomplete"])
    let input = try XCTUnwrap((doc["inputs"] as? [[String: Any]])?.first)
    XCTAssertEqual(input["cutLine"] as? Int, lines.count)
  }

  func testDeeplyNestedJSON() throws {
    var lines = try cleanJSONLines()
    lines.insert("{\"type\":\"probe\",\"x\":" + String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000) + "}", at: 3)
    lines.insert(String(repeating: "{\"a\":", count: 100_000) + "1" + String(repeating: "}", count: 100_000), at: 4)
    let p = try write("nested.jsonl", lines.joined(separator: "\n") + "\n")
    let doc = try check(p, extra: cleanArgs, code: 0, messages: ["nested.jsonl:4:", "nested.jsonl:5:"])
    let input = try XCTUnwrap((doc["inputs"] as? [[String: Any]])?.first)
    XCTAssertEqual((input["malformed"] as? [String: Any])?["count"] as? Int, 2)
  }

  func testJSONMalformedRecordsBeyondTolerance() throws {
    var lines = try cleanJSONLines()
    for i in [2, 4, 6] { lines[i] = "{\"type\":\"probe\",\"ts\":\"soon\"}" }
    let p = try write("bad.jsonl", lines.joined(separator: "\n") + "\n")
    // Within the tolerance: counted and sampled with file:line, verdict from the rest.
    let within = try ptfrag(["analyze", p] + cleanArgs + ["--max-malformed", "3"])
    XCTAssertNotEqual(within.code, 65, within.all)
    XCTAssertTrue(within.all.contains("bad.jsonl:3:"), within.all)
    // Beyond it: exit 65 and the verdict says incomplete.
    let doc = try check(p, extra: cleanArgs + ["--max-malformed", "2"], code: 65, messages: ["bad.jsonl:3:", "bad.jsonl:5:", "bad.jsonl:7:", "incomplete"])
    let input = try XCTUnwrap((doc["inputs"] as? [[String: Any]])?.first)
    XCTAssertEqual((input["malformed"] as? [String: Any])?["count"] as? Int, 3)
  }

  // MARK: fuzzer regressions (Fixtures/regressions)

  func testRegressionJSONRecordUnclosedAtEndOfInput() throws {
    // Found by the json fuzzer: a JSON Lines record whose braces never close runs to the end
    // of the input; the line count and the cut line must stay within the input.
    let doc = try check(
      "Fixtures/regressions/json-unclosed-last-record.jsonl", extra: ["--model", "s390-6.1"], code: 65,
      messages: ["json-unclosed-last-record.jsonl:19: the record is cut off", "incomplete"])
    let input = try XCTUnwrap((doc["inputs"] as? [[String: Any]])?.first)
    XCTAssertEqual(input["lines"] as? Int, 19)
    XCTAssertEqual(input["cutLine"] as? Int, 19)
  }

  func testRegressionS390v66UseWhileRCUPendingWithoutOwner() throws {
    // Found by the analyze fuzzer: a page waiting in R whose owner was never known (-1) was
    // named by a later event; the finding's mm lookup trapped on the negative serial. The
    // fuzzed file also has 6 damaged lines that name probed functions, so the divergence is
    // inconclusive (their events are missing), not an error.
    let r = try ptfrag(["analyze", "Fixtures/regressions/s390-6.6-use-while-rcu-pending-no-owner.trace", "--model", "s390-6.6"])
    XCTAssertEqual(r.code, 2, r.all)
    XCTAssertTrue(r.all.contains("no-owner.trace:25: lost-events (would be [use-while-rcu-pending])"), r.all)
  }
}
