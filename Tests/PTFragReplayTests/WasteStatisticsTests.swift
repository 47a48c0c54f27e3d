import PTFragEvents
import PTFragTestSupport
import PTFragKit
import PTFragReport
import XCTest

@testable import PTFragReplay

/// The waste statistics (kernel-models.md §8): peaks and time-weighted means of every kind,
/// the ideal lower bound and the no-sharing baseline, in total and per mm, against figures
/// computed by hand (the arithmetic is written next to each assertion).
final class WasteStatisticsTests: XCTestCase {
  func occ(pages: Int, live: Int, pending: Int = 0, now: Int = 0, later: Int = 0, stranded: Int = 0) -> Occupancy {
    var o = Occupancy()
    o.pagesHeld = pages
    o.live = live
    o.pending = pending
    o.reusableNow = now
    o.reusableLater = later
    o.stranded = stranded
    return o
  }

  func testTimelineIntegratesEveryKindPiecewiseConstant() {
    var t = OccupancyTimeline()
    // t=0: 1 page, 1 live, 1 reusable now         (2 slots)
    // t=10: 2 pages, 3 live, 1 stranded            (4 slots)
    // t=40: 2 pages, 1 live, 2 pending, 1 later    (4 slots)
    // t=5 (stamped earlier than 40): 1 page, 0 live, 1 pending, 1 stranded — adds no time,
    //       but holds from 40 on
    // t=50: the end, nothing held
    t.observe(occ(pages: 1, live: 1, now: 1), atNs: 0)
    t.observe(occ(pages: 2, live: 3, stranded: 1), atNs: 10)
    t.observe(occ(pages: 2, live: 1, pending: 2, later: 1), atNs: 40)
    t.observe(occ(pages: 1, live: 0, pending: 1, stranded: 1), atNs: 5)
    t.observe(occ(pages: 0, live: 0), atNs: 50)
    XCTAssertEqual(t.spanNs, 50)
    let m = try! XCTUnwrap(t.mean)
    // pages: 1·10 + 2·30 + 1·10 (from 40 to 50, the value set at the t=5 sample) = 80 → 80/50
    XCTAssertEqual(t.peak.pagesHeld, 2)
    XCTAssertEqual(m.pagesHeld, 80.0 / 50.0)
    // live: 1·10 + 3·30 + 0·10 = 100 → 2.0; peak 3
    XCTAssertEqual(t.peak.live, 3)
    XCTAssertEqual(m.live, 2.0)
    // pending: 0·10 + 0·30 + 1·10 = 10 → 0.2; peak 2 (the t=40 value, which held no time)
    XCTAssertEqual(t.peak.pending, 2)
    XCTAssertEqual(m.pending, 10.0 / 50.0)
    // reusable now: 1·10 → 0.2; reusable later: 0 (held 0 ns) but peak 1; stranded: 1·30 + 1·10 = 40 → 0.8
    XCTAssertEqual(m.reusableNow, 10.0 / 50.0)
    XCTAssertEqual(t.peak.reusableLater, 1)
    XCTAssertEqual(m.reusableLater, 0)
    XCTAssertEqual(m.stranded, 40.0 / 50.0)
    // ideal ⌈live/2⌉: ⌈1/2⌉=1 for 10, ⌈3/2⌉=2 for 30, ⌈0/2⌉=0 for 10 → 70 → 1.4; peak 2
    XCTAssertEqual(t.peak.idealPages, 2)
    XCTAssertEqual(m.idealPages, 70.0 / 50.0)
    // held/live = mean slots held / mean live = (1.6 · 2) / 2.0 = 1.6 (= the waste ratio)
    XCTAssertEqual(t.heldLiveRatio!, 1.6, accuracy: 1e-12)
    XCTAssertEqual(t.wasteRatio, t.heldLiveRatio)
    let figures = Dictionary(uniqueKeysWithValues: t.wasteFigures.map { ($0.key, $0) })
    // The no-sharing baseline is `live` pages: peak 3, mean 2.0, 3 × 4096 bytes at peak.
    XCTAssertEqual(figures["noSharingPages"]?.peak, 3)
    XCTAssertEqual(figures["noSharingPages"]?.mean, 2.0)
    XCTAssertEqual(figures["noSharingPages"]?.peakBytes, 3 * 4096)
    XCTAssertEqual(figures["stranded"]?.meanBytes, 0.8 * 2048)
    XCTAssertNil(figures["unknown"], "no slot was unknown: the line is left out")
  }

