/// The quantities the waste statistics follow over time (docs/kernel-models.md §8), one value
/// each.
///
/// Units: `pagesHeld` and `idealPages` in pages of the model's `pageBytes`; `live` in tables;
/// `pending`, `unknown`, `reusableNow`, `reusableLater`, `stranded` in table slots (s390: 2 KiB
/// halves; powerpc: fragments; `slotBytes = pageBytes / slotsPerPage`).
public struct OccupancyQuantities<Value: Sendable & Equatable>: Sendable, Equatable {
  /// Pages the allocator owns.
  public var pagesHeld: Value
  /// Tables allocated and not freed.
  public var live: Value
  /// Slots waiting for a tlb execution or an RCU grace period.
  public var pending: Value
  /// Slots whose state the capture does not show (history before the capture).
  public var unknown: Value
  /// Free slots the next allocation takes.
  public var reusableNow: Value
  /// Free slots on listed pages behind the head.
  public var reusableLater: Value
  /// Free slots that cannot be reused before their page goes.
  public var stranded: Value
  /// The ideal lower bound: `ceil(live / slotsPerPage)` pages (every live table packed).
  public var idealPages: Value

  public init(repeating v: Value) {
    pagesHeld = v
    live = v
    pending = v
    unknown = v
    reusableNow = v
    reusableLater = v
    stranded = v
    idealPages = v
  }
}

/// Occupancy over the capture's time: peaks and time-weighted means of pages held, tables
/// live, pending slots and the three kinds of waste, and the ideal lower bound, read from the
/// model's O(1) `occupancy` after every event (docs/kernel-models.md §8).
///
/// The value after an event holds until the next event's timestamp (piecewise constant);
/// the mean is ∫ value dt / (last timestamp − first timestamp), over the trace clock (ns).
/// Timestamps are not guaranteed sorted across CPUs: an event stamped earlier than the latest
/// one seen adds no time (dt = 0) but still sets the value that holds from then on.
/// `LOST` markers carry no timestamp and are not sampled. When the capture spans no time
/// (one timestamp), the means are the values after the last event.
///
/// The no-sharing baseline (one page per table) is `live` pages: its peak and mean are those
/// of `live`. The same type follows one mm (`MMOccupancyBook`) and one simulated strategy.
public struct OccupancyTimeline: Sendable, Equatable {
  /// Table slots per page of the model (2 on s390 A/B/C/D, NR on powerpc); 0 until the first
  /// sample.
  public var slotsPerPage = 0
  /// Bytes per page of the model; 0 until the first sample.
  public var pageBytes = 0
  /// Most of each quantity at once (after some event).
  public var peak = OccupancyQuantities<Int>(repeating: 0)
  /// ∫ quantity dt, in quantity·ns.
  public var integral = OccupancyQuantities<Double>(repeating: 0)
  /// First and latest timestamp sampled (ns, trace clock); nil before the first sample.
  public var firstNs: UInt64? = nil
  public var lastNs: UInt64 = 0
  /// Samples taken (events with a timestamp).
  public var samples = 0
  /// The values that hold since `lastNs`.
  public var current = OccupancyQuantities<Int>(repeating: 0)

  public init() {}

  /// Takes the occupancy after an event stamped `ns`. O(1).
  @inline(__always)
  public mutating func observe(_ o: Occupancy, atNs ns: UInt64) {
    samples += 1
    if firstNs == nil {
      firstNs = ns
      lastNs = ns
      slotsPerPage = o.slotsPerPage
      pageBytes = o.pageBytes
    } else if ns > lastNs {
      let dt = Double(ns - lastNs)
      integral.pagesHeld += Double(current.pagesHeld) * dt
      integral.live += Double(current.live) * dt
      integral.pending += Double(current.pending) * dt
      integral.unknown += Double(current.unknown) * dt
      integral.reusableNow += Double(current.reusableNow) * dt
      integral.reusableLater += Double(current.reusableLater) * dt
      integral.stranded += Double(current.stranded) * dt
      integral.idealPages += Double(current.idealPages) * dt
      lastNs = ns
    }
    current.pagesHeld = o.pagesHeld
    current.live = o.live
    current.pending = o.pending
    current.unknown = o.unknown
    current.reusableNow = o.reusableNow
    current.reusableLater = o.reusableLater
    current.stranded = o.stranded
    let spp = max(o.slotsPerPage, 1)
    current.idealPages = (o.live + spp - 1) / spp
    if current.pagesHeld > peak.pagesHeld { peak.pagesHeld = current.pagesHeld }
    if current.live > peak.live { peak.live = current.live }
    if current.pending > peak.pending { peak.pending = current.pending }
    if current.unknown > peak.unknown { peak.unknown = current.unknown }
    if current.reusableNow > peak.reusableNow { peak.reusableNow = current.reusableNow }
    if current.reusableLater > peak.reusableLater { peak.reusableLater = current.reusableLater }
    if current.stranded > peak.stranded { peak.stranded = current.stranded }
    if current.idealPages > peak.idealPages { peak.idealPages = current.idealPages }
  }

