import XCTest

@testable import PTFragReport

/// A multi-input report renders each input's part on its own thread: the parts must come out
/// in input order, exactly as a serial map, whatever the scheduling.
final class ConcurrentRenderTests: XCTestCase {
  func testConcurrentMapKeepsTheOrderOfASerialMap() {
    let xs = Array(0..<997)
    // Uneven work, so later elements often finish first.
    let work = { (i: Int) -> String in
      var h: UInt64 = 1469598103934665603
      for k in 0..<((997 - i) * 40) { h = (h ^ UInt64(k)) &* 1099511628211 }
      return "\(i):\(h & 0xff)"
    }
    for _ in 0..<5 { XCTAssertEqual(concurrentMap(xs, work), xs.map(work)) }
    XCTAssertEqual(concurrentMap([Int](), work), [])
    XCTAssertEqual(concurrentMap([7], work), [work(7)])
  }

  /// The JSON report puts each input's part, serialized on its own thread at depth 2, into
  /// the document as `.raw`: the bytes must be those of the part serialized in place.
  func testARawPartSerializesAsTheValueInPlace() {
    let part: JSON = .object([
      ("path", .string("a \"quoted\" path")), ("n", .int(3)), ("none", .null),
      ("list", .array([.int(1), .object([("k", .array([]))]), .object([])])),
      ("nested", .object([("x", .double(1.5)), ("y", .array([.string("é\n")]))])),
    ])
    let inPlace: JSON = .object([("schemaVersion", .int(1)), ("inputs", .array([part, part]))])
    let raw: JSON = .object([
      ("schemaVersion", .int(1)),
      ("inputs", .array([.raw(part.serialized(indent: 2)), .raw(part.serialized(indent: 2))])),
    ])
    XCTAssertEqual(raw.serialized(), inPlace.serialized())
  }
}
