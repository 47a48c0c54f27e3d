import PTFragEvents

/// What `ptfrag convert` writes.
public enum ConvertTarget: String, Sendable, CaseIterable {
  /// ftrace text, as the kernel prints it.
  case text
  /// JSON Lines in ptfrag's schema.
  case json
  /// One JSON array, one element per line.
  case jsonArray = "json-array"
}

/// Conversion failed on a read or a write.
public enum ConvertError: Error, Sendable {
  case read(ReadError)
  case write(WriteError)
  public var message: String {
    switch self {
    case .read(let e): e.message
    case .write(let e): e.message
    }
  }
  /// 65/66/74 for input problems, 74 for a failed write.
  public var exitCode: Int32 {
    switch self {
    case .read(let e): e.exitCode
    case .write: 74
    }
  }
}

/// What a conversion did besides writing records.
public struct ConvertSummary: Sendable {
  public struct Note: Sendable, Equatable {
    /// 1-based line or record of the input.
    public var number: Int
    public var reason: String
  }
  public var input = DetectedFormat(format: .text, gzip: false)
  /// Records written (including text records and placeholders).
  public var records = 0
  /// Records that could not be converted without changing them (malformed JSON records,
  /// strings that text cannot hold, invalid UTF-8 in JSON output). Counted; the first
  /// `maxNotes` kept.
  public var lossyCount = 0
  public var notes: [Note] = []
  public var maxNotes = 20
  /// The conversion was lossless: every record means the same in the output.
  public var lossless: Bool { lossyCount == 0 }

  mutating func lossy(_ number: Int, _ reason: String) {
    lossyCount += 1
    if notes.count < maxNotes { notes.append(Note(number: number, reason: reason)) }
  }
}

/// Converts captures between ftrace text and ptfrag's JSON (docs/json-input.md).
///
/// - text → JSON: every line becomes one record, so record numbers are the text's line
///   numbers: probe lines (also of functions outside the models) become probe records,
///   `LOST` markers lost records, and every other line (header comments, blank, malformed)
///   a text record holding it verbatim. Lossless: JSON → text gives back the kernel's
///   lines byte for byte (other layouts, such as `trace-cmd report`, come back in the
///   kernel's layout, with the same events).
/// - JSON → text: each record becomes the line the kernel would print. Every probe line is
///   parsed back and compared with the record; a record text cannot hold (a newline in a
///   comm, say), or a malformed record, becomes a `# ptfrag convert: …` comment line in its
///   place (numbering kept) and is reported (`ConvertSummary.lossless` is false).
/// - text → text copies the bytes (decompressing gzip); JSON → JSON rewrites canonically.
public enum CaptureConverter {
  public static func convert(
    _ input: inout CaptureInput, to target: ConvertTarget, into o: ByteSink
  ) throws(ConvertError) -> ConvertSummary {
    var s = ConvertSummary()
    s.input = input.detected
    do {
      switch (input.detected.format, target) {
      case (.text, .text):
        try copy(&input, o, &s)
      case (.text, _):
        try fromText(&input, target, o, &s)
      case (.jsonLines, _), (.jsonArray, _):
        try fromJSON(&input, target, o, &s)
      }
      try o.flush()
    } catch let e as ReadError {
      throw .read(e)
    } catch let e as WriteError {
      throw .write(e)
    } catch {
      throw .read(.io(path: input.name, reason: "\(error)"))
    }
    return s
  }

  static func copy(_ input: inout CaptureInput, _ o: ByteSink, _ s: inout ConvertSummary) throws {
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { chunk.deallocate() }
    while true {
      let n = try input.read(into: chunk)
      if n == 0 { break }
      try o.bytes(ByteView(start: chunk.baseAddress!.assumingMemoryBound(to: UInt8.self), count: n))
    }
  }

  /// Separator handling for JSON Lines / array output.
  struct JSONFraming {
    let array: Bool
    var first = true
    mutating func begin(_ o: ByteSink) throws(WriteError) {
      if array { try o.literal("[\n") }
    }
    mutating func next(_ o: ByteSink) throws(WriteError) {
      if array && !first { try o.literal(",\n") }
      first = false
    }
    mutating func end(_ o: ByteSink) throws(WriteError) {
      if !array { return }
      try o.literal(first ? "]\n" : "\n]\n")
    }
    func afterRecord(_ o: ByteSink) throws(WriteError) {
      if !array { try o.byte(0x0A) }
    }
  }

