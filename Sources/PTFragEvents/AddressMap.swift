/// A hash map from 64-bit keys (page and mm addresses, pids, serials) to values, for the
/// per-event paths: open addressing with linear probing, a multiplicative (Fibonacci) hash,
/// backward-shift deletion. About four times faster than `Dictionary<UInt64, _>` here
/// (no SipHash, one probe sequence per access), and its iteration order depends only on
/// the operations done, never on a per-process seed.
///
/// Capacity is a power of two kept at least twice the count; it shrinks when the map
/// empties, so memory follows the live entries (not the history).
public struct AddressMap<Value> {
  @usableFromInline
  struct Slot {
    @usableFromInline var key: UInt64
    @usableFromInline var value: Value?
    @inlinable init(key: UInt64, value: Value?) {
      self.key = key
      self.value = value
    }
  }

  @usableFromInline var slots: ContiguousArray<Slot>
  @usableFromInline var shift: UInt64
  @usableFromInline var storedCount = 0
  /// Entries in the map.
  @inlinable public var count: Int { storedCount }

  @inlinable
  public init() {
    slots = ContiguousArray(repeating: Slot(key: 0, value: nil), count: 16)
    shift = 64 - 4
  }

  @inlinable public var isEmpty: Bool { count == 0 }

  @inlinable @inline(__always)
  func home(_ key: UInt64) -> Int {
    Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
  }

  /// The slot holding `key`, or the empty slot where it would go.
  @inlinable @inline(__always)
  func find(_ key: UInt64) -> (index: Int, found: Bool) {
    let mask = slots.count - 1
    var i = home(key)
    while true {
      let s = slots[i]
      if s.value == nil { return (i, false) }
      if s.key == key { return (i, true) }
      i = (i + 1) & mask
    }
  }

  // Plain get/set, no `_modify`: a modify coroutine called across modules allocates its
  // frame on the heap (malloc + free per access) once the value is larger than a few
  // words; two probes cost less. `modify(_:default:_:)` mutates in place.
  public subscript(key: UInt64) -> Value? {
    @inlinable get {
      let (i, found) = find(key)
      return found ? slots[i].value : nil
    }
    @inlinable set {
      if let v = newValue {
        insert(key, v)
      } else {
        removeValue(forKey: key)
      }
    }
  }

  /// Runs `body` on the value of `key` in place (inserting `make()` first if absent): no
  /// copy of the value, so a value holding an array is not copied on write.
  @inlinable @inline(__always)
  public mutating func modify<R>(
    _ key: UInt64, default make: @autoclosure () -> Value, _ body: (inout Value) -> R
  ) -> R {
    var (i, found) = find(key)
    if !found {
      insert(key, make())
      i = find(key).index
    }
    return body(&slots[i].value!)
  }

  /// Runs `body` on the value of `key` in place, if present (nil otherwise): one probe, no
  /// copy of the value. `body` must not touch the map itself.
  @inlinable @inline(__always) @discardableResult
  public mutating func update<R>(_ key: UInt64, _ body: (inout Value) -> R) -> R? {
    let (i, found) = find(key)
    guard found else { return nil }
    return body(&slots[i].value!)
  }

  @inlinable
  mutating func insert(_ key: UInt64, _ value: Value) {
    let (i, found) = find(key)
    if found {
      slots[i].value = value
      return
    }
    if (count + 1) * 2 > slots.count {
      resize(slots.count * 2)
      insert(key, value)
      return
    }
    slots[i] = Slot(key: key, value: value)
    storedCount += 1
  }

  @inlinable @discardableResult
  public mutating func removeValue(forKey key: UInt64) -> Value? {
    let (i, found) = find(key)
    guard found else { return nil }
    let v = slots[i].value
    deleteSlot(i)
    return v
  }

  /// Empties slot `i` and shifts back the entries of its probe run.
  @inlinable
  mutating func deleteSlot(_ i: Int) {
    let mask = slots.count - 1
    var hole = i
    var j = i
    slots[hole].value = nil
    while true {
      j = (j + 1) & mask
      guard slots[j].value != nil else { break }
      let h = home(slots[j].key)
      // Move j into the hole unless its home lies cyclically in (hole, j].
      let stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j)
      if !stays {
        slots[hole] = slots[j]
        slots[j].value = nil
        hole = j
      }
    }
    storedCount -= 1
    if count * 8 < slots.count && slots.count > 64 { resize(slots.count / 2) }
  }

  @inlinable
  mutating func resize(_ capacity: Int) {
    let old = slots
    slots = ContiguousArray(repeating: Slot(key: 0, value: nil), count: capacity)
    shift = UInt64(64 - capacity.trailingZeroBitCount)
    storedCount = 0
    for s in old {
      if let v = s.value { insert(s.key, v) }
    }
  }

  @inlinable
  public mutating func removeAll() {
    self = AddressMap()
  }

  /// The keys, in slot order.
  @inlinable public var keys: [UInt64] { slots.compactMap { $0.value == nil ? nil : $0.key } }
  /// The values, in slot order.
  @inlinable public var values: [Value] { slots.compactMap { $0.value } }
}

extension AddressMap: Sequence {
  public struct Iterator: IteratorProtocol {
    @usableFromInline let slots: ContiguousArray<Slot>
    @usableFromInline var i = 0
    @inlinable init(slots: ContiguousArray<Slot>) { self.slots = slots }
    @inlinable
    public mutating func next() -> (key: UInt64, value: Value)? {
      while i < slots.count {
        defer { i += 1 }
        if let v = slots[i].value { return (slots[i].key, v) }
      }
      return nil
    }
  }
  @inlinable public func makeIterator() -> Iterator { Iterator(slots: slots) }
  @inlinable public var underestimatedCount: Int { count }
}

extension AddressMap: Sendable where Value: Sendable {}
extension AddressMap.Slot: Sendable where Value: Sendable {}
