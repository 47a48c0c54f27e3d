extension Occupancy {
  /// Adds `sign` × the additive fields of `d` (pages, live, pending, unknown, the three
  /// kinds of waste) and takes its geometry (`pageBytes`, `slotsPerPage`).
  @inline(__always)
  public mutating func add(_ d: Occupancy, sign: Int = 1) {
    pagesHeld += sign * d.pagesHeld
    live += sign * d.live
    pending += sign * d.pending
    unknown += sign * d.unknown
    reusableNow += sign * d.reusableNow
    reusableLater += sign * d.reusableLater
    stranded += sign * d.stranded
    pageBytes = d.pageBytes
    slotsPerPage = d.slotsPerPage
  }

  /// Every additive field is 0.
  public var isEmpty: Bool {
    pagesHeld == 0 && live == 0 && pending == 0 && unknown == 0 && reusableNow == 0
      && reusableLater == 0 && stranded == 0
  }

  /// The additive fields, for comparisons that ignore the geometry.
  var counts: [Int] { [pagesHeld, live, pending, unknown, reusableNow, reusableLater, stranded] }
}

/// One mm's occupancy over its life in the capture (`MMOccupancyBook`).
public struct MMOccupancyRecord: Sendable {
  /// The mm (`struct mm_struct *`) and the model's serial of this incarnation (mm addresses
  /// are reused after death).
  public var mm: UInt64
  public var serial: Int32
  /// Whether the capture showed the mm's death (its pgd freed).
  public var died: Bool
  /// Peaks and time-weighted means over the mm's life: from the first event that gave it
  /// anything to the moment it held nothing after its death, or the end of the capture.
  public var timeline: OccupancyTimeline
}

/// Per-mm occupancy, kept by the models next to their global counts: a model adds each
/// page's contribution to the mm that owns it (`adjust`) and removes it before changing the
/// page, exactly as it keeps its global tally; the engine closes each event (`commit`), which
/// samples only the mms the event touched (lazily: an untouched mm's value holds, and its
/// integral catches up at its next sample). O(1) per touched mm.
///
/// Memory: one record per mm incarnation that held a page. Records of mms that died and hold
/// nothing are kept for the report, at most `maxFinished` (the ones with the highest peak of
/// pages held; `droppedFinished` counts the others).
public struct MMOccupancyBook: Sendable {
  struct Entry: Sendable {
    var mm: UInt64
    var now = Occupancy()
    var timeline = OccupancyTimeline()
    var died = false
    var dirty = false
  }

  /// Off in simulations (`compare` needs only the totals).
  public var enabled = true
  /// Finished records kept (the highest peaks).
  public var maxFinished = 10_000
  public private(set) var droppedFinished = 0

  private var open: [Int32: Entry] = [:]
  private var dirty: [Int32] = []
  private var finished: [MMOccupancyRecord] = []

  public init() {}

  /// Adds `sign` × `d` to mm `serial` (at `address`; the address of an mm seen first is
  /// taken from its first adjustment). Serial −1 (owner unknown) is not followed.
  @inline(__always)
  public mutating func adjust(_ serial: Int32, _ address: UInt64?, _ d: Occupancy, sign: Int = 1) {
    guard enabled, serial >= 0 else { return }
    if open[serial] == nil { open[serial] = Entry(mm: address ?? 0) }
    open[serial]!.now.add(d, sign: sign)
    if !open[serial]!.dirty {
      open[serial]!.dirty = true
      dirty.append(serial)
    }
  }

  /// The mm died (its pgd was freed): once it holds nothing, its record is finished.
  public mutating func died(_ serial: Int32) {
    guard enabled, open[serial] != nil else { return }
    open[serial]!.died = true
    if !open[serial]!.dirty {
      open[serial]!.dirty = true
      dirty.append(serial)
    }
  }

  /// Replaces every mm's occupancy by a recount (`byMM`: serial → address, occupancy); mms
  /// not in it hold nothing.
  public mutating func replaceAll(_ byMM: [Int32: (UInt64, Occupancy)]) {
    guard enabled else { return }
    for s in open.keys where byMM[s] == nil && !open[s]!.now.isEmpty {
      let geometry = open[s]!.now
      open[s]!.now = Occupancy()
      open[s]!.now.pageBytes = geometry.pageBytes
      open[s]!.now.slotsPerPage = geometry.slotsPerPage
      markDirty(s)
    }
    for (s, (address, o)) in byMM where s >= 0 {
      if open[s] == nil { open[s] = Entry(mm: address) }
      if open[s]!.now.counts != o.counts || open[s]!.now.slotsPerPage != o.slotsPerPage {
        open[s]!.now = o
        markDirty(s)
      }
    }
  }

  private mutating func markDirty(_ s: Int32) {
    if !open[s]!.dirty {
      open[s]!.dirty = true
      dirty.append(s)
    }
  }

  /// Closes an event stamped `ns`: samples every mm it touched.
  @inline(__always)
  public mutating func commit(atNs ns: UInt64) {
    guard !dirty.isEmpty else { return }
    for s in dirty {
      guard var e = open[s] else { continue }
      e.dirty = false
      e.timeline.observe(e.now, atNs: ns)
      if e.died && e.now.isEmpty {
        open[s] = nil
        keep(MMOccupancyRecord(mm: e.mm, serial: s, died: true, timeline: e.timeline))
      } else {
        open[s] = e
      }
    }
    dirty.removeAll(keepingCapacity: true)
  }

  private mutating func keep(_ r: MMOccupancyRecord) {
    finished.append(r)
    if finished.count >= 2 * maxFinished {
      finished.sort(by: Self.order)
      droppedFinished += finished.count - maxFinished
      finished.removeLast(finished.count - maxFinished)
    }
  }

  /// By peak pages held, then mean pages held, then serial.
  static func order(_ a: MMOccupancyRecord, _ b: MMOccupancyRecord) -> Bool {
    if a.timeline.peak.pagesHeld != b.timeline.peak.pagesHeld {
      return a.timeline.peak.pagesHeld > b.timeline.peak.pagesHeld
    }
    let ma = a.timeline.meanPagesHeld ?? 0
    let mb = b.timeline.meanPagesHeld ?? 0
    return ma != mb ? ma > mb : a.serial < b.serial
  }

  /// The current occupancy of every followed mm with something held (for self-checks).
  public var currentByMM: [Int32: Occupancy] {
    var out: [Int32: Occupancy] = [:]
    for (s, e) in open where !e.now.isEmpty { out[s] = e.now }
    return out
  }

  /// Every record, open ones closed at `endNs` (the capture's last timestamp), sorted by peak
  /// pages held (then mean), at most `maxFinished`.
  public func records(endNs: UInt64) -> [MMOccupancyRecord] {
    var all = finished
    for (s, e) in open where e.timeline.samples > 0 {
      var t = e.timeline
      t.observe(e.now, atNs: max(endNs, t.lastNs))
      all.append(MMOccupancyRecord(mm: e.mm, serial: s, died: e.died, timeline: t))
    }
    all.sort(by: Self.order)
    return Array(all.prefix(maxFinished))
  }

  /// Records beyond `maxFinished` left out of `records` (never kept, or cut at the end).
  public func dropped(endNs: UInt64) -> Int {
    droppedFinished + max(0, finished.count + open.values.filter { $0.timeline.samples > 0 }.count - maxFinished)
  }
}
