import Foundation
import PTFragEvents
import PTFragKit
import PTFragRead
import PTFragReport
import PTFragReplay
import PTFragTestSupport
import XCTest

/// The real s390x corpus (Fixtures/corpus/s390, unedited captures of Debian's 6.1.0-50 and
/// 6.12.95 kernels under QEMU; see its README): what a correct replay must do with them.
/// - 0 error findings under the capture's own model and under `--model auto`, which picks
///   s390-6.1 for the 6.1 captures and s390-6.7 for the 6.12 one;
/// - per probe, the misses the replay infers never exceed the kprobe_profile's count;
/// - the capture without softirq RCU (nothing missed) has nothing inconclusive;
/// - ≥ 90 % of allocations are predicted and checked.
final class CorpusTests: XCTestCase {
  static let dir = fixtures + "/corpus/s390"
  static let captures: [(name: String, model: String)] = [
    ("s390x-6.1-dev", "s390-6.1"),
    ("s390x-6.1-dev-nosoftirq", "s390-6.1"),
    ("s390x-6.1-dev-smp4", "s390-6.1"),
    ("s390x-6.12-dev", "s390-6.7"),
    // Made for ptfrag with the same harness (see the README): 6.12 on 4 CPUs, and the
    // `medium` workload on both kernels.
    ("s390x-6.12-dev-smp4", "s390-6.7"),
    ("s390x-6.1-medium", "s390-6.1"),
    ("s390x-6.12-medium", "s390-6.7"),
  ]

  func analyze(_ path: String, profile: String?, model: String) throws -> InputReport {
    try Analyzer.analyze(path: path, options: AnalyzeOptions(modelID: model, profilePath: profile))
  }

  func check(_ name: String, model: String, expected: String) throws {
    let r = try analyze(
      "\(Self.dir)/\(name).trace.gz", profile: "\(Self.dir)/\(name).kprobe_profile", model: model)
    XCTAssertNil(r.error?.message, "\(name) --model \(model)")
    let res = try XCTUnwrap(r.result, "\(name) --model \(model)")
    XCTAssertEqual(res.model.id, expected, "\(name) --model \(model): \(r.modelSelection)")
    let errors = res.findings.filter { $0.rule.severity == .error }
    XCTAssertEqual(
      errors.count, 0,
      "\(name) --model \(model): " + errors.prefix(5).map { "\($0.rule.id)@\($0.line) \($0.message)" }.joined(separator: "\n"))
    // Inferred misses per probe within the profile's count, every one explained by it.
    let misses = try XCTUnwrap(r.profileMisses)
    var inferred: [KernelFunction: UInt64] = [:]
    for i in res.inconclusive { if let f = i.hingesOn { inferred[f, default: 0] += 1 } }
    for (f, n) in inferred {
      XCTAssertLessThanOrEqual(n, misses[f] ?? 0, "\(name) --model \(model): inferred misses of \(f.symbol)")
    }
    XCTAssertEqual(
      res.inconclusive.filter { $0.explainedBy == nil }.count, 0,
      "\(name) --model \(model): " + res.inconclusive.filter { $0.explainedBy == nil }.prefix(5).map { "\($0.reason.rawValue)@\($0.line) \($0.message)" }.joined(separator: "\n"))
    if misses.values.allSatisfy({ $0 == 0 }) {
      XCTAssertEqual(res.inconclusive.count, 0, "\(name): nothing missed, nothing inconclusive")
    }
    let allocs = res.stats.allocationsPredicted + res.stats.allocationsUnverified
    XCTAssertGreaterThan(allocs, 1000)
    XCTAssertGreaterThanOrEqual(
      Double(res.stats.allocationsPredicted) / Double(allocs), 0.9,
      "\(name) --model \(model): \(res.stats.allocationsPredicted) of \(allocs) predicted")
    XCTAssertEqual(r.judgement(Gate(failOn: .error)).exitCode, .clean, "\(name) --model \(model)")
  }

  func testEveryCaptureReplaysCleanUnderItsOwnModel() throws {
    for c in Self.captures { try check(c.name, model: c.model, expected: c.model) }
  }

