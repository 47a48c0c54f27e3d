import PTFragEvents
import PTFragRead
import PTFragReplay
import PTFragReport
import Synchronization

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
  /// With `modelID == "auto"`: the most normalized events kept for detection.
  public var detectionLookahead: Int
  /// Read, parse and normalize on a second thread while this one replays (when the machine
  /// has two or more CPUs). Same results either way; false runs everything on one thread.
  public var pipelined: Bool
  /// Called now and then with the bytes read so far (progress on a terminal); nil: none.
  public var progress: (@Sendable (UInt64) -> Void)? = nil
  /// Fixes the kernel is declared to have (`--kernel-fix`, e.g. `fda4d71651f7`): the model
  /// (given or detected) becomes its variant for such kernels (`ModelRegistry.id(_:withKernelFixes:)`).
  public var kernelFixes: [String] = []
  /// Per-mm records kept for the report (the mms with the highest peak of pages held): the
  /// text shows 10, HTML 20, JSON all kept. Memory is bounded by this, not by the mms seen.
  public var mmRecords = MMOccupancyBook.defaultRecords
  public init(
    modelID: String = ModelRegistry.defaultModel.descriptor.id, modelSelection: String = "given with --model",
    profilePath: String? = nil, malformedTolerance: Int = 1000,
    detectionLookahead: Int = VariantDetector.defaultMaxEvents, pipelined: Bool = true
  ) {
    self.modelID = modelID
    self.modelSelection = modelSelection
    self.profilePath = profilePath
    self.malformedTolerance = malformedTolerance
    self.detectionLookahead = detectionLookahead
    self.pipelined = pipelined
  }
}

/// Errors of the pipeline that are not about one input.
public enum AnalyzeError: Error, Sendable {
  case unknownModel(String)
  case kernelFix(String)
  case profile(ReadError)
  case baseline(ReadError)

  public var message: String {
    switch self {
    case .unknownModel(let id):
      "unknown model '\(id)'; known models: \(ModelRegistry.ids.joined(separator: ", "))"
    case .kernelFix(let m): m
    case .profile(let e): "kprobe profile: \(e.message)"
    case .baseline(let e): "baseline: \(e.message)"
    }
  }
  public var exitCode: ExitCode {
    switch self {
    case .unknownModel, .kernelFix: .usage
    case .profile(let e), .baseline(let e): ExitCode(rawValue: e.exitCode) ?? .ioError
    }
  }
}

/// read → normalize → replay(model) → report data, for one input.
public enum Analyzer {
  /// The model id that asks for detection from the trace.
  public static let autoModelID = "auto"

