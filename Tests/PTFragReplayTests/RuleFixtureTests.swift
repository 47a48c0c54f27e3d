import PTFragEvents
import PTFragKit
import PTFragReport
import PTFragReplay
import XCTest

let fixtures: String = {
  var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
  parts.removeLast(3)
  return parts.joined(separator: "/") + "/Fixtures"
}()

/// The expectations a fixture declares in its header comments:
/// `# expect: RULE@LINE`, `# expect-inconclusive: REASON@LINE`, `# args: --kprobe-profile F`,
/// `# model: ID` (default s390-6.1).
struct FixtureExpectations {
  var findings: [String] = []
  var inconclusive: [String] = []
  var profile: String? = nil
  var model = "s390-6.1"

  init(path: String) throws {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    for line in text.split(separator: "\n") where line.hasPrefix("# ") {
      if line.hasPrefix("# expect: ") {
        findings.append(String(line.dropFirst("# expect: ".count)))
      } else if line.hasPrefix("# expect-inconclusive: ") {
        inconclusive.append(String(line.dropFirst("# expect-inconclusive: ".count)))
      } else if line.hasPrefix("# model: ") {
        model = String(line.dropFirst("# model: ".count))
      } else if line.hasPrefix("# args: --kprobe-profile ") {
        let name = line.dropFirst("# args: --kprobe-profile ".count)
        profile = (path as NSString).deletingLastPathComponent + "/" + name
      }
    }
  }
}

/// One fixture per rule of kernel-models.md §2.6: each must produce exactly its finding at
/// exactly its line, and nothing else.
final class RuleFixtureTests: XCTestCase {
  func run(
    _ name: String, kernelFixes: [String] = [], expect: [String]? = nil, file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    let path = fixtures + "/rules/\(name).trace"
    var exp = try FixtureExpectations(path: path)
    if let expect { exp.findings = expect }
    var options = AnalyzeOptions(modelID: exp.model, profilePath: exp.profile)
    options.kernelFixes = kernelFixes
    let report = try Analyzer.analyze(path: path, options: options)
    let r = try XCTUnwrap(report.result, file: file, line: line)
    let got = r.findings.map { "\($0.rule.id)@\($0.line)" }.sorted()
    XCTAssertEqual(got, exp.findings.sorted(), "\(name): findings", file: file, line: line)
    let gotI = r.inconclusive.map { "\($0.reason.rawValue)@\($0.line)" }.sorted()
    XCTAssertEqual(gotI, exp.inconclusive.sorted(), "\(name): inconclusive", file: file, line: line)
    XCTAssertEqual(report.read.malformed, 0, "\(name): malformed lines", file: file, line: line)
  }