  // MARK: text → JSON

  static func fromText(
    _ input: inout CaptureInput, _ target: ConvertTarget, _ o: ByteSink,
    _ s: inout ConvertSummary
  ) throws {
    var framing = JSONFraming(array: target == .jsonArray)
    try framing.begin(o)
    var r = CaptureRecordFields()
    var unterminated = -1
    var failure: WriteError? = nil
    func emit(_ r: CaptureRecordFields, _ s: inout ConvertSummary) {
      guard failure == nil else { return }
      do throws(WriteError) {
        try framing.next(o)
        if try !JSONRecordWriter.record(o, r) {
          s.lossy(r.number, "invalid UTF-8 replaced by U+FFFD")
        }
        try framing.afterRecord(o)
        s.records += 1
      } catch {
        failure = error
      }
    }
    let splitter = LineSplitter()
    try splitter.forEachLine(
      in: &input,
      overlong: { line, n in
        var t = CaptureRecordFields()
        t.kind = .text
        t.number = line
        t.omitted = n
        emit(t, &s)
      },
      unterminatedLast: { line in unterminated = line }
    ) { (buf, lineNo) throws(ReadError) in
      fields(of: buf, lineNo, into: &r, &s)
      r.unterminated = lineNo == unterminated
      emit(r, &s)
    }
    if let failure { throw failure }
    try framing.end(o)
  }

  /// The record a text line converts to.
  static func fields(
    of buf: ByteView, _ lineNo: Int, into r: inout CaptureRecordFields, _ s: inout ConvertSummary
  ) {
    r.values.removeAll(keepingCapacity: true)
    r.number = lineNo
    r.omitted = nil
    var f = LineFields()
    switch FtraceLineParser.parse(buf, lineNumber: lineNo, fields: &f) {
    case .lost(let m):
      r.kind = .lost
      r.lostCPU = m.cpu
      r.lostEvents = m.count
    case .hit, .foreign:
      r.kind = .probe
      r.comm = buf[view: f.comm]
      r.pid = Int32(truncatingIfNeeded: decimal(buf[view: f.pid]))
      r.cpu = Int32(truncatingIfNeeded: decimal(buf[view: f.cpu]))
      if let t = f.tgid {
        let v = buf[view: t]
        let digits = v.filter { $0 != 0x20 }
        r.tgid =
          !digits.isEmpty && digits.allSatisfy({ $0 &- 48 < 10 })
          ? .value(Int32(truncatingIfNeeded: decimal(v))) : .unknown
      } else {
        r.tgid = .absent
      }
      r.flags = f.flags.map { buf[view: $0] }
      let ts = buf[view: f.timestamp]
      let t = JSONNumber.secondsToNs(ts) ?? (0, 6)
      r.timestampNs = t.ns
      r.timestampDigits = t.fraction
      r.event = buf[view: f.eventName]
      r.function = buf[view: f.function]
      if let c = f.caller {
        r.probe = .ret
        r.caller = buf[view: c]
        r.site = nil
      } else {
        r.probe = .entry
        r.caller = nil
        r.site = buf[view: f.location]
      }
      // name=value tokens, as the parser reads them.
      let v = buf[view: f.values]
      var k = 0
      while k < v.count {
        while k < v.count && (v[k] == 0x20 || v[k] == 0x09) { k += 1 }
        if k >= v.count { break }
        let start = k
        var eq = -1
        while k < v.count && v[k] != 0x20 && v[k] != 0x09 {
          if eq < 0 && v[k] == UInt8(ascii: "=") { eq = k }
          k += 1
        }
        if eq <= start {
          s.lossy(lineNo, "a token without name=value was left out")
          continue
        }
        r.values.append((v[view: start..<eq], .text(v[view: (eq + 1)..<k])))
      }
    case .skip, .malformed:
      r.kind = .text
      r.text = buf
    }
  }

  static func decimal(_ b: ByteView) -> UInt64 {
    var v: UInt64 = 0
    for c in b where c &- 48 < 10 { v = v &* 10 &+ UInt64(c &- 48) }
    return v
  }

