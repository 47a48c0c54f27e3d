import PTFragEvents
import XCTest

final class AddressMapTests: XCTestCase {
  /// Random inserts, updates, in-place edits and removals agree with Dictionary, through
  /// growth and shrinking, with clustered keys (page addresses) and colliding ones.
  func testBehavesLikeADictionary() {
    var map = AddressMap<Int>()
    var reference: [UInt64: Int] = [:]
    var state: UInt64 = 12345
    func random() -> UInt64 {
      state = state &* 6364136223846793005 &+ 1442695040888963407
      return state >> 33
    }
    for step in 0..<200_000 {
      // Keys: page-aligned addresses from a small range, so that slots collide and runs form.
      let key = (random() % 3000) << 12 | (step % 7 == 0 ? 0x800 : 0)
      switch random() % 6 {
      case 0, 1:
        map[key] = step
        reference[key] = step
      case 2:
        XCTAssertEqual(map.removeValue(forKey: key), reference.removeValue(forKey: key))
      case 3:
        map[key]? += 1
        reference[key]? += 1
      case 4:
        map[key, default: 0] += 2
        reference[key, default: 0] += 2
      default:
        XCTAssertEqual(map[key], reference[key])
      }
      if step % 20_000 == 0 || step > 199_990 {
        XCTAssertEqual(map.count, reference.count)
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: map.map { ($0.key, $0.value) }), reference)
      }
      if step == 150_000 {
        // Empty it: capacity shrinks and the map still works.
        for k in reference.keys { map[k] = nil }
        reference.removeAll()
        XCTAssertTrue(map.isEmpty)
      }
    }
    // Key 0 and the largest key are ordinary keys.
    map[0] = 7
    map[UInt64.max] = 8
    XCTAssertEqual(map[0], 7)
    XCTAssertEqual(map[UInt64.max], 8)
  }
}
