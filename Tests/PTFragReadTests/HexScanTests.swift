import XCTest

@testable import PTFragRead

/// The word-at-a-time hex reader gives what the byte-at-a-time one gives, for every token
/// length, digit case, prefix, stray byte and position in the line.
final class HexScanTests: XCTestCase {
  func testWordAtATimeHexEqualsTheScalarReading() {
    var state: UInt64 = 99
    func random(_ n: Int) -> Int {
      state = state &* 6364136223846793005 &+ 1442695040888963407
      return Int((state >> 33) % UInt64(n))
    }
    let digits = Array("0123456789abcdefABCDEF".utf8)
    let junk = Array("gxX(-)=:.z\u{7f}".utf8) + [0x80, 0xff, 0x00]
    func describe(_ r: FtraceLineParser.HexResult) -> String {
      switch r {
      case .ok(let x): "ok \(x)"
      case .bad: "bad"
      case .overflow: "overflow"
      }
    }
    for _ in 0..<300_000 {
      var line: [UInt8] = (0..<random(20)).map { _ in UInt8(65 + random(26)) }
      line += Array("v=".utf8)
      let start = line.count
      if random(3) == 0 { line += Array(random(2) == 0 ? "0x".utf8 : "0X".utf8) }
      for _ in 0..<random(3) where random(2) == 0 { line.append(UInt8(ascii: "0")) }
      for _ in 0..<random(20) {
        line.append(random(40) == 0 ? junk[random(junk.count)] : digits[random(digits.count)])
      }
      if random(2) == 0 { line += Array(" w=1".utf8) }
      line.withUnsafeBufferPointer { b in
        let p = b.baseAddress!
        var v = start
        let fast = FtraceLineParser.scanHex(p, &v, b.count)
        let end = FtraceLineParser.blank(p, start, b.count)
        XCTAssertEqual(v, end)
        XCTAssertEqual(
          describe(fast), describe(FtraceLineParser.parseHex(p, start, end)),
          String(decoding: line, as: UTF8.self))
      }
    }
  }
}

extension HexScanTests {
  func testBranchFreeHexEqualsTheScalarReading() {
    var state: UInt64 = 7
    func random(_ n: Int) -> Int {
      state = state &* 6364136223846793005 &+ 1442695040888963407
      return Int((state >> 33) % UInt64(n))
    }
    let alphabet = Array("0123456789abcdefABCDEFxXg(-) ".utf8) + [0x80, 0x00]
    for _ in 0..<200_000 {
      var token: [UInt8] = random(3) == 0 ? Array("0x".utf8) : []
      for _ in 0..<random(22) { token.append(alphabet[random(alphabet.count)]) }
      token.withUnsafeBufferPointer { b in
        guard let p = b.baseAddress else { return }
        let a = FtraceLineParser.parseHexBranchFree(p, 0, b.count)
        let c = FtraceLineParser.parseHex(p, 0, b.count)
        XCTAssertEqual("\(a)", "\(c)", String(decoding: token, as: UTF8.self))
      }
    }
  }
}