  /// Fixtures/compare/reuse.trace through s390-6.1 (times in ms from 100.000000; span 90):
  ///   0 alloc T1 → P1 lower (fresh, listed)   10 alloc T2 → P1 upper (page full, unlisted)
  ///  20 free_tlb T1 (P1 = PA, listed at the tail)   30 exec T1 (P1 = FA, listed: the head)
  ///  40 alloc T3 → P1 lower (reused)   50 free_tlb T2 (AP, listed)   60 exec T2 (AF, head)
  ///  70 free_tlb T3 (PF, unlisted: the free upper half is stranded)
  ///  80 exec T3 → P1 released   90 the mm's pgd is freed
  func testReplayedWasteOfTheReuseFixtureByHand() throws {
    let r = try Fixture.replay("Fixtures/compare/reuse.trace", model: S390v61Model.self)
    XCTAssertEqual(r.findings.map(\.rule.id), [])
    let t = r.stats.occupancy
    XCTAssertEqual(t.spanNs, 90_000_000)
    let m = try XCTUnwrap(t.mean)
    // pages: 1 on [0,80) → 80/90
    XCTAssertEqual(t.peak.pagesHeld, 1)
    XCTAssertEqual(m.pagesHeld, 80.0 / 90.0)
    // live: 1 [0,10) + 2 [10,20) + 1 [20,40) + 2 [40,50) + 1 [50,70) = 10+20+20+20+20 = 90 → 1.0
    XCTAssertEqual(t.peak.live, 2)
    XCTAssertEqual(m.live, 1.0)
    // pending: [20,30) + [50,60) + [70,80) = 30 → 1/3
    XCTAssertEqual(m.pending, 30.0 / 90.0)
    // reusable now (the head's free half): [0,10) + [30,40) + [60,70) = 30 → 1/3
    XCTAssertEqual(t.peak.reusableNow, 1)
    XCTAssertEqual(m.reusableNow, 30.0 / 90.0)
    XCTAssertEqual(m.reusableLater, 0)
    // stranded: the free upper half of PF, [70,80) = 10 → 1/9
    XCTAssertEqual(m.stranded, 10.0 / 90.0)
    // ideal ⌈live/2⌉: 1 while anything is live, [0,70) → 70/90
    XCTAssertEqual(m.idealPages, 70.0 / 90.0)
    // One mm, born at 0, dead at 90: its record carries the same figures.
    XCTAssertEqual(r.stats.perMM.count, 1)
    let mm = try XCTUnwrap(r.stats.perMM.first)
    XCTAssertEqual(mm.mm, 0x20c_0800)
    XCTAssertTrue(mm.died)
    XCTAssertEqual(mm.timeline.peak.pagesHeld, 1)
    XCTAssertEqual(mm.timeline.meanPagesHeld, 80.0 / 90.0)
    XCTAssertEqual(mm.timeline.mean?.reusableNow, 30.0 / 90.0)
  }

