import Foundation
import PTFragEvents
import PTFragKit
import PTFragReport
import PTFragReplay
import XCTest

/// The real ppc64le corpus (Fixtures/corpus/ppc64: unedited captures of Debian's
/// 6.1.0-50-powerpc64le (hash MMU) and 6.12.95+deb12-powerpc64le-64k (radix) kernels under
/// qemu-system-ppc64 -M pseries -cpu power9; see /work/shared/corpus/README.md, copied with
/// them): what a correct replay must do with them (issue 14).
/// - 0 error findings under the capture's own model and under `--model auto`, which picks
///   that model — except the true positive of `…-radix-thp`: exactly one
///   `released-with-active`, at the `pte_frag_destroy` that freed the page the guest's dmesg
///   names in "BUG: Bad page state … pfn:…" (address >> 16 = pfn; the timestamps agree), the
///   bug fda4d71651f7 fixes, which Debian's 6.12.95 lacks;
/// - with `--kernel-fix fda4d71651f7` that capture replays clean;
/// - per probe, the misses the replay infers never exceed the kprobe_profile's count, and
///   every inconclusive item is explained by it; a capture without misses has none;
/// - ≥ 90 % of allocations are predicted and checked (every mm is born in these captures).
final class PowerpcCorpusTests: XCTestCase {
  static let dir = fixtures + "/corpus/ppc64"
  static let captures: [(name: String, model: String)] = [
    ("6.12.95+deb12-powerpc64le-64k-radix-small", "powerpc-radix64k"),
    ("6.12.95+deb12-powerpc64le-64k-radix-thpsmall", "powerpc-radix64k"),
    ("6.12.95+deb12-powerpc64le-64k-radix-thp", "powerpc-radix64k"),
    ("6.1.0-50-powerpc64le-hash-medium", "powerpc-hash64k"),
  ]
  static let truePositive = "6.12.95+deb12-powerpc64le-64k-radix-thp"

  func analyze(_ name: String, model: String, fixes: [String] = []) throws -> InputReport {
    var o = AnalyzeOptions(modelID: model, profilePath: "\(Self.dir)/\(name).kprobe_profile")
    o.kernelFixes = fixes
    return try Analyzer.analyze(path: "\(Self.dir)/\(name).trace.gz", options: o)
  }

  /// The pfn and timestamp (ns) of the guest's "BUG: Bad page state" lines.
  static func badPages(_ name: String) throws -> [(pfn: UInt64, ns: UInt64)] {
    let text = try String(contentsOfFile: "\(dir)/\(name).dmesg", encoding: .utf8)
    var out: [(UInt64, UInt64)] = []
    for line in text.split(separator: "\n") where line.contains("BUG: Bad page state") {
      guard let r = line.range(of: "pfn:"), let open = line.firstIndex(of: "["),
        let close = line.firstIndex(of: "]")
      else { continue }
      let pfn = UInt64(line[r.upperBound...].prefix { $0.isHexDigit }, radix: 16)!
      let ts = line[line.index(after: open)..<close].trimmingCharacters(in: .whitespaces)
      let parts = ts.split(separator: ".")
      out.append((pfn, UInt64(parts[0])! * 1_000_000_000 + UInt64(parts[1])! * 1000))
    }
    return out
  }

  func check(_ name: String, model: String, expected: String, fixes: [String] = []) throws {
    let what = "\(name) --model \(model)\(fixes.isEmpty ? "" : " --kernel-fix \(fixes.joined())")"
    let r = try analyze(name, model: model, fixes: fixes)
    XCTAssertNil(r.error?.message, what)
    let res = try XCTUnwrap(r.result, what)
    XCTAssertEqual(res.model.id, expected, "\(what): \(r.modelSelection)")
    let errors = res.findings.filter { $0.rule.severity == .error }
    if name == Self.truePositive && fixes.isEmpty {
      // The true positive: one released-with-active, at the page the guest's dmesg names.
      let bad = try Self.badPages(name)
      XCTAssertEqual(bad.count, 1, "\(name).dmesg: one Bad page state")
      XCTAssertEqual(errors.map(\.rule.id), ["released-with-active"], what)
      let f = try XCTUnwrap(errors.first)
      XCTAssertEqual(f.page.map { $0 >> 16 & 0xff_ffff_ffff }, bad.first?.pfn, "\(what): the page dmesg names")
      XCTAssertEqual(f.line, 3619, what)
      XCTAssertEqual(f.comm.description, "thp")
      // The finding's event is the pte_frag_destroy of that page, just before the BUG.
      XCTAssertTrue(f.message.hasPrefix("pte_frag_destroy("), f.message)
      let dt = Int64(bad[0].ns) - Int64(f.timestampNs)
      XCTAssertTrue(dt >= 0 && dt < 50_000_000, "\(what): dmesg \(bad[0].ns) vs finding \(f.timestampNs)")
      XCTAssertEqual(r.judgement(Gate(failOn: .error)).exitCode, .findings, what)
    } else {
      XCTAssertEqual(
        errors.count, 0,
        "\(what): " + errors.prefix(5).map { "\($0.rule.id)@\($0.line) \($0.message)" }.joined(separator: "\n"))
      XCTAssertEqual(r.judgement(Gate(failOn: .error)).exitCode, .clean, what)
    }
    // Inferred misses per probe within the profile's count, every one explained by it.
    let misses = try XCTUnwrap(r.profileMisses)
    var inferred: [KernelFunction: UInt64] = [:]
    for i in res.inconclusive { if let f = i.hingesOn { inferred[f, default: 0] += 1 } }
    for (f, n) in inferred {
      XCTAssertLessThanOrEqual(n, misses[f] ?? 0, "\(what): inferred misses of \(f.symbol)")
    }
    XCTAssertEqual(
      res.inconclusive.filter { $0.explainedBy == nil }.count, 0,
      "\(what): " + res.inconclusive.filter { $0.explainedBy == nil }.prefix(5).map { "\($0.reason.rawValue)@\($0.line) \($0.message)" }.joined(separator: "\n"))
    if misses.values.allSatisfy({ $0 == 0 }) {
      XCTAssertEqual(res.inconclusive.count, 0, "\(name): nothing missed, nothing inconclusive")
    }
    let allocs = res.stats.allocationsPredicted + res.stats.allocationsUnverified
    XCTAssertGreaterThan(allocs, 50)
    XCTAssertGreaterThanOrEqual(
      Double(res.stats.allocationsPredicted) / Double(allocs), 0.9,
      "\(what): \(res.stats.allocationsPredicted) of \(allocs) predicted")
    XCTAssertEqual(res.stats.mmsBorn, res.stats.mmsSeen, "\(what): every mm is born in the capture")
  }

