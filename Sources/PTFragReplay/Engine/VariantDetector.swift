import PTFragEvents

/// Detects which kernel allocator variant a capture comes from, from its normalized events
/// (and, optionally, which probes a kprobe_profile shows), for `--model auto`.
///
/// Decisive evidence (each names its line):
/// - **2 KiB fragments (≤ v6.6, variants A/B)**: `page_table_alloc` (or a free) naming an upper
///   2 KiB half (bit 11 set); a `tlb_remove_table` / `__tlb_remove_table` value with a tag
///   1, 2 or 3 in its low bits (docs/kernel-models.md §1.3).
/// - **one table per page (v6.7 … v6.13, variant D)**: an untagged `tlb_remove_table` /
///   `__tlb_remove_table` value equal to a table `page_table_alloc` returned (a ≤ 6.6 kernel
///   tags every PTE table it queues), with no `LOST EVENTS` between the two. Weaker, used only
///   when nothing else decides by the end of the look-ahead: an mm born in the capture whose
///   first two tables are both page-aligned with no free (and no loss) in between (a fragment kernel hands out the upper half of the
///   first page, unless the mm is a KVM pgste mm; fragment evidence overrides it).
/// - **`pte_free_defer` (≥ v6.6)**: a `pte_free_defer` or `pte_free_now` hit, or a
///   kprobe_profile that lists a probe on either (the symbol exists).
/// - **ptdesc pointers (≥ v6.14)**: a tlb value with any of bits 2–10 set (a `struct ptdesc *`
///   in the vmemmap, not a table VA): unsupported.
///
/// - **powerpc** (`arch/powerpc/mm/pgtable-frag.c`): a function only powerpc has —
///   `pte_fragment_free`, `pte_frag_destroy`, `pmd_fragment_alloc`/`_free`, `arch_exit_mmap`,
///   `init_new_context`, a `pte_fragment_alloc` with its `kernel` argument — or a trusted
///   kprobe_profile listing one while the capture shows no function only s390 has
///   (`onlyS390`: an s390 capture with a powerpc kernel's profile stays s390; a capture with
///   functions of both is refused). Then the preset comes from the fragment geometry the
///   addresses show: a PTE fragment at a sub-4 KiB offset, a PMD fragment at a sub-16 KiB one,
///   or two allocations of one mm 256 B apart in one page → radix (256 × 256 B,
///   `powerpc-radix64k`); two allocations of one mm 4 KiB apart in one page (the cursor's
///   step, `PTE_FRAG_SIZE`) → hash (16 × 4 KiB, `powerpc-hash64k`) at 64-bit addresses, 8xx
///   (4 × 4 KiB, `powerpc-8xx16k`) at 32-bit ones. s390's evidence (an "upper half" at 0x800,
///   a "ptdesc" bit) means nothing on powerpc and is not consulted there.
///
/// Decision: fragments + `pte_free_defer` → `s390-6.6`; fragments alone → `s390-6.1` (the two
/// replay identically until `pte_free_defer` is used); one table per page → `s390-6.7`;
/// powerpc → its preset. Contradictory evidence, ptdesc pointers, or no decisive evidence →
/// refusal.
///
/// The caller feeds events until `observe` returns true (decided) or `maxEvents` events were
/// buffered, then asks `decide(endOfInput:)`. Memory: O(tables allocated in the look-ahead).
public struct VariantDetector {
  /// Look-ahead bound, in normalized events.
  public static let defaultMaxEvents = 16384

  /// One piece of evidence, for the report.
  public struct Evidence: Sendable, Equatable {
    /// 1-based line.
    public var line: Int
    public var text: String
  }

  /// Why detection refuses, and the exit code class.
  public enum Refusal: Sendable, Equatable {
    /// Nothing decisive: the user must say `--model` (usage, exit 64).
    case undecidable(String)
    /// The capture contradicts itself or comes from an unsupported kernel (data, exit 65).
    case unsupported(String)

    public var message: String {
      switch self {
      case .undecidable(let m), .unsupported(let m): m
      }
    }
  }

  public enum Decision: Sendable, Equatable {
    /// Replay with this model; `reason` says what was detected and why.
    case model(id: String, reason: String)
    /// The capture holds no page-table event at all.
    case empty
    case refuse(Refusal)
  }

  public let maxEvents: Int
  /// Events observed so far.
  public private(set) var observed = 0

