import Testing

@testable import PTFragKit
import PTFragReplay

/// `ptfrag probes --kernel VERSION`: the symbols each version has, and refusals.
@Suite("Probe sets per kernel version")
struct ProbeSetTests {
  func probes(_ v: String) throws -> ProbeSets.ProbeSet { try ProbeSets.probes(forKernel: v) }
  /// The probed symbols of the active (uncommented) lines.
  func symbols(_ set: ProbeSets.ProbeSet) -> [String] {
    set.lines.filter { !$0.hasPrefix("#") }.map { String($0.split(separator: " ")[1]) }
  }

  @Test("the model a probe set names is the one whose descriptor encodes the version")
  func modelFromDescriptors() throws {
    // Every s390 version ptfrag knows: exactly one descriptor's mainline range holds it, or
    // none (v6.14+: no model), and the probe set names that one.
    for minor in 17...19 { try check(5, minor) }
    for minor in 0...18 { try check(6, minor) }
    func check(_ major: Int, _ minor: Int) throws {
      let owners = ModelRegistry.all.filter { $0.descriptor.architecture == .s390 && $0.descriptor.encodes(major, minor) }
      #expect(owners.count <= 1, "v\(major).\(minor): \(owners.map { $0.descriptor.id })")
      let s = try probes("\(major).\(minor)")
      #expect(s.modelID == owners.first?.descriptor.id, "v\(major).\(minor)")
    }
    #expect(ModelRegistry.model(of: .s390, 6, 5)?.descriptor.id == "s390-6.1")
    #expect(ModelRegistry.model(of: .s390, 6, 13)?.descriptor.id == "s390-6.7")
    #expect(ModelRegistry.model(of: .s390, 6, 14) == nil)
    #expect(ModelRegistry.model(of: .powerpc, 6, 1) == nil)
  }

  @Test("version strings as users type them")
  func parsing() {
    #expect(ProbeSets.Version(parsing: "6.1") == ProbeSets.Version(6, 1))
    #expect(ProbeSets.Version(parsing: "v6.12") == ProbeSets.Version(6, 12))
    #expect(ProbeSets.Version(parsing: "6.1.0-50-s390x") == ProbeSets.Version(6, 1))
    #expect(ProbeSets.Version(parsing: "6.12.95+deb12-s390x") == ProbeSets.Version(6, 12))
    #expect(ProbeSets.Version(parsing: "6.18-rc3") == ProbeSets.Version(6, 18))
    #expect(ProbeSets.Version(parsing: "6") == nil)
    #expect(ProbeSets.Version(parsing: "6.1abc") == nil)
    #expect(ProbeSets.Version(parsing: "linux") == nil)
  }

  @Test("6.1: page_table_free_rcu and __tlb_remove_table, no pte_free_defer")
  func v61() throws {
    let s = try probes("6.1.0-50-s390x")
    #expect(s.modelID == "s390-6.1")
    let sym = symbols(s)
    #expect(sym.contains("page_table_free_rcu") && sym.contains("__tlb_remove_table"))
    #expect(!sym.contains("pte_free_defer") && !sym.contains("pte_free_now"))
    #expect(s.lines.contains("r128:ptfrag/page_table_alloc_ret page_table_alloc table=$retval:x64"))
  }

  @Test("6.6: adds pte_free_defer (entry and return) and pte_free_now, last")
  func v66() throws {
    let s = try probes("6.6")
    #expect(s.modelID == "s390-6.6")
    let sym = symbols(s)
    #expect(sym.contains("page_table_free_rcu"))
    #expect(Array(sym.suffix(3)) == ["pte_free_defer", "pte_free_defer", "pte_free_now"])
    #expect(s.lines.contains("p:ptfrag/pte_free_now pte_free_now head=%r2:x64"))
  }

  @Test("6.7 … 6.10 keep page_table_free_rcu; 6.11 comments it out; 6.12 has none")
  func v67to612() throws {
    #expect(symbols(try probes("6.10")).contains("page_table_free_rcu"))
    let s611 = try probes("6.11")
    #expect(!symbols(s611).contains("page_table_free_rcu") && !s611.warnings.isEmpty)
    #expect(s611.lines.contains { $0.hasPrefix("#p:ptfrag/page_table_free_rcu") })
    let s612 = try probes("6.12.95+deb12-s390x")
    #expect(s612.modelID == "s390-6.7" && s612.warnings.isEmpty)
    #expect(!s612.text.contains("page_table_free_rcu"))
    #expect(symbols(s612).contains("__tlb_remove_table"))
  }

