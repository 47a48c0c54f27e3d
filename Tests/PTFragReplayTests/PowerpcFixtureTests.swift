import PTFragEvents
import PTFragReport
import PTFragKit
import PTFragRead
import XCTest

@testable import PTFragReplay

/// The hand-written powerpc captures in Fixtures/models/: ftrace text as the kernel prints
/// it for probes such as
/// `p:pte_fragment_alloc pte_fragment_alloc mm=%r3:x64 kernel=%r4:x32` and its
/// `r:… table=$retval:x64`. Each must produce exactly its findings, at exactly its lines.
final class PowerpcFixtureTests: XCTestCase {
  func findings(_ r: ReplayResult) -> [String] { r.findings.map { "\($0.line) \($0.rule.id)" } }

  func testHash64KReleasedWithActiveAtItsLine() throws {
    let r = try Fixture.replay(
      "Fixtures/models/powerpc-hash64k-released-with-active.trace", model: PowerpcHash64KModel.self)
    XCTAssertEqual(findings(r), ["34 released-with-active"])
    XCTAssertEqual(r.inconclusive.count, 0)
    let f = try XCTUnwrap(r.findings.first)
    XCTAssertEqual(f.mm, 0xc000_0000_1234_0000)
    XCTAssertEqual(f.page, 0xc000_0000_0a01_0000)
    XCTAssertEqual(f.relatedLines, [23], "the pte_free_defer that set PG_active")
    XCTAssertEqual(f.stateBefore, "ref 13/16 · X 3 U 13 · cursor @3 · active")
    // The other mm's deferred page went through RCU (pte_free_now at the last line).
    XCTAssertEqual(r.stats.pagesAtEnd, 0)
    XCTAssertEqual(r.stats.allocationsPredicted, 3)
    XCTAssertEqual(r.stats.allocationsUnverified, 2, "each mm's first allocation synchronises its cursor")
    XCTAssertEqual(Judgement(result: r, gate: Gate(failOn: .error)).verdict, .findings)
  }

  func testHash64KWithFixedDestroyIsClean() throws {
    final class Fixed: PowerpcModel {
      required convenience init(context: ReplayContext) {
        self.init(context: context, geometry: PowerpcPreset.hash64K.geometry, destroyClearsActive: true)
      }
    }
    let r = try Fixture.replay("Fixtures/models/powerpc-hash64k-released-with-active.trace", model: Fixed.self)
    XCTAssertEqual(findings(r), [])
    XCTAssertEqual(Judgement(result: r, gate: Gate(failOn: .error)).verdict, .clean)
  }

  func test8xxConcurrentAllocationsAreClean() throws {
    let r = try Fixture.replay(
      "Fixtures/models/powerpc-8xx16k-concurrent-clean.trace", model: Powerpc8xx16KModel.self)
    XCTAssertEqual(findings(r), [])
    XCTAssertEqual(r.inconclusive.map(\.message), [])
    XCTAssertEqual(r.stats.concurrencyResolved, 3, "a reservation, a race loser, the race swap")
    XCTAssertEqual(r.stats.allocationsPredicted, 9)
    XCTAssertEqual(r.stats.pagesAtEnd, 0, "the race loser was released by its one free")
    XCTAssertEqual(r.stats.peakPages, 3)
    XCTAssertEqual(Judgement(result: r, gate: Gate(failOn: .error)).verdict, .clean)
  }

  func testRadix64KDivergencesEachAtItsLine() throws {
    let r = try Fixture.replay(
      "Fixtures/models/powerpc-radix64k-divergences.trace", model: PowerpcRadix64KModel.self)
    XCTAssertEqual(
      findings(r),
      [
        "21 reuse-before-release", "25 alloc-not-cursor", "27 double-free", "28 exec-tag-mismatch",
        "32 free-unknown",
      ])
    XCTAssertEqual(r.inconclusive.count, 0)
    XCTAssertEqual(r.findings.map(\.half), [1, 5, 2, nil, 7], "fragment indexes")
  }

  /// The same capture through the wrong geometry diverges at once: fragments are 256 B
  /// apart, not 4 KiB.
  func testWrongPresetIsNoticed() throws {
    let r = try Fixture.replay(
      "Fixtures/models/powerpc-radix64k-divergences.trace", model: PowerpcHash64KModel.self)
    XCTAssertTrue(r.findings.contains { $0.rule.id == "alloc-divergence" && $0.line == 16 })
  }

  func testKernelArgumentIsParsed() throws {
    let text = """
            swapper-1     [000] .....     1.000100: pte_fragment_alloc: (pte_fragment_alloc+0x0/0x1d0) mm=0xc000000002a1b400 kernel=0x1
            swapper-1     [000] .....     1.000130: pte_fragment_alloc_ret: (__pte_alloc_kernel+0x4c/0x1b0 <- pte_fragment_alloc) table=0xc00000000b000000
            swapper-1     [000] .....     1.000200: pte_fragment_free: (pte_fragment_free+0x0/0x120) arg1=0xc00000000b000000 arg2=0x1

    """
    var source = MemorySource(text)
    var events: [Event] = []
    var normalizer = Normalizer()
    _ = try TextCaptureReader().read(&source) { normalizer.feed($0) { events.append($0) } }
    XCTAssertEqual(events.map(\.kind), [.allocBegin, .alloc, .fragmentFree])
    XCTAssertEqual(events.map(\.kernel), [true, true, true])
    XCTAssertEqual(events[1].mm, 0xc000_0000_02a1_b400)
    XCTAssertEqual(events[2].table, 0xc000_0000_0b00_0000)
  }