  /// Analyzes one capture (`-` = standard input). Never throws for problems of the input
  /// itself: those become the report's `error` (with the exit code they map to).
  ///
  /// With `modelID == "auto"`, the first normalized events (at most
  /// `options.detectionLookahead`, fewer once the evidence is decisive) are kept in a
  /// look-ahead buffer while `VariantDetector` reads them; then the chosen model replays the
  /// buffer and the rest of the stream. The input is read once (standard input works). When
  /// detection refuses, the report's error is exit 64 (nothing decisive: give `--model`) or 65
  /// (contradictory evidence, or a v6.14+ capture), and reading stops there.
  public static func analyze(path: String, options: AnalyzeOptions, tap: ReplayTap? = nil)
    throws(AnalyzeError) -> InputReport
  {
    let auto = options.modelID == autoModelID
    var fixedModel: (any AllocatorModel.Type)? = nil
    if !auto {
      var id = options.modelID
      if !options.kernelFixes.isEmpty {
        do { id = try ModelRegistry.id(id, withKernelFixes: options.kernelFixes) } catch {
          throw .kernelFix(error.message)
        }
      }
      guard let m = ModelRegistry.model(id: id) else { throw .unknownModel(id) }
      fixedModel = m
    }
    var profile: KprobeProfile? = nil
    if let pp = options.profilePath {
      do { profile = try KprobeProfile.load(path: pp) } catch { throw .profile(error) }
    }
    var summary = ReadSummary()
    summary.malformedTolerance = options.malformedTolerance
    var selection = options.modelSelection
    var stage = ReplayStage(
      fixed: fixedModel, profileListed: profile.map { Set($0.hitsByFunction(eventNames: [:]).keys) },
      detector: auto
        ? VariantDetector(
          profileFunctions: Set(profile?.missesByFunction(eventNames: [:]).keys ?? [:].keys),
          maxEvents: options.detectionLookahead)
        : nil, tap: tap, kernelFixes: options.kernelFixes)
    stage.mmRecords = options.mmRecords
    var normalizer = Normalizer()
    let diagnostics: ReadDiagnostics
    let digest = DigestSink()
    do {
      // Text, JSON Lines or a JSON array, plain or gzip: detected from the first bytes. The
      // digest is of the file as stored, hashed as it is read.
      let open = { () throws(ReadError) -> CaptureInput in
        try CaptureInput(
          sniffing: ProgressSource(
            SHA256Source(try FileSource(path: path), sink: digest), report: options.progress))
      }
      var refused = false
      if options.pipelined && Pipeline.onlineCPUs > 1 {
        // Stage 1 (second thread): read, parse, normalize, count the probe lines. Stage 2
        // (here): detect and replay. Detection reads the counts as they stand at each event
        // (`ReplayStage.choose`), so with a detector pending they travel in the stream, each
        // before the events of its line; the totals (the profile fit) are stage 1's.
        // `normalizer` and `lines` belong to stage 1 until `run` returns (the thread joined).
        var lines = [Int](repeating: 0, count: KernelFunction.allCases.count)
        let stream = StreamedCounts(wanted: stage.detecting)
        var streaming = stage.detecting
        diagnostics = try Pipeline.run(
          produce: { (emit) throws(ReadError) -> ReadDiagnostics in
            var input = try open()
            return try CaptureReader.read(&input) { record in
              if case .hit(let h) = record {
                lines[Int(h.function.rawValue)] &+= 1
                if stream.wanted { emit(.hit(h.function)) }
              }
              normalizer.feed(record) { emit(.event($0)) }
            }
          },
          consume: { item in
            switch item {
            case .hit(let f): stage.count(f)
            case .event(let e):
              // After a refusal the rest is drained unread by the model.
              if !refused {
                refused = !stage.deliver(e)
                if streaming && !stage.detecting {
                  // Decided (or refused): no count is read again before the totals.
                  streaming = false
                  stream.stop()
                }
              }
            }
          })
        stage.setHits(lines)
      } else {
        var input = try open()
        diagnostics = try CaptureReader.read(&input) { (record) throws(ReadError) in
          stage.count(record)
          normalizer.feed(record) { if !refused { refused = !stage.deliver($0) } }
          if refused {
            // Stop reading: nothing more can be replayed.
            throw ReadError.malformed(path: path, line: 0, reason: "detection refused")
          }
        }
      }
    } catch {
      if let r = stage.refusal { return refusalReport(path, options, summary, r) }
      let code = ExitCode(rawValue: error.exitCode) ?? .ioError
      return InputReport(
        path: path, modelSelection: selection, profilePath: options.profilePath,
        profileMisses: nil, read: summary, result: nil, error: (code, error.message))
    }
    normalizer.finish { _ = stage.deliver($0) }
    stage.endOfInput()
    if let r = stage.refusal { return refusalReport(path, options, summary, r) }
    if auto { selection = stage.nothingDetected ? stage.reason : "auto-detected: " + stage.reason }
    let replayer = stage.replayer!
    // A profile from another kernel or run says nothing about this capture's misses: it is
    // checked against the capture and, when it does not fit, not used (misses stay possible).
    let profileMismatch = profile.map {
      ProfileFit.mismatches($0, hits: stage.hits, eventNames: diagnostics.eventNames)
    } ?? []
    let misses = profileMismatch.isEmpty ? profile?.missesByFunction(eventNames: diagnostics.eventNames) : nil
    var overwritten: UInt64 = 0
    if let a = diagnostics.entriesInBuffer, let b = diagnostics.entriesWritten, b > a {
      overwritten = b - a
    }
    let result = replayer.finish(
      overwritten: overwritten, profileMisses: misses, damagedEvents: diagnostics.damagedProbeLines,
      valuelessEvents: normalizer.issueCount)
    summary.format = diagnostics.format.name
    summary.lines = diagnostics.lines
    summary.bytes = diagnostics.bytes
    summary.malformed = diagnostics.malformedCount
    summary.malformedSamples = diagnostics.samples.map { .init(line: $0.line, reason: $0.reason) }
    summary.foreignLines = diagnostics.foreignLines
    summary.truncatedLastLine = diagnostics.truncatedLastLine
    summary.cutLine = diagnostics.cutLine
    summary.backwardsTimestamps = diagnostics.backwardsTimestamps
    summary.firstBackwardsLine = diagnostics.firstBackwardsLine
    summary.incompleteHits = normalizer.issueCount
    summary.incompleteSamples = normalizer.issues.prefix(10).map { .init(line: $0.line, reason: $0.message) }
    summary.orphanReturns = normalizer.orphanReturns
    if let why = notACapture(diagnostics, events: result.events, path: path) {
      // README.md, /bin/ls, `hello world`: lines, none of them a probe line. Not a capture
      // with nothing in it (that is inconclusive, exit 2): not a capture at all (65).
      summary.cutLine = nil
      var report = InputReport(
        path: path, modelSelection: auto ? "auto: not a capture, no model chosen" : selection,
        profilePath: options.profilePath, profileMisses: nil, read: summary, result: nil,
        error: (.malformedInput, why))
      report.sha256 = digest.hex
      report.modelChosen = false
      return report
    }
    var report = InputReport(
      path: path, modelSelection: selection, profilePath: options.profilePath,
      profileMisses: misses, read: summary, result: result)
    report.modelChosen = !(auto && stage.nothingDetected)
    report.profileMismatch = profileMismatch
    report.sha256 = digest.hex
    return report
  }