  // MARK: JSON → text / JSON

  static func fromJSON(
    _ input: inout CaptureInput, _ target: ConvertTarget, _ o: ByteSink,
    _ s: inout ConvertSummary
  ) throws {
    var framing = JSONFraming(array: target == .jsonArray)
    if target != .text { try framing.begin(o) }
    var r = CaptureRecordFields()
    let scratch = ByteSink(memoryNamed: "<line>", bufferBytes: 4 << 20)
    var lastNumber = 0
    var sum = s
    var writeFailure: WriteError? = nil
    let isLines = input.detected.format == .jsonLines
    let d: ReadDiagnostics
    do {
    d = try JSONCaptureReader().forEachRecord(&input) {
      (rec, number, d) throws(ReadError) in
      do throws(WriteError) {
        if target == .text {
          // Keep the numbering: a JSON Lines record's number is its line, so lines without
          // a record (blank, a skipped malformed line, the rest of a multi-line object)
          // become blank lines.
          while lastNumber + 1 < number && isLines {
            lastNumber += 1
            try o.byte(0x0A)  // a blank line (or a JSON line the reader skipped)
          }
        }
        lastNumber = number
        if let why = fields(of: rec, number, into: &r) {
          sum.lossy(number, why)
          if target == .text {
            try o.literal("# ptfrag convert: record ")
            try o.decimal(UInt64(number))
            try o.literal(" omitted: ")
            try o.string(why)
            try o.byte(0x0A)
          }
          sum.records += 1
          return
        }
        if target == .text {
          try TextLineWriter.record(scratch, r)
          let problem = scratch.takeBuffered { line in verify(line, r, rec, number) }
          if let problem {
            sum.lossy(number, problem)
            try o.literal("# ptfrag convert: record ")
            try o.decimal(UInt64(number))
            try o.literal(" cannot be written as text without changing it: ")
            try o.string(problem)
          } else {
            try TextLineWriter.record(o, r)
          }
          if !r.unterminated { try o.byte(0x0A) }
        } else {
          try framing.next(o)
          if try !JSONRecordWriter.record(o, r) {
            sum.lossy(number, "invalid UTF-8 replaced by U+FFFD")
          }
          try framing.afterRecord(o)
        }
        sum.records += 1
      } catch {
        writeFailure = error
        throw .io(path: o.name, reason: error.reason)  // stops the read
      }
    }
    } catch {
      if let writeFailure { throw writeFailure }
      throw error
    }
    for sample in d.samples { sum.lossy(sample.line, "malformed JSON: " + sample.reason) }
    sum.lossyCount += max(0, d.malformedCount - d.samples.count)
    if target != .text { try framing.end(o) }
    s = sum
  }