  /// `--model auto` on each powerpc fixture: powerpc from its functions, the preset from the
  /// fragment geometry (issue 13 item 5: these auto-detected as s390-6.7 or refused).
  func testEachFixtureAutoDetectsAsItsPreset() throws {
    for (file, model) in [
      ("powerpc-8xx16k-concurrent-clean", "powerpc-8xx16k"),
      ("powerpc-hash64k-released-with-active", "powerpc-hash64k"),
      ("powerpc-radix64k-divergences", "powerpc-radix64k"),
    ] {
      let r = try Analyzer.analyze(
        path: fixtures + "/models/\(file).trace", options: AnalyzeOptions(modelID: Analyzer.autoModelID))
      XCTAssertNil(r.error?.message, file)
      XCTAssertEqual(r.result?.model.id, model, "\(file): \(r.modelSelection)")
      XCTAssertTrue(r.modelSelection.contains("powerpc ("), r.modelSelection)
    }
  }

  /// v6.12 `pte_fragment_free` calls `pte_free_now` directly for every page whose count reaches
  /// zero without PG_active, and through `call_rcu` after `pte_free_defer`; the hit's `head`
  /// names its page (`0xc00c000000000000 + pfn × 64 + 8`). Page A waits for its callback when a
  /// direct `pte_free_now` of page B runs (line 17): matched in call_rcu order that released A,
  /// and hid A's reuse at line 21, before its own callback. Matched by page, the reuse
  /// hinges on a missed pte_free_now: reuse-before-grace with a zero-miss profile, explained
  /// with a profile that counts one.
  func testPteFreeNowIsMatchedByThePageItNames() throws {
    let text = """
          init-1 [000] .....   300.000010: init_new_context: (init_new_context+0xc/0x100) mm=0xc000000003741380
            a-10 [000] .....   300.000020: pte_fragment_alloc: (pte_fragment_alloc+0xc/0x100) mm=0xc000000003741380 kernel=0x0
            a-10 [000] .....   300.000030: pte_fragment_alloc_ret: (__pte_alloc+0x4c/0x1b0 <- pte_fragment_alloc) table=0xc000000007ad0000
            a-10 [000] .....   300.000040: arch_exit_mmap: (arch_exit_mmap+0xc/0x100) mm=0xc000000003741380
            a-10 [000] .....   300.000050: pte_frag_destroy: (pte_frag_destroy+0xc/0x100) frag=0xc000000007ad0100
            k-30 [001] .....   300.000060: pte_free_defer: (pte_free_defer+0xc/0x100) mm=0xc000000003741380 table=0xc000000007ad0000
            k-30 [001] .....   300.000070: pte_fragment_free: (pte_fragment_free+0xc/0x100) table=0xc000000007ad0000 kernel=0x0
            a-10 [000] .....   300.000080: destroy_context: (destroy_context+0xc/0x100) mm=0xc000000003741380
          init-1 [000] .....   300.000090: init_new_context: (init_new_context+0xc/0x100) mm=0xc000000003742d80
            b-11 [000] .....   300.000100: pte_fragment_alloc: (pte_fragment_alloc+0xc/0x100) mm=0xc000000003742d80 kernel=0x0
            b-11 [000] .....   300.000110: pte_fragment_alloc_ret: (__pte_alloc+0x4c/0x1b0 <- pte_fragment_alloc) table=0xc000000007b80000
            b-11 [000] .....   300.000120: arch_exit_mmap: (arch_exit_mmap+0xc/0x100) mm=0xc000000003742d80
            b-11 [000] .....   300.000130: pte_frag_destroy: (pte_frag_destroy+0xc/0x100) frag=0xc000000007b80100
            b-11 [000] .....   300.000140: tlb_remove_table: (tlb_remove_table+0xc/0x100) tlb=0xc0000000050dfa10 table=0xc000000007b80000
        <idle>-0 [001] ..s..   300.000150: __tlb_remove_table: (__tlb_remove_table+0xc/0x100) table=0xc000000007b80000
        <idle>-0 [001] ..s..   300.000160: pte_fragment_free: (pte_fragment_free+0xc/0x100) table=0xc000000007b80000 kernel=0x0
        <idle>-0 [001] ..s..   300.000170: pte_free_now: (pte_free_now+0xc/0x100) head=0xc00c00000001ee08
            b-11 [000] .....   300.000180: destroy_context: (destroy_context+0xc/0x100) mm=0xc000000003742d80
          init-1 [000] .....   300.000190: init_new_context: (init_new_context+0xc/0x100) mm=0xc000000003741380
            c-12 [000] .....   300.000200: pte_fragment_alloc: (pte_fragment_alloc+0xc/0x100) mm=0xc000000003741380 kernel=0x0
            c-12 [000] .....   300.000210: pte_fragment_alloc_ret: (__pte_alloc+0x4c/0x1b0 <- pte_fragment_alloc) table=0xc000000007ad0000
"""
    var zero = MemorySource(Array((text + "\n").utf8))
    let r = try Fixture.replay(&zero, model: PowerpcRadix64KModel.self, profileMisses: [.pteFreeNow: 0])
    XCTAssertEqual(findings(r), ["21 reuse-before-grace"])
    var one = MemorySource(Array((text + "\n").utf8))
    let e = try Fixture.replay(&one, model: PowerpcRadix64KModel.self, profileMisses: [.pteFreeNow: 1])
    XCTAssertEqual(findings(e), [])
    XCTAssertEqual(e.inconclusive.map { "\($0.line) \($0.hingesOn?.symbol ?? "") \($0.explainedBy != nil)" }, ["21 pte_free_now true"])
    XCTAssertEqual(r.stats.allocationsPredicted, 3)
  }
}