  /// Time covered, in ns (last − first timestamp sampled).
  public var spanNs: UInt64 { firstNs.map { lastNs - $0 } ?? 0 }

  /// Time-weighted means of every quantity; nil without samples.
  public var mean: OccupancyQuantities<Double>? {
    guard samples > 0 else { return nil }
    let span = Double(spanNs)
    func m(_ i: Double, _ c: Int) -> Double { spanNs > 0 ? i / span : Double(c) }
    var q = OccupancyQuantities<Double>(repeating: 0)
    q.pagesHeld = m(integral.pagesHeld, current.pagesHeld)
    q.live = m(integral.live, current.live)
    q.pending = m(integral.pending, current.pending)
    q.unknown = m(integral.unknown, current.unknown)
    q.reusableNow = m(integral.reusableNow, current.reusableNow)
    q.reusableLater = m(integral.reusableLater, current.reusableLater)
    q.stranded = m(integral.stranded, current.stranded)
    q.idealPages = m(integral.idealPages, current.idealPages)
    return q
  }

  /// Most pages held at once (pages of `pageBytes`).
  public var peakPagesHeld: Int { peak.pagesHeld }
  /// Most tables live (allocated, not freed) at once.
  public var peakLiveTables: Int { peak.live }
  /// ∫ pages held dt and ∫ live tables dt, in page·ns and table·ns.
  public var pageNs: Double { integral.pagesHeld }
  public var liveNs: Double { integral.live }
  /// The values that hold since `lastNs`.
  public var currentPagesHeld: Int { current.pagesHeld }
  public var currentLiveTables: Int { current.live }

  /// Time-weighted mean of pages held; nil without samples.
  public var meanPagesHeld: Double? { mean?.pagesHeld }

  /// Time-weighted mean of live tables; nil without samples.
  public var meanLiveTables: Double? { mean?.live }

  /// The pages the live tables would need if packed perfectly: mean live tables / slots per
  /// page (the ideal lower bound of docs/kernel-models.md §8, as a mean, not rounded up; the
  /// time-weighted mean of `ceil(live / slotsPerPage)` is `mean.idealPages`).
  public var meanIdealPages: Double? {
    guard let live = meanLiveTables, slotsPerPage > 0 else { return nil }
    return live / Double(slotsPerPage)
  }

  /// Waste ratio = mean pages held / (mean live tables / slots per page) = `meanPagesHeld /
  /// meanIdealPages` (held pages over the pages the mean live tables fill packed perfectly;
  /// not over `mean.idealPages`, the mean of ⌈live/slots⌉). 1.0 is perfect packing; 2.0
  /// means twice the pages needed. nil (undefined)
  /// when no table was live on average (no samples, or mean live tables = 0).
  public var wasteRatio: Double? {
    guard let held = meanPagesHeld, let ideal = meanIdealPages, ideal > 0 else { return nil }
    return held / ideal
  }

  /// held/live = mean slots held / mean live tables (docs/kernel-models.md §8). The same
  /// number as `wasteRatio` (slots held over slots the live tables fill); nil when undefined.
  public var heldLiveRatio: Double? { wasteRatio }

  /// Bytes of one table slot (`pageBytes / slotsPerPage`); 0 before the first sample.
  public var slotBytes: Int { slotsPerPage > 0 ? pageBytes / slotsPerPage : 0 }
}