  func testEveryCaptureReplaysUnderItsOwnModel() throws {
    for c in Self.captures { try check(c.name, model: c.model, expected: c.model) }
  }

  func testAutoDetectionPicksThePreset() throws {
    for c in Self.captures {
      try check(c.name, model: Analyzer.autoModelID, expected: c.model)
      let r = try analyze(c.name, model: Analyzer.autoModelID)
      XCTAssertTrue(r.modelSelection.contains("powerpc ("), r.modelSelection)
      XCTAssertTrue(
        r.modelSelection.contains(c.model.hasSuffix("radix64k") ? "256 B fragments" : "4 KiB fragments"),
        r.modelSelection)
    }
  }

  /// Declared with --kernel-fix fda4d71651f7, pte_frag_destroy clears PG_active: the
  /// true-positive capture replays clean, and the report names the variant.
  func testWithTheFixDeclaredTheTruePositiveCaptureIsClean() throws {
    for c in Self.captures {
      try check(c.name, model: c.model, expected: c.model + "+fda4d71651f7", fixes: ["fda4d71651f7"])
    }
    try check(
      Self.truePositive, model: Analyzer.autoModelID, expected: "powerpc-radix64k+fda4d71651f7",
      fixes: ["fda4d71651f7"])
    let r = try analyze(Self.truePositive, model: "powerpc-radix64k", fixes: ["fda4d71651f7"])
    XCTAssertTrue(try XCTUnwrap(r.result).model.kernels.contains("with fda4d71651f7"))
    let u = try analyze(Self.truePositive, model: "powerpc-radix64k")
    XCTAssertTrue(try XCTUnwrap(u.result).model.kernels.contains("without fda4d71651f7"))
  }

  /// `compare` on each capture: the simulated row of the preset the kernel ran equals the
  /// replay (peak and mean pages held within 1 %; issue 14), now that the simulated mms are
  /// born at init_new_context, destroy their cursor at arch_exit_mmap and die at
  /// destroy_context.
  func testCompareRanRowEqualsTheReplay() throws {
    for c in Self.captures {
      var options = CompareOptions(analyze: AnalyzeOptions(modelID: Analyzer.autoModelID), models: [c.model])
      options.analyze.profilePath = "\(Self.dir)/\(c.name).kprobe_profile"
      let cmp = try Comparer.compare(path: "\(Self.dir)/\(c.name).trace.gz", options: options)
      let replayed = try XCTUnwrap(cmp.input.result).stats.occupancy
      let ran = try XCTUnwrap(cmp.ranStrategy, c.name)
      XCTAssertEqual(ran.descriptor.id, c.model)
      XCTAssertEqual(ran.timeline.peak.pagesHeld, replayed.peak.pagesHeld, c.name)
      let mean = try XCTUnwrap(replayed.meanPagesHeld)
      XCTAssertEqual(try XCTUnwrap(ran.timeline.meanPagesHeld), mean, accuracy: mean * 0.01, c.name)
      XCTAssertEqual(cmp.workload.mmsBorn, cmp.workload.mmsDied, c.name)
    }
  }

