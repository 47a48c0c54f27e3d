import Foundation
import PTFragEvents
import PTFragKit
import PTFragRead
import PTFragReport
import PTFragReplay
import XCTest

/// The real s390x 6.1 capture, as shipped and mutated.
final class SampleTests: XCTestCase {
  let sample = fixtures + "/samples/s390x-6.1-fork-exec.trace"
  let profile = fixtures + "/samples/s390x-6.1-fork-exec.kprobe_profile"

  func analyze(_ path: String, profile: String?) throws -> InputReport {
    try Analyzer.analyze(path: path, options: AnalyzeOptions(modelID: "s390-6.1", profilePath: profile))
  }

  /// The 7 silent misses of __tlb_remove_table in the profile, as the replay finds them: all
  /// in mm 0x20c0400's teardown batch (lines 186–200) — the two halves of 0x387f000 handed
  /// out again at line 250, two CRST tables allocated again, and three entries never executed
  /// although later entries of CPU 0 were.
  let missed = [
    "missed-tlb-exec@189", "missed-tlb-exec@191", "missed-tlb-exec@192", "missed-tlb-exec@195",
    "missed-tlb-exec@200", "missed-tlb-exec@250", "missed-tlb-exec@250",
  ]

  /// Every allocation of every mm born in the capture (all 95: the capture starts before
  /// any page-table activity of the workload) is predicted and checked; no error; exactly
  /// the 7 items the silent misses explain, explained by the profile.
  func testRealSampleReplaysCleanWithProfile() throws {
    let r = try analyze(sample, profile: profile)
    let res = try XCTUnwrap(r.result)
    XCTAssertEqual(res.findings.count, 0, res.findings.map(\.message).joined(separator: "\n"))
    XCTAssertEqual(res.stats.mmsBorn, 20)
    XCTAssertEqual(res.stats.eventsByKind[.alloc], 95)
    XCTAssertEqual(res.stats.allocationsPredicted, 95)
    XCTAssertEqual(res.stats.allocationsUnverified, 0)
    XCTAssertEqual(res.inconclusive.map { "\($0.reason.rawValue)@\($0.line)" }, missed)
    XCTAssertTrue(res.inconclusive.allSatisfy { $0.explainedBy != nil })
    XCTAssertEqual(Judgement(result: res, gate: Gate(failOn: .error)).verdict, .clean)
    XCTAssertEqual(r.judgement(Gate(failOn: .error)).exitCode, .clean)
    XCTAssertEqual(r.profileMisses?[.tlbRemoveTableExec], 7)
  }

  /// Without the profile the same two items stay open: the verdict is inconclusive (exit 2).
  func testRealSampleWithoutProfileIsInconclusive() throws {
    let r = try analyze(sample, profile: nil)
    let res = try XCTUnwrap(r.result)
    XCTAssertEqual(res.findings.count, 0)
    XCTAssertEqual(res.inconclusive.map { "\($0.reason.rawValue)@\($0.line)" }, missed)
    XCTAssertTrue(res.inconclusive.allSatisfy { $0.explainedBy == nil })
    XCTAssertEqual(r.judgement(Gate(failOn: .error)).exitCode, .inconclusive)
    XCTAssertEqual(res.stats.allocationsPredicted, 95)
  }

  /// A profile that shows no missed __tlb_remove_table turns the same reuse into an error.
  /// The profile is the sample's own with its misses cleared (its hits still fit the capture:
  /// a profile that does not fit, like the rule fixtures' one-hit profile, is not used).
  func testRealSampleWithZeroMissProfileIsReuseBeforeGrace() throws {
    let own = try String(contentsOfFile: profile, encoding: .utf8)
    let zero = own.split(separator: "\n").map { line -> String in
      let f = line.split(separator: " ")
      return f.count == 3 ? "\(f[0]) \(f[1]) 0" : String(line)
    }.joined(separator: "\n")
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("ptfrag-zero-\(UUID().uuidString).kprobe_profile").path
    try zero.write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let r = try analyze(sample, profile: path)
    XCTAssertEqual(r.profileMismatch, [])
    let res = try XCTUnwrap(r.result)
    XCTAssertEqual(
      res.findings.map { "\($0.rule.id)@\($0.line)" },
      [
        "tlb-exec-missing@189", "tlb-exec-missing@191", "tlb-exec-missing@192",
        "tlb-exec-missing@195", "tlb-exec-missing@200", "reuse-before-grace@250",
      ])
    XCTAssertEqual(res.inconclusive.count, 0)
    XCTAssertEqual(r.judgement(Gate(failOn: .error)).exitCode, .findings)
  }