  private(set) var fragment: Evidence? = nil
  private(set) var onePerPage: Evidence? = nil
  /// Weaker: only page-aligned allocations (a pgste mm on a fragment kernel looks the same).
  private(set) var onlyWholePages: Evidence? = nil
  private(set) var deferEvidence: Evidence? = nil
  private(set) var ptdesc: Evidence? = nil
  private var profileDefer: Bool
  private var profileFreeRCU: Bool
  /// Why the kprobe_profile's listing is not used (it is from another kernel), for the reason.
  private var profileDistrusted: String? = nil
  /// powerpc: a function only powerpc has (in the capture's events), and the geometry evidence.
  private(set) var powerpc: Evidence? = nil
  /// The kprobe_profile lists a probe on a function only powerpc has. Counts as powerpc
  /// evidence only while the profile is trusted and the capture shows nothing only s390 has.
  private(set) var profilePowerpc: Evidence? = nil
  /// A function only s390 has, in the capture (an event, or probe lines `captureHas` was told
  /// of): the capture is s390's, whatever a kprobe_profile lists.
  private(set) var s390: Evidence? = nil
  private(set) var radixGeometry: Evidence? = nil
  private(set) var step4K: Evidence? = nil
  private var step4KAddress: UInt64 = 0
  /// powerpc: each mm's last allocation (the cursor's step shows the fragment size).
  private var lastAllocOf: [UInt64: UInt64] = [:]
  private var sawFreeTLB = false
  private var allocs = 0
  private var tlbValues = 0
  /// Tables `page_table_alloc` returned in the look-ahead → line.
  private var allocated: [UInt64: Int] = [:]
  /// mms born in the look-ahead: tables allocated so far (up to 2), and whether one of them
  /// was freed before the second alloc.
  private var born: [UInt64: (tables: [UInt64], lines: [Int], freed: Bool)] = [:]
  /// Page of the first table of a born mm that has exactly one → that mm.
  private var firstPageOf: [UInt64: UInt64] = [:]

  /// `profileFunctions`: functions a kprobe_profile lists probes on (their symbols exist in
  /// the traced kernel).
  public init(profileFunctions: Set<KernelFunction> = [], maxEvents: Int = defaultMaxEvents) {
    self.maxEvents = max(1, maxEvents)
    profileDefer = profileFunctions.contains(.pteFreeDefer) || profileFunctions.contains(.pteFreeNow)
    profileFreeRCU = profileFunctions.contains(.pageTableFreeRCU)
    if let f = [KernelFunction.pteFragmentAlloc, .pteFragmentFree, .pteFragDestroy, .pmdFragmentAlloc]
      .first(where: { profileFunctions.contains($0) })
    {
      profilePowerpc = Evidence(line: 0, text: "the kprobe_profile lists a probe on \(f.symbol), a powerpc function")
    }
  }

  /// Functions only s390 has (arch/s390/mm/pgalloc.c); powerpc has none of them.
  public static let onlyS390: [KernelFunction] = [
    .pageTableAlloc, .pageTableFree, .pageTableFreeRCU, .crstTableAlloc, .crstTableFree,
    .pageTableAllocPgste, .pageTableFreePgste,
  ]

  /// The powerpc evidence that counts: the capture's own, else a trusted profile's listing
  /// when the capture shows no function only s390 has.
  var powerpcEvidence: Evidence? { powerpc ?? (s390 == nil ? profilePowerpc : nil) }

  /// Whether the evidence so far settles the question (no more look-ahead needed).
  public var decisive: Bool {
    if powerpc != nil && s390 != nil { return true }  // contradictory: refused
    if powerpcEvidence != nil { return radixGeometry != nil || step4K != nil }
    if ptdesc != nil || (fragment != nil && onePerPage != nil) { return true }
    if onePerPage != nil { return true }
    // Fragments: A vs B still open until pte_free_defer shows up. The profile's listing only
    // settles it at the end of the look-ahead, once the profile is known to fit the capture
    // (`distrustProfile`).
    return fragment != nil && deferEvidence != nil
  }

  /// The kprobe_profile does not fit the capture (it lacks a probe the capture has): its
  /// listing says nothing about this kernel and is not used at all (neither its
  /// `pte_free_defer`/`pte_free_now`/`page_table_free_rcu` listing nor its powerpc one).
  public mutating func distrustProfile(_ why: String) {
    guard profileDefer || profileFreeRCU || profilePowerpc != nil else { return }
    profileDefer = false
    profileFreeRCU = false
    profilePowerpc = nil
    profileDistrusted = why
  }

  /// The functions the capture has probe lines of (so far): one only s390 has
  /// (`page_table_alloc`, `crst_table_alloc`, …; `onlyS390`) makes the capture
  /// s390's. The normalized events cannot tell `page_table_alloc` from `pte_fragment_alloc`;
  /// the probe lines can.
  public mutating func captureHas(_ functions: Set<KernelFunction>) {
    guard s390 == nil, let f = Self.onlyS390.first(where: { functions.contains($0) }) else { return }
    s390 = Evidence(line: 0, text: "the capture has \(f.symbol) lines, an s390 function")
  }