  /// Two mms, EventScript timestamps (1 µs per line):
  ///  1 birth A   2 birth B   3-4 alloc A T1 (P1 lower)   5-6 alloc B T2 (P2 lower)
  ///  7-8 alloc B T3 (P2 upper)   9-10 free_tlb A T1   11 exec T1 (P1 released)   12 death A
  ///  13-14 free_tlb B T2   15-16 free_tlb B T3   17 exec T2   18 exec T3 (P2 released)
  ///  19 death B
  func testPerMMPeaksAndLifetimeMeansByHand() throws {
    let a: UInt64 = 0x100_0000
    let b: UInt64 = 0x200_0000
    var s = EventScript()
    s.birth(a, pgd: 0x800_0000)
    s.birth(b, pgd: 0x900_0000)
    s.alloc(a, 0x3000_0000)
    s.alloc(b, 0x3000_1000)
    s.alloc(b, 0x3000_1800)
    s.freeTLB(a, 0x3000_0000)
    s.exec(0x3000_0000)
    s.death(a, pgd: 0x800_0000)
    s.freeTLB(b, 0x3000_1000)
    s.freeTLB(b, 0x3000_1800)
    s.exec(0x3000_1000)
    s.exec(0x3000_1800)
    s.death(b, pgd: 0x900_0000)
    let r = replay(S390v61Model.self, s.events).result
    XCTAssertEqual(r.findings.map(\.rule.id), [])
    XCTAssertEqual(r.stats.perMM.map(\.mm), [b, a], "same peak (1 page): the higher mean first")
    let mb = r.stats.perMM[0].timeline
    let ma = r.stats.perMM[1].timeline
    // A: first page at 4 µs, released at 11, dead at 12: life 8 µs, pages 1·7 → 7/8;
    // live [4,9) → 5/8.
    XCTAssertEqual(ma.firstNs, 4000)
    XCTAssertEqual(ma.lastNs, 12000)
    XCTAssertEqual(ma.meanPagesHeld, 7.0 / 8.0)
    XCTAssertEqual(ma.meanLiveTables, 5.0 / 8.0)
    // B: page at 6, released at 18, dead at 19: life 13 µs, pages 1·12 → 12/13;
    // live T2 [6,13) + T3 [8,15) = 14 → 14/13, peak 2; reusable now: the free upper half
    // of the head P2 on [6,8) = 2 → 2/13.
    XCTAssertEqual(mb.firstNs, 6000)
    XCTAssertEqual(mb.lastNs, 19000)
    XCTAssertEqual(mb.peak.pagesHeld, 1)
    XCTAssertEqual(mb.meanPagesHeld, 12.0 / 13.0)
    XCTAssertEqual(mb.peak.live, 2)
    XCTAssertEqual(mb.meanLiveTables, 14.0 / 13.0)
    XCTAssertEqual(mb.mean?.reusableNow, 2.0 / 13.0)
  }
}

/// `ptfrag compare`'s machinery: the workload recorder, the grace period, and each strategy's
/// peak and mean pages held on small captures computed by hand.
final class CompareFixtureTests: XCTestCase {
  func compare(_ relative: String, graceMs: Double? = nil, models: [String] = []) throws -> CompareReport {
    let options = CompareOptions(
      analyze: AnalyzeOptions(modelID: "auto"), models: models,
      graceNs: graceMs.map { UInt64($0 * 1e6) })
    return try Comparer.compare(path: Fixture.path(relative), options: options)
  }

  /// (peak pages, mean pages) of each strategy.
  func pages(_ c: CompareReport) -> [String: (Int, Double)] {
    Dictionary(uniqueKeysWithValues: c.strategies.map { ($0.descriptor.id, ($0.timeline.peak.pagesHeld, $0.timeline.meanPagesHeld ?? -1)) })
  }

  func assertPages(_ c: CompareReport, _ id: String, peak: Int, mean: Double, file: StaticString = #filePath, line: UInt = #line) {
    guard let p = pages(c)[id] else { return XCTFail("\(id) not compared", file: file, line: line) }
    XCTAssertEqual(p.0, peak, "\(id) peak pages", file: file, line: line)
    XCTAssertEqual(p.1, mean, "\(id) mean pages", file: file, line: line)
  }

