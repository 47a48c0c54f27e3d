import Foundation
import PTFragKit
import PTFragReport
import PTFragReplay
import XCTest

/// `--model auto` with a kprobe_profile of the other architecture (kernel-models.md §10 item
/// 10, detection.md): an s390 capture is never detected as powerpc, whatever profile comes
/// with it, and a powerpc capture stays powerpc with an s390 kernel's profile.
final class ProfileArchitectureTests: XCTestCase {
  static let s390Captures = [
    "samples/s390x-6.1-fork-exec.trace", "samples/s390x-6.12-fork-exec.trace",
    "corpus/s390/s390x-6.1-medium.trace.gz", "corpus/s390/s390x-6.12-medium.trace.gz",
  ]
  static let powerpcNames = [
    "6.1.0-50-powerpc64le-hash-medium", "6.12.95+deb12-powerpc64le-64k-radix-small",
    "6.12.95+deb12-powerpc64le-64k-radix-thp", "6.12.95+deb12-powerpc64le-64k-radix-thpsmall",
  ]

  func detect(_ path: String, profile: String?) throws -> InputReport {
    try Analyzer.analyze(
      path: path, options: AnalyzeOptions(modelID: Analyzer.autoModelID, profilePath: profile))
  }

  func model(_ r: InputReport) -> String? { r.modelChosen ? r.result?.model.id : nil }

  func testAnS390CaptureWithAPowerpcProfileIsS390() throws {
    for c in Self.s390Captures {
      let path = fixtures + "/" + c
      let own = try XCTUnwrap(model(try detect(path, profile: nil)), c)
      XCTAssertTrue(own.hasPrefix("s390-"), own)
      for p in Self.powerpcNames {
        let r = try detect(path, profile: fixtures + "/corpus/ppc64/\(p).kprobe_profile")
        XCTAssertEqual(model(r), own, "\(c) with \(p): \(r.modelSelection) \(r.error?.message ?? "")")
        XCTAssertFalse(r.modelSelection.contains("powerpc"), r.modelSelection)
        XCTAssertTrue(r.modelSelection.contains("the kprobe_profile is not used (it has no probe on page_table_alloc"), r.modelSelection)
      }
    }
  }

  func testAPowerpcCaptureWithAnS390ProfileIsPowerpc() throws {
    let s390Profiles = [
      "samples/s390x-6.1-fork-exec.kprobe_profile", "samples/s390x-6.12-fork-exec.kprobe_profile",
      "corpus/s390/s390x-6.1-dev.kprobe_profile",
    ]
    for p in Self.powerpcNames {
      let path = fixtures + "/corpus/ppc64/\(p).trace.gz"
      let own = try XCTUnwrap(model(try detect(path, profile: fixtures + "/corpus/ppc64/\(p).kprobe_profile")), p)
      XCTAssertTrue(own.hasPrefix("powerpc-"), own)
      for s in s390Profiles {
        let r = try detect(path, profile: fixtures + "/" + s)
        XCTAssertEqual(model(r), own, "\(p) with \(s): \(r.modelSelection) \(r.error?.message ?? "")")
      }
    }
  }

  /// A profile that lists every probe the capture has (so it is trusted) and powerpc ones
  /// besides (a v6.1 powerpc kernel's: no pte_free_defer, which would make it s390-6.6): the
  /// capture's page_table_alloc and crst_table_alloc lines decide.
  func testATrustedProfileListingPowerpcFunctionsLosesToS390Events() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ptfrag-arch-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    for name in ["s390x-6.1-fork-exec", "s390x-6.12-fork-exec"] {
      let path = fixtures + "/samples/\(name).trace"
      let own = try String(contentsOfFile: fixtures + "/samples/\(name).kprobe_profile", encoding: .utf8)
      let ppc = try String(contentsOfFile: fixtures + "/corpus/ppc64/\(Self.powerpcNames[0]).kprobe_profile", encoding: .utf8)
      let mixed = dir.appendingPathComponent("\(name).kprobe_profile")
      try (ppc + own).write(to: mixed, atomically: true, encoding: .utf8)
      let expected = try XCTUnwrap(model(try detect(path, profile: fixtures + "/samples/\(name).kprobe_profile")))
      let r = try detect(path, profile: mixed.path)
      XCTAssertEqual(model(r), expected, r.modelSelection + (r.error?.message ?? ""))
      XCTAssertTrue(r.modelSelection.contains("a powerpc function, but "), r.modelSelection)
      XCTAssertTrue(r.modelSelection.contains("the capture's events decide, the listing is not used"), r.modelSelection)
      XCTAssertEqual(r.profileMismatch, [], "the profile fits (its hits cover the capture's lines)")
    }
  }
}