  /// Why an input is not a capture at all (nil: it is one, perhaps an empty one): it has
  /// lines, and not one of them is a probe line (of the probed functions or of any other
  /// probe or tracer), a lost-events marker or a header. An empty input, or one of header
  /// lines only, is a capture that holds nothing (inconclusive, exit 2), not this.
  static func notACapture(_ d: ReadDiagnostics, events: Int, path: String) -> String? {
    guard events == 0, d.foreignLines == 0, d.malformedCount > 0 || d.cutLine != nil else { return nil }
    var why =
      "\(path): not a capture: none of its \(d.lines) line(s) is a probe line (ftrace text, trace-cmd report or JSON records of the page-table probes, see docs/trace-format.md)"
    if let first = d.samples.first { why += "; \(path):\(first.line): \(first.reason)" }
    if d.malformedCount > 0 && d.malformedCount < d.lines { why += "; \(d.malformedCount) line(s) do not parse" }
    return why
  }

  static func refusalReport(
    _ path: String, _ options: AnalyzeOptions, _ summary: ReadSummary,
    _ r: VariantDetector.Refusal
  ) -> InputReport {
    let code: ExitCode =
      switch r {
      case .undecidable: .usage
      case .unsupported: .malformedInput
      }
    return InputReport(
      path: path, modelSelection: "auto: refused", profilePath: options.profilePath,
      profileMisses: nil, read: summary, result: nil,
      error: (code, "\(path): cannot choose a model: \(r.message)"))
  }
}

/// The replay side of one analysis: a fixed model from the start, or a detector with its
/// look-ahead buffer until it decides.
struct ReplayStage {
  private(set) var replayer: Replayer?
  private var detector: VariantDetector?
  private var buffer: [Event] = []
  private(set) var refusal: VariantDetector.Refusal? = nil
  /// What detection found, for the report.
  private(set) var reason = ""
  /// Detection saw no event at all: no model was chosen (the replay of nothing uses the
  /// first registered model, which the report must not name as detected).
  private(set) var nothingDetected = false
  /// Evidence past the look-ahead already reported as a model mismatch.
  private var mismatchReported = false