  /// Feeds one event; returns true once the evidence is decisive.
  @discardableResult
  public mutating func observe(_ e: Event) -> Bool {
    observed += 1
    observePowerpc(e)
    switch e.kind {
    case .alloc:
      guard e.table != 0 else { break }
      allocs += 1
      if e.table & 0x800 != 0 && e.table & 0x7ff == 0 {
        Self.note(&fragment, e.line, "page_table_alloc returned \(hex(e.table)), an upper 2 KiB half")
      }
      if allocated.count < maxEvents { allocated[e.table] = e.line }
      if let mm = e.mm, var b = born[mm], b.tables.count < 2 {
        b.tables.append(e.table)
        b.lines.append(e.line)
        born[mm] = b
        if b.tables.count == 1 { firstPageOf[e.table & ~0xfff] = mm } else { firstPageOf[b.tables[0] & ~0xfff] = nil }
        if b.tables.count == 2, !b.freed, b.tables.allSatisfy({ $0 & 0xfff == 0 }) {
          Self.note(
            &onlyWholePages, e.line,
            "mm \(hex(mm)) born in the capture got two page-aligned tables (\(hex(b.tables[0])) at line \(b.lines[0]), \(hex(b.tables[1])) at line \(b.lines[1])) with no free between: a fragment kernel hands out the upper half of the first page (unless every mm is a KVM pgste mm)"
          )
        }
      }
    case .mmBirth, .crstAlloc:
      if e.kind == .mmBirth, let mm = e.mm, born.count < maxEvents { born[mm] = ([], [], false) }
      forgetPages(coveredByCRST: e.table)
    case .freeNow, .freeTLB, .deferBegin:
      if e.kind == .freeTLB { sawFreeTLB = true }
      if e.kind == .deferBegin {
        Self.note(&deferEvidence, e.line, "pte_free_defer(\(hex(e.table))) was called (v6.6+)")
      }
      if e.table & 0x800 != 0 && e.table & 0x7ff == 0 {
        Self.note(&fragment, e.line, "\(e.kind.symbol)(\(hex(e.table))) frees an upper 2 KiB half")
      }
      markFreed(e.table)
    case .deferEnd:
      Self.note(&deferEvidence, e.line, "pte_free_defer returned (v6.6+)")
    case .rcuFree:
      Self.note(&deferEvidence, e.line, "pte_free_now ran (v6.6+)")
    case .tlbQueue, .tlbExec:
      tlbValues += 1
      let v = e.table
      let what = e.kind == .tlbQueue ? "tlb_remove_table" : "__tlb_remove_table"
      if v & 0x7fc != 0 {
        Self.note(
          &ptdesc, e.line,
          "\(what)(\(hex(v))) is neither a table address nor a tagged one: a struct ptdesc pointer (v6.14+)")
      } else if v & 0x3 != 0 {
        Self.note(&fragment, e.line, "\(what)(\(hex(v))) carries tag \(v & 3) in its low bits")
      } else if v & 0xfff == 0, let at = allocated[v] {
        Self.note(
          &onePerPage, e.line,
          "\(what)(\(hex(v))) queues the untagged page that page_table_alloc returned at line \(at) (≤ v6.6 tags every PTE table it queues)"
        )
      }
      markFreed(v & ~3)
    case .lost:
      forgetAcrossLoss()
    default:
      break
    }
    return decisive
  }

  /// `LOST EVENTS`: the lost events may have freed any table and reused its page (as a CRST
  /// table, whose untagged `__tlb_remove_table` would then look like v6.7's), or freed one of
  /// a born mm's first tables. Evidence that pairs an event with an earlier one (one table per
  /// page) counts only pairs after the loss; single-event evidence (an upper half, a tag)
  /// stands.
  private mutating func forgetAcrossLoss() {
    allocated.removeAll()
    for mm in Array(born.keys) { born[mm]?.freed = true }
    firstPageOf.removeAll()
  }

