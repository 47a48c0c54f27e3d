import PTFragEvents
import XCTest

@testable import PTFragRead

/// Every line variant of trace-format.md, parsed byte-exactly.
final class FtraceLineParserTests: XCTestCase {
  func parse(_ s: String, line: Int = 7) -> ParsedLine {
    var s = s
    return s.withUTF8 { FtraceLineParser.parse($0, lineNumber: line) }
  }

  func hit(_ s: String, file: StaticString = #filePath, lineNo: UInt = #line) -> ProbeHit? {
    guard case .hit(let h) = parse(s) else {
      XCTFail("not a hit: \(parse(s))", file: file, line: lineNo)
      return nil
    }
    return h
  }

  func testEntryProbeWithFiveFlagColumns() throws {
    let h = try XCTUnwrap(
      hit(
        "            init-1       [001] .....   192.054846: page_table_alloc: (page_table_alloc+0x0/0x2c8) mm=0x20c0800"
      ))
    XCTAssertEqual(h.comm.description, "init")
    XCTAssertEqual(h.pid, 1)
    XCTAssertEqual(h.cpu, 1)
    XCTAssertEqual(h.timestampNs, 192_054_846_000)
    XCTAssertEqual(h.function, .pageTableAlloc)
    XCTAssertEqual(h.kind, .entry)
    XCTAssertEqual(h.mm, 0x20c0800)
    XCTAssertEqual(h.line, 7)
  }

  func testReturnProbeCarriesCallerAndValue() throws {
    let h = try XCTUnwrap(
      hit(
        "            init-1       [001] .....   192.054934: page_table_alloc_ret: (copy_page_range+0xd32/0x1500 <- page_table_alloc) table=0x37b9000"
      ))
    XCTAssertEqual(h.function, .pageTableAlloc)
    XCTAssertEqual(h.kind, .ret)
    XCTAssertEqual(h.retval, 0x37b9000)
    XCTAssertEqual(h.caller, .other)
    XCTAssertNil(h.mm)
  }

  func testReturnIntoMMInitIsABirth() throws {
    let h = try XCTUnwrap(
      hit(
        "            init-1       [001] .....   192.054042: crst_table_alloc_ret: (mm_init+0x166/0x3a8 <- crst_table_alloc) table=0x3820000"
      ))
    XCTAssertEqual(h.function, .crstTableAlloc)
    XCTAssertEqual(h.caller, .mmInit)
    XCTAssertEqual(h.retval, 0x3820000)
    let up = try XCTUnwrap(
      hit("  a-5 [000] ..... 1.000001: x: (crst_table_upgrade.isra.0+0x66/0x1a8 <- crst_table_alloc) $retval=0x4000"))
    XCTAssertEqual(up.caller, .crstUpgrade)
    XCTAssertEqual(up.retval, 0x4000)
  }

  func testIdleAndKsoftirqdComms() throws {
    let a = try XCTUnwrap(
      hit(
        "          <idle>-0       [000] ..s..   192.084702: __tlb_remove_table: (__tlb_remove_table+0x0/0xe8) table=0x37ba802"
      ))
    XCTAssertEqual(a.comm.description, "<idle>")
    XCTAssertEqual(a.pid, 0)
    XCTAssertEqual(a.function, .tlbRemoveTableExec)
    XCTAssertEqual(a.table, 0x37ba802)
    let b = try XCTUnwrap(
      hit(
        "     ksoftirqd/0-13      [000] ..s..   192.148052: __tlb_remove_table: (__tlb_remove_table+0x0/0xe8) table=0x387f001"
      ))
    XCTAssertEqual(b.comm.description, "ksoftirqd/0")
    XCTAssertEqual(b.pid, 13)
  }

  func testCommWithSpacesAndDashes() throws {
    let h = try XCTUnwrap(
      hit(
        "  my-prog -x 2-1234  [001] d..2.   10.000020: pgt/free_tlb: (page_table_free_rcu+0x0/0x188) tlb=0x37ffffd79f0 table=0x37ba800 vmaddr=0x1000000"
      ))
    XCTAssertEqual(h.comm.description, "my-prog -x 2")
    XCTAssertEqual(h.pid, 1234)
    XCTAssertEqual(h.function, .pageTableFreeRCU)
    XCTAssertEqual(h.tlb, 0x37ffffd79f0)
    XCTAssertEqual(h.table, 0x37ba800)
    XCTAssertEqual(h.vmaddr, 0x1000000)
  }

  func testUnknownCommPlaceholder() throws {
    let h = try XCTUnwrap(
      hit("           <...>-4242    [000] .....  5.5: page_table_free: (page_table_free+0x0/0x1a0) mm=0x1 table=0x2800"))
    XCTAssertEqual(h.comm.description, "<...>")
    XCTAssertEqual(h.pid, 4242)
    XCTAssertEqual(h.timestampNs, 5_500_000_000)
  }