  /// reuse.trace (see `testReplayedWasteOfTheReuseFixtureByHand`): T1 [0,·), T2 [10,·), T1
  /// freed at 20 and run at 30, T3 allocated at 40, T2 freed 50 / run 60, T3 freed 70 / run
  /// 80, mm death 90 (ms). No pte_free_defer: no RCU callback anywhere.
  func testReuseFixtureEveryStrategyByHand() throws {
    let c = try compare("Fixtures/compare/reuse.trace")
    XCTAssertEqual(c.input.result?.model.id, "s390-6.1")
    XCTAssertEqual(c.strategies.map(\.descriptor.id), ModelRegistry.ids)
    XCTAssertEqual(c.workload.tables, 3)
    XCTAssertEqual(c.workload.freesTLB, 3)
    XCTAssertEqual(c.workload.execs, 3)
    // Grace: delays 20→30, 50→60, 70→80 = 10 ms each → median 10 ms.
    XCTAssertEqual(c.graceNs, 10_000_000)
    // s390-6.1, 6.6, C1, C2: T3 reuses P1's lower half (the list head): P1 on [0,80) → 80/90.
    for id in ["s390-6.1", "s390-6.6", "s390-hugh-v2", "s390-gerald"] { assertPages(c, id, peak: 1, mean: 80.0 / 90.0) }
    // s390-6.7: one page per table until its exec: T1 [0,30) + T2 [10,60) + T3 [40,80)
    //   = 30 + 50 + 40 = 120 → 120/90; two at once on [10,30) and [40,60).
    assertPages(c, "s390-6.7", peak: 2, mean: 120.0 / 90.0)
    // s390-ppc-style: Q1 = T1+T2 (count 2) released when T2 runs at 60; T3 on a fresh Q2
    //   (cursor NULL), whose unhanded upper half keeps it until pte_frag_destroy at the
    //   mm's death (90): [0,40) 1 + [40,60) 2 + [60,90) 1 = 40 + 40 + 30 = 110 → 110/90.
    assertPages(c, "s390-ppc-style", peak: 2, mean: 110.0 / 90.0)
    // powerpc (NR 16, 256, 4): T1..T3 are fragments 0..2 of one page, released by the
    //   destroy of its cursor at 90: one page all along → 1.0.
    for id in ["powerpc-hash64k", "powerpc-radix64k", "powerpc-8xx16k"] { assertPages(c, id, peak: 1, mean: 1.0) }
    // The ran strategy equals the replay.
    let ran = try XCTUnwrap(c.ranStrategy)
    XCTAssertEqual(ran.descriptor.id, "s390-6.1")
    XCTAssertEqual(ran.timeline.peak, c.input.result!.stats.occupancy.peak)
    XCTAssertEqual(ran.timeline.integral, c.input.result!.stats.occupancy.integral)
    for s in c.strategies { XCTAssertEqual(s.selfCheck, [], s.descriptor.id) }
  }

  /// defer.trace (6.6): 0 T1 → P1 lower, 10 T2 → P1 upper, 20 pte_free_defer(T1) (P1 Active),
  /// 30 T3, 40 free_tlb T2, 50 exec T2 (6.6: P1 empty and Active → call_rcu), 65
  /// pte_free_now(P1), 70 free_tlb T3, 80 exec T3, 90 mm death (ms).
  func testDeferFixtureWithAGivenGracePeriodByHand() throws {
    // Grace 15 ms, so that 6.6's callback (call_rcu at 50) lands at 65 as in the capture.
    let c = try compare("Fixtures/compare/defer.trace", graceMs: 15)
    XCTAssertEqual(c.input.result?.model.id, "s390-6.6")
    XCTAssertEqual(c.workload.defers, 1)
    // s390-6.6: T3 on a fresh P2 (P1 Active, never listed); P1 in R until 65, P2 until 80:
    //   [0,30) 1 + [30,65) 2 + [65,80) 1 = 30 + 70 + 15 = 115 → 115/90 — equal to the replay.
    assertPages(c, "s390-6.6", peak: 2, mean: 115.0 / 90.0)
    XCTAssertEqual(c.input.result!.stats.occupancy.meanPagesHeld, 115.0 / 90.0)
    // s390-6.1 (no pte_free_defer: pte_free at 20): T3 reuses P1's lower half; P1 [0,80) → 80/90.
    assertPages(c, "s390-6.1", peak: 1, mean: 80.0 / 90.0)
    // s390-6.7: T1's page in R from 20 to 20+15 = 35; T2 [10,50); T3 [30,80):
    //   35 + 40 + 50 = 125 → 125/90; three pages on [30,35).
    assertPages(c, "s390-6.7", peak: 3, mean: 125.0 / 90.0)
    // Hugh v2 (C1) and Gerald (C2): the deferred half's callback at 35 frees it; P1 is
    //   released when T2 runs at 50; T3 on a fresh P2 until 80:
    //   [0,30) 1 + [30,50) 2 + [50,80) 1 = 30 + 40 + 30 = 100 → 100/90.
    assertPages(c, "s390-hugh-v2", peak: 2, mean: 100.0 / 90.0)
    assertPages(c, "s390-gerald", peak: 2, mean: 100.0 / 90.0)
    // C3a: Q1 (T1, T2) Active, count 0 when T2 runs at 50 → call_rcu → released at 65;
    //   T3 on Q2 (cursor NULL), held by its unhanded half until the destroy at 90:
    //   [0,30) 1 + [30,65) 2 + [65,90) 1 = 30 + 70 + 25 = 125 → 125/90.
    assertPages(c, "s390-ppc-style", peak: 2, mean: 125.0 / 90.0)
    // powerpc (NR ≥ 4): T3 is fragment 2 of the same page; the destroy at 90 releases it
    //   (with PG_active still set: the pre-fda4d71651f7 bug, reported on the simulation).
    for id in ["powerpc-hash64k", "powerpc-radix64k", "powerpc-8xx16k"] {
      assertPages(c, id, peak: 1, mean: 1.0)
      XCTAssertEqual(c.strategies.first { $0.descriptor.id == id }?.selfCheck.map { String($0.prefix(20)) }, ["released-with-active"])
    }
    for s in c.strategies where !s.descriptor.id.hasPrefix("powerpc") { XCTAssertEqual(s.selfCheck, [], s.descriptor.id) }
    XCTAssertTrue(c.notes.contains { $0.hasPrefix("s390-6.6 simulated equals the replay") }, "\(c.notes)")
  }