  func testAutoDetectionPicksTheKernelsModel() throws {
    for c in Self.captures { try check(c.name, model: Analyzer.autoModelID, expected: c.model) }
  }

  /// The other fragment models check every table's life on the 6.1 captures: no error there
  /// either, and no more inferred misses than the profile counts.
  func testOtherFragmentModelsRaiseNoFalseAlarmOn61Captures() throws {
    for c in Self.captures where c.model == "s390-6.1" {
      for model in ["s390-6.6", "s390-hugh-v2", "s390-gerald", "s390-ppc-style"] {
        let r = try analyze(
          "\(Self.dir)/\(c.name).trace.gz", profile: "\(Self.dir)/\(c.name).kprobe_profile", model: model)
        let res = try XCTUnwrap(r.result)
        let errors = res.findings.filter { $0.rule.severity == .error }
        XCTAssertEqual(errors.count, 0, "\(c.name) --model \(model): " + errors.prefix(3).map { "\($0.rule.id)@\($0.line) \($0.message)" }.joined(separator: "\n"))
        XCTAssertEqual(res.inconclusive.filter { $0.explainedBy == nil }.count, 0, "\(c.name) --model \(model)")
        XCTAssertEqual(r.judgement(Gate(failOn: .error)).exitCode, .clean, "\(c.name) --model \(model)")
      }
    }
  }

  /// A capture streamed through `trace_pipe` by a slow reader (the harness's `lost` workload,
  /// 256 KiB buffer): six `CPU:N [LOST M EVENTS]` markers, 8,556 events lost. `--model auto`
  /// must not pair an allocation with an untagged tlb value across a loss (the page may have
  /// been freed and reused as a CRST table unseen: here line 3588's table 0x329c000 is
  /// queued untagged at line 6171, after three losses) and so picks s390-6.1 from the upper
  /// half at line 8; no model raises an error, and the verdict is inconclusive (lost events).
  func testCaptureWithLostEventsPicksItsModelAndIsInconclusive() throws {
    let name = "s390x-6.1-lost"
    for model in [Analyzer.autoModelID, "s390-6.1", "s390-6.6", "s390-hugh-v2", "s390-gerald", "s390-ppc-style"] {
      let r = try analyze(
        "\(Self.dir)/\(name).trace.gz", profile: "\(Self.dir)/\(name).kprobe_profile", model: model)
      XCTAssertNil(r.error?.message, "\(name) --model \(model)")
      let res = try XCTUnwrap(r.result, "\(name) --model \(model)")
      if model == Analyzer.autoModelID {
        XCTAssertEqual(res.model.id, "s390-6.1", r.modelSelection)
        XCTAssertTrue(r.modelSelection.contains("line 8: page_table_alloc returned 0x30c1800, an upper 2 KiB half"), r.modelSelection)
      }
      let alarms = res.findings.filter { $0.rule.severity >= .warning }
      XCTAssertEqual(
        alarms.count, 0,
        "\(name) --model \(model): " + alarms.prefix(5).map { "\($0.rule.id)@\($0.line) \($0.message)" }.joined(separator: "\n"))
      XCTAssertEqual(res.stats.lostMarkers, 6)
      XCTAssertEqual(res.stats.lostEvents, 8556)
      XCTAssertGreaterThan(res.inconclusive.count, 0)
      XCTAssertEqual(r.judgement(Gate(failOn: .error)).exitCode, .inconclusive, "\(name) --model \(model)")
    }
  }

