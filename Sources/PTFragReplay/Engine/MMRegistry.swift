import PTFragEvents

/// One mm incarnation as a model keeps it: `struct mm_struct` at `address`, from its birth
/// (`pgd_alloc`, seen as the pgd's `crst_table_alloc` on s390, `pgd_alloc` on powerpc) or
/// from the first event that names it, until its pgd is freed or the address is born again.
protocol RegisteredMM: AnyObject {
  /// The incarnation number: what a page's owner field names (never reused, never negative).
  var serial: Int32 { get }
  var address: UInt64 { get }
  /// Born in the capture (or a simulation) and never desynchronized: its choices are predicted.
  var known: Bool { get set }
  /// The line of its birth, when the capture showed it.
  var bornLine: Int? { get set }
  init(serial: Int32, address: UInt64, known: Bool)
}

/// Every model's mms, one registry: by address (the live incarnation) and by serial (a dead
/// incarnation's pages may still name it until they go). Births, first sightings and deaths
/// are counted in `ReplayStats`; an incarnation leaves when its pgd is freed or its address
/// is born again, so the registry holds the live mms only, never every mm ever seen.
struct MMRegistry<MM: RegisteredMM>: Sequence {
  private var byAddress = AddressMap<MM>()
  private var bySerial = AddressMap<MM>()
  private var nextSerial: Int32 = 0

  /// The live incarnation at `address`.
  @inline(__always) subscript(address a: UInt64?) -> MM? {
    guard let a else { return nil }
    return byAddress[a]
  }

  /// The incarnation a page names as its owner (nil for -1, unknown, or one that left).
  @inline(__always) subscript(serial s: Int32) -> MM? {
    s >= 0 ? bySerial[UInt64(UInt32(bitPattern: s))] : nil
  }

  var count: Int { byAddress.count }

  /// The mm at `address`; one the replay meets here first (born before the capture) is
  /// registered, known if `knownIfNew` (a simulation starts from nothing).
  mutating func mm(at address: UInt64?, knownIfNew: Bool, _ stats: inout ReplayStats) -> MM? {
    guard let address else { return nil }
    if let m = byAddress[address] { return m }
    stats.mmsSeen += 1
    return add(MM(serial: nextSerial, address: address, known: knownIfNew))
  }

  /// A birth at `line`: the new incarnation at `address` (the caller buries the old one first).
  @discardableResult
  mutating func born(_ address: UInt64, line: Int, _ stats: inout ReplayStats) -> MM {
    stats.mmsBorn += 1
    stats.mmsSeen += 1
    let m = add(MM(serial: nextSerial, address: address, known: true))
    m.bornLine = line
    return m
  }

  private mutating func add(_ m: MM) -> MM {
    nextSerial += 1
    byAddress[m.address] = m
    bySerial[UInt64(UInt32(bitPattern: m.serial))] = m
    return m
  }

  /// The incarnation leaves (its pgd freed, or its address born again).
  mutating func remove(_ m: MM) {
    if byAddress[m.address] === m { byAddress[m.address] = nil }
    bySerial[UInt64(UInt32(bitPattern: m.serial))] = nil
  }

  /// `LOST EVENTS`: no mm's state is known any more.
  func forgetKnowledge() { for m in self { m.known = false } }

  struct Iterator: IteratorProtocol {
    var base: AddressMap<MM>.Iterator
    mutating func next() -> MM? { base.next()?.value }
  }
  func makeIterator() -> Iterator { Iterator(base: byAddress.makeIterator()) }
  var underestimatedCount: Int { byAddress.count }
}