  /// defer-both-halves.trace (6.6): 0 T1 → P1 lower, 10 T2 → P1 upper, 20 pte_free_defer(T1),
  /// 21 pte_free_defer(T2) (both halves deferred within one grace period), 40 T3, 70
  /// free_tlb T3, 90 mm death. Hugh's v2 and Gerald's pte_free_half as posted test
  /// `mask & 0x0CU` on the unshifted _refcount: T1's callback at 35 frees the lower half and
  /// never queues T2's, so P1 is held to the end: P1 [0,90) + T3's P2 [40,85) = 135 → 135/90
  /// (chained as intended, P1 would go at 50: 95/90).
  func testProposalsAsPostedNeverFreeAPageWhoseHalvesWereBothDeferred() throws {
    let c = try compare("Fixtures/compare/defer-both-halves.trace", graceMs: 15)
    XCTAssertEqual(c.input.result?.model.id, "s390-6.6")
    XCTAssertEqual(c.input.result?.findings.count, 0)
    for id in ["s390-hugh-v2", "s390-gerald"] {
      assertPages(c, id, peak: 2, mean: 135.0 / 90.0)
      let s = try XCTUnwrap(c.strategies.first { $0.descriptor.id == id })
      XCTAssertEqual(s.selfCheck, [], id)
      XCTAssertEqual(s.notes.count, 1, id)
      XCTAssertTrue(s.notes.first?.hasPrefix("1 page never freed") == true, "\(s.notes)")
      XCTAssertTrue(c.notes.contains { $0.hasPrefix("\(id): 1 page never freed") }, "\(c.notes)")
    }
    // v6.6 as merged (PG_active, one call_rcu per page): P1 goes at 21 + 15 = 36, before
    // T3 takes P2 at 40.
    assertPages(c, "s390-6.6", peak: 1, mean: (36.0 + 45.0) / 90.0)
  }

  func testDeferFixtureWithTheMeasuredGracePeriod() throws {
    // Delays T2 40→50 and T3 70→80: median 10 ms. 6.6's callback lands at 60, not at the
    // captured 65: [0,30) 1 + [30,60) 2 + [60,80) 1 = 30 + 60 + 20 = 110 → 110/90, while the
    // replay (pte_free_now at 65) holds 115/90; the report says they differ and why.
    let c = try compare("Fixtures/compare/defer.trace", models: ["s390-6.6", "s390-6.7"])
    XCTAssertEqual(c.graceNs, 10_000_000)
    XCTAssertEqual(c.strategies.map(\.descriptor.id), ["s390-6.6", "s390-6.7"])
    assertPages(c, "s390-6.6", peak: 2, mean: 110.0 / 90.0)
    // 6.7: T1's R page [0,30) + T2 [10,50) + T3 [30,80) = 30 + 40 + 50 = 120 → 120/90.
    assertPages(c, "s390-6.7", peak: 2, mean: 120.0 / 90.0)
    XCTAssertTrue(c.notes.contains { $0.hasPrefix("s390-6.6 simulated differs from the replay") }, "\(c.notes)")
  }