  /// The same `lost` workload on 6.12.95 (see the README): two `LOST` markers, 246 lines
  /// that hold two records torn together (and a last record cut by the end of the run).
  /// A torn line is malformed, never an event (line 33 would otherwise be a 0x258 "table";
  /// line 1578 a page_table_alloc return named `__tlb_remove_table`, which made the profile
  /// look like another kernel's); the profile fits; auto picks s390-6.7; no error or warning,
  /// including the findings beyond the detail cap; the verdict is incomplete (exit 65).
  func testCaptureWithLostEventsAndTornLines() throws {
    let name = "s390x-6.12-lost"
    for model in [Analyzer.autoModelID, "s390-6.7"] {
      let r = try analyze(
        "\(Self.dir)/\(name).trace.gz", profile: "\(Self.dir)/\(name).kprobe_profile", model: model)
      let res = try XCTUnwrap(r.result, "\(name) --model \(model)")
      XCTAssertEqual(res.model.id, "s390-6.7", r.modelSelection)
      XCTAssertEqual(r.profileMisses?[.tlbRemoveTableExec], 137, "the profile fits this capture")
      let torn = r.read.malformedSamples.filter { $0.reason == MalformedReason.tornLine.text }
      XCTAssertTrue(torn.contains { $0.line == 33 } && torn.contains { $0.line == 65 })
      XCTAssertEqual(r.read.cutLine, 12382)
      XCTAssertEqual(res.stats.lostMarkers, 2)
      XCTAssertTrue(res.countsByRule.isEmpty, "\(res.countsByRule)")
      XCTAssertEqual(res.findings.filter { $0.rule.severity >= .warning }.count, 0)
      XCTAssertEqual(r.judgement(Gate(failOn: .error)).exitCode, .malformedInput)
    }
  }

  // MARK: Faults injected into the real captures: an error at the line where a correct
  // replay must first diverge.

  /// The capture's lines (gunzipped with gzip(1)).
  func lines(_ name: String) throws -> [String] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", "gzip -dc '\(Self.dir)/\(name).trace.gz'"]
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    XCTAssertEqual(p.terminationStatus, 0)
    return String(decoding: data, as: UTF8.self)
      .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
  }

  func write(_ lines: [String]) throws -> String {
    let dir = NSTemporaryDirectory() + "ptfrag-corpus-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/mutated.trace"
    try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  static func value(_ line: String, _ key: String) -> UInt64? {
    guard let r = line.range(of: " \(key)=0x") else { return nil }
    let hexDigits = line[r.upperBound...].prefix { $0.isHexDigit }
    return UInt64(hexDigits, radix: 16)
  }

  func errors(_ path: String, _ name: String, profile: String? = nil) throws -> [Finding] {
    let r = try analyze(path, profile: profile ?? "\(Self.dir)/\(name).kprobe_profile", model: "s390-6.1")
    let res = try XCTUnwrap(r.result)
    return res.findings.filter { $0.rule.severity == .error }
  }

  /// The 5000th page_table_free_rcu after line 60000, duplicated: freeing a pending half.
  func testDuplicatedFreeInTheCaptureWithMisses() throws {
    for name in ["s390x-6.1-dev", "s390x-6.1-dev-nosoftirq"] {
      var l = try lines(name)
      let i = try XCTUnwrap((60000..<l.count).first { l[$0].contains(" page_table_free_rcu: ") })
      l.insert(l[i], at: i + 1)
      let e = try errors(try write(l), name)
      XCTAssertEqual(e.first.map { "\($0.rule.id)@\($0.line)" }, "double-free@\(i + 2)", name)
    }
  }

  /// A __tlb_remove_table moved before the page_table_free_rcu that made its half pending:
  /// the exec of an allocated half, at its new line.
  func testExecMovedBeforeItsFree() throws {
    let name = "s390x-6.1-dev-nosoftirq"
    var l = try lines(name)
    let x = try XCTUnwrap((60000..<l.count).first { l[$0].contains(" __tlb_remove_table: ") && Self.value(l[$0], "table")! & 3 != 0 })
    let table = Self.value(l[x], "table")! & ~3
    let f = try XCTUnwrap((0..<x).last { l[$0].contains(" page_table_free_rcu: ") && Self.value(l[$0], "table") == table })
    let exec = l.remove(at: x)
    l.insert(exec, at: f)
    let e = try errors(try write(l), name)
    XCTAssertEqual(e.first.map { "\($0.rule.id)@\($0.line)" }, "exec-without-pending@\(f + 1)")
  }

  /// An upper-half allocation whose lower half is allocated to the same mm, changed to the
  /// lower half: a busy half handed out again.
  func testAllocationChangedToTheOtherHalf() throws {
    for name in ["s390x-6.1-dev", "s390x-6.1-dev-nosoftirq"] {
      var l = try lines(name)
      // An upper half returned right after its lower half (same page), with no free of the
      // lower half in between.
      var target: Int? = nil
      var lastLower: [UInt64: Int] = [:]
      for i in 60000..<l.count where l[i].contains(" page_table_alloc_ret: ") || l[i].contains(" page_table_free") {
        guard let t = Self.value(l[i], "table") else { continue }
        if l[i].contains("page_table_free") { lastLower[t] = nil; continue }
        if t & 0xfff == 0 { lastLower[t] = i } else if t & 0xfff == 0x800, lastLower[t - 0x800] != nil {
          target = i
          break
        }
      }
      let i = try XCTUnwrap(target)
      let t = Self.value(l[i], "table")!
      l[i] = l[i].replacingOccurrences(of: "table=0x\(String(t, radix: 16))", with: "table=0x\(String(t - 0x800, radix: 16))")
      let e = try errors(try write(l), name)
      XCTAssertEqual(e.first.map { "\($0.rule.id)@\($0.line)" }, "alloc-busy-half@\(i + 1)", name)
    }
  }

  /// An exec dropped from the capture that missed nothing, replayed with its zero-miss
  /// profile: the half stays pending, and the kernel's next use of it is an error that names
  /// that table's page.
  func testExecDroppedFromTheMissFreeCapture() throws {
    let name = "s390x-6.1-dev-nosoftirq"
    var l = try lines(name)
    let x = try XCTUnwrap((60000..<l.count).first { l[$0].contains(" __tlb_remove_table: ") && Self.value(l[$0], "table")! & 3 != 0 })
    let table = Self.value(l[x], "table")!
    l.remove(at: x)
    // The first place the kernel shows the half released: the page handed out again.
    let page = table & ~0xfff
    let reuse = try XCTUnwrap(
      (x..<l.count).first { i in
        guard let t = Self.value(l[i], "table") else { return false }
        if l[i].contains(" page_table_alloc_ret: ") { return t & ~0xfff == page }
        return l[i].contains(" crst_table_alloc_ret: ") && t & ~0x3fff == page & ~0x3fff
      })
    let e = try errors(try write(l), name)
    let first = try XCTUnwrap(e.first, "no error")
    XCTAssertEqual(first.page, page, "\(first.rule.id)@\(first.line): \(first.message)")
    XCTAssertEqual(first.line, reuse + 1, "\(first.rule.id)@\(first.line): \(first.message)")
    XCTAssertEqual(first.rule.id, "release-with-bits")
  }
}