  func testFourFlagColumnsAndNoFlags() throws {
    let four = try XCTUnwrap(
      hit("            bash-99      [003] d.h1  77.000001: e: (page_table_free+0x0/0x1a0) mm=0x10 table=0x3000"))
    XCTAssertEqual(four.cpu, 3)
    XCTAssertEqual(four.timestampNs, 77_000_001_000)
    let none = try XCTUnwrap(
      hit("            bash-99      [003]   77.000002: e: (page_table_free+0x0/0x1a0) mm=0x10 table=0x3000"))
    XCTAssertEqual(none.timestampNs, 77_000_002_000)
    XCTAssertEqual(none.function, .pageTableFree)
  }

  func testTgidColumn() throws {
    let h = try XCTUnwrap(
      hit("            bash-99      (     98) [002] .....  1.000000: e: (page_table_alloc+0x0/0x2c8) mm=0x10"))
    XCTAssertEqual(h.pid, 99)
    XCTAssertEqual(h.cpu, 2)
    let dashes = try XCTUnwrap(
      hit("          <idle>-0       (-------) [000] ..s..  1.000000: e: (__tlb_remove_table+0x0/0xe8) table=0x1001"))
    XCTAssertEqual(dashes.pid, 0)
    XCTAssertEqual(dashes.comm.description, "<idle>")
  }

  func testTraceCmdReportLine() throws {
    XCTAssertTrue({ if case .skip = parse("cpus=2") { return true } else { return false } }())
    let h = try XCTUnwrap(
      hit("            init-1     [001]   192.054846123: page_table_alloc:     (page_table_alloc+0x0/0x2c8) mm=0x20c0800"))
    XCTAssertEqual(h.timestampNs, 192_054_846_123)
    XCTAssertEqual(h.mm, 0x20c0800)
  }

  func testValuesWithoutHexPrefixAndArgNames() throws {
    let h = try XCTUnwrap(
      hit("  t-1 [000] ..... 1.000000: p: (page_table_free+0x0/0x1a0) arg1=20c0800 arg2=37b9800"))
    XCTAssertEqual(h.mm, 0x20c0800)
    XCTAssertEqual(h.table, 0x37b9800)
    let r = try XCTUnwrap(hit("  t-1 [000] ..... 1.000000: r: (f+0x1/0x2 <- page_table_alloc) arg1=0x37b9000"))
    XCTAssertEqual(r.retval, 0x37b9000)
  }

  func testSymbolSuffixesAreIgnored() throws {
    let h = try XCTUnwrap(hit("  t-1 [000] ..... 1.000000: p: (page_table_alloc_noprof+0x0/0x2c8) mm=0x1"))
    XCTAssertEqual(h.function, .pageTableAlloc)
    let i = try XCTUnwrap(hit("  t-1 [000] ..... 1.000000: p: (__tlb_remove_table.isra.0+0x0/0xe8) table=0x1001"))
    XCTAssertEqual(i.function, .tlbRemoveTableExec)
  }

  func testFetchFaultValueIsAbsentNotMalformed() throws {
    let h = try XCTUnwrap(
      hit("  t-1 [000] ..... 1.000000: p: (page_table_free_rcu+0x0/0x188) mm=(fault) table=0x2800 vmaddr=0x0"))
    XCTAssertNil(h.mm)
    XCTAssertEqual(h.table, 0x2800)
  }

  func testCRLFAndTrailingBlanks() throws {
    let h = try XCTUnwrap(hit("  t-1 [000] ..... 1.000000: p: (page_table_alloc+0x0/0x2c8) mm=0x1  \r"))
    XCTAssertEqual(h.mm, 1)
  }

  func testLostMarker() {
    guard case .lost(let m) = parse("CPU:1 [LOST 4821 EVENTS]", line: 9) else {
      return XCTFail("not a lost marker")
    }
    XCTAssertEqual(m.cpu, 1)
    XCTAssertEqual(m.count, 4821)
    XCTAssertEqual(m.line, 9)
  }

  func testCommentsBlanksAndForeignProbes() {
    for s in ["# tracer: nop", "", "   ", "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION"] {
      guard case .skip = parse(s) else { return XCTFail("\(s) not skipped") }
    }
    guard case .foreign = parse("  t-1 [000] ..... 1.000000: sched_switch: (schedule+0x0/0x10) prev=1") else {
      return XCTFail("foreign probe not recognized")
    }
  }

