import PTFragEvents

/// The RCU grace period a what-if simulation gives every `call_rcu`: the median delay, in
/// the capture, from a table's free through the tlb batch (`page_table_free_rcu`, else its
/// first `tlb_remove_table`) to its `__tlb_remove_table`. A batch of the mmu_gather is freed
/// by `tlb_remove_table_rcu` after a grace period (docs/kernel-models.md §1.1), so this is the
/// capture's own measure of how long a table waits for RCU (batching included; a synchronous
/// fallback run counts as a short delay, which the median tolerates).
///
/// Exact for up to `reservoirSize` delays; beyond, the median of a uniform reservoir sample
/// (seeded, so a run is reproducible). State: the tables queued and not yet executed, and the
/// reservoir.
public struct GraceEstimator: Sendable {
  public static let reservoirSize = 65_536
  private var queuedAt: [UInt64: UInt64] = [:]
  private var reservoir: [UInt64] = []
  private var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
  /// Delays measured (free → execution pairs).
  public private(set) var pairs = 0

  public init() {}

  public mutating func observe(_ e: Event) {
    switch e.kind {
    case .freeTLB:
      if queuedAt[e.table] == nil { queuedAt[e.table] = e.timestampNs }
    case .tlbQueue:
      let t = WorkloadRecorder.untagged(e.table)
      if queuedAt[t] == nil { queuedAt[t] = e.timestampNs }
    case .tlbExec:
      let t = WorkloadRecorder.untagged(e.table)
      guard let q = queuedAt.removeValue(forKey: t), e.timestampNs >= q else { return }
      add(e.timestampNs - q)
    case .alloc:
      // Handed out again: whatever was queued there ran unseen.
      queuedAt[e.table] = nil
    default:
      return
    }
  }

  mutating func add(_ d: UInt64) {
    pairs += 1
    if reservoir.count < Self.reservoirSize {
      reservoir.append(d)
      return
    }
    let j = Int(next() % UInt64(pairs))
    if j < Self.reservoirSize { reservoir[j] = d }
  }

  private mutating func next() -> UInt64 {
    rng &+= 0x9E37_79B9_7F4A_7C15
    var z = rng
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// The median delay in ns (the mean of the two middle ones for an even count); nil
  /// without a pair.
  public var medianNs: UInt64? {
    guard !reservoir.isEmpty else { return nil }
    let s = reservoir.sorted()
    let n = s.count
    return n % 2 == 1 ? s[n / 2] : s[n / 2 - 1] / 2 + s[n / 2] / 2 + (s[n / 2 - 1] % 2 + s[n / 2] % 2) / 2
  }
}