  @Test("6.14+: no arch __tlb_remove_table, a ptdesc warning, no model; 6.18: _noprof")
  func v614plus() throws {
    let s = try probes("6.14")
    #expect(s.modelID == nil && s.warnings.count == 1 && s.warnings[0].contains("ptdesc"))
    #expect(!symbols(s).contains("__tlb_remove_table"))
    let n = try probes("6.18")
    #expect(symbols(n).contains("page_table_alloc_noprof") && symbols(n).contains("crst_table_alloc_noprof"))
    #expect(!symbols(try probes("6.17")).contains("page_table_alloc_noprof"))
  }

  @Test("every active line is a kprobe_events definition with s390 registers")
  func syntax() throws {
    for v in ["5.17", "6.1", "6.6", "6.7", "6.12", "6.13", "6.14", "6.18"] {
      for l in try probes(v).lines where !l.hasPrefix("#") {
        #expect(l.hasPrefix("p:ptfrag/") || l.hasPrefix("r:ptfrag/") || l.hasPrefix("r128:ptfrag/"), "\(l)")
        #expect(!l.contains("%di") && !l.contains("%r1 "), "\(l)")
      }
    }
  }

  @Test("unknown and unsupported versions are refused")
  func refusals() {
    #expect(throws: ProbeSets.ProbeError.tooOld(.init(5, 10))) { try probes("5.10") }
    #expect(throws: ProbeSets.ProbeError.tooNew(.init(7, 0))) { try probes("7.0") }
    #expect(throws: ProbeSets.ProbeError.unparsable("abc")) { try probes("abc") }
  }
}

/// `ptfrag probes --arch powerpc` (or a kernel string naming powerpc): the set the ppc64le
/// corpus was made with (Fixtures/corpus/ppc64/*.kprobe_events), in its registers.
@Suite("powerpc probe sets")
struct PowerpcProbeSetTests {
  /// The active lines without their group, as the corpus's kernel echoed them back.
  func body(_ set: ProbeSets.ProbeSet) -> [String] {
    set.lines.filter { !$0.hasPrefix("#") }.map { $0.replacingOccurrences(of: "ptfrag/", with: "kprobes/") }
  }

  func corpusEvents(_ name: String) throws -> [String] {
    let path = String(#filePath).split(separator: "/").dropLast(3).joined(separator: "/")
    let text = try String(contentsOfFile: "/" + path + "/Fixtures/corpus/ppc64/\(name).kprobe_events", encoding: .utf8)
    return text.split(separator: "\n").map(String.init)
  }

  @Test("6.12 from the Debian kernel string: exactly the corpus's probes (r3/r4, $retval)")
  func fromKernelString() throws {
    let set = try ProbeSets.probes(forKernel: "6.12.95+deb12-powerpc64le-64k")
    #expect(Set(body(set)) == Set(try corpusEvents("6.12.95+deb12-powerpc64le-64k-radix-thp")))
    #expect(!set.text.contains("%r2"))
    #expect(set.lines[0].contains("powerpc"))
  }

  @Test("6.1 with --arch powerpc: no pte_free_defer/pte_free_now (v6.6+)")
  func v61() throws {
    let set = try ProbeSets.probes(forKernel: "6.1", arch: .powerpc)
    #expect(Set(body(set)) == Set(try corpusEvents("6.1.0-50-powerpc64le-hash-medium")))
    #expect(!set.warnings.isEmpty, "says which symbols may be missing")
  }

  @Test("the architecture a kernel string names")
  func archOfString() {
    #expect(ProbeSets.Arch(kernelString: "6.1.0-50-powerpc64le") == .powerpc)
    #expect(ProbeSets.Arch(kernelString: "6.1.0-27-ppc64el") == .powerpc)
    #expect(ProbeSets.Arch(kernelString: "6.12.95+deb12-s390x") == .s390x)
    #expect(ProbeSets.Arch(kernelString: "6.12") == nil)
  }
}