/// s390-6.1 with mmu_gather records collected at every new gather instead of when the table
/// has doubled: only records nothing can read again may be dropped, so this changes nothing.
@testable import class PTFragReplay.S390v61Model
final class EagerGatherCollection: S390v61Model {
  required init(context: ReplayContext) {
    super.init(context: context)
    gatherCollectAt = 1
    gatherCollectFloor = 1
  }
}

final class GatherCollectionTests: XCTestCase {
  /// Every finding and inconclusive item (rule, line, message) of the real captures, with
  /// gathers collected eagerly, equals the replay that collects them rarely.
  func testCollectingGathersChangesNoFindingOnTheRealCorpus() throws {
    for name in ["s390x-6.1-dev", "s390x-6.1-dev-smp4"] {
      func run(_ model: any AllocatorModel.Type) throws -> [String] {
        var src = try GzipSource(try FileSource(path: "\(CorpusTests.dir)/\(name).trace.gz"))
        let r = try Fixture.replay(&src, model: model, profileMisses: nil)
        XCTAssertGreaterThan(r.stats.allocationsPredicted, 1000)
        return r.findings.map { "\($0.rule.id)@\($0.line) \($0.message)" }
          + r.inconclusive.map { "\($0.reason.rawValue)@\($0.line) \($0.message)" }
      }
      let eager = try run(EagerGatherCollection.self)
      let lazy = try run(S390v61Model.self)
      XCTAssertFalse(lazy.isEmpty, name)
      XCTAssertEqual(eager, lazy, name)
    }
  }
}

