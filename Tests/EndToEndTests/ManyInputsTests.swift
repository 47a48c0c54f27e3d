import Foundation
import PTFragTestSupport
import XCTest

/// `ptfrag analyze a b c …` and `ptfrag compare a b …` work on several inputs at once
/// (`--jobs`, default the CPUs online): the report is the same bytes as one at a time.
final class ManyInputsTests: XCTestCase {
  var root: URL { TestPaths.root }
  func fixture(_ p: String) -> String { root.appendingPathComponent("Fixtures/\(p)").path }

  /// Every kind of input a fleet's run meets: both samples, s390 and powerpc corpus captures
  /// (gzip), one that is not a capture and one that is missing.
  var inputs: [String] {
    [
      fixture("samples/s390x-6.1-fork-exec.trace"),
      fixture("corpus/s390/s390x-6.1-medium.trace.gz"),
      fixture("corpus/ppc64/6.12.95+deb12-powerpc64le-64k-radix-small.trace.gz"),
      root.appendingPathComponent("README.md").path,
      fixture("samples/s390x-6.12-fork-exec.trace"),
      fixture("does-not-exist.trace"),
      fixture("corpus/s390/s390x-6.12-medium.trace.gz"),
      fixture("corpus/ppc64/6.12.95+deb12-powerpc64le-64k-radix-thpsmall.trace.gz"),
    ]
  }

  struct Outputs: Equatable {
    var status: Int32
    var stdout: String
    var stderr: String
    var files: [String: String]
  }