  func testMalformedLinesSayWhy() {
    let cases: [(String, MalformedReason)] = [
      ("garbage without structure", .noCPU),
      ("  t-1 [000] ..... notatime: x: (page_table_alloc+0x0/0x1) mm=1", .noTimestamp),
      ("  t-1 [000] ..... 1.000000: x: page_table_alloc mm=1", .noLocation),
      ("  t-1 [000] ..... 1.000000: (page_table_alloc+0x0/0x1) mm=1", .noEventName),
      ("  t-1 [000] ..... 1.000000: x: (page_table_alloc+0x0/0x1) mm=0x1ffffffffffffffff", .valueOverflow),
      ("CPU:1 [LOST many EVENTS]", .badLostMarker),
      ("\u{01}\u{02}binary\u{7f}", .controlBytes),
      ("[  123.456789] BUG: unable to handle page fault", .noTaskPid),
    ]
    for (s, why) in cases {
      guard case .malformed(let got) = parse(s) else {
        XCTFail("\(s.debugDescription) parsed as \(parse(s))")
        continue
      }
      XCTAssertEqual(got, why, s.debugDescription)
    }
  }

  /// Two records in one line, as a real 6.12 `trace_pipe` capture holds them (two writers of
  /// the output, one cut short): read as one, the line would be an event of neither — here a
  /// `page_table_alloc` return of pid 290 at 384.232332, a table dd-285 got 14 ms later.
  func testTornLinesAreMalformedNotEvents() {
    let torn = [
      // The second record inside the first one's location.
      "              ls-290     [001] .ns..   384.232332: __tlb_remove_table: (              dd-285     [001] .....   384.246879: page_table_alloc_ret: (__pte_alloc+0x2a/0x80 <- page_table_alloc) table=0x2be5000",
      "  ls-290 [001] .ns.. 384.232332: __tlb_remove_table: (__tlb_remove_table+0x0/0x138   dd-285 [001] ..... 384.246879: page_table_alloc: (page_table_alloc+0x0/0x190) mm=0x2a71500",
      // The second record after the first one's location and values.
      "  init-253 [000] ..... 383.701862: page_table_alloc: (page_table_alloc+0x0/0x190) mm=0x2b17700   init-248 [000] ..... 383.706053: crst_table_alloc: (crst_table_alloc+0x0/0xe8) mm=0x2b12a00",
    ]
    for s in torn {
      guard case .malformed(let why) = parse(s) else {
        XCTFail("\(s.debugDescription) parsed as \(parse(s))")
        continue
      }
      XCTAssertEqual(why, .tornLine, s.debugDescription)
    }
    // Locations and values as the kernel prints them still parse.
    XCTAssertNotNil(hit("  dd-285 [001] ..... 384.246879: page_table_alloc_ret: (__pte_alloc+0x2a/0x80 <- page_table_alloc) table=0x2be5000"))
    XCTAssertNotNil(hit("  t-1 [000] ..... 1.000000: x: (page_table_alloc+0x0/0x1) mm=0x1 bare [x] token"))
  }

  func testLongCommIsCutAndMarked() throws {
    let h = try XCTUnwrap(
      hit("  a-very-long-command-name-x-7 [000] ..... 1.000000: x: (page_table_alloc+0x0/0x1) mm=0x1"))
    XCTAssertEqual(h.pid, 7)
    XCTAssertTrue(h.comm.truncated)
    XCTAssertEqual(h.comm.byteArray.count, 16)
  }
}

/// The reader: line numbers, tolerance counting, truncated last lines, overlong lines.
final class TextCaptureReaderTests: XCTestCase {
  func read(_ text: String, splitter: LineSplitter = LineSplitter()) throws -> ([TraceRecord], ReadDiagnostics) {
    var src = MemorySource(text)
    var out: [TraceRecord] = []
    var r = TextCaptureReader()
    r.splitter = splitter
    let d = try r.read(&src) { out.append($0) }
    return (out, d)
  }

  func testMalformedLinesAreCountedAndSampledWithLineNumbers() throws {
    var text = "# tracer: nop\n"
    text += "  t-1 [000] ..... 1.000000: a: (page_table_alloc+0x0/0x1) mm=0x1\n"  // line 2
    text += "oops: something\n"  // 3
    text += "  t-1 [000] ..... 1.000001: a: (page_table_alloc+0x0/0x1 <- x) mm=0x1\n"  // 4 hit? ret w/o func
    text += "junk\n"  // 5
    let (recs, d) = try read(text)
    XCTAssertEqual(d.lines, 5)
    XCTAssertEqual(d.malformedCount, 2)
    XCTAssertEqual(d.samples.map(\.line), [3, 5])
    XCTAssertEqual(recs.count, 1)
    if case .hit(let h) = recs[0] { XCTAssertEqual(h.line, 2) } else { XCTFail() }
  }

