import PTFragEvents
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
    XCTAssertEqual(r.verdict(failOn: .error), .fail)
  }

  func testHash64KWithFixedDestroyIsClean() throws {
    final class Fixed: PowerpcModel {
      required convenience init(context: ReplayContext) {
        self.init(context: context, geometry: PowerpcPreset.hash64K.geometry, destroyClearsActive: true)
      }
    }
    let r = try Fixture.replay("Fixtures/models/powerpc-hash64k-released-with-active.trace", model: Fixed.self)
    XCTAssertEqual(findings(r), [])
    XCTAssertEqual(r.verdict(failOn: .error), .clean)
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
    XCTAssertEqual(r.verdict(failOn: .error), .clean)
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
}