  /// Fills `r` from a JSON record; returns why it cannot be converted (malformed).
  static func fields(of rec: JSONRecord, _ number: Int, into r: inout CaptureRecordFields)
    -> String?
  {
    r.values.removeAll(keepingCapacity: true)
    r.number = number
    r.omitted = nil
    r.unterminated = rec[.unterminated].kind == .bool && rec[.unterminated].flag
    switch JSONCaptureReader.recordKind(rec) {
    case nil:
      return JSONRecordIssue.unknownType.text
    case .text?:
      r.kind = .text
      if rec[.omitted].kind != .absent {
        guard case .ok(let n)? = JSONCaptureReader.integer(rec[.omitted]) else {
          return JSONRecordIssue.badOmitted.text
        }
        r.omitted = Int(clamping: n)
        r.text = .none
        return nil
      }
      guard rec[.text].kind == .string else { return JSONRecordIssue.noText.text }
      r.text = rec[.text].bytes
    case .lost?:
      guard case .ok(let cpu)? = JSONCaptureReader.integer(rec[.cpu]), cpu <= UInt64(Int32.max),
        case .ok(let n)? = JSONCaptureReader.integer(rec[.events])
      else { return JSONRecordIssue.badLostCount.text }
      r.kind = .lost
      r.lostCPU = Int32(cpu)
      r.lostEvents = n
    case .probe?:
      var hitNs: UInt64 = 0
      switch JSONCaptureReader.probeHit(rec, number) {
      case .issue(let why): return why.text
      case .hit(let h, _): hitNs = h.timestampNs
      case .foreign:
        // Outside the models: the same checks passed; take the timestamp here.
        let ts = rec[.ts]
        if ts.kind != .absent, let v = JSONNumber.secondsToNs(ts.bytes) {
          hitNs = v.ns
        } else if case .ok(let v)? = JSONCaptureReader.integer(rec[.tsNs]) {
          hitNs = v
        }
      }
      r.kind = .probe
      r.timestampNs = hitNs
      if rec[.ts].kind != .absent {
        r.timestampDigits = JSONNumber.secondsToNs(rec[.ts].bytes)?.fraction ?? 6
      } else {
        r.timestampDigits = hitNs % 1000 == 0 ? 6 : 9
      }
      if case .ok(let cpu)? = JSONCaptureReader.integer(rec[.cpu]) { r.cpu = Int32(cpu) }
      if case .ok(let pid)? = JSONCaptureReader.integer(rec[.pid]) { r.pid = Int32(pid) }
      switch rec[.tgid].kind {
      case .null: r.tgid = .unknown
      case .number:
        if case .ok(let t) = JSONNumber.unsigned(rec[.tgid].bytes) { r.tgid = .value(Int32(t)) }
      default: r.tgid = .absent
      }
      r.comm = rec[.comm].kind == .string ? rec[.comm].bytes : .none
      r.flags = rec[.flags].kind == .string ? rec[.flags].bytes : nil
      r.event = rec[.event].kind == .string ? rec[.event].bytes : .none
      r.function = rec[.function].bytes
      let isReturn = rec[.probe].kind == .string && rec[.probe].bytes.elementsEqual("return".utf8)
      r.probe = isReturn ? .ret : .entry
      r.caller = rec[.caller].kind == .string ? rec[.caller].bytes : nil
      r.site = rec[.site].kind == .string ? rec[.site].bytes : nil
      for e in rec.values {
        switch e.value.kind {
        case .string: r.values.append((e.name, .text(e.value.bytes)))
        case .number:
          guard case .ok(let x) = JSONNumber.unsigned(e.value.bytes) else {
            return JSONRecordIssue.badValue.text
          }
          r.values.append((e.name, .number(e.value.bytes, x)))
        default: r.values.append((e.name, .null))
        }
      }
    }
    return nil
  }

  /// Checks that a written text line reads back as the record it came from; returns the
  /// difference, if any.
  static func verify(_ line: ByteView, _ r: CaptureRecordFields, _ rec: JSONRecord, _ number: Int)
    -> String?
  {
    for c in line where c == 0x0A || c == 0x0D {
      return "a field holds a line break"
    }
    var f = LineFields()
    let parsed = FtraceLineParser.parse(line, lineNumber: number, fields: &f)
    switch r.kind {
    case .text:
      if r.omitted != nil { return "an overlong line cannot be reproduced" }
      return nil
    case .lost:
      if case .lost = parsed { return nil }
      return "the LOST marker does not read back"
    case .probe:
      guard case .hit(let got) = parsed else {
        if case .foreign = parsed, !line[view: f.function].elementsEqual(r.function) {
          return "the function does not read back"
        }
        if case .foreign = parsed { return nil }
        return "the line does not read back as a probe line"
      }
      guard case .hit(let want, _) = JSONCaptureReader.probeHit(rec, number) else {
        return "the function does not read back"
      }
      if got.comm != want.comm { return "the comm does not read back" }
      if got.pid != want.pid || got.cpu != want.cpu { return "the pid or cpu does not read back" }
      if got.timestampNs != want.timestampNs { return "the timestamp does not read back" }
      if got.function != want.function || got.kind != want.kind || got.caller != want.caller {
        return "the probe location does not read back"
      }
      if got.mm != want.mm || got.table != want.table || got.tlb != want.tlb
        || got.vmaddr != want.vmaddr || got.retval != want.retval
      {
        return "a value does not read back"
      }
      if r.event.count > 0 && !line[view: f.eventName].elementsEqual(r.event) {
        return "the event name does not read back"
      }
      return nil
    }
  }
}
