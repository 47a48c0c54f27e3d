import PTFragEvents
import PTFragTestSupport
import Testing

@testable import PTFragReplay

/// `--model auto`: what each kind of evidence decides, and when detection refuses.
@Suite("VariantDetector")
struct VariantDetectorTests {
  let M: UInt64 = 0x20c_0800

  func decide(_ s: EventScript, profile: Set<KernelFunction> = [], end: Bool = true)
    -> VariantDetector.Decision
  {
    var d = VariantDetector(profileFunctions: profile)
    for e in s.events { d.observe(e) }
    return d.decide(endOfInput: end)
  }

  func modelID(_ d: VariantDetector.Decision) -> String? {
    if case .model(let id, _) = d { return id }
    return nil
  }

  @Test("an upper 2 KiB half alone: s390-6.1, and it says why")
  func upperHalf() {
    var s = EventScript()
    s.alloc(M, 0x37b_9000)
    let l = s.alloc(M, 0x37b_9800)
    let d = decide(s)
    #expect(modelID(d) == "s390-6.1")
    if case .model(_, let why) = d {
      #expect(why.contains("line \(l)") && why.contains("upper 2 KiB half"))
      #expect(why.contains("no pte_free_defer in the capture"))
    }
  }

  @Test("a tagged tlb value alone: fragments")
  func taggedValue() {
    var s = EventScript()
    s.execRaw(0x37b_9802)
    #expect(modelID(decide(s)) == "s390-6.1")
  }

  @Test("fragments and pte_free_defer (seen, or listed in the kprobe_profile): s390-6.6")
  func fragmentsAndDefer() {
    var s = EventScript()
    s.alloc(M, 0x37b_9800)
    #expect(modelID(decide(s, profile: [.pteFreeDefer])) == "s390-6.6")
    s.deferBegin(M, 0x37b_9800)
    #expect(modelID(decide(s)) == "s390-6.6")
    var d = VariantDetector()
    for e in s.events { d.observe(e) }
    #expect(d.decisive)
  }

  @Test("an untagged tlb value of an allocated table: s390-6.7, decisive at once")
  func untaggedKnownTable() {
    var s = EventScript()
    s.alloc(M, 0x351_9000)
    s.queue(0x351_9000)
    var d = VariantDetector()
    var decisiveAt: Int? = nil
    for e in s.events where d.observe(e) && decisiveAt == nil { decisiveAt = e.line }
    #expect(decisiveAt == s.line)
    #expect(modelID(d.decide(endOfInput: false)) == "s390-6.7")
  }

  @Test("LOST EVENTS between an allocation and an untagged tlb value: no one-per-page evidence")
  func lossBreaksThePair() {
    // The lost events may have freed the table and reused its page as a CRST table (an
    // untagged __tlb_remove_table on any kernel): only pairs after the loss count.
    var s = EventScript()
    s.alloc(M, 0x351_9000)
    s.add(.lost, cpu: 0, count: 366)
    s.execRaw(0x351_9000)
    #expect(modelID(decide(s)) == nil)
    // After the loss, a new pair decides again.
    s.alloc(M, 0x351_a000)
    s.queue(0x351_a000)
    #expect(modelID(decide(s)) == "s390-6.7")
    // A born mm's first two page-aligned tables across a loss: no evidence either.
    var t = EventScript()
    t.birth(M, pgd: 0x291_0000)
    t.alloc(M, 0x351_9000)
    t.add(.lost, cpu: 1, count: 12)
    t.alloc(M, 0x351_8000)
    #expect(modelID(decide(t)) == nil)
    // Single-event evidence from before the loss stands.
    var u = EventScript()
    u.alloc(M, 0x37b_9800)
    u.add(.lost, cpu: 0, count: 5)
    #expect(modelID(decide(u)) == "s390-6.1")
  }

