import Dispatch
import PTFragEvents
import PTFragRead
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
  /// Strategies simulated on other threads, concurrently with the replay and each other
  /// (false: one after the other on the replay's thread). The result is the same.
  public var parallel = true
  /// Events per chunk handed to the strategies (the unit of their concurrency).
  public var chunkEvents = 8192
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
    // Pass 1: the grace period, from the normalized events alone (no model: it does not
    // depend on one). Skipped when given. A capture pass 1 cannot read is reported by pass 2.
    pass?(1)
    let graceNs: UInt64
    var measuredPairs: Int? = nil
    if let g = options.graceNs {
      graceNs = g
    } else {
      var estimator = GraceEstimator()
      var normalizer = Normalizer()
      _ = try? CaptureReader.read(path: path) { record in
        normalizer.feed(record) { estimator.observe($0) }
      }
      normalizer.finish { estimator.observe($0) }
      if let m = estimator.medianNs {
        graceNs = m
        measuredPairs = estimator.pairs
      } else {
        graceNs = defaultGraceNs
      }
    }

    // Pass 2: the replay (exactly `analyze`, detection included), recording the workload and
    // driving every strategy; the strategies run on other threads, a chunk of events behind.
    pass?(2)
    let driver = CompareDriver(
      strategies: strategies, graceNs: graceNs, chunkEvents: max(1, options.chunkEvents),
      parallel: options.parallel)
    let replay = try Analyzer.analyze(path: path, options: options.analyze, tap: driver.tap)
    driver.finish()
    let unread = CompareReport(input: replay, graceNs: 0, graceSource: "", workload: WorkloadCounts(), strategies: [])
    // Not a capture, cut, malformed beyond the tolerance, or empty: nothing to simulate (a
    // comparison of nothing would "reproduce the capture" trivially).
    guard unread.notCompared == nil, let result = replay.result else { return unread }
    let source: String
    if options.graceNs != nil {
      source = "given with --rcu-grace"
    } else if let pairs = measuredPairs {
      let queue = result.model.architecture == .powerpc ? "tlb_remove_table" : "page_table_free_rcu/tlb_remove_table"
      source = "median of \(pairs) \(queue) → __tlb_remove_table delays in the capture"
    } else {
      source = "default (the capture shows no tlb batch execution to measure)"
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
    return CompareReport(
      input: replay, graceNs: graceNs, graceSource: source, workload: driver.recorder.counts,
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

/// Pass 2 of `compare`: turns each replayed event into workload ops and hands them to every
/// simulation. The replay thread records ops into chunks of `chunkEvents` events; each full
/// chunk goes to the strategies on other threads (one strategy per task, chunks in order,
/// at most one chunk in flight while the next fills), so the strategies run concurrently with
/// each other and with the replay. Each simulation sees exactly the ops, in exactly the order,
/// it would see one event at a time: the result does not depend on the thread count.
final class CompareDriver: @unchecked Sendable {
  var recorder = WorkloadRecorder()
  let simulations: [Simulation]
  private var inferred: [InferredOperation] = []
  /// The chunk being filled: the ops of each event, and per event its time and where its
  /// ops end.
  private var ops: [WorkloadOp] = []
  private var marks: [(ns: UInt64, end: Int)] = []
  private let chunkEvents: Int
  private let inFlight = DispatchGroup()
  /// Strategies on one thread, in the calling thread (for `parallel == false`).
  private let parallel: Bool

  init(strategies: [any AllocatorModel.Type], graceNs: UInt64, chunkEvents: Int = 8192, parallel: Bool = true) {
    simulations = strategies.map { Simulation(model: $0, graceNs: graceNs) }
    self.chunkEvents = chunkEvents
    self.parallel = parallel && Pipeline.onlineCPUs > 1
    ops.reserveCapacity(chunkEvents * 2)
    marks.reserveCapacity(chunkEvents)
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
    recorder.record(e, inferred: inferred) { ops.append($0) }
    inferred.removeAll(keepingCapacity: true)
    marks.append((e.timestampNs, ops.count))
    if marks.count >= chunkEvents { flush() }
  }

  /// Hands the chunk to the strategies (after the previous chunk is done) and starts a new one.
  private func flush() {
    guard !marks.isEmpty else { return }
    let chunk = Chunk(ops: ops, marks: marks)
    ops.removeAll(keepingCapacity: true)
    marks.removeAll(keepingCapacity: true)
    guard parallel else {
      for s in simulations { chunk.run(s) }
      return
    }
    inFlight.wait()
    // Each simulation is touched by one task at a time (chunks are serialised by `inFlight`).
    let sims = Strategies(all: simulations)
    DispatchQueue.global().async(group: inFlight) {
      DispatchQueue.concurrentPerform(iterations: sims.all.count) { i in chunk.run(sims.all[i]) }
    }
  }

  /// The replay ended: the last chunk runs, and every strategy has seen every event.
  func finish() {
    flush()
    inFlight.wait()
  }

  struct Strategies: @unchecked Sendable { let all: [Simulation] }

  struct Chunk: @unchecked Sendable {
    let ops: [WorkloadOp]
    let marks: [(ns: UInt64, end: Int)]
    func run(_ s: Simulation) {
      var start = 0
      ops.withUnsafeBufferPointer { all in
        for m in marks {
          s.apply(UnsafeBufferPointer(rebasing: all[start..<m.end]), atNs: m.ns)
          start = m.end
        }
      }
    }
  }
}