  /// The model's O(1) occupancy equals a full recount after every event of the sample.
  func testOccupancyStaysConsistentWithARecount() throws {
    var lines: [String] = []
    let text = try String(contentsOfFile: sample, encoding: .utf8)
    lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let ctx = ReplayContext()
    let model = S390v61Model(context: ctx)
    var n = Normalizer()
    for (i, l) in lines.enumerated() {
      var l = l
      let parsed: TraceRecord? = l.withUTF8 {
        switch FtraceLineParser.parse($0, lineNumber: i + 1) {
        case .hit(let h): .hit(h)
        case .lost(let m): .lost(m)
        default: nil
        }
      }
      guard let rec = parsed else { continue }
      n.feed(rec) { e in
        model.apply(e)
        XCTAssertTrue(model.occupancyMatchesRecount(), "line \(e.line)")
        let o = model.occupancy
        XCTAssertGreaterThanOrEqual(o.reusableLater, 0)
        XCTAssertGreaterThanOrEqual(o.stranded, 0)
        XCTAssertEqual(o.slotsHeld, o.live + o.pending + o.unknown + o.waste)
      }
    }
  }

  // MARK: Mutations: each must make the replay report an error where it was made.

  func mutate(_ body: (inout [String]) -> Void) throws -> String {
    var lines = try String(contentsOfFile: sample, encoding: .utf8)
      .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    body(&lines)
    let dir = NSTemporaryDirectory() + "ptfrag-mut-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let path = dir + "/mutated.trace"
    try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  func firstError(_ path: String) throws -> (String, Int, ExitCode) {
    let r = try analyze(path, profile: profile)
    let res = try XCTUnwrap(r.result)
    let f = try XCTUnwrap(res.findings.first { $0.rule.severity == .error }, "no error finding")
    return (f.rule.id, f.line, r.judgement(Gate(failOn: .error)).exitCode)
  }

  /// Line 28 is cut-179's page_table_free_rcu of 0x37ba800: freeing it twice.
  func testDuplicatedFreeIsADoubleFreeAtTheDuplicate() throws {
    let path = try mutate { l in
      XCTAssertTrue(l[27].contains("page_table_free_rcu") && l[27].contains("table=0x37ba800"))
      l.insert(l[27], at: 28)
    }
    let (rule, line, code) = try firstError(path)
    XCTAssertEqual(rule, "double-free")
    XCTAssertEqual(line, 29)
    XCTAssertEqual(code, .findings)
  }

  /// Line 20 is init's page_table_alloc return of 0x37b9800: without it the entry at line 19
  /// has no return when init enters page_table_alloc again (line 22 after the drop).
  func testDroppedAllocReturnIsReportedAtItsEntry() throws {
    let path = try mutate { l in
      XCTAssertTrue(l[19].contains("page_table_alloc_ret") && l[19].contains("0x37b9800"))
      l.remove(at: 19)
    }
    let r = try analyze(path, profile: profile)
    let res = try XCTUnwrap(r.result)
    XCTAssertEqual(res.findings.map { "\($0.rule.id)@\($0.line)" }, ["alloc-without-return@19"])
    XCTAssertEqual(r.judgement(Gate(failOn: .error)).exitCode, .findings)
  }

  /// The same dropped return, but as a damaged line (its timestamp garbled): the line names a
  /// probed function, so its event is missing like a lost one and nothing is an error.
  func testDamagedProbeLineMakesDivergencesInconclusive() throws {
    let path = try mutate { l in
      l[19] = l[19].replacingOccurrences(of: "192.055048:", with: "19x.05504B:")
    }
    let r = try analyze(path, profile: profile)
    let res = try XCTUnwrap(r.result)
    XCTAssertEqual(r.read.malformed, 1)
    XCTAssertEqual(res.findings.filter { $0.rule.severity == .error }.count, 0)
    XCTAssertTrue(res.inconclusive.contains { $0.wouldBeRule == "alloc-without-return" && $0.line == 19 })
    XCTAssertNotNil(res.lossReason)
    XCTAssertEqual(r.judgement(Gate(failOn: .error)).exitCode, .inconclusive)
  }

  /// Line 20 returns 0x37b9800 (upper half of the head); the other half is allocated.
  func testReturnedTableChangedToTheOtherHalf() throws {
    let path = try mutate { l in
      l[19] = l[19].replacingOccurrences(of: "table=0x37b9800", with: "table=0x37b9000")
    }
    let (rule, line, code) = try firstError(path)
    XCTAssertEqual(rule, "alloc-busy-half")
    XCTAssertEqual(line, 20)
    XCTAssertEqual(code, .findings)
  }

  /// Line 94 executes 0x37ba802, freed at line 28: moved before the free it is an exec of an
  /// allocated half.
  func testExecMovedBeforeItsFree() throws {
    let path = try mutate { l in
      XCTAssertTrue(l[93].contains("__tlb_remove_table") && l[93].contains("0x37ba802"))
      let exec = l.remove(at: 93)
      l.insert(exec, at: 27)  // now line 28, before the free (now line 29)
    }
    let (rule, line, code) = try firstError(path)
    XCTAssertEqual(rule, "exec-without-pending")
    XCTAssertEqual(line, 28)
    XCTAssertEqual(code, .findings)
  }
}