  @Test("only page-aligned tables for a born mm: s390-6.7 at the end, overridden by fragments")
  func onlyWholePages() {
    var s = EventScript()
    s.birth(M, pgd: 0x291_0000)
    s.alloc(M, 0x351_9000)
    s.alloc(M, 0x351_8000)
    var d = VariantDetector()
    for e in s.events { d.observe(e) }
    #expect(!d.decisive)  // a pgste mm on a fragment kernel looks the same
    #expect(modelID(d.decide(endOfInput: true)) == "s390-6.7")
    s.execRaw(0x37b_9801)  // a tagged value: fragments, the pgste reading wins
    #expect(modelID(decide(s)) == "s390-6.1")
    // A free between the two allocations removes the evidence.
    var t = EventScript()
    t.birth(M, pgd: 0x291_0000)
    t.alloc(M, 0x351_9000)
    t.freeNow(M, 0x351_9000)
    t.alloc(M, 0x351_8000)
    #expect(modelID(decide(t)) == nil)
  }

  @Test("refusals: nothing decisive (usage), contradiction and ptdesc pointers (data)")
  func refusals() {
    var s = EventScript()
    s.add(.crstAlloc, mm: M, table: 0x7ff_2c000)
    if case .refuse(.undecidable(let m)) = decide(s) {
      #expect(m.contains("give --model"))
    } else {
      Issue.record("expected an undecidable refusal")
    }
    var c = EventScript()
    c.alloc(M, 0x351_9000)
    c.queue(0x351_9000)
    c.execRaw(0x37b_9802)
    if case .refuse(.unsupported(let m)) = decide(c) {
      #expect(m.contains("contradictory"))
    } else {
      Issue.record("expected a contradiction")
    }
    var p = EventScript()
    p.queue(0x3d0_800d_e640)
    if case .refuse(.unsupported(let m)) = decide(p) {
      #expect(m.contains("ptdesc"))
    } else {
      Issue.record("expected a ptdesc refusal")
    }
    #expect(decide(EventScript()) == .empty)
  }

  // MARK: A kprobe_profile's powerpc listing (kernel-models.md §10 item 10)

  /// The profile of a powerpc kernel (the functions the ppc64 corpus profiles list).
  let powerpcProfile: Set<KernelFunction> = [
    .pteFragmentAlloc, .pteFragmentFree, .pteFragDestroy, .tlbRemoveTable, .tlbRemoveTableExec,
    .initNewContext, .archExitMmap, .destroyContext, .pmdFragmentAlloc, .pmdFragmentFree,
  ]

  @Test("a distrusted profile's powerpc listing is no evidence: an upper half stays an s390 fragment")
  func distrustedPowerpcListing() {
    var s = EventScript()
    s.alloc(M, 0x37b_9000)
    let l = s.alloc(M, 0x37b_9800)  // offset 0x800: "a 256 B fragment" to powerpc
    var d = VariantDetector(profileFunctions: powerpcProfile)
    for e in s.events { d.observe(e) }
    #expect(d.decisive, "trusted, the listing makes the radix geometry decisive")
    d.distrustProfile("it has no probe on page_table_alloc, which the capture has: it is from another kernel")
    #expect(!d.decisive, "distrusted: F alone is not decisive (read on, as without a profile)")
    let r = d.decide(endOfInput: true)
    #expect(modelID(r) == "s390-6.1")
    if case .model(_, let why) = r {
      #expect(why.contains("line \(l)") && why.contains("the kprobe_profile is not used (it has no probe on page_table_alloc"))
      #expect(!why.contains("powerpc"))
    }
    // Two page tables 4 KiB apart at 32-bit addresses: "the 8xx cursor's step" to powerpc.
    var w = EventScript()
    w.birth(M, pgd: 0x7ff_2c000)
    w.alloc(M, 0x351_9000)
    w.alloc(M, 0x351_a000)
    w.queue(0x351_9000)
    var e = VariantDetector(profileFunctions: powerpcProfile)
    for ev in w.events { e.observe(ev) }
    e.distrustProfile("another kernel")
    #expect(modelID(e.decide(endOfInput: true)) == "s390-6.7")
  }