/// Per-mm records are bounded by `AnalyzeOptions.mmRecords`, not by the mms seen: the
/// report keeps the highest peaks and counts the others.
final class PerMMRecordTests: XCTestCase {
  func testTheReportKeepsTheTopRecordsAndCountsTheRest() throws {
    let path = "\(CorpusTests.dir)/s390x-6.1-dev-nosoftirq.trace.gz"
    let all = try XCTUnwrap(
      Analyzer.analyze(path: path, options: { var o = AnalyzeOptions(); o.mmRecords = 1_000_000; return o }()).result)
    let mms = all.stats.perMM.count
    XCTAssertGreaterThan(mms, 500)
    XCTAssertEqual(all.stats.perMMDropped, 0)
    let top = try XCTUnwrap(Analyzer.analyze(path: path, options: AnalyzeOptions()).result)
    XCTAssertEqual(top.stats.perMM.count, MMOccupancyBook.defaultRecords)
    XCTAssertEqual(top.stats.perMMDropped, mms - MMOccupancyBook.defaultRecords)
    // The same records as the first ones of the full list, in the same order.
    XCTAssertEqual(
      top.stats.perMM.map { "\($0.serial) \($0.timeline.peak.pagesHeld)" },
      all.stats.perMM.prefix(MMOccupancyBook.defaultRecords).map { "\($0.serial) \($0.timeline.peak.pagesHeld)" })
  }
}

/// Inconclusive items beyond the detail cap are still settled by the profile: a cap of 10
/// on a real capture with 607 items changes no count, no verdict and no rule total.
final class InconclusiveCapTests: XCTestCase {
  func replay(cap: Int, misses: [KernelFunction: UInt64]?) throws -> ReplayResult {
    var src = try GzipSource(try FileSource(path: "\(CorpusTests.dir)/s390x-6.1-dev.trace.gz"))
    let replayer = Replayer(model: S390v61Model.self)
    replayer.context.maxInconclusiveKept = cap
    var normalizer = Normalizer()
    _ = try TextCaptureReader().read(&src) { record in normalizer.feed(record) { replayer.apply($0) } }
    normalizer.finish { replayer.apply($0) }
    return replayer.finish(profileMisses: misses)
  }

  /// An item that two probes' misses explain does not take the budget of an item only one
  /// explains: both are explained when the profile's misses allow it.
  func testSingleProbeItemsAreChargedFirst() throws {
    let replayer = Replayer(model: S390v61Model.self)
    replayer.context.report(
      Inconclusive(
        reason: .missedProbe, line: 1, message: "either free", hingesOn: .pageTableFreeRCU,
        alternatives: [.pageTableFree]))
    replayer.context.report(
      Inconclusive(reason: .missedProbe, line: 2, message: "this free", hingesOn: .pageTableFreeRCU))
    let r = replayer.finish(profileMisses: [.pageTableFreeRCU: 1, .pageTableFree: 1])
    let items = r.inconclusive.filter { $0.reason == .missedProbe }  // (and no-events: no event)
    XCTAssertEqual(items.filter { $0.explainedBy == nil }.count, 0)
    XCTAssertEqual(items.map { $0.hingesOn }, [.pageTableFree, .pageTableFreeRCU])
  }

  /// A capture that lost events supports no error verdict: findings beyond the per-rule
  /// detail cap become inconclusive like the kept ones (counted, unexplained), not errors left
  /// in `countsByRule` (a real 6.12 trace_pipe capture showed "40 error … 0 kept in detail").
  func testFindingsBeyondTheDetailCapOfALossyCaptureAreInconclusive() throws {
    func replay(lost: Bool) -> ReplayResult {
      let replayer = Replayer(model: S390v61Model.self)
      replayer.context.maxFindingsPerRule = 2
      var s = EventScript()
      s.birth(0x20c_0800, pgd: 0x291_0000)
      s.alloc(0x20c_0800, 0x37b_9000)
      s.alloc(0x20c_0800, 0x37b_9800)  // keeps the page held
      for _ in 0..<6 { s.freeNow(0x20c_0800, 0x37b_9000) }  // 5 double frees
      if lost { s.add(.lost, cpu: 0, count: 10) }
      for e in s.events { replayer.apply(e) }
      return replayer.finish(profileMisses: nil)
    }
    let clean = replay(lost: false)
    XCTAssertEqual(clean.countsByRule, ["double-free": 5], "\(clean.findings.map { "\($0.rule.id)@\($0.line)" })")
    XCTAssertEqual(clean.droppedFindings["double-free"], 3)
    let lossy = replay(lost: true)
    XCTAssertEqual(lossy.findings.filter { $0.rule.severity >= .warning }.count, 0)
    XCTAssertNil(lossy.countsByRule["double-free"])
    XCTAssertNil(lossy.droppedFindings["double-free"])
    XCTAssertEqual(lossy.inconclusive.filter { $0.wouldBeRule == "double-free" }.count, 2)
    XCTAssertEqual(lossy.droppedInconclusive, 3)
    XCTAssertEqual(lossy.unexplainedInconclusive, clean.unexplainedInconclusive + 5)
  }