  private let tap: ReplayTap?
  /// Functions the kprobe_profile has probes on (nil: no profile).
  private let profileListed: Set<KernelFunction>?
  /// Probe lines read so far, by `KernelFunction.rawValue` (entry and return together).
  private(set) var hits = [Int](repeating: 0, count: KernelFunction.allCases.count)
  /// `--kernel-fix`: applied to the detected model.
  private let kernelFixes: [String]

  init(
    fixed: (any AllocatorModel.Type)?, profileListed: Set<KernelFunction>? = nil,
    detector: VariantDetector?, tap: ReplayTap? = nil, kernelFixes: [String] = []
  ) {
    self.detector = detector
    self.tap = tap
    self.profileListed = profileListed
    self.kernelFixes = kernelFixes
    if let fixed { replayer = make(fixed) }
    buffer.reserveCapacity(detector == nil ? 0 : 1024)
  }

  /// `AnalyzeOptions.mmRecords`.
  var mmRecords = MMOccupancyBook.defaultRecords {
    didSet { replayer?.context.mmBook.maxFinished = mmRecords }
  }

  private func make(_ m: any AllocatorModel.Type) -> Replayer {
    let r = Replayer(model: m)
    r.context.mmBook.maxFinished = mmRecords
    tap?.prepare(r)
    return r
  }

  @inline(__always)
  private func feed(_ r: Replayer, _ e: Event) {
    r.apply(e)
    tap?.after(e)
  }

  /// Hands one event on; false once detection refused (stop reading).
  mutating func deliver(_ e: Event) -> Bool {
    if refusal != nil { return false }
    if let r = replayer {
      if detector != nil { checkLate(e, r) }
      feed(r, e)
      return true
    }
    buffer.append(e)
    if detector!.observe(e) || buffer.count >= detector!.maxEvents { choose(endOfInput: false) }
    return refusal == nil
  }

  mutating func endOfInput() {
    if replayer == nil && refusal == nil { choose(endOfInput: true) }
  }

  /// Counts one record's probe line.
  @inline(__always)
  mutating func count(_ record: TraceRecord) {
    if case .hit(let h) = record { count(h.function) }
  }

  /// Counts one probe line of `function`.
  @inline(__always)
  mutating func count(_ function: KernelFunction) { hits[Int(function.rawValue)] &+= 1 }

  /// The probe lines of the whole input, counted elsewhere (the pipeline's first stage):
  /// what `count` of every record would have reached.
  mutating func setHits(_ all: [Int]) { hits = all }

  /// A detector is still reading events: `choose` will read `hits` as they stand.
  var detecting: Bool { detector != nil && replayer == nil && refusal == nil }

  private mutating func choose(endOfInput: Bool) {
    if let listed = profileListed {
      // A profile that lacks a probe the capture has is from another kernel: its listing
      // must not choose the model.
      let lacking = KernelFunction.allCases.filter { hits[Int($0.rawValue)] > 0 && !listed.contains($0) }
      if !lacking.isEmpty {
        detector!.distrustProfile(
          "it has no probe on \(lacking.map(\.symbol).joined(separator: ", ")), which the capture has: it is from another kernel")
      }
    }
    // The capture's own probe lines: one of a function only s390 has outweighs any profile.
    detector!.captureHas(Set(KernelFunction.allCases.filter { hits[Int($0.rawValue)] > 0 }))
    // What made the detector decisive may have been the profile's listing, now set aside:
    // read on, as without it.
    if !endOfInput && !detector!.decisive && buffer.count < detector!.maxEvents { return }
    switch detector!.decide(endOfInput: endOfInput) {
    case .model(var id, var why):
      if !kernelFixes.isEmpty {
        do { id = try ModelRegistry.id(id, withKernelFixes: kernelFixes) } catch {
          why += "; --kernel-fix ignored: \(error.message)"
        }
      }
      guard let m = ModelRegistry.model(id: id) else {
        refusal = .unsupported("detected \(id), which this build does not know")
        return
      }
      reason = "\(id) — \(why)"
      start(m)
    case .empty:
      reason = "auto: nothing to detect, no model chosen: the capture holds no page-table events"
      nothingDetected = true
      start(ModelRegistry.all[0])
    case .refuse(let r):
      refusal = r
      buffer = []
    }
  }

