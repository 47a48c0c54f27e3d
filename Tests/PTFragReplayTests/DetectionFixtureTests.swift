import Foundation
import PTFragKit
import PTFragReport
import PTFragReplay
import XCTest

/// Fixtures/detect: `--model auto` on traces whose pages change table kind. Each declares
/// `# expect-model: ID` (chosen, and the replay has no error) or `# expect-refusal: line N`
/// (exit 65, the contradiction named at line N).
final class DetectionFixtureTests: XCTestCase {
  func run(_ name: String) throws {
    let path = fixtures + "/detect/\(name).trace"
    let header = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("# expect-") }
    let r = try Analyzer.analyze(
      path: path,
      options: AnalyzeOptions(
        modelID: Analyzer.autoModelID, profilePath: fixtures + "/detect/tlb-exec-missed.kprobe_profile"))
    if let m = header.first(where: { $0.hasPrefix("# expect-model: ") }) {
      let id = String(m.dropFirst("# expect-model: ".count))
      let res = try XCTUnwrap(r.result, r.error?.message ?? "")
      XCTAssertEqual(res.model.id, id, r.modelSelection)
      XCTAssertEqual(res.findings.filter { $0.rule.severity == .error }.count, 0)
      XCTAssertEqual(r.judgement(Gate(failOn: .error)).exitCode, .clean)
    } else {
      let m = try XCTUnwrap(header.first { $0.hasPrefix("# expect-refusal: line ") })
      let line = m.dropFirst("# expect-refusal: line ".count)
      XCTAssertEqual(r.error?.code, .malformedInput)
      XCTAssertTrue(r.error?.message.contains("but line \(line): ") == true, r.error?.message ?? "no error")
    }
  }

  func testCRSTReuseOfAPTEPageKeepsTheFragmentModel() throws { try run("crst-reuse-of-pte-page") }
  func testUnseenCRSTReuseIsContradictory() throws { try run("crst-reuse-unseen") }
}