  @Test("a trusted profile listing powerpc functions loses to the capture's s390 functions")
  func s390FunctionsOverruleTheListing() {
    // crst_table_alloc into mm_init (an s390 birth) in the events.
    var s = EventScript()
    let b = s.birth(M, pgd: 0x7ff_2c000)
    s.alloc(M, 0x37b_9000)
    s.alloc(M, 0x37b_9800)
    var d = VariantDetector(profileFunctions: powerpcProfile.union([.pageTableAlloc, .crstTableAlloc]))
    for e in s.events { d.observe(e) }
    #expect(!d.decisive)
    let r = d.decide(endOfInput: true)
    #expect(modelID(r) == "s390-6.1")
    if case .model(_, let why) = r {
      #expect(why.contains("a powerpc function, but line \(b): crst_table_alloc returned into mm_init"))
      #expect(why.contains("the capture's events decide, the listing is not used"))
    }
    // Only page_table_alloc lines (the events cannot tell them from pte_fragment_alloc's):
    // the probe lines the caller counted say s390.
    var a = EventScript()
    a.alloc(M, 0x37b_9000)
    a.alloc(M, 0x37b_9800)
    var e = VariantDetector(profileFunctions: powerpcProfile.union([.pageTableAlloc]))
    for ev in a.events { e.observe(ev) }
    #expect(modelID(e.decide(endOfInput: true))?.hasPrefix("powerpc") == true, "without the lines, the listing counts")
    e.captureHas([.pageTableAlloc, .tlbRemoveTable])
    let r2 = e.decide(endOfInput: true)
    #expect(modelID(r2) == "s390-6.1")
    if case .model(_, let why) = r2 { #expect(why.contains("the capture has page_table_alloc lines, an s390 function")) }
    // Nothing decisive on s390: the refusal says why the listing was not used.
    var u = EventScript()
    u.add(.crstAlloc, mm: M, table: 0x7ff_2c000)
    if case .refuse(.undecidable(let m)) = decide(u, profile: powerpcProfile) {
      #expect(m.contains("cannot tell the allocator variant") && m.contains("the listing is not used"))
    } else {
      Issue.record("expected an undecidable s390 refusal")
    }
  }

  @Test("powerpc and s390 functions in one capture: refused; a powerpc capture with an s390 profile stays powerpc")
  func bothArchitectures() {
    var s = EventScript()
    let p = s.add(.fragmentFree, table: 0x1_2345_0000)
    let c = s.add(.crstAlloc, mm: M, table: 0x7ff_2c000)
    var d = VariantDetector()
    for e in s.events { d.observe(e) }
    #expect(d.decisive)
    if case .refuse(.unsupported(let m)) = d.decide(endOfInput: true) {
      #expect(m.contains("line \(p): pte_fragment_free is a powerpc function") && m.contains("line \(c): crst_table_alloc is an s390 function"))
    } else {
      Issue.record("expected a contradiction")
    }
    // A powerpc capture (init_new_context, a 256 B step) with an s390 kernel's profile.
    var q = EventScript()
    q.add(.mmBirth, mm: M, table: 0)
    q.alloc(M, 0xc000_0000_1234_0000)
    q.alloc(M, 0xc000_0000_1234_0100)
    let r = decide(q, profile: [.pageTableAlloc, .pageTableFreeRCU, .crstTableAlloc, .pteFreeDefer, .tlbRemoveTable])
    #expect(modelID(r) == "powerpc-radix64k")
  }

  @Test("no event: nothing to detect, whatever the profile lists")
  func noEventWithAPowerpcProfile() {
    #expect(decide(EventScript(), profile: powerpcProfile) == .empty)
  }
}