  /// Runs `args` with `--jobs jobs`; reads the report files it wrote (`name` → path in `dir`).
  func run(_ args: [String], jobs: Int, files: [String], in dir: URL) throws -> Outputs {
    let paths = files.map { dir.appendingPathComponent("\(jobs)-\($0)").path }
    var a = args + ["--jobs", String(jobs)]
    for (name, p) in zip(files, paths) { a += ["--\(name.split(separator: ".")[0])", p] }
    let r = try PTFragProcess.run(a, in: root)
    var out: [String: String] = [:]
    for (name, p) in zip(files, paths) {
      var s = try String(contentsOfFile: p, encoding: .utf8)
      if name.hasPrefix("junit") {
        // When each input started and how long it took: the only bytes that may differ.
        s = s.replacingOccurrences(of: #" (timestamp|time)="[^"]*""#, with: "", options: .regularExpression)
      }
      out[name] = s
    }
    return Outputs(status: r.status, stdout: r.stdout, stderr: r.stderr, files: out)
  }

  func testAnalyzeOfManyInputsAtOnceIsByteIdenticalToOneAtATime() throws {
    let dir = try TestPaths.scratch()
    defer { try? FileManager.default.removeItem(at: dir) }
    for format in ["text", "json"] {
      let args = ["analyze", "--format", format, "--color", "never"] + inputs
      let files = ["json.json", "junit.xml", "html.html"]
      let one = try run(args, jobs: 1, files: files, in: dir)
      XCTAssertEqual(one.status, 66, "the missing input decides: \(one.stderr)")
      XCTAssertTrue(one.stdout.contains("s390x-6.12-medium"), one.stdout.prefix(300).description)
      for jobs in [2, 3, 8] {
        let many = try run(args, jobs: jobs, files: files, in: dir)
        XCTAssertEqual(many.status, one.status, "--jobs \(jobs)")
        XCTAssertEqual(many.stderr, one.stderr, "--jobs \(jobs)")
        XCTAssertTrue(many.stdout == one.stdout, "--jobs \(jobs): \(format) on standard output differs")
        for f in files { XCTAssertTrue(many.files[f] == one.files[f], "--jobs \(jobs): \(f) differs") }
      }
    }
    // The default (every CPU) is the same too.
    let dflt = try PTFragProcess.run(["analyze", "--format", "json"] + inputs, in: root)
    let one = try PTFragProcess.run(["analyze", "--format", "json", "--jobs", "1"] + inputs, in: root)
    XCTAssertEqual(dflt.status, one.status)
    XCTAssertTrue(dflt.stdout == one.stdout)
  }

  func testCompareOfManyInputsAtOnceIsByteIdenticalToOneAtATime() throws {
    let dir = try TestPaths.scratch()
    defer { try? FileManager.default.removeItem(at: dir) }
    let picked = [inputs[0], inputs[2], inputs[3], inputs[4], inputs[7]]
    let args = ["compare", "--color", "never"] + picked
    let files = ["json.json", "html.html"]
    let one = try run(args, jobs: 1, files: files, in: dir)
    XCTAssertEqual(one.status, 65, "README.md is not a capture: \(one.stderr)")
    for jobs in [2, 5] {
      let many = try run(args, jobs: jobs, files: files, in: dir)
      XCTAssertEqual(many.status, one.status, "--jobs \(jobs)")
      XCTAssertEqual(many.stderr, one.stderr, "--jobs \(jobs)")
      XCTAssertTrue(many.stdout == one.stdout, "--jobs \(jobs): the compare table differs")
      for f in files { XCTAssertTrue(many.files[f] == one.files[f], "--jobs \(jobs): \(f) differs") }
    }
  }

  /// An error about the run, not an input (a kprobe_profile that cannot be read): said once,
  /// with its code, whatever the number of jobs; no report.
  func testARunErrorStopsTheRunAsOneAtATime() throws {
    let args = ["analyze", "--kprobe-profile", fixture("no-such.kprobe_profile")] + inputs
    let one = try PTFragProcess.run(args + ["--jobs", "1"], in: root)
    XCTAssertEqual(one.status, 66, one.stderr)
    for jobs in ["2", "8"] {
      let many = try PTFragProcess.run(args + ["--jobs", jobs], in: root)
      XCTAssertEqual(many.status, one.status)
      XCTAssertEqual(many.stderr, one.stderr)
      XCTAssertEqual(many.stdout, "")
    }
  }

  func testJobsMustBePositive() throws {
    for cmd in ["analyze", "compare"] {
      let r = try PTFragProcess.run([cmd, "--jobs", "0", inputs[0]], in: root)
      XCTAssertEqual(r.status, 64)
      XCTAssertTrue(r.stderr.contains("--jobs must be 1 or more"), r.stderr)
    }
  }

  // MARK: --mm-records

  func testMMRecordsListsThatManyAndCountsTheRest() throws {
    let capture = fixture("corpus/s390/s390x-6.1-medium.trace.gz")
    func stats(_ extra: [String]) throws -> [String: Any] {
      let r = try PTFragProcess.run(["analyze", "--format", "json", capture] + extra, in: root)
      XCTAssertTrue([0, 1, 2].contains(r.status), r.stderr)
      let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
      let input = try XCTUnwrap((doc["inputs"] as? [[String: Any]])?.first)
      return try XCTUnwrap(input["stats"] as? [String: Any])
    }
    let all = try stats(["--mm-records", "1000000"])
    let total = try XCTUnwrap(all["mms"] as? [[String: Any]]).count
    XCTAssertEqual(all["mmsNotListed"] as? Int, 0)
    XCTAssertGreaterThan(total, 100, "the capture has more mms than the default keeps")
    let five = try stats(["--mm-records", "5"])
    let listed = try XCTUnwrap(five["mms"] as? [[String: Any]])
    XCTAssertEqual(listed.count, 5)
    XCTAssertEqual(five["mmsNotListed"] as? Int, total - 5)
    // The five kept are the five highest peaks of the full list, in its order.
    let peaks = { (l: [[String: Any]]) in l.map { "\($0["mm"] ?? "")/\($0["peakPages"] ?? "")" } }
    XCTAssertEqual(peaks(listed), Array(peaks(try XCTUnwrap(all["mms"] as? [[String: Any]])).prefix(5)))
    let dflt = try stats([])
    XCTAssertEqual((dflt["mms"] as? [[String: Any]])?.count, 100)
    XCTAssertEqual(dflt["mmsNotListed"] as? Int, total - 100)
    let none = try stats(["--mm-records", "0"])
    XCTAssertEqual((none["mms"] as? [[String: Any]])?.count, 0)
    XCTAssertEqual(none["mmsNotListed"] as? Int, total)
    // The text lists at most 10 of them and says how many there are.
    let text = try PTFragProcess.run(["analyze", "--mm-records", "5", "--color", "never", capture], in: root)
    XCTAssertTrue(text.stdout.contains("mms by peak pages held (5 of \(total);"), text.stdout)
    let bad = try PTFragProcess.run(["analyze", "--mm-records=-1", capture], in: root)
    XCTAssertEqual(bad.status, 64)
    XCTAssertTrue(bad.stderr.contains("--mm-records must be 0 or more"), bad.stderr)
  }
}
