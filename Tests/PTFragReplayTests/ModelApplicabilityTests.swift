import XCTest

@testable import PTFragReplay

/// Descriptors of the models of issue 3 (second half): ids, rules and where each applies.
final class ModelApplicabilityTests: XCTestCase {
  static let ids = [
    "s390-hugh-v2", "s390-gerald", "s390-ppc-style", "powerpc-hash64k", "powerpc-radix64k",
    "powerpc-8xx16k",
  ]

  func testRegisteredOnceEach() {
    for id in Self.ids {
      XCTAssertEqual(ModelRegistry.ids.filter { $0 == id }.count, 1, id)
      XCTAssertEqual(ModelRegistry.model(id: id)?.descriptor.id, id)
    }
  }

  /// Every rule is in exactly one check group, and every grouped id is a rule of the model.
  func testChecksPartitionTheRules() {
    for id in Self.ids {
      let d = ModelRegistry.model(id: id)!.descriptor
      let ruleIDs = d.rules.map(\.id)
      XCTAssertEqual(Set(ruleIDs).count, ruleIDs.count, "\(id): duplicate rule ids")
      let grouped = d.checks.flatMap(\.rules)
      XCTAssertEqual(grouped.sorted(), ruleIDs.sorted(), id)
      for r in d.rules {
        XCTAssertTrue(r.id.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" }, "\(id): \(r.id)")
        XCTAssertFalse(r.summary.isEmpty)
      }
      XCTAssertFalse(d.commits.isEmpty, id)
    }
  }

  func testWhatAppliesWhere() {
    for id in ["s390-hugh-v2", "s390-gerald", "s390-ppc-style"] {
      let d = ModelRegistry.model(id: id)!.descriptor
      XCTAssertTrue(d.simulationOnly, id)
      XCTAssertFalse(d.canReplay(captureOf: id), "\(id): no kernel of its own")
      XCTAssertTrue(d.canReplay(captureOf: "s390-6.1"), id)
      XCTAssertFalse(d.canReplay(captureOf: "s390-6.12"), "\(id): one table per page is another format")
      let off = d.checksNotApplicable(toCaptureOf: "s390-6.1")
      XCTAssertEqual(off.map(\.scope), [.ownAllocator], id)
      XCTAssertEqual(d.checksNotApplicable(toCaptureOf: "powerpc-hash64k").count, d.checks.count)
    }
    for p in PowerpcPreset.allCases {
      let d = ModelRegistry.model(id: p.modelID)!.descriptor
      XCTAssertFalse(d.simulationOnly)
      XCTAssertTrue(d.canReplay(captureOf: p.modelID))
      XCTAssertEqual(d.checksNotApplicable(toCaptureOf: p.modelID), [])
      XCTAssertTrue(d.kernels.contains("\(p.geometry.nr) ×"), d.kernels)
    }
    // The released-with-active rule names the fix it stands for.
    let rule = PowerpcModel.rules.first { $0.id == "released-with-active" }!
    XCTAssertTrue(rule.summary.contains("fda4d71651f7"))
  }
}
