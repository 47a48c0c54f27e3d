import PTFragEvents

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
    var serial: Int32
    var mm: UInt64
    var now = Occupancy()
    var timeline = OccupancyTimeline()
    var died = false
    var dirty = false
  }

  /// Off in simulations (`compare` needs only the totals).
  public var enabled = true
  /// Records a report keeps by default (`AnalyzeOptions.mmRecords`).
  public static let defaultRecords = 100
  /// Finished records kept (the highest peaks).
  public var maxFinished = defaultRecords { didSet { cutoff = nil } }
  public private(set) var droppedFinished = 0

  /// Open entries live in `entries` (slots reused); `index` maps a serial to its slot.
  private var index = AddressMap<Int>()
  private var entries: [Entry] = []
  private var freeSlots: [Int] = []
  /// Slots touched by the current event.
  private var dirty: [Int] = []
  private var finished: [MMOccupancyRecord] = []
  /// The last record kept by the latest trim: `maxFinished` records come before it, so one
  /// that does not can never be reported (most mms of a fork-heavy capture hold little).
  private var cutoff: MMOccupancyRecord?

  public init() {}

  /// The slot of `serial`'s entry, created (with the address `address()` gives) if needed.
  @inline(__always)
  private mutating func slot(_ serial: Int32, _ address: () -> UInt64?) -> Int {
    if let i = index[serial: serial] { return i }
    let e = Entry(serial: serial, mm: address() ?? 0)
    let i: Int
    if let f = freeSlots.popLast() {
      entries[f] = e
      i = f
    } else {
      entries.append(e)
      i = entries.count - 1
    }
    index[serial: serial] = i
    return i
  }

  @inline(__always)
  private mutating func touch(_ i: Int) {
    if !entries[i].dirty {
      entries[i].dirty = true
      dirty.append(i)
    }
  }

  /// Adds `sign` × `d` to mm `serial` (at `address`, read only for an mm seen first).
  /// Serial −1 (owner unknown) is not followed.
  @inline(__always)
  public mutating func adjust(
    _ serial: Int32, _ address: @autoclosure () -> UInt64?, _ d: Occupancy, sign: Int = 1
  ) {
    guard enabled, serial >= 0 else { return }
    let i = slot(serial, address)
    entries[i].now.add(d, sign: sign)
    touch(i)
  }

  /// A page changed during an event: its share `before` leaves mm `serialBefore`, its share
  /// `after` goes to `serialAfter` (the same mm, mostly). Nothing when nothing changed.
  @inline(__always)
  public mutating func move(
    from serialBefore: Int32, _ before: Occupancy, to serialAfter: Int32, _ after: Occupancy,
    address: (Int32) -> UInt64?
  ) {
    guard enabled else { return }
    if serialBefore == serialAfter {
      guard serialBefore >= 0, before != after else { return }
      let i = slot(serialBefore) { address(serialBefore) }
      entries[i].now.add(before, sign: -1)
      entries[i].now.add(after)
      touch(i)
      return
    }
    adjust(serialBefore, address(serialBefore), before, sign: -1)
    adjust(serialAfter, address(serialAfter), after)
  }

  /// The mm died (its pgd was freed): once it holds nothing, its record is finished.
  public mutating func died(_ serial: Int32) {
    guard enabled, let i = index[serial: serial] else { return }
    entries[i].died = true
    touch(i)
  }

  /// Replaces every mm's occupancy by a recount (`byMM`: serial → address, occupancy); mms
  /// not in it hold nothing.
  public mutating func replaceAll(_ byMM: [Int32: (UInt64, Occupancy)]) {
    guard enabled else { return }
    for (k, i) in index where byMM[Int32(truncatingIfNeeded: k)] == nil && !entries[i].now.isEmpty {
      let geometry = entries[i].now
      entries[i].now = Occupancy()
      entries[i].now.pageBytes = geometry.pageBytes
      entries[i].now.slotsPerPage = geometry.slotsPerPage
      touch(i)
    }
    for (s, (address, o)) in byMM where s >= 0 {
      let i = slot(s) { address }
      if entries[i].now != o {
        entries[i].now = o
        touch(i)
      }
    }
  }

  /// Closes an event stamped `ns`: samples every mm it touched.
  @inline(__always)
  public mutating func commit(atNs ns: UInt64) {
    guard !dirty.isEmpty else { return }
    for i in dirty {
      entries[i].dirty = false
      let now = entries[i].now
      entries[i].timeline.observe(now, atNs: ns)
      if entries[i].died && now.isEmpty {
        let e = entries[i]
        index[serial: e.serial] = nil
        freeSlots.append(i)
        entries[i].timeline = OccupancyTimeline()
        keep(MMOccupancyRecord(mm: e.mm, serial: e.serial, died: true, timeline: e.timeline))
      }
    }
    dirty.removeAll(keepingCapacity: true)
  }

  private mutating func keep(_ r: MMOccupancyRecord) {
    if let c = cutoff, !Self.order(r, c) {
      droppedFinished += 1
      return
    }
    finished.append(r)
    if finished.count >= 2 * maxFinished {
      finished.sort(by: Self.order)
      droppedFinished += finished.count - maxFinished
      finished.removeLast(finished.count - maxFinished)
      cutoff = finished.last
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
    for (k, i) in index where !entries[i].now.isEmpty { out[Int32(truncatingIfNeeded: k)] = entries[i].now }
    return out
  }

  /// Every record, open ones closed at `endNs` (the capture's last timestamp), sorted by peak
  /// pages held (then mean), at most `maxFinished`.
  public func records(endNs: UInt64) -> [MMOccupancyRecord] {
    var all = finished
    for i in index.values where entries[i].timeline.samples > 0 {
      let e = entries[i]
      var t = e.timeline
      t.observe(e.now, atNs: max(endNs, t.lastNs))
      all.append(MMOccupancyRecord(mm: e.mm, serial: e.serial, died: e.died, timeline: t))
    }
    all.sort(by: Self.order)
    return Array(all.prefix(maxFinished))
  }

  /// Records beyond `maxFinished` left out of `records` (never kept, or cut at the end).
  public func dropped(endNs: UInt64) -> Int {
    let open = index.values.filter { entries[$0].timeline.samples > 0 }.count
    return droppedFinished + max(0, finished.count + open - maxFinished)
  }
}
