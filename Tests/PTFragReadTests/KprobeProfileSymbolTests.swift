import PTFragEvents
import Testing

@testable import PTFragRead

/// `--model auto` reads from a kprobe_profile which symbols exist in the traced kernel
/// (a probe on an absent symbol cannot be created, so it is not listed). These are the two
/// real profiles shipped with the samples.
@Suite("kprobe_profile: which probed symbols exist")
struct KprobeProfileSymbolTests {
  static let root: String = {
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
  }()

  /// The functions a profile lists probes on, as `--model auto` reads them.
  func probed(_ p: KprobeProfile) -> Set<KernelFunction> {
    Set(p.missesByFunction(eventNames: [:]).keys)
  }

  func load(_ name: String) throws -> Set<KernelFunction> {
    probed(try KprobeProfile.load(path: Self.root + "/Fixtures/samples/" + name))
  }

  @Test("6.1 lists page_table_free_rcu and no pte_free_defer")
  func debian61() throws {
    let p = try load("s390x-6.1-fork-exec.kprobe_profile")
    #expect(p.contains(.pageTableFreeRCU))
    #expect(!p.contains(.pteFreeDefer))
    #expect(!p.contains(.pteFreeNow))
  }

  @Test("6.12 lists pte_free_defer and no page_table_free_rcu")
  func debian612() throws {
    let p = try load("s390x-6.12-fork-exec.kprobe_profile")
    #expect(p.contains(.pteFreeDefer))
    #expect(!p.contains(.pageTableFreeRCU))
    #expect(p.contains(.pageTableAlloc))
  }

  @Test("grouped names and _ret names resolve by symbol")
  func groupedNames() throws {
    let p = probed(
      try KprobeProfile.parse(
        "  ptfrag/pte_free_defer_ret   3   0\n  ptfrag/__tlb_remove_table 9 1\n", path: "x"))
    #expect(p == [.pteFreeDefer, .tlbRemoveTableExec])
  }
}
