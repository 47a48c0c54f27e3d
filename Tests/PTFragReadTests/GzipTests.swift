import CZlib
import Foundation
import PTFragEvents
import XCTest

@testable import PTFragRead

/// gzip-compresses `bytes` with zlib (one member).
func gzip(_ bytes: [UInt8], level: Int32 = 6) -> [UInt8] {
  var strm = z_stream()
  precondition(ptfrag_deflateInit2(&strm, level, 15 + 16) == Z_OK)
  defer { deflateEnd(&strm) }
  var out = [UInt8](repeating: 0, count: Int(deflateBound(&strm, uLong(bytes.count))) + 64)
  var input = bytes
  let produced = input.withUnsafeMutableBufferPointer { inp in
    out.withUnsafeMutableBufferPointer { o in
      strm.next_in = inp.baseAddress
      strm.avail_in = uInt(inp.count)
      strm.next_out = o.baseAddress
      strm.avail_out = uInt(o.count)
      precondition(deflate(&strm, Z_FINISH) == Z_STREAM_END)
      return o.count - Int(strm.avail_out)
    }
  }
  return Array(out.prefix(produced))
}

final class GzipTests: XCTestCase {
  func testGzipAndPlainGiveTheSameRecords() throws {
    let text = try sampleBytes("s390x-6.1-fork-exec.trace")
    let (plain, pd) = try readAll(text)
    for level in [1, 9] as [Int32] {
      let (unzipped, gd) = try readAll(gzip(text, level: level))
      XCTAssertEqual(gd.format, DetectedFormat(format: .text, gzip: true))
      XCTAssertEqual(gd.format.name, "ftrace-text+gzip")
      XCTAssertEqual(unzipped, plain)
      XCTAssertEqual(gd.lines, pd.lines)
      XCTAssertEqual(gd.bytes, pd.bytes, "bytes are counted after decompression")
    }
    // JSON inside gzip is detected after decompression.
    let (json, _) = try convert(text, to: .json)
    let (fromJSONgz, jd) = try readAll(gzip(json))
    XCTAssertEqual(jd.format.name, "json-lines+gzip")
    XCTAssertEqual(fromJSONgz, plain)
  }

  func testConcatenatedMembersReadAsOneStream() throws {
    let text = try sampleBytes("s390x-6.1-fork-exec.trace")
    let cut = text.count / 3
    // Cut on a line boundary so each member holds whole lines.
    let nl = text[cut...].firstIndex(of: 0x0A)! + 1
    let twoMembers = gzip(Array(text[..<nl])) + gzip(Array(text[nl...]))
    let (a, _) = try readAll(twoMembers)
    let (b, _) = try readAll(text)
    XCTAssertEqual(a, b)
    // Zero padding after the last member is ignored (tape and block-device archives).
    let (c, _) = try readAll(twoMembers + [UInt8](repeating: 0, count: 700))
    XCTAssertEqual(c, b)
  }

  func testTruncatedGzipFailsWithTheOffsetWhereItEnds() throws {
    let gz = gzip(try sampleBytes("s390x-6.1-fork-exec.trace"))
    for keep in [gz.count / 2, gz.count - 4, 12] {
      let cut = Array(gz.prefix(keep))
      XCTAssertThrowsError(try readAll(cut, name: "cut.gz")) { e in
        guard case .corrupt(let path, let offset, let reason) = e as? ReadError else {
          return XCTFail("\(e)")
        }
        XCTAssertEqual(path, "cut.gz")
        XCTAssertEqual(offset, UInt64(keep))
        XCTAssertTrue(reason.contains("truncated"), reason)
        XCTAssertEqual((e as? ReadError)?.exitCode, 65)
      }
    }
  }

  func testCorruptDataAndTrailingGarbageAreErrors() throws {
    let text = try sampleBytes("s390x-6.1-fork-exec.trace")
    var gz = gzip(text)
    // A flipped byte in the CRC trailer.
    gz[gz.count - 6] ^= 0xff
    XCTAssertThrowsError(try readAll(gz)) { e in
      guard case .corrupt(_, _, let reason) = e as? ReadError else { return XCTFail("\(e)") }
      XCTAssertTrue(reason.contains("corrupt"), reason)
    }
    // Bytes after the member that are not another member.
    XCTAssertThrowsError(try readAll(gzip(text) + Array("trailing text\n".utf8))) { e in
      guard case .corrupt(_, let offset, let reason) = e as? ReadError else {
        return XCTFail("\(e)")
      }
      XCTAssertEqual(offset, UInt64(gzip(text).count))
      XCTAssertTrue(reason.contains("not another gzip member"), reason)
    }
  }

  func testDetectionWorksOnAPipeThatHandsOutOneByteAtATime() throws {
    let text = try sampleBytes("s390x-6.12-fork-exec.trace")
    let (expected, _) = try readAll(text)
    for bytes in [text, gzip(text)] {
      var input = try CaptureInput(sniffing: TrickleSource(base: MemorySource(bytes), step: 1))
      var got: [String] = []
      _ = try CaptureReader.read(&input) { got.append(describe($0)) }
      XCTAssertEqual(got, expected)
    }
  }

  func testStandardInputStyleStreamThroughARealPipe() throws {
    let text = try sampleBytes("s390x-6.1-fork-exec.trace")
    let gz = gzip(text)
    var fds: [Int32] = [0, 0]
    XCTAssertEqual(pipe(&fds), 0)
    let (readEnd, writeEnd) = (fds[0], fds[1])
    let writer = Thread {
      gz.withUnsafeBytes { b in
        var off = 0
        while off < b.count {
          let n = write(writeEnd, b.baseAddress! + off, min(1000, b.count - off))
          if n <= 0 { break }
          off += n
        }
      }
      close(writeEnd)
    }
    writer.start()
    var input = try CaptureInput.open(path: "/dev/fd/\(readEnd)")
    var got: [String] = []
    _ = try CaptureReader.read(&input) { got.append(describe($0)) }
    close(readEnd)
    XCTAssertTrue(input.detected.gzip)
    XCTAssertEqual(got, try readAll(text).0)
  }

  func testFormatDetection() throws {
    func detect(_ s: String) throws -> DetectedFormat {
      try CaptureInput(sniffing: MemorySource(Array(s.utf8))).detected
    }
    XCTAssertEqual(try detect("").format, .text)
    XCTAssertEqual(try detect("# tracer: nop\n").format, .text)
    XCTAssertEqual(try detect(" \n\t\r\n{\"ts\":1}").format, .jsonLines)
    XCTAssertEqual(try detect("\u{FEFF}[\n]").format, .jsonArray)
    XCTAssertEqual(try detect("CPU:1 [LOST 3 EVENTS]").format, .text)
    XCTAssertEqual(try CaptureInput(sniffing: MemorySource(gzip(Array("[]".utf8)))).detected.name, "json-array+gzip")
  }
}