  func testClean() throws { try run("clean") }
  func testDoubleFree() throws { try run("double-free") }
  func testDoubleFreeThroughQueue() throws { try run("double-free-queue") }
  func testFreeUnknown() throws { try run("free-unknown") }
  func testFreeUnknownMisaligned() throws { try run("free-unknown-misaligned") }
  func testExecWithoutPending() throws { try run("exec-without-pending") }
  func testQueueWithoutPending() throws { try run("queue-without-pending") }
  func testExecTagMismatch() throws { try run("exec-tag-mismatch") }
  func testExecTagMismatchPgsteTag() throws { try run("exec-tag-mismatch-pgste") }
  func testReuseBeforeGrace() throws { try run("reuse-before-grace") }
  func testReuseBeforeGraceNotExplicableByMisses() throws { try run("reuse-before-grace-not-explicable") }
  func testMissedExecAtHead() throws { try run("missed-exec-head") }
  func testTLBExecMissing() throws { try run("tlb-exec-missing") }
  func testSynchronousExecDoesNotOrderBatches() throws { try run("sync-exec-does-not-order") }
  func testAnOpenGatherIsNotOrdered() throws { try run("open-gather-orders-nothing") }
  func testMissedExecSupersededByLaterEntries() throws { try run("missed-exec-superseded") }
  func testMissedExecFreshPage() throws { try run("missed-exec-fresh") }
  /// A page whose last __tlb_remove_table was missed comes back inside a CRST block.
  /// __pte_alloc's pte_free right after a page_table_alloc whose return was missed.
  func testPteFreeAfterMissedReturn() throws { try run("pte-free-after-missed-return") }
  func testPteFreeAfterReturnWithZeroMissProfile() throws { try run("alloc-without-return-at-free") }
  /// A gather whose task ran on another CPU after queueing orders nothing (call_rcu runs on
  /// the CPU of the flush); unmigrated, the same trace is a tlb-exec-missing.
  func testMigratedGatherOrdersNothing() throws { try run("migrated-gather") }
  func testUnmigratedGatherIsTLBExecMissing() throws { try run("tlb-exec-missing-unmigrated") }
  /// One gather, two batches, the task migrated between them: the later entry running on the
  /// new CPU says nothing of the earlier one, still waiting on the old CPU (legal).
  func testGatherMigratedBetweenBatchesOrdersNothing() throws { try run("gather-migrated-between-batches") }
  /// A batch that runs while its gather is open orders nothing until the gather closes: closed
  /// on another CPU it migrated (legal, nothing reported); closed on its own CPU it orders the
  /// earlier gathers of that CPU as before (tlb-exec-missing with a zero-miss profile).
  func testOpenGatherThatRanThenMigratedOrdersNothing() throws { try run("open-gather-ran-then-migrated") }
  func testOpenGatherThatRanThenClosedOnItsCPUOrders() throws { try run("open-gather-ran-then-closed-here") }
  /// A gather of several batches orders its CPU's gathers only up to the queue time of its
  /// entry seen running, not up to its last entry (a full batch is flushed mid-gather).
  func testMultiBatchGatherOrdersOnlyUpToItsEntrySeenRunning() throws { try run("multi-batch-gather-orders-by-entry") }
  func testCRSTReuseAfterMissedExec() throws { try run("crst-reuse-after-missed-exec") }
  func testCRSTReuseWithZeroMissProfileIsReleaseWithBits() throws { try run("release-with-bits-crst") }
  /// An allocated half released unseen: any free function's miss explains it (here
  /// page_table_free's, while page_table_free_rcu missed nothing); none missed: an error.
  func testCRSTReuseAfterMissedPteFree() throws {
    try run("crst-reuse-after-missed-pte-free")
    let path = fixtures + "/rules/crst-reuse-after-missed-pte-free.trace"
    let r = try XCTUnwrap(
      Analyzer.analyze(path: path, options: AnalyzeOptions(profilePath: fixtures + "/rules/free-missed.kprobe_profile")).result)
    XCTAssertEqual(r.inconclusive.map(\.hingesOn), [.pageTableFree])
    XCTAssertEqual(r.inconclusive.first?.explainedBy, "kprobe_profile: page_table_free missed 1 hit(s)")
  }
  func testCRSTReuseOfAnAllocatedHalfWithZeroMissProfileIsReleaseWithBits() throws {
    try run("release-with-bits-allocated-crst")
  }
  func testAllocBusyHalf() throws { try run("alloc-busy-half") }
  func testAllocNotHead() throws { try run("alloc-not-head") }
  func testAllocFreshWhileHeadUsable() throws { try run("alloc-fresh-while-head-usable") }
  func testAllocListedWhileFresh() throws { try run("alloc-listed-while-fresh") }
  func testAllocDivergenceMisaligned() throws { try run("alloc-divergence") }
  func testAllocDivergenceUnseenUpper() throws { try run("alloc-divergence-upper") }
  func testAllocWithoutReturn() throws { try run("alloc-without-return") }
  func testAllocWithoutReturnNoProfile() throws { try run("alloc-without-return-no-profile") }
  func testReleaseWhileListed() throws { try run("release-while-listed") }
  func testReleaseWithBits() throws { try run("release-with-bits") }
  func testCrossMM() throws { try run("cross-mm") }
  func testLeak() throws { try run("leak") }
  func testPgsteInferred() throws { try run("pgste-inferred") }
  func testLostEventsMakeDivergencesInconclusive() throws {
    try run("lost-events")
    let r = try Analyzer.analyze(
      path: fixtures + "/rules/lost-events.trace", options: AnalyzeOptions(modelID: "s390-6.1"))
    XCTAssertEqual(r.result.map { Judgement(result: $0, gate: Gate(failOn: .error)).verdict }, .inconclusive)
    XCTAssertEqual(r.judgement(Gate(failOn: .error)).exitCode, .inconclusive)
  }
  func testConcurrencyTransientP() throws { try run("concurrency-transient-p") }
  func testConcurrencyExecInsideWindow() throws { try run("concurrency-window-exec") }
  func testConcurrencyFreeInsideWindow() throws { try run("concurrency-window-free") }
  func testUnreturnedAtEnd() throws { try run("unreturned-at-end") }
  /// Two allocations of one mm in flight return in the other order than they locked
  /// (class 2): the later return reserves what the earlier-locking task must have taken.
  func testConcurrentAllocsReturnOutOfLockOrder() throws { try run("concurrent-allocs") }
  func testConcurrentAllocsNeitherTakesTheHead() throws { try run("concurrent-allocs-unclaimed") }
  func testConcurrentAllocsOnAYoungMMInferNoPgste() throws { try run("concurrent-allocs-young") }
  func testConcurrentAllocsNobodyReturnsTheLowerHalf() throws { try run("concurrent-allocs-young-unclaimed") }