  /// A capture whose mm dies with a table never freed: every strategy sees the same leak on
  /// its own simulation, and the report says it is the capture's, not a ptfrag bug.
  func testFindingsTheWorkloadCarriesAreNamedAsTheCaptures() throws {
    let c = try compare("Fixtures/rules/leak.trace", models: ["s390-6.1", "s390-6.7"])
    XCTAssertEqual(c.input.result?.findings.map(\.rule.id), ["leak"])
    for s in c.strategies { XCTAssertEqual(s.selfCheck.map { String($0.prefix(5)) }, ["leak "], s.descriptor.id) }
    XCTAssertEqual(c.notes.filter { $0.contains("the capture's own leak, carried by the workload") }.count, 2, "\(c.notes)")
    XCTAssertFalse(c.notes.contains { $0.contains("ptfrag bug") })
  }

  /// The real 6.1 capture: every strategy is compared; the 6.1 row equals the replay.
  func testRealSixOneSampleEveryStrategyAndTheRanRowEqualsTheReplay() throws {
    var options = CompareOptions(analyze: AnalyzeOptions(modelID: "auto"))
    options.analyze.profilePath = Fixture.path("Fixtures/samples/s390x-6.1-fork-exec.kprobe_profile")
    let c = try Comparer.compare(path: Fixture.path("Fixtures/samples/s390x-6.1-fork-exec.trace"), options: options)
    let replayed = try XCTUnwrap(c.input.result).stats.occupancy
    XCTAssertEqual(c.strategies.map(\.descriptor.id), ModelRegistry.ids)
    let ran = try XCTUnwrap(c.ranStrategy)
    XCTAssertEqual(ran.descriptor.id, "s390-6.1")
    XCTAssertEqual(ran.timeline.peak.pagesHeld, replayed.peak.pagesHeld)
    XCTAssertEqual(ran.timeline.meanPagesHeld, replayed.meanPagesHeld)
    XCTAssertEqual(ran.timeline.peak.live, replayed.peak.live)
    XCTAssertEqual(ran.timeline.mean, replayed.mean, "every kind of waste, not only pages")
    XCTAssertEqual(replayed.peak.pagesHeld, 14)
    // The two missed __tlb_remove_table hits the replay resynchronised over (line 250) are in
    // the workload; without them the 6.1 row could not equal the replay.
    XCTAssertEqual(c.workload.execsInferred, 2)
    XCTAssertEqual(c.workload.tables, 95)
    for s in c.strategies {
      XCTAssertEqual(s.selfCheck, [], s.descriptor.id)
      XCTAssertEqual(s.timeline.peak.live, replayed.peak.live, "\(s.descriptor.id): the same tables are live")
      XCTAssertEqual(s.timeline.meanLiveTables, replayed.meanLiveTables, s.descriptor.id)
    }
  }

  /// The real 6.12 capture: the s390-6.7 row equals the replay.
  func testRealSixTwelveSampleRanRowEqualsTheReplay() throws {
    let c = try compare("Fixtures/samples/s390x-6.12-fork-exec.trace")
    let replayed = try XCTUnwrap(c.input.result).stats.occupancy
    let ran = try XCTUnwrap(c.ranStrategy)
    XCTAssertEqual(ran.descriptor.id, "s390-6.7")
    XCTAssertEqual(ran.timeline.peak, replayed.peak)
    XCTAssertEqual(ran.timeline.mean, replayed.mean)
    for s in c.strategies { XCTAssertEqual(s.selfCheck, [], s.descriptor.id) }
  }
}

/// The recorder reads only event kinds: nested frees, tags, inferences, tables from before the
/// capture.
final class WorkloadRecorderTests: XCTestCase {
  func ops(_ events: [Event], inferred: [Int: [InferredOperation]] = [:]) -> ([WorkloadOp], WorkloadCounts) {
    var r = WorkloadRecorder()
    var out: [WorkloadOp] = []
    for e in events { r.record(e, inferred: inferred[e.line] ?? []) { out.append($0) } }
    return (out, r.counts)
  }

