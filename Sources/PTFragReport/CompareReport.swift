import PTFragReplay

/// One strategy's figures on the workload.
public struct StrategyResult: Sendable {
  public var descriptor: ModelDescriptor
  /// The capture's own model (the strategy the kernel ran).
  public var ran: Bool
  public var timeline: OccupancyTimeline
  public var series: OccupancySeries
  public var callbacksRun: Int
  public var callbacksPending: Int
  /// Findings the model reported on its own simulation (expected: none).
  public var selfCheck: [String]
  /// What the model says about its run (`Simulation.notes`).
  public var notes: [String]
  public init(
    descriptor: ModelDescriptor, ran: Bool, timeline: OccupancyTimeline, series: OccupancySeries,
    callbacksRun: Int, callbacksPending: Int, selfCheck: [String], notes: [String] = []
  ) {
    self.notes = notes
    self.descriptor = descriptor
    self.ran = ran
    self.timeline = timeline
    self.series = series
    self.callbacksRun = callbacksRun
    self.callbacksPending = callbacksPending
    self.selfCheck = selfCheck
  }
}

/// What `compare` found for one input.
public struct CompareReport: Sendable {
  /// The replay (verdict, findings, the replayed occupancy); its `error` when unreadable.
  public var input: InputReport
  public var graceNs: UInt64
  public var graceSource: String
  public var workload: WorkloadCounts
  public var strategies: [StrategyResult]
  public init(
    input: InputReport, graceNs: UInt64, graceSource: String, workload: WorkloadCounts,
    strategies: [StrategyResult]
  ) {
    self.input = input
    self.graceNs = graceNs
    self.graceSource = graceSource
    self.workload = workload
    self.strategies = strategies
  }

  /// Why this input was not compared, and its exit code (nil: compared, exit 0), the same
  /// judgement `analyze` makes of the input: it could not be read or is not a capture (its
  /// error's code, e.g. 65 or 66), it is incomplete (65: cut inside its last record, or
  /// malformed beyond the tolerance), or it holds no page-table event (2: nothing to compare).
  public var notCompared: (code: ExitCode, reason: String)? {
    if let e = input.error { return (e.code, e.message) }
    if input.read.incomplete {
      return (.malformedInput, "incomplete: " + input.read.incompleteReasons(path: input.path).joined(separator: "; "))
    }
    guard let r = input.result else { return (.ioError, "\(input.path): not replayed") }
    if r.events == 0 {
      return (.inconclusive, "nothing to compare: the capture holds no page-table events")
    }
    return nil
  }

  /// The strategy that ran (the capture's model), when simulated.
  public var ranStrategy: StrategyResult? { strategies.first { $0.ran } }
}
