/// Pages held and tables live over a capture, kept for plotting in bounded memory.
///
/// Each point aggregates `stride` consecutive samples (events with a timestamp): the first
/// timestamp, the maximum of pages held and tables live, and the values after the last sample.
/// When `capacity` points are full, neighbouring points merge pairwise and the stride doubles,
/// so memory stays at most `capacity` points whatever the capture's length (state, not
/// history), and every peak survives the merge.
public struct OccupancySeries: Sendable, Equatable {
  public struct Point: Sendable, Equatable {
    /// Timestamp of the point's first sample (ns, trace clock).
    public var ns: UInt64
    /// Maxima over the point's samples.
    public var maxPagesHeld: Int
    public var maxLive: Int
    /// Waste (held slots − live − pending − unknown) at the point's last sample, in slots.
    public var waste: Int
    public var pending: Int
  }

  public private(set) var points: [Point] = []
  public let capacity: Int
  /// Samples per point (a power of two).
  public private(set) var stride = 1
  private var inCurrent = 0

  public init(capacity: Int = 1024) {
    precondition(capacity >= 4 && capacity % 2 == 0)
    self.capacity = capacity
    points.reserveCapacity(capacity)
  }

  /// Adds the occupancy after an event stamped `ns`. Amortized O(1).
  @inline(__always)
  public mutating func observe(_ o: Occupancy, atNs ns: UInt64) {
    if inCurrent > 0 && inCurrent < stride, !points.isEmpty {
      let i = points.count - 1
      if o.pagesHeld > points[i].maxPagesHeld { points[i].maxPagesHeld = o.pagesHeld }
      if o.live > points[i].maxLive { points[i].maxLive = o.live }
      points[i].waste = o.waste
      points[i].pending = o.pending
      inCurrent += 1
      return
    }
    if points.count == capacity { compact() }
    points.append(
      Point(ns: ns, maxPagesHeld: o.pagesHeld, maxLive: o.live, waste: o.waste, pending: o.pending))
    inCurrent = 1
  }

  private mutating func compact() {
    var merged: [Point] = []
    merged.reserveCapacity(capacity)
    var i = 0
    while i + 1 < points.count {
      let a = points[i]
      let b = points[i + 1]
      merged.append(
        Point(
          ns: a.ns, maxPagesHeld: max(a.maxPagesHeld, b.maxPagesHeld), maxLive: max(a.maxLive, b.maxLive),
          waste: b.waste, pending: b.pending))
      i += 2
    }
    if i < points.count { merged.append(points[i]) }
    points = merged
    stride *= 2
    // The last point is complete only if it holds a full stride.
    inCurrent = stride
  }
}