  func testUnterminatedLastLineIsCutAndNotReplayed() throws {
    // ftrace ends every line with '\n': a last line without one was cut while being written
    // (`table=0x800` may be `table=0x8000` cut short), so it is not replayed (issue 13).
    let (recs, d) = try read(
      "  t-1 [000] ..... 1.000000: a: (page_table_alloc+0x0/0x1) mm=0x1\n  t-1 [000] ..... 1.000001: a: (page_table_free+0x0/0x1) mm=0x1 table=0x800")
    XCTAssertEqual(recs.count, 1)
    XCTAssertEqual(d.truncatedLastLine, 2)
    XCTAssertEqual(d.cutLine, 2)
    XCTAssertEqual(d.samples.map(\.line), [2])
    XCTAssertEqual(d.damagedProbeLines, 1)
  }

  func testOverlongLineIsMalformedAndSkippedWithoutBuffering() throws {
    let long = String(repeating: "x", count: 5000)
    let text = "  t-1 [000] ..... 1.000000: a: (page_table_alloc+0x0/0x1) mm=0x1\n\(long)\n  t-1 [000] ..... 1.000001: a: (page_table_alloc+0x0/0x1) mm=0x2\n"
    let (recs, d) = try read(text, splitter: LineSplitter(maxLineBytes: 1024, chunkBytes: 2048))
    XCTAssertEqual(recs.count, 2)
    XCTAssertEqual(d.malformedCount, 1)
    XCTAssertEqual(d.samples.first?.line, 2)
    if case .hit(let h) = recs[1] { XCTAssertEqual(h.line, 3); XCTAssertEqual(h.mm, 2) } else { XCTFail() }
  }

  func testLinesSpanningChunkBoundaries() throws {
    // Small chunks force every line across a boundary.
    var text = ""
    for i in 0..<200 { text += "  t-\(i) [000] ..... 1.\(String(format: "%06d", i)): a: (page_table_alloc+0x0/0x1) mm=0x\(String(i, radix: 16))\n" }
    let (recs, d) = try read(text, splitter: LineSplitter(maxLineBytes: 100, chunkBytes: 200))
    XCTAssertEqual(d.malformedCount, 0)
    XCTAssertEqual(recs.count, 200)
    for (i, r) in recs.enumerated() {
      guard case .hit(let h) = r else { return XCTFail() }
      XCTAssertEqual(h.pid, Int32(i))
      XCTAssertEqual(h.mm, UInt64(i))
      XCTAssertEqual(h.line, i + 1)
    }
  }

  func testHeaderEntriesAndEventNamesAreLearned() throws {
    let text = """
      # entries-in-buffer/entries-written: 682/700   #P:2
        t-1 [000] ..... 1.000000: pgt/alloc: (page_table_alloc+0x0/0x1) mm=0x1
        t-1 [000] ..... 1.000001: pgt/alloc_ret: (f+0x1/0x2 <- page_table_alloc) table=0x1000

      """
    let (_, d) = try read(text)
    XCTAssertEqual(d.entriesInBuffer, 682)
    XCTAssertEqual(d.entriesWritten, 700)
    XCTAssertEqual(d.eventNames["pgt/alloc"]?.0, .pageTableAlloc)
    XCTAssertEqual(d.eventNames["pgt/alloc_ret"]?.1, .ret)
  }

  func testRealSamplesParseWithoutMalformedLines() throws {
    for name in ["s390x-6.1-fork-exec", "s390x-6.12-fork-exec"] {
      let path = fixtures + "/samples/\(name).trace"
      var src = try FileSource(path: path)
      var hits = 0
      let d = try TextCaptureReader().read(&src) { if case .hit = $0 { hits += 1 } }
      XCTAssertEqual(d.malformedCount, 0, name)
      XCTAssertEqual(d.foreignLines, 0, name)
      XCTAssertEqual(UInt64(hits), d.entriesInBuffer, name)
    }
  }

  func testKprobeProfileResolvesEventNamesToFunctions() throws {
    let p = try KprobeProfile.parse(
      "  pgt/alloc   95   0\n  pgt/alloc_ret  95  2\n  __tlb_remove_table   128   7\n", path: "p")
    let misses = p.missesByFunction(eventNames: ["pgt/alloc": (.pageTableAlloc, .entry), "pgt/alloc_ret": (.pageTableAlloc, .ret)])
    XCTAssertEqual(misses[.pageTableAlloc], 2)
    XCTAssertEqual(misses[.tlbRemoveTableExec], 7)
    XCTAssertThrowsError(try KprobeProfile.parse("a b\n", path: "p"))
  }

  func testMissingDirectoryAndUnreadableInputs() throws {
    XCTAssertThrowsError(try FileSource(path: "/nonexistent/x.trace")) {
      XCTAssertEqual(($0 as? ReadError)?.exitCode, 66)
    }
    XCTAssertThrowsError(try FileSource(path: "/tmp")) {
      XCTAssertEqual($0 as? ReadError, .isDirectory(path: "/tmp"))
    }
  }
}

let fixtures: String = {
  var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
  parts.removeLast(3)
  return parts.joined(separator: "/") + "/Fixtures"
}()
