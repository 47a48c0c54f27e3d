import Foundation
import PTFragEvents
import PTFragJUnit
import PTFragKit
import PTFragRead
import PTFragReport
import PTFragJUnitCheck

/// The fuzz targets: each takes arbitrary bytes and traps (a crash libFuzzer records) when the
/// code under test crashes or breaks an invariant the rest of ptfrag relies on. Thrown
/// `ReadError`s are normal outcomes for hostile input, not failures.
public enum FuzzTargets {
  /// Text reader: `TextCaptureReader` (LineSplitter + FtraceLineParser) over the bytes, every
  /// record through the `Normalizer`.
  public static func fuzzText(_ data: UnsafeBufferPointer<UInt8>) {
    var src = MemorySource(Array(data), name: "fuzz.trace")
    var normalizer = Normalizer()
    do {
      let d = try TextCaptureReader().read(&src) { record in normalizer.feed(record) { _ in } }
      normalizer.finish { _ in }
      checkDiagnostics(d, bytes: data.count)
    } catch {
      _ = error.message
    }
  }

  /// JSON reader: `JSONCaptureReader` (JSON Lines or one array) over the bytes.
  public static func fuzzJSON(_ data: UnsafeBufferPointer<UInt8>) {
    var src = MemorySource(Array(data), name: "fuzz.jsonl")
    var normalizer = Normalizer()
    do {
      let d = try JSONCaptureReader().read(&src) { record in normalizer.feed(record) { _ in } }
      normalizer.finish { _ in }
      // In a JSON array, lines are whole elements and a cut element is number lines + 1.
      checkDiagnostics(d, bytes: data.count, slack: 1)
    } catch {
      _ = error.message
    }
  }

  /// The whole `analyze` pipeline on a file holding the bytes (format sniffed: text, JSON,
  /// gzip): read → normalize → replay with `--model auto` → text, JSON and JUnit reports. The
  /// JSON report must parse and the JUnit XML must be well-formed and valid against the XSD, on every input. The
  /// lowest bit of the first byte picks the two-thread pipeline or the single thread.
  public static func fuzzAnalyze(_ data: UnsafeBufferPointer<UInt8>) {
    let path = scratchPath
    guard let fd = fopen(path, "wb") else { fatalError("cannot write \(path)") }
    if data.count > 0 { _ = fwrite(data.baseAddress!, 1, data.count, fd) }
    fclose(fd)
    let options = AnalyzeOptions(
      modelID: Analyzer.autoModelID, modelSelection: "auto", malformedTolerance: 8,
      pipelined: (data.first ?? 0) & 1 == 1)
    let report: InputReport
    do {
      report = try Analyzer.analyze(path: path, options: options)
    } catch {
      fatalError("analyze threw for a problem of the input: \(error.message)")
    }
    let run = RunReport(inputs: [report], failOn: .error, toolVersion: ptfragVersion)
    _ = TextReport(color: false, forTerminal: false).render(run)
    _ = TextReport(color: true, forTerminal: true).render(run)
    let json = JSONReport.render(run)
    guard let obj = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
      fatalError("JSON report does not parse:\n\(json)")
    }
    guard (obj["exitCode"] as? Int).map({ Int32($0) }) == run.exitCode.rawValue else {
      fatalError("JSON exitCode differs from the run's")
    }
    let xml: [UInt8]
    do { xml = try JUnitReport().render(run) } catch { fatalError("JUnit render threw: \(error)") }
    let problems: [String]
    do { problems = try JUnitSchema.validate(xml: xml, schemaPath: schemaPath) } catch {
      fatalError("cannot load the JUnit schema: \(error)")
    }
    if !problems.isEmpty {
      fatalError("JUnit XML is not valid (\(problems)):\n\(String(decoding: xml, as: UTF8.self))")
    }
  }

  /// Diagnostics the reports rely on: samples bounded and ordered, lines 1-based and within
  /// the input, bytes counted exactly.
  static func checkDiagnostics(_ d: ReadDiagnostics, bytes: Int, slack: Int = 0) {
    precondition(d.samples.count <= d.maxSamples, "too many samples")
    precondition(d.malformedCount >= d.samples.count, "more samples than malformed lines")
    for s in d.samples { precondition(s.line >= 1 && s.line <= max(d.lines, 1) + slack, "sample line \(s.line) of \(d.lines)") }
    precondition(zip(d.samples, d.samples.dropFirst()).allSatisfy { $0.line <= $1.line }, "samples out of order")
    precondition(d.bytes == UInt64(bytes), "read \(d.bytes) of \(bytes) bytes")
    if let t = d.truncatedLastLine { precondition(t >= 1 && t <= d.lines + slack, "truncated line \(t) of \(d.lines)") }
  }

  /// Fixtures/junit/junit-10.xsd: the JUnit XML must be well-formed and valid against it.
  static let schemaPath: String = {
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(4)  // Fuzz/Sources/PTFragFuzzTargets/FuzzTargets.swift
    return parts.joined(separator: "/") + "/Fixtures/junit/junit-10.xsd"
  }()

  /// One scratch file per fuzzing process.
  static let scratchPath: String = {
    let dir = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
    return "\(dir)/ptfrag-fuzz-\(getpid()).input"
  }()
}
