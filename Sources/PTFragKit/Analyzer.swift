import PTFragEvents
import PTFragRead
import PTFragReplay
import PTFragReport

/// The version printed by `--version` and written into reports.
public let ptfragVersion = "0.1.0"

/// Settings for one `analyze` run.
public struct AnalyzeOptions: Sendable {
  /// Model id (`s390-6.1`, …).
  public var modelID: String
  /// How the model was chosen, for the report.
  public var modelSelection: String
  public var profilePath: String?
  /// Malformed lines tolerated per input before the verdict is "incomplete" (exit 65).
  public var malformedTolerance: Int
  public init(
    modelID: String = "s390-6.1", modelSelection: String = "given with --model",
    profilePath: String? = nil, malformedTolerance: Int = 1000
  ) {
    self.modelID = modelID
    self.modelSelection = modelSelection
    self.profilePath = profilePath
    self.malformedTolerance = malformedTolerance
  }
}

/// Errors of the pipeline that are not about one input.
public enum AnalyzeError: Error, Sendable {
  case unknownModel(String)
  case profile(ReadError)
  case baseline(ReadError)

  public var message: String {
    switch self {
    case .unknownModel(let id):
      "unknown model '\(id)'; known models: \(ModelRegistry.ids.joined(separator: ", "))"
    case .profile(let e): "kprobe profile: \(e.message)"
    case .baseline(let e): "baseline: \(e.message)"
    }
  }
  public var exitCode: ExitCode {
    switch self {
    case .unknownModel: .usage
    case .profile(let e), .baseline(let e): ExitCode(rawValue: e.exitCode) ?? .ioError
    }
  }
}

/// read → normalize → replay(model) → report data, for one input.
public enum Analyzer {
  /// Analyzes one capture. Never throws for problems of the input itself: those become the
  /// report's `error` (with the exit code they map to).
  public static func analyze(path: String, options: AnalyzeOptions) throws(AnalyzeError)
    -> InputReport
  {
    guard let modelType = ModelRegistry.model(id: options.modelID) else {
      throw .unknownModel(options.modelID)
    }
    var profile: KprobeProfile? = nil
    if let pp = options.profilePath {
      do { profile = try KprobeProfile.load(path: pp) } catch { throw .profile(error) }
    }
    var summary = ReadSummary()
    summary.malformedTolerance = options.malformedTolerance
    let replayer = Replayer(model: modelType)
    var normalizer = Normalizer()
    let diagnostics: ReadDiagnostics
    let sha256: String
    do {
      var source = SHA256Source(try FileSource(path: path))
      diagnostics = try TextCaptureReader().read(&source) { record in
        normalizer.feed(record) { replayer.apply($0) }
      }
      sha256 = source.hexDigest
    } catch {
      let code = ExitCode(rawValue: error.exitCode) ?? .ioError
      return InputReport(
        path: path, modelSelection: options.modelSelection, profilePath: options.profilePath,
        profileMisses: nil, read: summary, result: nil, error: (code, error.message))
    }
    normalizer.finish { replayer.apply($0) }
    let misses = profile?.missesByFunction(eventNames: diagnostics.eventNames)
    var overwritten: UInt64 = 0
    if let a = diagnostics.entriesInBuffer, let b = diagnostics.entriesWritten, b > a {
      overwritten = b - a
    }
    let result = replayer.finish(overwritten: overwritten, profileMisses: misses)
    summary.lines = diagnostics.lines
    summary.bytes = diagnostics.bytes
    summary.malformed = diagnostics.malformedCount
    summary.malformedSamples = diagnostics.samples.map { .init(line: $0.line, reason: $0.reason) }
    summary.foreignLines = diagnostics.foreignLines
    summary.truncatedLastLine = diagnostics.truncatedLastLine
    summary.backwardsTimestamps = diagnostics.backwardsTimestamps
    summary.firstBackwardsLine = diagnostics.firstBackwardsLine
    summary.incompleteHits = normalizer.issueCount
    summary.incompleteSamples = normalizer.issues.prefix(10).map { .init(line: $0.line, reason: $0.message) }
    summary.orphanReturns = normalizer.orphanReturns
    var report = InputReport(
      path: path, modelSelection: options.modelSelection, profilePath: options.profilePath,
      profileMisses: misses, read: summary, result: result)
    report.sha256 = sha256
    return report
  }
}
