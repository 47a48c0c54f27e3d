import PTFragReplay
/// The kprobe_events lines that capture what ptfrag replays, per s390 kernel version
/// (docs/kernel-models.md §7.2, §7.4, §7.4b and the version drift of §5; docs/trace-format.md).
///
/// Every line uses only symbols the version has: `page_table_free_rcu` through v6.10
/// (out-of-line; AA/PP logic through v6.6, trivial form after), `__tlb_remove_table` through
/// v6.13 (generic and inline from v6.14), `pte_free_defer`/`pte_free_now` from v6.6 (THP=y),
/// the `_noprof` entry points from v6.18 (088bb10e3725). Registers follow the s390x ELF ABI:
/// arguments in %r2…%r6, return value in %r2 (`$retval`).
public enum ProbeSets {
  /// A parsed `major.minor` kernel version.
  public struct Version: Sendable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public init(_ major: Int, _ minor: Int) {
      self.major = major
      self.minor = minor
    }
    public static func < (a: Version, b: Version) -> Bool {
      (a.major, a.minor) < (b.major, b.minor)
    }
    public var description: String { "\(major).\(minor)" }

    /// Accepts `6.1`, `v6.12`, `6.1.0-50-s390x`, `6.12.95+deb12-s390x`, `6.18-rc3`.
    public init?(parsing text: String) {
      var s = Substring(text)
      if s.first == "v" || s.first == "V" { s = s.dropFirst() }
      let digitsAndDots = s.prefix { $0.isNumber || $0 == "." }
      let parts = digitsAndDots.split(separator: ".", omittingEmptySubsequences: false)
      guard parts.count >= 2, let a = Int(parts[0]), let b = Int(parts[1]) else { return nil }
      // What follows the number must be a separator, not more of a word ("6.1abc").
      let rest = s.dropFirst(digitsAndDots.count)
      if let c = rest.first, c != "-", c != "+", c != "_", c != "~" { return nil }
      major = a
      minor = b
    }
  }

  /// The oldest and newest versions ptfrag has a model and a probe set for.
  public static let oldest = Version(5, 17)
  public static let newest = Version(6, 18)

  public enum ProbeError: Error, Sendable, Equatable {
    case unparsable(String)
    case tooOld(Version)
    case tooNew(Version)

    public var message: String {
      switch self {
      case .unparsable(let t):
        "'\(t)' is not a kernel version (expected MAJOR.MINOR, e.g. 6.1, 6.12.95+deb12-s390x)"
      case .tooOld(let v):
        "no model covers v\(v): ptfrag's s390 models start at v\(oldest) (the AA/PP allocator with c2c224932fd0's two-step free)"
      case .tooNew(let v):
        "v\(v) is newer than any kernel ptfrag knows (newest: v\(newest)); its symbols are not established — try 'ptfrag probes --kernel \(newest)' and check each symbol in /proc/kallsyms"
      }
    }
  }

  /// A probe set for one version.
  public struct ProbeSet: Sendable {
    public var version: Version
    /// The model that replays captures of this version (`nil`: none can).
    public var modelID: String?
    /// Lines for kprobe_events, in order; lines starting with `#` are comments (the kernel
    /// ignores them).
    public var lines: [String]
    /// Warnings to show the user (also present as comments in `lines`).
    public var warnings: [String]

    /// The text to paste into /sys/kernel/tracing/kprobe_events.
    public var text: String { lines.joined(separator: "\n") + "\n" }
  }

  /// The architectures ptfrag has probe sets for.
  public enum Arch: String, Sendable, CaseIterable {
    case s390x
    case powerpc

    /// The architecture a kernel release string names (`…-powerpc64le-64k`, `…-ppc64el`),
    /// nil when it names none.
    public init?(kernelString text: String) {
      let t = text.lowercased()
      if t.contains("powerpc") || t.contains("ppc64") { self = .powerpc } else if t.contains("s390") {
        self = .s390x
      } else {
        return nil
      }
    }
  }

  /// The probe set for `text` (a version string) on `arch` (nil: named by the string, else
  /// s390x).
  public static func probes(forKernel text: String, arch: Arch? = nil) throws(ProbeError) -> ProbeSet {
    guard let v = Version(parsing: text) else { throw .unparsable(text) }
    switch arch ?? Arch(kernelString: text) ?? .s390x {
    case .s390x: return try probes(for: v)
    case .powerpc: return try powerpcProbes(for: v)
    }
  }

  /// The oldest powerpc version with `arch/powerpc/mm/pgtable-frag.c` (v5.1: the fragment
  /// code moved there from book3s64, with `pte_fragment_alloc`/`pte_fragment_free`).
  public static let oldestPowerpc = Version(5, 1)

  /// The powerpc probe set: the one the real ppc64le corpus was made with
  /// (Fixtures/corpus/ppc64/*.kprobe_events). Registers follow the 64-bit ELF ABI: arguments
  /// in r3…r10, return value in r3 (`$retval`). `init_new_context(tsk, mm)` has its mm in r4.
  public static func powerpcProbes(for v: Version) throws(ProbeError) -> ProbeSet {
    if v < oldestPowerpc {
      throw .unparsable("\(v) (powerpc: ptfrag's probe set needs v\(oldestPowerpc)+, arch/powerpc/mm/pgtable-frag.c)")
    }
    if v > newest { throw .tooNew(v) }
    var warnings: [String] = []
    var lines: [String] = []
    lines.append("# ptfrag probe set for powerpc Linux v\(v) (pgtable-frag.c: PTE fragments with a per-mm cursor)")
    lines.append("# paste into /sys/kernel/tracing/kprobe_events, then: echo 1 > /sys/kernel/tracing/events/ptfrag/enable")
    lines.append("# save kprobe_profile with the trace; use trace_clock=global for cross-CPU order")
    lines.append("# replay with: ptfrag analyze --model auto (radix vs hash from the addresses), or --model powerpc-radix64k / powerpc-hash64k / powerpc-8xx16k")
    lines.append("# kernels with fda4d71651f7 (pte_frag_destroy clears PG_active): add --kernel-fix fda4d71651f7")
    lines.append("p:ptfrag/pte_fragment_alloc pte_fragment_alloc mm=%r3:x64 kernel=%r4:x32")
    lines.append("r128:ptfrag/pte_fragment_alloc_ret pte_fragment_alloc table=$retval:x64")
    lines.append("p:ptfrag/pte_fragment_free pte_fragment_free table=%r3:x64 kernel=%r4:x32")
    lines.append("p:ptfrag/pte_frag_destroy pte_frag_destroy frag=%r3:x64")
    lines.append("# the low 4 bits of a tlb value are the table level: 0 PTE, 1 PMD, 2 PUD")
    lines.append("p:ptfrag/tlb_remove_table tlb_remove_table tlb=%r3:x64 table=%r4:x64")
    lines.append("p:ptfrag/__tlb_remove_table __tlb_remove_table table=%r3:x64")
    warnings.append(
      "book3s64 only: init_new_context, arch_exit_mmap and destroy_context (mm birth, exit, death; arch/powerpc/mm/book3s64/mmu_context.c) and pmd_fragment_alloc/pmd_fragment_free (book3s64/pgtable.c); on other MMUs (8xx) check /proc/kallsyms and drop the lines it lacks")
    lines.append("# WARNING: \(warnings.last!)")
    lines.append("p:ptfrag/init_new_context init_new_context mm=%r4:x64")
    lines.append("p:ptfrag/arch_exit_mmap arch_exit_mmap mm=%r3:x64")
    lines.append("p:ptfrag/destroy_context destroy_context mm=%r3:x64")
    lines.append("p:ptfrag/pmd_fragment_alloc pmd_fragment_alloc mm=%r3:x64")
    lines.append("r128:ptfrag/pmd_fragment_alloc_ret pmd_fragment_alloc table=$retval:x64")
    lines.append("p:ptfrag/pmd_fragment_free pmd_fragment_free table=%r3:x64")
    if v >= Version(6, 6) {
      lines.append("# last, as they may be absent: pte_free_defer needs CONFIG_TRANSPARENT_HUGEPAGE=y;")
      lines.append("# pte_free_now is static (only if /proc/kallsyms lists it once)")
      lines.append("p:ptfrag/pte_free_defer pte_free_defer mm=%r3:x64 table=%r4:x64")
      lines.append("p:ptfrag/pte_free_now pte_free_now head=%r3:x64")
    }
    if v > Version(6, 12) {
      warnings.append(
        "v\(v): the powerpc probe set was checked on v6.1 and v6.12 captures only; check each symbol in /proc/kallsyms")
      lines.insert("# WARNING: \(warnings.last!)", at: 5)
    }
    return ProbeSet(version: v, modelID: nil, lines: lines, warnings: warnings)
  }

  public static func probes(for v: Version) throws(ProbeError) -> ProbeSet {
    if v < oldest { throw .tooOld(v) }
    if v > newest { throw .tooNew(v) }
    let noprof = v >= Version(6, 18)
    let alloc = noprof ? "page_table_alloc_noprof" : "page_table_alloc"
    let crstAlloc = noprof ? "crst_table_alloc_noprof" : "crst_table_alloc"
    var warnings: [String] = []
    var lines: [String] = []
    // The model is the one whose descriptor encodes v (ModelDescriptor.mainline).
    let model = ModelRegistry.model(of: .s390, v.major, v.minor)?.descriptor.id
    let variant: String
    switch v {
    case ..<Version(6, 6):
      variant = "variant A: 2 KiB fragments, AA/PP bits, tagged tlb values"
    case Version(6, 6):
      variant = "variant B: variant A plus PageActive and pte_free_defer"
    case ..<Version(6, 14):
      variant = "variant D: one table per 4 KiB page, untagged tlb values"
    default:
      variant = "one table per 4 KiB page; tlb_remove_table carries struct ptdesc pointers"
      warnings.append(
        "v\(v): tlb_remove_table receives a struct ptdesc pointer (a vmemmap address), not the table VA, and __tlb_remove_table is generic and inline (Qi Zheng's series, v6.14): ptfrag cannot replay this tlb path; allocations and immediate frees are still captured")
    }
    lines.append("# ptfrag probe set for s390x Linux v\(v) (\(variant))")
    lines.append("# paste into /sys/kernel/tracing/kprobe_events, then: echo 1 > /sys/kernel/tracing/events/ptfrag/enable")
    lines.append("# save kprobe_profile with the trace; use trace_clock=global for cross-CPU order")
    if let model { lines.append("# replay with: ptfrag analyze --model \(model) (or --model auto)") }
    for w in warnings { lines.append("# WARNING: \(w)") }
    lines.append("p:ptfrag/page_table_alloc \(alloc) mm=%r2:x64")
    lines.append("r128:ptfrag/page_table_alloc_ret \(alloc) table=$retval:x64")
    lines.append("p:ptfrag/page_table_free page_table_free mm=%r2:x64 table=%r3:x64")
    switch v {
    case ..<Version(6, 11):
      // struct mmu_gather starts with its mm: +0(%r2) is tlb->mm.
      lines.append(
        "p:ptfrag/page_table_free_rcu page_table_free_rcu tlb=%r2:x64 mm=+0(%r2):x64 table=%r3:x64 vmaddr=%r4:x64")
    case Version(6, 11):
      warnings.append(
        "v6.11: whether page_table_free_rcu still exists is not established (present through v6.10, absent in v6.12); its line is commented out: enable it if /proc/kallsyms lists the symbol")
      lines.append("# WARNING: \(warnings.last!)")
      lines.append(
        "#p:ptfrag/page_table_free_rcu page_table_free_rcu tlb=%r2:x64 mm=+0(%r2):x64 table=%r3:x64 vmaddr=%r4:x64")
    default:
      break  // folded into the inline pte_free_tlb
    }
    lines.append("p:ptfrag/tlb_remove_table tlb_remove_table tlb=%r2:x64 mm=+0(%r2):x64 table=%r3:x64")
    if v < Version(6, 14) {
      lines.append("p:ptfrag/__tlb_remove_table __tlb_remove_table table=%r2:x64")
    }
    lines.append("p:ptfrag/crst_table_alloc \(crstAlloc) mm=%r2:x64")
    lines.append("r128:ptfrag/crst_table_alloc_ret \(crstAlloc) table=$retval:x64")
    lines.append("p:ptfrag/crst_table_free crst_table_free mm=%r2:x64 table=%r3:x64")
    if v >= Version(6, 6) {
      // Last: the kernel stops at the first line it rejects, and these may be absent.
      lines.append("# last, as they may be absent: pte_free_defer needs CONFIG_TRANSPARENT_HUGEPAGE=y;")
      lines.append("# pte_free_now is static (only if /proc/kallsyms lists it once)")
      lines.append("p:ptfrag/pte_free_defer pte_free_defer mm=%r2:x64 table=%r3:x64")
      lines.append("r:ptfrag/pte_free_defer_ret pte_free_defer")
      lines.append("p:ptfrag/pte_free_now pte_free_now head=%r2:x64")
    }
    return ProbeSet(version: v, modelID: model, lines: lines, warnings: warnings)
  }
}