  /// compare --kernel-fix fda4d71651f7 on the true-positive capture: the powerpc strategies run
  /// as kernels with the fix, the ran row is found, and no simulation reports
  /// released-with-active; without it each powerpc simulation carries the capture's own.
  func testCompareWithTheFixDeclared() throws {
    var options = CompareOptions(
      analyze: AnalyzeOptions(modelID: Analyzer.autoModelID), models: ["powerpc-radix64k", "s390-6.6"])
    options.analyze.profilePath = "\(Self.dir)/\(Self.truePositive).kprobe_profile"
    let unfixed = try Comparer.compare(path: "\(Self.dir)/\(Self.truePositive).trace.gz", options: options)
    XCTAssertEqual(unfixed.ranStrategy?.selfCheck.map { String($0.prefix(20)) }, ["released-with-active"])
    options.analyze.kernelFixes = ["fda4d71651f7"]
    let fixed = try Comparer.compare(path: "\(Self.dir)/\(Self.truePositive).trace.gz", options: options)
    XCTAssertEqual(fixed.strategies.map(\.descriptor.id), ["powerpc-radix64k+fda4d71651f7", "s390-6.6"])
    let ran = try XCTUnwrap(fixed.ranStrategy)
    XCTAssertEqual(ran.selfCheck, [])
    XCTAssertEqual(ran.timeline.peak.pagesHeld, try XCTUnwrap(fixed.input.result).stats.occupancy.peak.pagesHeld)
  }

  // MARK: Faults injected into the real captures

  func lines(_ name: String) throws -> [String] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", "gzip -dc '\(Self.dir)/\(name).trace.gz'"]
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
      .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
  }

  func errors(of lines: [String], _ name: String, model: String) throws -> [Finding] {
    let dir = NSTemporaryDirectory() + "ptfrag-ppc-corpus-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/mutated.trace"
    try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
    let r = try Analyzer.analyze(
      path: path, options: AnalyzeOptions(modelID: model, profilePath: "\(Self.dir)/\(name).kprobe_profile"))
    return try XCTUnwrap(r.result).findings.filter { $0.rule.severity == .error }
  }

  /// A tlb_remove_table of a PTE fragment duplicated: the fragment is queued twice, a double
  /// free at the copy.
  func testDuplicatedFree() throws {
    for c in Self.captures where c.name != Self.truePositive {
      var l = try lines(c.name)
      func pteQueue(_ k: Int) -> Bool {
        l[k].contains(" tlb_remove_table: ") && l[k].hasSuffix("0")
      }
      let i = try XCTUnwrap((200..<l.count).first(where: pteQueue), c.name)
      l.insert(l[i], at: i + 1)
      let e = try errors(of: l, c.name, model: c.model)
      XCTAssertEqual(e.first.map { "\($0.rule.id)@\($0.line)" }, "double-free@\(i + 2)", c.name)
    }
  }

  /// A __tlb_remove_table (and its nested pte_fragment_free) dropped from the capture that
  /// missed nothing: its zero-miss profile makes the page's return an error naming the page.
  func testExecDroppedFromTheMissFreeCapture() throws {
    let name = "6.12.95+deb12-powerpc64le-64k-radix-small"
    var l = try lines(name)
    func table(_ s: String) -> UInt64? {
      guard let r = s.range(of: " table=0x") else { return nil }
      return UInt64(s[r.upperBound...].prefix { $0.isHexDigit }, radix: 16)
    }
    // An exec whose page the kernel later shows released (a fresh PTE page, a PMD fragment,
    // or pte_free_now naming it), not the exec that releases it.
    var chosen: (Int, UInt64, Int)? = nil
    for x in 20..<l.count where l[x].contains(" __tlb_remove_table: ") {
      guard let t = table(l[x]), t & 0xf == 0, !l[x + 2].contains(" pte_free_now: ") else { continue }
      let page = t & ~0xffff
      if let back = ((x + 2)..<l.count).first(where: { i in
        if l[i].contains(" pte_fragment_alloc_ret: ") || l[i].contains(" pmd_fragment_alloc_ret: ") {
          return table(l[i]).map { $0 & ~0xffff == page && $0 & 0xffff == 0 } ?? false
        }
        // pte_free_now(head): head = 0xc00c000000000000 + pfn × 64 + 8.
        if l[i].contains(" pte_free_now: "), let r = l[i].range(of: "head=0x") {
          let head = UInt64(l[i][r.upperBound...].prefix { $0.isHexDigit }, radix: 16) ?? 0
          return 0xc000_0000_0000_0000 | ((head &- 0xc00c_0000_0000_0008) / 64) << 16 == page
        }
        return false
      }) {
        chosen = (x, page, back)
        break
      }
    }
    let (x, page, back) = try XCTUnwrap(chosen)
    l.remove(at: x + 1)  // the nested pte_fragment_free
    l.remove(at: x)
    let e = try errors(of: l, name, model: "powerpc-radix64k")
    let first = try XCTUnwrap(e.first, "no error")
    XCTAssertEqual(first.page, page, "\(first.rule.id)@\(first.line): \(first.message)")
    // The first line that shows the page released, two lines earlier after the removal.
    XCTAssertEqual(first.line, back + 1 - 2, "\(first.rule.id)@\(first.line): \(first.message)")
    XCTAssertEqual(first.rule.id, "release-with-refs", first.message)
  }
}
