import XCTest

@testable import PTFragReplay

/// The s390 engine copies a page's state in and out of its map on every event. At more than
/// 128 bytes Swift copies it through a call to memmove instead of inline moves, which cost
/// about 40 % of the replay on the real-shaped benchmark input (measured: 136 bytes, 1.6 s
/// for 16 copies of the 6.1 capture; 112 bytes, 0.65 s).
final class S390PageLayoutTests: XCTestCase {
  func testAPageFitsInlineCopies() {
    XCTAssertLessThanOrEqual(MemoryLayout<S390Page>.size, 128)
    XCTAssertLessThanOrEqual(MemoryLayout<QueueMark>.size, 32)
  }

  /// Setting a half's phase replaces every bit of that half and nothing of the other.
  func testPhasesAreTheBitsOfTheRefcountByte() {
    for lo in [HalfPhase.free, .allocated, .pending, .deferred, .unknown] {
      for hi in [HalfPhase.free, .allocated, .pending, .deferred, .unknown] {
        var p = S390Page(lo: lo, hi: hi, owner: 0)
        XCTAssertEqual([p.lo, p.hi], [lo, hi])
        p[0] = .allocated
        XCTAssertEqual([p.lo, p.hi], [.allocated, hi])
        XCTAssertEqual(p.aCount, 1 + (hi == .allocated ? 1 : 0))
        p[0] = .free
        XCTAssertEqual(p.allFree, hi == .free)
      }
    }
    // A(h) 0x01 << h, H(h) 0x04 << h, P(h) 0x10 << h (arch/s390/mm/pgalloc.c, the proposals).
    XCTAssertEqual(S390Page(lo: .allocated, hi: .pending, owner: 0).bits, 0x21)
    XCTAssertEqual(S390Page(lo: .deferred, hi: .free, owner: 0).bits, 0x14)
  }
}