  /// Every fixture in Fixtures/rules has a test above, and every rule of the model has a
  /// fixture that fires it.
  func testEveryFixtureAndEveryRuleIsCovered() throws {
    let names = try FileManager.default.contentsOfDirectory(atPath: fixtures + "/rules")
      .filter { $0.hasSuffix(".trace") }.map { String($0.dropLast(6)) }
    XCTAssertEqual(names.count, 56, "a fixture without a test above: \(names.sorted())")
    var fired = Set<String>()
    var firedPowerpc = Set<String>()
    for n in names {
      let exp = try FixtureExpectations(path: fixtures + "/rules/\(n).trace")
      let rules = exp.findings.map { String($0.split(separator: "@")[0]) }
      if exp.model.hasPrefix("powerpc-") { firedPowerpc.formUnion(rules) } else { fired.formUnion(rules) }
    }
    XCTAssertEqual(fired, Set(S390v61Model.rules.map(\.id)))
    XCTAssertTrue(firedPowerpc.isSubset(of: Set(PowerpcModel.rules.map(\.id))), "\(firedPowerpc)")
  }

  // MARK: powerpc (issue 10 items 1 and 8)

  /// A page whose fragments predate the capture is freed, comes back as a PMD fragment and
  /// is queued table | 1: clean (it was exec-tag-mismatch).
  func testPowerpcPMDReuseOfAPagePredatingTheCapture() throws { try run("ppc-pmd-reuse-predating") }
  /// The same after a silently missed __tlb_remove_table: explained by the profile.
  func testPowerpcPMDReuseAfterMissedExec() throws { try run("ppc-pmd-reuse-after-missed-exec") }
  /// Its twin with a zero-miss profile: release-with-refs at the pmd_fragment_alloc.
  func testPowerpcPMDReuseWithRefs() throws { try run("ppc-pmd-reuse-with-refs") }
  /// pte_frag_destroy at arch_exit_mmap, before the tlb frees: clean.
  func testPowerpcDestroyAtExitMmap() throws { try run("ppc-destroy-at-exit-mmap") }
  /// Its twin (the page freed before exit): released-with-active at pte_frag_destroy without
  /// fda4d71651f7, clean with it.
  func testPowerpcReleasedWithActive() throws {
    try run("ppc-released-with-active")
    try run("ppc-released-with-active", kernelFixes: ["fda4d71651f7"], expect: [])
  }
}