  func testItemsBeyondTheCapAreSettledAsKeptOnesAre() throws {
    let profile = try KprobeProfile.load(path: "\(CorpusTests.dir)/s390x-6.1-dev.kprobe_profile")
    let real = profile.missesByFunction(eventNames: [:])
    let zero = real.mapValues { _ in UInt64(0) }
    for misses in [real, zero, nil] as [[KernelFunction: UInt64]?] {
      let all = try replay(cap: 100_000, misses: misses)
      let capped = try replay(cap: 10, misses: misses)
      XCTAssertGreaterThan(capped.droppedInconclusive, 400, "\(String(describing: misses))")
      XCTAssertEqual(capped.unexplainedInconclusive, all.unexplainedInconclusive, "\(String(describing: misses))")
      XCTAssertEqual(capped.countsByRule, all.countsByRule, "\(String(describing: misses))")
      XCTAssertEqual(capped.findings.isEmpty, all.findings.isEmpty, "\(String(describing: misses))")
    }
  }
}

/// A baseline matches the findings kept in detail; beyond the per-rule cap the others have no
/// signature: a run whose kept findings are all known but whose dropped ones may be new is
/// not clean (inconclusive), never a pass.
final class BaselineBeyondTheCapTests: XCTestCase {
  func testDroppedFindingsUnderABaselineMakeTheVerdictInconclusive() throws {
    // One table freed 251 times (its page goes at the first): 250 free-unknown findings, 200
    // kept in detail.
    var text = "# tracer: nop\n#\n"
    text += "            init-1       [001] .....   100.000013: crst_table_alloc: (crst_table_alloc+0x0/0x70) mm=0x20c0800\n"
    text += "            init-1       [001] .....   100.000026: crst_table_alloc_ret: (mm_init+0x166/0x3a8 <- crst_table_alloc) table=0x3820000\n"
    text += "              sh-9       [000] .....   100.000039: page_table_alloc: (page_table_alloc+0x0/0x2c8) mm=0x20c0800\n"
    text += "              sh-9       [000] .....   100.000052: page_table_alloc_ret: (__handle_mm_fault+0xdda/0xf38 <- page_table_alloc) table=0x37b9000\n"
    for i in 0..<251 {
      text += "              sh-9       [000] .....   100.\(String(100_000 + i)): page_table_free: (page_table_free+0x0/0x1a0) mm=0x20c0800 table=0x37b9000\n"
    }
    let path = NSTemporaryDirectory() + "ptfrag-cap-\(getpid()).trace"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    var input = try Analyzer.analyze(path: path, options: AnalyzeOptions())
    let r = try XCTUnwrap(input.result, input.error?.message ?? "")
    XCTAssertEqual(r.countsByRule["free-unknown"], 250, "\(r.events) events, \(r.countsByRule), \(input.read.malformed) malformed \(input.read.malformedSamples.first.map { $0.reason } ?? "")")
    XCTAssertEqual(r.droppedFindings["free-unknown"], 50)
    let run = RunReport(inputs: [input], failOn: .error, toolVersion: "test")
    XCTAssertEqual(run.exitCode, .findings)
    Baseline.of(run).apply(to: &input)
    let again = RunReport(inputs: [input], failOn: .error, toolVersion: "test", baselinePath: "b.json")
    XCTAssertEqual(again.exitCode, .inconclusive, "kept findings all known, dropped ones unmatched")
  }
}
