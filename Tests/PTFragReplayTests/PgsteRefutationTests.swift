import Foundation
import PTFragKit
import PTFragReport
import PTFragReplay
import XCTest

/// pgste (KVM) tables are only inferred (no probe tells them; `pgste-inferred`), so an event
/// only a 2 KiB fragment page shows on a page read as pgste — an upper half handed out or
/// freed, a tlb tag 1 or 2 — refutes the reading: events of the mm are missing from the
/// capture. It is one `inference-refuted` item, never an error, and the replay goes on with
/// the mm's pages as 2 KiB halves of unknown history. (A real 6.1 trace_pipe capture on 4
/// CPUs, `Fixtures/corpus/s390/s390x-6.1-lost-smp4.trace.gz`, lost an mm's upper-half
/// allocations silently: 95 errors cascaded from the wrong reading.)
final class PgsteRefutationTests: XCTestCase {
  /// `Fixtures/rules/pgste-inferred.trace` (pgste inferred at line 11) with its last six
  /// lines replaced by `tail`.
  func replay(_ tail: [String]) throws -> InputReport {
    let base = try String(contentsOfFile: fixtures + "/rules/pgste-inferred.trace", encoding: .utf8)
    var lines = base.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if lines.last == "" { lines.removeLast() }
    lines = Array(lines.prefix(11)) + tail
    let dir = NSTemporaryDirectory() + "ptfrag-pgste-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/t.trace"
    try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    return try Analyzer.analyze(path: path, options: AnalyzeOptions(modelID: "s390-6.1"))
  }

  static func line(_ ts: String, _ comm: String, _ body: String) -> String {
    "  \(comm) [000] ..... 100.\(ts): \(body)"
  }

  func check(_ r: InputReport, refutedAt line: Int, file: StaticString = #filePath, lineNo: UInt = #line) throws {
    let res = try XCTUnwrap(r.result, file: file, line: lineNo)
    XCTAssertEqual(res.findings.map { "\($0.rule.id)@\($0.line)" }, ["pgste-inferred@11"], file: file, line: lineNo)
    let refuted = res.inconclusive.filter { $0.reason == .inferenceRefuted }
    XCTAssertEqual(refuted.map(\.line), [line], file: file, line: lineNo)
    XCTAssertEqual(r.judgement(Gate(failOn: .error)).exitCode, .inconclusive, file: file, line: lineNo)
  }

  /// The upper half of a "pgste" page handed out, then freed through the tlb batch.
  func testAnUpperHalfRefutesTheReading() throws {
    let r = try replay([
      Self.line("000150", "sh-9", "page_table_alloc: (page_table_alloc+0x0/0x2c8) mm=0x20c0800"),
      Self.line("000160", "sh-9", "page_table_alloc_ret: (__handle_mm_fault+0xdda/0xf38 <- page_table_alloc) table=0x37ba800"),
      Self.line("000170", "sh-9", "page_table_free_rcu: (page_table_free_rcu+0x0/0x188) tlb=0x37ffffd79f0 table=0x37ba800 vmaddr=0x1100000"),
      Self.line("000180", "sh-9", "tlb_remove_table: (tlb_remove_table+0x0/0x288) tlb=0x37ffffd79f0 table=0x37ba802"),
      Self.line("000190", "<idle>-0", "__tlb_remove_table: (__tlb_remove_table+0x0/0xe8) table=0x37ba802"),
    ])
    try check(r, refutedAt: 13)
  }

  /// A tag 1 queue of a "pgste" page's lower half (a fragment kernel's tag).
  func testATagOneRefutesTheReading() throws {
    let r = try replay([
      Self.line("000150", "sh-9", "page_table_free_rcu: (page_table_free_rcu+0x0/0x188) tlb=0x37ffffd79f0 table=0x37ba000 vmaddr=0x1100000"),
      Self.line("000160", "sh-9", "tlb_remove_table: (tlb_remove_table+0x0/0x288) tlb=0x37ffffd79f0 table=0x37ba001"),
      Self.line("000170", "<idle>-0", "__tlb_remove_table: (__tlb_remove_table+0x0/0xe8) table=0x37ba001"),
    ])
    try check(r, refutedAt: 13)
  }
}
