/// Occupancy over the capture's time: peaks and time-weighted means of pages held and tables
/// live, read from the model's O(1) `occupancy` after every event (kernel-models.md §8).
///
/// The value after an event holds until the next event's timestamp (piecewise constant);
/// the mean is ∫ value dt / (last timestamp − first timestamp), over the trace clock (ns).
/// Timestamps are not guaranteed sorted across CPUs: an event stamped earlier than the latest
/// one seen adds no time (dt = 0) but still sets the value that holds from then on.
/// `LOST` markers carry no timestamp and are not sampled. When the capture spans no time
/// (one timestamp), the means are the values after the last event.
///
/// Kept separate from the counters so that the waste statistics (issue 5) can extend it.
public struct OccupancyTimeline: Sendable, Equatable {
  /// Table slots per page of the model (2 on s390 A/B/C, 1 on D, NR on powerpc); 0 until
  /// the first sample.
  public var slotsPerPage = 0
  /// Most pages held at once (pages of the model's `pageBytes`).
  public var peakPagesHeld = 0
  /// Most tables live (allocated, not freed) at once.
  public var peakLiveTables = 0
  /// ∫ pages held dt and ∫ live tables dt, in page·ns and table·ns.
  public var pageNs: Double = 0
  public var liveNs: Double = 0
  /// First and latest timestamp sampled (ns, trace clock); nil before the first sample.
  public var firstNs: UInt64? = nil
  public var lastNs: UInt64 = 0
  /// Samples taken (events with a timestamp).
  public var samples = 0
  /// The values that hold since `lastNs`.
  public var currentPagesHeld = 0
  public var currentLiveTables = 0

  public init() {}

  /// Takes the occupancy after an event stamped `ns`. O(1).
  @inline(__always)
  public mutating func observe(_ o: Occupancy, atNs ns: UInt64) {
    samples += 1
    if firstNs == nil {
      firstNs = ns
      lastNs = ns
      slotsPerPage = o.slotsPerPage
    } else if ns > lastNs {
      let dt = Double(ns - lastNs)
      pageNs += Double(currentPagesHeld) * dt
      liveNs += Double(currentLiveTables) * dt
      lastNs = ns
    }
    currentPagesHeld = o.pagesHeld
    currentLiveTables = o.live
    if o.pagesHeld > peakPagesHeld { peakPagesHeld = o.pagesHeld }
    if o.live > peakLiveTables { peakLiveTables = o.live }
  }

  /// Time covered, in ns (last − first timestamp sampled).
  public var spanNs: UInt64 { firstNs.map { lastNs - $0 } ?? 0 }

  /// Time-weighted mean of pages held; nil without samples.
  public var meanPagesHeld: Double? {
    guard samples > 0 else { return nil }
    return spanNs > 0 ? pageNs / Double(spanNs) : Double(currentPagesHeld)
  }

  /// Time-weighted mean of live tables; nil without samples.
  public var meanLiveTables: Double? {
    guard samples > 0 else { return nil }
    return spanNs > 0 ? liveNs / Double(spanNs) : Double(currentLiveTables)
  }

  /// The pages the live tables would need if packed perfectly: mean live tables / slots per
  /// page (the ideal lower bound of kernel-models.md §8, as a mean, not rounded up).
  public var meanIdealPages: Double? {
    guard let live = meanLiveTables, slotsPerPage > 0 else { return nil }
    return live / Double(slotsPerPage)
  }

  /// Waste ratio = mean pages held / mean ideal pages (held pages over the pages the live
  /// tables need). 1.0 is perfect packing; 2.0 means twice the pages needed. nil (undefined)
  /// when no table was live on average (no samples, or mean live tables = 0).
  public var wasteRatio: Double? {
    guard let held = meanPagesHeld, let ideal = meanIdealPages, ideal > 0 else { return nil }
    return held / ideal
  }
}