  /// What only powerpc shows, and the fragment geometry (see the type's comment).
  private mutating func observePowerpc(_ e: Event) {
    switch e.kind {
    case .freeNow, .freeTLB, .crstAlloc, .crstFree:
      Self.note(&s390, e.line, "\(e.kind.symbol) is an s390 function")
    case .mmBirth where e.table != 0:
      Self.note(&s390, e.line, "crst_table_alloc returned into mm_init (an mm's birth on s390)")
    case .mmDeath where e.table != 0:
      Self.note(&s390, e.line, "crst_table_free of an mm's pgd (an mm's death on s390)")
    case .fragmentFree, .fragDestroy, .pmdAlloc, .pmdFree, .mmExit:
      Self.note(&powerpc, e.line, "\(e.kind.symbol) is a powerpc function")
    case .mmBirth where e.table == 0:
      Self.note(&powerpc, e.line, "init_new_context (an mm's birth on powerpc)")
    case .alloc where e.kernel != nil:
      Self.note(&powerpc, e.line, "pte_fragment_alloc(mm, kernel) is a powerpc function")
    default: break
    }
    let v: UInt64
    switch e.kind {
    case .alloc, .fragmentFree, .deferBegin: v = e.table
    case .tlbQueue where e.table & 0xf == 0, .tlbExec where e.table & 0xf == 0: v = e.table
    case .pmdAlloc:
      if e.table & 0x3fff != 0 && e.table & 0xfff == 0 {
        Self.note(
          &radixGeometry, e.line,
          "pmd_fragment_alloc returned \(hex(e.table)), a 4 KiB PMD fragment (radix; hash's are 16 KiB)")
      }
      return
    default: return
    }
    guard v != 0 else { return }
    if v & 0xfff != 0 && v & 0xff == 0 {
      Self.note(
        &radixGeometry, e.line,
        "\(e.kind == .alloc ? "pte_fragment_alloc returned " : e.kind.symbol)\(e.kind == .alloc ? hex(v) : "(\(hex(v)))"): a PTE fragment at offset \(hex(v & 0xffff)) of its page, so 256 B fragments")
    }
    guard e.kind == .alloc, let mm = e.mm else { return }
    if let last = lastAllocOf[mm], v > last, v & ~0x3fff == last & ~0x3fff {
      if v - last == 0x1000 {
        if step4K == nil { step4KAddress = v }
        Self.note(
          &step4K, e.line,
          "mm \(hex(mm)) got \(hex(last)) then \(hex(v)): the cursor steps 4 KiB (PTE_FRAG_SIZE)")
      } else if v - last == 0x100 {
        Self.note(
          &radixGeometry, e.line,
          "mm \(hex(mm)) got \(hex(last)) then \(hex(v)): the cursor steps 256 B (PTE_FRAG_SIZE)")
      }
    }
    if lastAllocOf.count < maxEvents || lastAllocOf[mm] != nil { lastAllocOf[mm] = v }
  }

  /// The powerpc decision (nil: not powerpc).
  func decidePowerpc(_ scope: String) -> Decision? {
    if let p = powerpc, let s = s390 {
      return .refuse(
        .unsupported(
          "contradictory evidence: line \(p.line): \(p.text), yet \(s.line > 0 ? "line \(s.line): " : "")\(s.text): a capture of one kernel holds functions of only one architecture; give --model explicitly"
        ))
    }
    guard let p = powerpcEvidence else { return nil }
    let arch = "powerpc (\(p.line > 0 ? "line \(p.line): " : "")\(p.text))"
    if let r = radixGeometry, let h = step4K {
      return .refuse(
        .unsupported(
          "\(arch), but contradictory fragment geometry: line \(r.line): \(r.text), yet line \(h.line): \(h.text); give --model explicitly"))
    }
    if let r = radixGeometry {
      return .model(
        id: PowerpcPreset.radix64K.modelID,
        reason: "\(arch); 256 B fragments (book3s64 radix, 256 per 64 KiB page): line \(r.line): \(r.text)")
    }
    if let h = step4K {
      if step4KAddress >> 32 == 0 {
        return .model(
          id: PowerpcPreset.mpc8xx16K.modelID,
          reason: "\(arch); 4 KiB fragments at 32-bit addresses (8xx, 16 KiB pages): line \(h.line): \(h.text)")
      }
      return .model(
        id: PowerpcPreset.hash64K.modelID,
        reason: "\(arch); 4 KiB fragments at 64-bit addresses (book3s64 hash, 16 per 64 KiB page): line \(h.line): \(h.text)")
    }
    return .refuse(
      .undecidable(
        "\(arch), but the fragment geometry is undecided \(scope): no fragment at a sub-4 KiB offset and no two allocations of one mm 256 B or 4 KiB apart in one page; give --model powerpc-radix64k, powerpc-hash64k or powerpc-8xx16k"))
  }

  private static func note(_ slot: inout Evidence?, _ line: Int, _ text: @autoclosure () -> String) {
    if slot == nil { slot = Evidence(line: line, text: text()) }
  }

