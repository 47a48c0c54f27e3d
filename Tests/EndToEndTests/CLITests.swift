import Foundation
import XCTest

/// Runs the real `ptfrag` executable and checks what a user or a CI job sees.
final class CLITests: XCTestCase {
  static let root: String = {
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
  }()
  var fixtures: String { Self.root + "/Fixtures" }

  struct Run {
    var code: Int32
    var out: String
    var err: String
  }

  /// The executable next to the test bundle (.build/<config>/ptfrag).
  static var executable: URL {
    Bundle.main.bundleURL.appendingPathComponent("ptfrag")
  }

  /// `stdinTerminal`: standard input is a pseudo-terminal (as for a user at a shell) instead
  /// of a pipe.
  @discardableResult
  func ptfrag(
    _ args: [String], stdin: Data? = nil, cwd: String? = nil, stdinTerminal: Bool = false, executable: URL? = nil,
    environment: [String: String]? = nil
  ) throws -> Run {
    let p = Process()
    p.executableURL = executable ?? Self.executable
    if let environment { p.environment = environment }
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: cwd ?? Self.root)
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let inp = Pipe()
    var terminal: (master: Int32, slave: FileHandle)? = nil
    if stdinTerminal {
      let t = try Self.openTerminal()
      terminal = t
      p.standardInput = t.slave
    } else {
      p.standardInput = inp
    }
    defer {
      if let terminal {
        try? terminal.slave.close()
        close(terminal.master)
      }
    }
    try p.run()
    if let stdin { inp.fileHandleForWriting.write(stdin) }
    try inp.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return Run(
      code: p.terminationStatus, out: String(decoding: o, as: UTF8.self),
      err: String(decoding: e, as: UTF8.self))
  }

  struct NoTerminal: Error {}

  /// A pseudo-terminal pair: the master descriptor and the slave side, for a child's stdin.
  static func openTerminal() throws -> (master: Int32, slave: FileHandle) {
    // posix_openpt and friends are not imported into Swift: /dev/ptmx with the ioctls
    // TIOCSPTLCK (unlock) and TIOCGPTN (the slave's number) of asm-generic/ioctls.h.
    let master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
    var unlock: Int32 = 0
    var number: UInt32 = 0
    guard master >= 0, ioctl(master, UInt(0x4004_5431), &unlock) == 0,
      ioctl(master, UInt(0x8004_5430), &number) == 0
    else { throw NoTerminal() }
    let slave = open("/dev/pts/\(number)", O_RDWR | O_NOCTTY)
    guard slave >= 0 else { throw NoTerminal() }
    return (master, FileHandle(fileDescriptor: slave, closeOnDealloc: true))
  }

  func json(_ s: String) throws -> [String: Any] {
    try XCTUnwrap(JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any])
  }

  func testNoArgumentsAnalyzesTheBundledSampleAndSaysSo() throws {
    // At a terminal (issue 13: only then; piped input is read instead, see GateTrustTests).
    let r = try ptfrag([], stdinTerminal: true)
    XCTAssertEqual(r.code, 0, r.out + r.err)
    XCTAssertTrue(r.err.contains("analyzing the bundled real capture"), r.err)
    XCTAssertTrue(r.out.contains("verdict: CLEAN"), r.out)
    XCTAssertTrue(r.out.contains("95 predicted and checked, 0 unverified"), r.out)
    XCTAssertFalse(r.out.contains("\u{1B}["), "no colour when stdout is not a terminal")
  }

  /// Issue 12: the sample is found from where the executable is, not from the build machine's
  /// source path. A copy of the binary in `<prefix>/bin` without the samples says so and
  /// exits 66; with them in `<prefix>/share/ptfrag/samples`, or `$PTFRAG_SAMPLES`, it runs.
  func testInstalledBinaryFindsTheSampleBesideItOrSaysWhereItLooked() throws {
    let fm = FileManager.default
    let prefix = fm.temporaryDirectory.appendingPathComponent("ptfrag-install-\(UUID().uuidString)")
    defer { try? fm.removeItem(at: prefix) }
    let bin = prefix.appendingPathComponent("bin")
    try fm.createDirectory(at: bin, withIntermediateDirectories: true)
    let exe = bin.appendingPathComponent("ptfrag")
    try fm.copyItem(at: Self.executable.resolvingSymlinksInPath(), to: exe)
    var env = ProcessInfo.processInfo.environment
    env["PTFRAG_SAMPLES"] = nil
    // Absent: a clear message, where it looked, exit 66, run from a directory with no package.
    let absent = try ptfrag([], cwd: prefix.path, stdinTerminal: true, executable: exe, environment: env)
    XCTAssertEqual(absent.code, 66, absent.out + absent.err)
    XCTAssertTrue(absent.err.contains("bundled sample capture s390x-6.1-fork-exec.trace is not installed"), absent.err)
    XCTAssertTrue(absent.err.contains(prefix.appendingPathComponent("share/ptfrag/samples").path), absent.err)
    XCTAssertFalse(absent.err.contains(Self.root + "/Fixtures"), "the build tree is not looked at: " + absent.err)
    // Installed beside it.
    let share = prefix.appendingPathComponent("share/ptfrag/samples")
    try fm.createDirectory(at: share, withIntermediateDirectories: true)
    for ext in ["trace", "kprobe_profile"] {
      try fm.copyItem(
        atPath: Self.root + "/Fixtures/samples/s390x-6.1-fork-exec.\(ext)",
        toPath: share.appendingPathComponent("s390x-6.1-fork-exec.\(ext)").path)
    }
    let installed = try ptfrag([], cwd: "/", stdinTerminal: true, executable: exe, environment: env)
    XCTAssertEqual(installed.code, 0, installed.out + installed.err)
    XCTAssertTrue(installed.err.contains("analyzing the bundled real capture \(share.path)/s390x-6.1-fork-exec.trace"), installed.err)
    XCTAssertTrue(installed.out.contains("verdict: CLEAN"), installed.out)
    // $PTFRAG_SAMPLES first.
    try fm.removeItem(at: share)
    env["PTFRAG_SAMPLES"] = Self.root + "/Fixtures/samples"
    let viaEnv = try ptfrag([], cwd: prefix.path, stdinTerminal: true, executable: exe, environment: env)
    XCTAssertEqual(viaEnv.code, 0, viaEnv.out + viaEnv.err)
    XCTAssertTrue(viaEnv.out.contains("95 predicted and checked, 0 unverified"), viaEnv.out)
  }

  func testJSONReportOfTheSampleWithoutProfile() throws {
    let r = try ptfrag(["analyze", "Fixtures/samples/s390x-6.1-fork-exec.trace", "--format", "json"])
    XCTAssertEqual(r.code, 2, "inconclusive without the profile")
    let doc = try json(r.out)
    XCTAssertEqual(doc["schemaVersion"] as? Int, 1)
    XCTAssertEqual(doc["exitCode"] as? Int, 2)
    let input = try XCTUnwrap((doc["inputs"] as? [[String: Any]])?.first)
    XCTAssertEqual(input["path"] as? String, "Fixtures/samples/s390x-6.1-fork-exec.trace")
    XCTAssertEqual(input["model"] as? String, "s390-6.1")
    XCTAssertEqual(input["verdict"] as? String, "inconclusive")
    XCTAssertEqual((input["findings"] as? [Any])?.count, 0)
    let inc = try XCTUnwrap(input["inconclusive"] as? [[String: Any]])
    XCTAssertEqual(inc.map { $0["reason"] as? String }, Array(repeating: "missed-tlb-exec", count: 7))
    XCTAssertEqual(inc.map { $0["line"] as? Int }, [189, 191, 192, 195, 200, 250, 250])
    let stats = try XCTUnwrap(input["stats"] as? [String: Any])
    XCTAssertEqual(stats["allocationsPredicted"] as? Int, 95)
    XCTAssertEqual(stats["allocationsUnverified"] as? Int, 0)
  }

  func testFindingsExitOneWithFileLineAndJSONFields() throws {
    let path = "Fixtures/rules/double-free.trace"
    let jsonPath = NSTemporaryDirectory() + "ptfrag-e2e-\(UUID().uuidString).json"
    let r = try ptfrag(["analyze", path, "--json", jsonPath])
    XCTAssertEqual(r.code, 1)
    XCTAssertTrue(r.out.contains("\(path):14: error [double-free]"), r.out)
    let doc = try json(try String(contentsOfFile: jsonPath, encoding: .utf8))
    let f = try XCTUnwrap(((doc["inputs"] as? [[String: Any]])?.first?["findings"] as? [[String: Any]])?.first)
    XCTAssertEqual(f["rule"] as? String, "double-free")
    XCTAssertEqual(f["severity"] as? String, "error")
    XCTAssertEqual(f["line"] as? Int, 14)
    XCTAssertEqual(f["mm"] as? String, "0x20c0800")
    XCTAssertEqual(f["page"] as? String, "0x37b9000")
    XCTAssertEqual(f["half"] as? Int, 0)
    XCTAssertEqual(f["comm"] as? String, "sh")
    XCTAssertFalse((f["history"] as? [Any] ?? []).isEmpty)
  }

  func testFailOnNeverAndWarning() throws {
    XCTAssertEqual(try ptfrag(["Fixtures/rules/double-free.trace", "--fail-on", "never"]).code, 0)
    // pgste-inferred is info: it fails neither on error nor on warning.
    XCTAssertEqual(try ptfrag(["Fixtures/rules/pgste-inferred.trace", "--fail-on", "warning"]).code, 0)
  }

  func testUsageErrorsExit64() throws {
    XCTAssertEqual(try ptfrag(["analyze", "--model", "nope", "x"]).code, 64)
    XCTAssertEqual(try ptfrag(["analyze", "--fail-on", "sometimes", "x"]).code, 64)
    XCTAssertEqual(try ptfrag(["analyze", "--bogus"]).code, 64)
  }

  func testMissingAndDirectoryInputsExit66() throws {
    let r = try ptfrag(["analyze", "/nonexistent/capture.trace"])
    XCTAssertEqual(r.code, 66)
    XCTAssertTrue(r.out.contains("/nonexistent/capture.trace: no such file"), r.out)
    XCTAssertEqual(try ptfrag(["analyze", "Fixtures"]).code, 66)
  }

  func testMalformedBeyondToleranceExits65AndSaysIncomplete() throws {
    let dir = NSTemporaryDirectory() + "ptfrag-e2e-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var text = try String(contentsOfFile: fixtures + "/rules/clean.trace", encoding: .utf8)
    text += "this is not a trace line\nneither is this\n"
    try text.write(toFile: dir + "/junk.trace", atomically: true, encoding: .utf8)
    let r = try ptfrag(["analyze", dir + "/junk.trace", "--max-malformed", "1"])
    XCTAssertEqual(r.code, 65)
    XCTAssertTrue(r.out.contains("verdict: INCOMPLETE"), r.out)
    XCTAssertTrue(r.out.contains("junk.trace:27: no [CPU] field"), r.out)
    XCTAssertEqual(try ptfrag(["analyze", dir + "/junk.trace", "--max-malformed", "2", "--kprobe-profile", fixtures + "/rules/zero-misses.kprobe_profile"]).code, 0)
  }

  func testStandardInput() throws {
    let data = try Data(contentsOf: URL(fileURLWithPath: fixtures + "/rules/double-free.trace"))
    let r = try ptfrag(["analyze", "-"], stdin: data)
    XCTAssertEqual(r.code, 1)
    XCTAssertTrue(r.out.contains("-:14: error [double-free]"), r.out)
  }

  func testSeveralInputsTheWorstDecides() throws {
    let clean = "Fixtures/rules/clean.trace"
    let bad = "Fixtures/rules/cross-mm.trace"
    let zero = ["--kprobe-profile", "Fixtures/rules/zero-misses.kprobe_profile"]
    XCTAssertEqual(try ptfrag([clean] + zero).code, 0)
    let r = try ptfrag([clean, bad] + zero)
    XCTAssertEqual(r.code, 1)
    XCTAssertTrue(r.out.contains("== total: 2 inputs"), r.out)
    XCTAssertEqual(try ptfrag([clean, bad, "/nonexistent"] + zero).code, 66)
  }

  func testModelsListsTheModelWithItsCommits() throws {
    let r = try ptfrag(["models", "--rules"])
    XCTAssertEqual(r.code, 0)
    XCTAssertTrue(r.out.contains("s390-6.1"))
    XCTAssertTrue(r.out.contains("c2c224932fd0"))
    XCTAssertTrue(r.out.contains("rule:      reuse-before-grace (error)"), r.out)
  }
}
