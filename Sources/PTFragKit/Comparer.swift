import PTFragEvents
import PTFragReplay
import PTFragReport

/// Settings for one `compare` run.
public struct CompareOptions: Sendable {
  /// The model that replays the capture (`auto`: detected) and records its workload.
  public var analyze: AnalyzeOptions
  /// The strategies to simulate, in report order (ids); empty: every registered model.
  public var models: [String]
  /// The RCU grace period to simulate (ns); nil: measured from the capture
  /// (`GraceEstimator`), else `defaultGraceNs`.
  public var graceNs: UInt64?
  public init(analyze: AnalyzeOptions, models: [String] = [], graceNs: UInt64? = nil) {
    self.analyze = analyze
    self.models = models
    self.graceNs = graceNs
  }
}

/// The grace period simulated when the capture shows no free → execution pair and none is
/// given: 20 ms, two ticks at HZ=100 (Debian's s390x kernels), a typical quiet grace period.
public let defaultGraceNs: UInt64 = 20_000_000

/// Reads `compare`'s input twice: pass 1 is `analyze` (the replay through the capture's own
/// model, detected or given) and measures the RCU grace period; pass 2 replays through the
/// same model again, records the workload (`WorkloadRecorder`, fed the replay's inferences),
/// and drives every strategy (`Simulation`) in step with it. Memory: each model's state plus
/// bounded plot series, not the workload (which is never stored).
public enum Comparer {
  public static func compare(path: String, options: CompareOptions, pass: ((Int) -> Void)? = nil)
    throws(AnalyzeError) -> CompareReport
  {
    var strategies = try resolve(options.models)
    if !options.analyze.kernelFixes.isEmpty {
      // --kernel-fix: the strategies it concerns run as that kernel (powerpc-* → +fda4d71651f7).
      strategies = strategies.map { m in
        (try? ModelRegistry.id(m.descriptor.id, withKernelFixes: options.analyze.kernelFixes))
          .flatMap { ModelRegistry.model(id: $0) } ?? m
      }
    }
    // Pass 1: the replay itself, and the grace period.
    pass?(1)
    let grace = GraceBox()
    let first = try Analyzer.analyze(
      path: path, options: options.analyze, tap: ReplayTap(after: { grace.estimator.observe($0) }))
    let unread = CompareReport(input: first, graceNs: 0, graceSource: "", workload: WorkloadCounts(), strategies: [])
    // Not a capture, cut, malformed beyond the tolerance, or empty: nothing to simulate (a
    // comparison of nothing would "reproduce the capture" trivially).
    guard unread.notCompared == nil, let ran = first.result else { return unread }
    let graceNs: UInt64
    let source: String
    if let g = options.graceNs {
      graceNs = g
      source = "given with --rcu-grace"
    } else if let m = grace.estimator.medianNs {
      graceNs = m
      let queue = ran.model.id.hasPrefix("powerpc-") ? "tlb_remove_table" : "page_table_free_rcu/tlb_remove_table"
      source = "median of \(grace.estimator.pairs) \(queue) → __tlb_remove_table delays in the capture"
    } else {
      graceNs = defaultGraceNs
      source = "default (the capture shows no tlb batch execution to measure)"
    }

    // Pass 2: the same replay, recording the workload and driving every strategy.
    pass?(2)
    let driver = CompareDriver(strategies: strategies, graceNs: graceNs)
    var second = options.analyze
    second.modelID = ran.model.id
    second.modelSelection = first.modelSelection
    let replay = try Analyzer.analyze(path: path, options: second, tap: driver.tap)
    guard replay.error == nil, let result = replay.result else {
      return CompareReport(input: replay, graceNs: graceNs, graceSource: source, workload: WorkloadCounts(), strategies: [])
    }
    let endNs = result.stats.occupancy.lastNs
    var rows: [StrategyResult] = []
    for s in driver.simulations {
      s.finish(atNs: endNs)
      rows.append(
        StrategyResult(
          descriptor: s.descriptor, ran: s.descriptor.id == result.model.id, timeline: s.timeline,
          series: s.series, callbacksRun: s.callbacksRun, callbacksPending: s.callbacksPending,
          selfCheck: s.selfCheck, notes: s.notes))
    }
    // The report shows pass 1, exactly what `analyze` says (pass 2 replays the same events
    // through the same model, so its occupancy is the same; only an auto-detection note
    // can differ).
    return CompareReport(
      input: first, graceNs: graceNs, graceSource: source, workload: driver.recorder.counts,
      strategies: rows)
  }

  /// The strategies `ids` name (every registered model when empty), in the given order.
  static func resolve(_ ids: [String]) throws(AnalyzeError) -> [any AllocatorModel.Type] {
    if ids.isEmpty { return ModelRegistry.all }
    var out: [any AllocatorModel.Type] = []
    for id in ids {
      guard let m = ModelRegistry.model(id: id) else { throw .unknownModel(id) }
      if !out.contains(where: { $0.descriptor.id == id }) { out.append(m) }
    }
    return out
  }
}

final class GraceBox {
  var estimator = GraceEstimator()
}

/// Pass 2 of `compare`: turns each replayed event into workload ops and hands them to every
/// simulation.
final class CompareDriver {
  var recorder = WorkloadRecorder()
  let simulations: [Simulation]
  private var inferred: [InferredOperation] = []
  private var ops: [WorkloadOp] = []

  init(strategies: [any AllocatorModel.Type], graceNs: UInt64) {
    simulations = strategies.map { Simulation(model: $0, graceNs: graceNs) }
  }

  var tap: ReplayTap {
    ReplayTap(
      prepare: { [unowned self] r in r.context.onInferred = { [unowned self] in self.inferred.append($0) } },
      after: { [unowned self] e in self.after(e) })
  }

  func after(_ e: Event) {
    // LOST markers are not sampled by a replay: nothing happens at them.
    guard e.kind != .lost else {
      inferred.removeAll(keepingCapacity: true)
      return
    }
    ops.removeAll(keepingCapacity: true)
    recorder.record(e, inferred: inferred) { ops.append($0) }
    inferred.removeAll(keepingCapacity: true)
    for s in simulations { s.apply(ops, atNs: e.timestampNs) }
  }
}
