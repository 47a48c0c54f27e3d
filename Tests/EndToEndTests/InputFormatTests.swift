import Foundation
import PTFragKit
import PTFragRead
import PTFragReport
import PTFragSynth
import XCTest

/// The same capture as text, JSON Lines, a JSON array, and gzip of each, gives the same
/// report (but for the path, the byte count and the format name).
final class InputFormatTests: XCTestCase {
  let root: String = {
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
  }()

  func write(_ bytes: [UInt8], _ name: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "ptfrag-input-format-tests-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    addTeardownBlock {
      try? FileManager.default.removeItem(at: url)
      try? FileManager.default.removeItem(at: dir)  // this process's; tests run one at a time
    }
    return url.path
  }

  func converted(_ bytes: [UInt8], _ target: ConvertTarget) throws -> [UInt8] {
    var input = try CaptureInput(sniffing: MemorySource(bytes))
    let sink = ByteSink(memoryNamed: "<out>")
    _ = try CaptureConverter.convert(&input, to: target, into: sink)
    return sink.memory
  }

  func gzipped(_ path: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", "gzip -c '\(path)' > '\(path).gz'"]
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw XCTSkip("gzip(1) not available") }
    addTeardownBlock { try? FileManager.default.removeItem(atPath: path + ".gz") }
    return path + ".gz"
  }

  /// The JSON report of one input with what legitimately differs blanked out.
  func normalizedReport(_ path: String, profile: String?) throws -> (String, String) {
    var report = try Analyzer.analyze(path: path, options: AnalyzeOptions(profilePath: profile))
    let format = report.read.format
    report.path = "<input>"
    report.read.bytes = 0
    report.read.format = "<format>"
    report.sha256 = nil  // of the file as stored: differs by format by design
    let run = RunReport(inputs: [report], failOn: .error, toolVersion: "test")
    return (JSONReport.render(run), format)
  }

  func assertSameReports(_ text: [UInt8], profile: String?, _ what: String) throws {
    let textPath = try write(text, "\(what).trace")
    let jsonl = try write(try converted(text, .json), "\(what).jsonl")
    let array = try write(try converted(text, .jsonArray), "\(what).json")
    let (expected, f0) = try normalizedReport(textPath, profile: profile)
    XCTAssertEqual(f0, "ftrace-text")
    let variants: [(String, String)] = [
      (jsonl, "json-lines"), (array, "json-array"), (try gzipped(textPath), "ftrace-text+gzip"),
      (try gzipped(jsonl), "json-lines+gzip"),
    ]
    for (path, format) in variants {
      let (got, f) = try normalizedReport(path, profile: profile)
      XCTAssertEqual(f, format)
      XCTAssertEqual(got, expected, "\(what) as \(format)")
    }
  }

  func testTheRealCaptureGivesTheSameReportInEveryFormat() throws {
    let base = root + "/Fixtures/samples/s390x-6.1-fork-exec"
    guard let text = FileManager.default.contents(atPath: base + ".trace") else {
      throw XCTSkip("sample missing")
    }
    try assertSameReports([UInt8](text), profile: base + ".kprobe_profile", "real-6.1")
  }

  func testASyntheticCaptureWithLossesGivesTheSameReportInEveryFormat() throws {
    var o = SynthOptions()
    o.events = 40_000
    o.seed = 3
    o.lostBursts = 2
    let sink = ByteSink(memoryNamed: "<synth>")
    _ = try Synthesizer(o).write(to: sink)
    try assertSameReports(sink.memory, profile: nil, "synth")
  }

  /// The two-thread pipeline (read+parse ∥ normalize+replay) gives the same report as one
  /// thread, findings and all (a damaged capture has plenty).
  func testPipelinedAndSingleThreadedReportsAreIdentical() throws {
    var o = SynthOptions()
    o.events = 30_000
    o.seed = 5
    let sink = ByteSink(memoryNamed: "<synth>")
    _ = try Synthesizer(o).write(to: sink)
    // Drop every 97th line: missed events make findings and inconclusive items.
    let lines = sink.memory.split(separator: 0x0A, omittingEmptySubsequences: false)
    let damaged = lines.enumerated().filter { $0.offset < 12 || $0.offset % 97 != 0 }.map(\.element)
    let path = try write(Array(damaged.joined(separator: [0x0A])), "pipeline.trace")
    func report(_ pipelined: Bool) throws -> String {
      let r = try Analyzer.analyze(path: path, options: AnalyzeOptions(pipelined: pipelined))
      XCTAssertGreaterThan(r.result?.findings.count ?? 0, 10)
      return JSONReport.render(RunReport(inputs: [r], failOn: .error, toolVersion: "test"))
    }
    XCTAssertEqual(try report(true), try report(false))
  }
}
