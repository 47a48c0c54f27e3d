import PTFragEvents
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
}