  private mutating func start(_ m: any AllocatorModel.Type) {
    let r = make(m)
    replayer = r
    for e in buffer { feed(r, e) }
    buffer = []
  }

  /// After the look-ahead: evidence that contradicts the detected model (the only case
  /// that can arrive late is `pte_free_defer` on a capture detected as s390-6.1).
  private mutating func checkLate(_ e: Event, _ r: Replayer) {
    guard !mismatchReported, r.descriptor.id == "s390-6.1",
      e.kind == .deferBegin || e.kind == .rcuFree || e.kind == .deferEnd
    else { return }
    mismatchReported = true
    r.context.report(
      Inconclusive(
        reason: .modelMismatch, line: e.line, mm: e.mm,
        message:
          "\(e.kind == .rcuFree ? "pte_free_now" : "pte_free_defer") at line \(e.line): the kernel is v6.6 (variant B), but --model auto chose s390-6.1 from the first \(detector!.observed) events; s390-6.1 ignores pte_free_defer, so findings from here on may be artefacts: re-run with --model s390-6.6"
      ))
  }
}

/// Whether stage 2 of the pipeline still wants the probe-line counts sent in the stream
/// (while detection is pending). Set by stage 2 only, once, from true to false; stage 1 may
/// send a few more before it sees the change, which stage 2 counts harmlessly.
final class StreamedCounts: Sendable {
  private let flag: Atomic<Bool>
  init(wanted: Bool) { flag = Atomic(wanted) }
  var wanted: Bool { flag.load(ordering: .relaxed) }
  func stop() { flag.store(false, ordering: .relaxed) }
}

/// A look at the replay as it runs (`compare` records its workload this way): `prepare` gets
/// the replayer once it exists (before its first event), `after` each event once the model
/// applied it.
public struct ReplayTap {
  public var prepare: (Replayer) -> Void
  public var after: (Event) -> Void
  public init(prepare: @escaping (Replayer) -> Void = { _ in }, after: @escaping (Event) -> Void) {
    self.prepare = prepare
    self.after = after
  }
}

/// A byte source that reports the bytes read so far to `report`, every 8 MiB.
struct ProgressSource<Base: ByteSource>: ByteSource {
  var base: Base
  let report: (@Sendable (UInt64) -> Void)?
  private var count: UInt64 = 0
  private var next: UInt64 = 8 << 20

  init(_ base: Base, report: (@Sendable (UInt64) -> Void)?) {
    self.base = base
    self.report = report
  }

  var name: String { base.name }

  mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ReadError) -> Int {
    let n = try base.read(into: buffer)
    count += UInt64(n)
    if let report, count >= next {
      next = count + (8 << 20)
      report(count)
    }
    return n
  }
}

/// Whether a kprobe_profile belongs to the capture it is given with.
public enum ProfileFit {
  /// What does not fit, one sentence each (empty: it fits): a probe the capture has and the
  /// profile lacks (another kernel, or other probes), or fewer hits than the capture has
  /// lines (another run: every line is a hit).
  public static func mismatches(
    _ profile: KprobeProfile, hits: [Int], eventNames: [String: (KernelFunction, ProbeHit.Kind)]
  ) -> [String] {
    let counted = profile.hitsByFunction(eventNames: eventNames)
    var out: [String] = []
    for f in KernelFunction.allCases {
      let lines = hits[Int(f.rawValue)]
      guard lines > 0 else { continue }
      guard let h = counted[f] else {
        out.append("the capture has \(lines) \(f.symbol) line(s), the profile no probe on \(f.symbol)")
        continue
      }
      if h < UInt64(lines) {
        out.append("the capture has \(lines) \(f.symbol) line(s), more than the profile's \(h) hit(s)")
      }
    }
    return out
  }
}