  func testNestedFreesAreTheCallTheyAreIn() {
    var s = EventScript()
    s.alloc(0x10, 0x1000)
    s.alloc(0x10, 0x1800)
    s.deferFull(0x10, 0x1000, pid: 40)  // pte_free_defer + its page_table_free + return
    s.add(.tlbQueue, table: 0x1800)  // powerpc/6.7: the queue is the free
    s.add(.tlbExec, table: 0x1800, pid: 0)
    s.add(.fragmentFree, table: 0x1800, pid: 0)  // nested in __tlb_remove_table
    s.freeNow(0x10, 0x2000)  // allocated before the capture
    s.add(.tlbExec, table: 0x3820000, pid: 0)  // a CRST table
    let (o, c) = ops(s.events)
    XCTAssertEqual(o, [.alloc(id: 1, mm: 0x10), .alloc(id: 2, mm: 0x10), .deferFree(id: 1), .freeTLB(id: 2), .exec(id: 2)])
    XCTAssertEqual(c.freesBeforeCapture, 1)
    XCTAssertEqual(c.execsNotRecorded, 1)
    XCTAssertEqual(c.defers, 1)
  }

  func testTagsAreStrippedAndInferredExecsComeFirst() {
    var s = EventScript()
    s.alloc(0x10, 0x1000)
    s.alloc(0x10, 0x1800)
    s.freeTLB(0x10, 0x1000)  // page_table_free_rcu + tlb_remove_table(0x1001): one free
    s.freeTLB(0x10, 0x1800)
    let l = s.alloc(0x10, 0x1000)  // the replay infers the missed exec of 0x1000 here
    s.exec(0x1800)  // tag 2
    let (o, c) = ops(s.events, inferred: [l: [.exec(table: 0x1000)]])
    XCTAssertEqual(
      o,
      [.alloc(id: 1, mm: 0x10), .alloc(id: 2, mm: 0x10), .freeTLB(id: 1), .freeTLB(id: 2), .exec(id: 1),
       .alloc(id: 3, mm: 0x10), .exec(id: 2)])
    XCTAssertEqual(c.execsInferred, 1)
    XCTAssertEqual(c.execs, 1)
    XCTAssertEqual(c.freesTLB, 2)
  }

  func testGraceMedianOfFreeToExecDelays() {
    var g = GraceEstimator()
    var s = EventScript()  // 1 µs per line
    s.freeTLB(0x10, 0x1000)  // line 1 (queue at 2)
    s.freeTLB(0x10, 0x1800)  // line 3 (queue at 4)
    s.add(.tlbQueue, table: 0x2000)  // line 5: 6.12 style, the queue is the free
    s.exec(0x1000)  // line 6: 6 − 1 = 5 µs
    s.execRaw(0x2000)  // line 7: 7 − 5 = 2 µs
    s.exec(0x1800)  // line 8: 8 − 3 = 5 µs
    for e in s.events { g.observe(e) }
    XCTAssertEqual(g.pairs, 3)
    XCTAssertEqual(g.medianNs, 5000)  // median of 2, 5, 5
    s.execRaw(0x9000)  // never queued: no pair
    g.observe(s.events.last!)
    XCTAssertEqual(g.pairs, 3)
  }
}

/// The strategies of `compare` run on other threads, a chunk of events behind the replay:
/// the report is the same whatever the chunk size and with no thread at all.
final class CompareConcurrencyTests: XCTestCase {
  func document(_ path: String, parallel: Bool, chunk: Int) throws -> String {
    var options = CompareOptions(analyze: AnalyzeOptions(modelID: "auto"))
    options.parallel = parallel
    options.chunkEvents = chunk
    let c = try Comparer.compare(path: Fixture.path(path), options: options)
    XCTAssertNil(c.input.error?.message)
    XCTAssertEqual(c.strategies.count, ModelRegistry.all.count)
    return JSONReport.compareDocument([c], toolVersion: "test", exitCode: 0).serialized()
  }

  func testParallelStrategiesReportExactlyWhatSequentialOnesDo() throws {
    for path in [
      "Fixtures/samples/s390x-6.1-fork-exec.trace",
      "Fixtures/corpus/ppc64/6.12.95+deb12-powerpc64le-64k-radix-thp.trace.gz",
    ] {
      let sequential = try document(path, parallel: false, chunk: 8192)
      XCTAssertTrue(sequential.contains("\"peak\""), path)
      XCTAssertEqual(try document(path, parallel: true, chunk: 8192), sequential, path)
      // Chunks of 7 events: many hand-overs, every one at an arbitrary event.
      XCTAssertEqual(try document(path, parallel: true, chunk: 7), sequential, path)
    }
  }
}