  /// A page's identity ends when `crst_table_alloc` hands it out inside a CRST block (order 2,
  /// 16 KiB: arch/s390/mm/pgalloc.c, `crst_table_alloc`, v5.17 … v6.13): the PTE table that
  /// page_table_alloc returned there earlier was released (a `__tlb_remove_table` that may have
  /// been missed silently), and an untagged `pmd_free_tlb`/`pud_free_tlb` of the CRST says
  /// nothing about how the kernel tags PTE tables.
  private mutating func forgetPages(coveredByCRST table: UInt64) {
    guard table != 0, !allocated.isEmpty else { return }
    let base = table & ~0x3fff
    for k in 0..<4 {
      let page = base + UInt64(k) * 0x1000
      allocated[page] = nil
      allocated[page + 0x800] = nil
    }
  }

  private mutating func markFreed(_ table: UInt64) {
    if let mm = firstPageOf.removeValue(forKey: table & ~0xfff) { born[mm]?.freed = true }
  }

  /// A trusted profile's powerpc listing that the capture's s390 functions overrule, for the
  /// reason ("" when none).
  private var overruledProfile: String {
    guard powerpc == nil, let p = profilePowerpc, let s = s390 else { return "" }
    return "; \(p.text), but \(s.line > 0 ? "line \(s.line): " : "")\(s.text): the capture's events decide, the listing is not used"
  }

  /// The decision from the evidence so far. `endOfInput`: the look-ahead covers the whole
  /// capture (so "not seen" means "not in the capture").
  public func decide(endOfInput: Bool) -> Decision {
    let scope = endOfInput ? "in the capture" : "in the first \(observed) events"
    // No event: nothing to detect, whatever a kprobe_profile lists (it is not evidence of a
    // capture that holds nothing).
    if observed == 0 { return .empty }
    if let d = decidePowerpc(scope) { return d }
    if let p = ptdesc {
      return .refuse(
        .unsupported(
          "line \(p.line): \(p.text); ptfrag models the tlb path of v6.7 … v6.13 (table addresses), not v6.14+'s; see docs/kernel-models.md §5"
        ))
    }
    if let f = fragment, let o = onePerPage {
      return .refuse(
        .unsupported(
          "contradictory evidence: line \(f.line): \(f.text) (2 KiB fragments, ≤ v6.6), but line \(o.line): \(o.text) (one table per page, v6.7+); give --model explicitly"
        ))
    }
    if let o = onePerPage ?? (fragment == nil ? onlyWholePages : nil) {
      var why = "one table per 4 KiB page (v6.7+): line \(o.line): \(o.text)"
      if sawFreeTLB || profileFreeRCU {
        why += "; page_table_free_rcu present (its trivial v6.7 … ~v6.10 form)"
      } else {
        why += "; no page_table_free_rcu \(scope) (as on v6.12)"
      }
      if let d = deferEvidence { why += "; line \(d.line): \(d.text)" }
      if let d = profileDistrusted { why += "; the kprobe_profile is not used (\(d))" }
      return .model(id: "s390-6.7", reason: why + overruledProfile)
    }
    if let f = fragment {
      var why = "2 KiB fragments (≤ v6.6): line \(f.line): \(f.text)"
      if let d = deferEvidence {
        why += "; line \(d.line): \(d.text), so v6.6"
        return .model(id: "s390-6.6", reason: why + overruledProfile)
      }
      if profileDefer {
        why += "; the kprobe_profile lists a pte_free_defer/pte_free_now probe (the symbol exists), so v6.6"
        return .model(id: "s390-6.6", reason: why + overruledProfile)
      }
      if let d = profileDistrusted { why += "; the kprobe_profile is not used (\(d))" }
      why +=
        "; no pte_free_defer \(scope) and none in a kprobe_profile, so the v5.17 … v6.5 allocator (v6.6 replays identically until pte_free_defer is used)"
      return .model(id: "s390-6.1", reason: why + overruledProfile)
    }
    var seen: [String] = []
    seen.append("\(allocs) page_table_alloc result\(allocs == 1 ? "" : "s")\(allocs > 0 ? ", none an upper 2 KiB half" : "")")
    seen.append("\(tlbValues) tlb value\(tlbValues == 1 ? "" : "s")\(tlbValues > 0 ? ", none tagged and none a table allocated in the capture" : "")")
    if let d = deferEvidence { seen.append("line \(d.line): \(d.text)") }
    return .refuse(
      .undecidable(
        "cannot tell the allocator variant \(scope): \(seen.joined(separator: "; "))\(overruledProfile); give --model (\(ModelRegistry.ids.joined(separator: ", ")))"
      ))
  }
}
