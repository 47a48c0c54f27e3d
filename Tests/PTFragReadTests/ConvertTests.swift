import PTFragEvents
import XCTest

@testable import PTFragRead

final class ConvertTests: XCTestCase {
  func testTextToJSONAndBackIsByteIdenticalForKernelCaptures() throws {
    for name in ["s390x-6.1-fork-exec.trace", "s390x-6.12-fork-exec.trace"] {
      let text = try sampleBytes(name)
      for target in [ConvertTarget.json, .jsonArray] {
        let (json, s1) = try convert(text, to: target)
        XCTAssertTrue(s1.lossless)
        XCTAssertEqual(s1.records, text.filter { $0 == 0x0A }.count)
        let (back, s2) = try convert(json, to: .text)
        XCTAssertTrue(s2.lossless, "\(s2.notes)")
        XCTAssertEqual(back, text, "\(name) → \(target) → text")
        // JSON → JSON is canonical: converting again changes nothing.
        let (again, _) = try convert(json, to: target)
        XCTAssertEqual(again, json)
      }
    }
  }

  func testEveryLineKindSurvivesTheRoundTrip() throws {
    // tgid column, no flags column, a LOST marker, a foreign probe, a fetch fault, a
    // malformed line, a blank line, and a last line without a newline.
    let text = """
      # tracer: nop
                 <...>-4021    (   4001) [003] d..1.  5190.123456: page_table_alloc: (page_table_alloc+0x0/0x2c8) mm=0x2d4c8000
          kworker/u4:2-88      (-------) [000]  5190.123500: tlb_remove_table: (tlb_remove_table+0x0/0x288) tlb=0x1 table=0x37ba802
      CPU:3 [LOST 17 EVENTS]
                    sh-4021    [003] .....  5190.200000: do_exit: (do_exit+0x0/0x9d0) code=0x0

      this line is not a trace line
                  init-1       [001] .....   192.054846: page_table_free: (page_table_free+0x0/0x150) mm=(fault) table=0x37b9800
                  init-1       [001] .....   192.054847: page_table_alloc_ret: (copy_page_range+0xd32/0x1500 <- page_table_alloc) table=0x37b90
      """
    let bytes = Array(text.utf8)
    let (json, s) = try convert(bytes, to: .json)
    XCTAssertTrue(s.lossless, "\(s.notes)")
    let jsonText = String(decoding: json, as: UTF8.self)
    XCTAssertTrue(jsonText.contains(#""tgid":4001"#), jsonText)
    XCTAssertTrue(jsonText.contains(#""tgid":null"#))
    XCTAssertTrue(jsonText.contains(#"{"type":"lost","cpu":3,"events":17}"#))
    XCTAssertTrue(jsonText.contains(#""function":"do_exit""#))
    XCTAssertTrue(jsonText.contains(#""mm":"(fault)""#))
    XCTAssertTrue(jsonText.contains(#"{"type":"text","text":"this line is not a trace line"}"#))
    XCTAssertTrue(jsonText.hasSuffix(#""unterminated":true}"# + "\n"))
    // Same records and diagnostics either way.
    let (a, ad) = try readAll(bytes)
    let (b, bd) = try readAll(json)
    XCTAssertEqual(a, b)
    XCTAssertEqual(ad.malformedCount, bd.malformedCount)
    XCTAssertEqual(ad.samples, bd.samples)
    XCTAssertEqual(ad.foreignLines, bd.foreignLines)
    XCTAssertEqual(ad.truncatedLastLine, bd.truncatedLastLine)
    XCTAssertEqual(ad.lines, bd.lines)
    // And back: the kernel's layout comes back byte for byte.
    let (back, s2) = try convert(json, to: .text)
    XCTAssertTrue(s2.lossless, "\(s2.notes)")
    XCTAssertEqual(String(decoding: back, as: UTF8.self), text)
  }

  func testOtherLayoutsComeBackInTheKernelLayoutWithTheSameEvents() throws {
    // trace-cmd report: "cpus=N" header, different spacing.
    let report = """
      cpus=2
                init-1     [001]   192.054846: page_table_alloc:     (page_table_alloc+0x0/0x2c8) mm=20c0800
      """
    let (json, _) = try convert(Array(report.utf8), to: .json)
    let (text, s) = try convert(json, to: .text)
    XCTAssertTrue(s.lossless)
    XCTAssertNotEqual(text, Array(report.utf8))
    XCTAssertEqual(try readAll(text).0, try readAll(Array(report.utf8)).0)
  }

  func testJSONWithoutOptionalFieldsGetsDefaultsThatReadBackTheSame() throws {
    let jsonl = """
      {"ts_ns":192054846000,"cpu":1,"pid":1,"function":"page_table_alloc","values":{"mm":34343936}}
      {"ts":192.05485,"cpu":1,"pid":1,"comm":"init","function":"page_table_alloc","probe":"return","values":{"table":"37b9000"}}
      {"ts":192.06,"cpu":0,"pid":5,"comm":"a b-c","function":"crst_table_alloc","probe":"return","caller":"mm_init+0x166/0x3a8","values":{"table":null}}
      """
    let (text, s) = try convert(Array(jsonl.utf8), to: .text)
    XCTAssertTrue(s.lossless, "\(s.notes)")
    XCTAssertEqual(
      String(decoding: text, as: UTF8.self),
      """
                      -1       [001]   192.054846: page_table_alloc: (page_table_alloc) mm=0x20c0c00
                  init-1       [001]   192.05485: page_table_alloc_ret: (unknown <- page_table_alloc) table=37b9000
                 a b-c-5       [000]   192.06: crst_table_alloc_ret: (mm_init+0x166/0x3a8 <- crst_table_alloc) table=(fault)

      """)
    XCTAssertEqual(try readAll(text).0, try readAll(Array(jsonl.utf8)).0)
  }

  func testRecordsTextCannotHoldAreReportedAndKeepTheirLine() throws {
    let jsonl = """
      {"ts":1,"cpu":0,"pid":1,"comm":"two\\nlines","function":"page_table_alloc","values":{"mm":"0x1"}}
      {"ts":1,"cpu":0,"function":"page_table_alloc"}
      {"ts":2,"cpu":0,"pid":1,"comm":"fine","function":"page_table_alloc","values":{"mm":"0x1"}}
      """
    let (text, s) = try convert(Array(jsonl.utf8), to: .text)
    XCTAssertFalse(s.lossless)
    XCTAssertEqual(s.notes.map(\.number), [1, 2])
    XCTAssertEqual(s.notes[0].reason, "a field holds a line break")
    XCTAssertEqual(s.notes[1].reason, JSONRecordIssue.noPID.text)
    let lines = String(decoding: text, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
    XCTAssertTrue(lines[0].hasPrefix("# ptfrag convert: record 1 cannot be written as text"))
    XCTAssertTrue(lines[1].hasPrefix("# ptfrag convert: record 2 omitted"))
    XCTAssertTrue(lines[2].hasSuffix("page_table_alloc: (page_table_alloc) mm=0x1"))
    // The line that converted keeps its number.
    let (records, _) = try readAll(text)
    XCTAssertEqual(records.count, 1)
    XCTAssertTrue(records[0].hasPrefix("hit line=3 "))
  }

  func testInvalidUTF8IsReplacedAndReported() throws {
    var line = Array("            ab".utf8) + [0xff] + Array("-7       [000] .....     1.000000: page_table_alloc: (page_table_alloc+0x0/0x2c8) mm=0x1\n".utf8)
    let (json, s) = try convert(line, to: .json)
    XCTAssertEqual(s.lossyCount, 1)
    XCTAssertTrue(String(decoding: json, as: UTF8.self).contains("\"comm\":\"ab\u{FFFD}\""))
    line.removeAll()
  }
}
