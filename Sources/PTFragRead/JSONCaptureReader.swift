import PTFragEvents

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Why a well-formed JSON record is not a usable record (stable texts: they appear in
/// reports).
public enum JSONRecordIssue: UInt8, Sendable {
  case unknownType, noTimestamp, badTimestamp, noCPU, badCPU, noPID, badPID, badTgid
  case badString, noFunction, badProbe, valuesNotObject, badValue, valueOverflow
  case badLostCount, noText, badOmitted, incomplete, notOneLine, trailingData, overlong

  public var text: String {
    switch self {
    case .unknownType: "\"type\" is not \"probe\", \"lost\" or \"text\""
    case .noTimestamp: "no \"ts\" (seconds) or \"ts_ns\" (nanoseconds)"
    case .badTimestamp: "\"ts\"/\"ts_ns\" is not a non-negative number that fits 64-bit nanoseconds"
    case .noCPU: "no \"cpu\""
    case .badCPU: "\"cpu\" is not a non-negative integer"
    case .noPID: "no \"pid\""
    case .badPID: "\"pid\" is not a non-negative integer"
    case .badTgid: "\"tgid\" is not a non-negative integer or null"
    case .badString: "\"comm\", \"flags\", \"event\", \"caller\" and \"site\" must be strings"
    case .noFunction: "no \"function\" (the probed kernel function)"
    case .badProbe: "\"probe\" is not \"entry\" or \"return\""
    case .valuesNotObject: "\"values\" is not an object"
    case .badValue: "a value is neither a non-negative integer nor a hexadecimal string"
    case .valueOverflow: "a value overflows 64 bits"
    case .badLostCount: "a \"lost\" record needs \"cpu\" and \"events\" as non-negative integers"
    case .noText: "a \"text\" record needs \"text\" as a string"
    case .badOmitted: "\"omitted\" is not a non-negative integer"
    case .incomplete: "the record is cut off (the input ends inside it)"
    case .notOneLine: "a JSON Lines record does not start with '{'"
    case .trailingData: "data after the record's closing '}' on its line"
    case .overlong: "record longer than the 1 MiB limit"
    }
  }
}

/// Reads a capture in ptfrag's JSON schema (docs/json-input.md): JSON Lines (or any
/// sequence of concatenated objects, e.g. `jq` output) or one JSON array of objects.
///
/// Record numbers (`ProbeHit.line`, `LostMarker.line`, diagnostics):
/// - JSON Lines / object sequence: the 1-based line on which the record's object starts;
/// - JSON array: the 1-based index of the element in the array.
/// A text capture converted with `ptfrag convert` keeps its line numbers either way.
///
/// Errors: a record that is valid JSON but not a valid record, and (in JSON Lines) a line
/// that is not valid JSON, are counted as malformed with their record number, like
/// malformed text lines. In an array, a JSON syntax error leaves no way to find the next
/// element: it ends the read with `ReadError.malformed` (exit 65) at the line of the error.
/// An input cut inside its last record is counted (and noted as `truncatedLastLine`).
public struct JSONCaptureReader {
  enum ScanMode { case start, lines, arrayFirst, arrayNext, arrayDone }

  /// Largest record, in bytes.
  public var maxRecordBytes = 1 << 20
  public init() {}

  /// Reads everything; `body` gets every record, in order.
  public func read<S: ByteSource>(
    _ source: inout S, _ body: (TraceRecord) throws(ReadError) -> Void
  ) throws(ReadError) -> ReadDiagnostics {
    var tally = HitTally()
    var scratch = TextCaptureReader.LineScratch()
    return try forEachRecord(&source) { (rec, number, d) throws(ReadError) in
      try Self.decode(rec, number, &d, &tally, &scratch, body)
    }
  }

  /// The scanning loop: calls `body(record, recordNumber, &diagnostics)` for every record
  /// that is well-formed JSON (its views are valid only during the call). Malformed JSON is
  /// counted here; `body` judges the content.
  public func forEachRecord<S: ByteSource>(
    _ source: inout S,
    _ body: (JSONRecord, Int, inout ReadDiagnostics) throws(ReadError) -> Void
  ) throws(ReadError) -> ReadDiagnostics {
    var d = ReadDiagnostics()
    let cap = maxRecordBytes * 2
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: cap, alignment: 16)
    defer { buf.deallocate() }
    let p = buf.baseAddress!.assumingMemoryBound(to: UInt8.self)
    let rec = JSONRecord(maxRecordBytes: cap)
    var filled = 0
    var pos = 0
    var eof = false
    var line = 1  // physical line of p[pos]
    var total: UInt64 = 0
    var mode = ScanMode.start
    var elements = 0
    var lastByte: UInt8 = 0x0A  // the input's last byte so far (empty input: no lines)

    /// Reads more input, keeping p[pos..<filled]. Returns false at end of input.
    func refill() throws(ReadError) -> Bool {
      if eof { return false }
      if pos > 0 {
        if filled > pos { memmove(p, p + pos, filled - pos) }
        filled -= pos
        pos = 0
      }
      if filled == cap { return true }  // caller handles a full buffer
      let n = try source.read(into: UnsafeMutableRawBufferPointer(start: p + filled, count: cap - filled))
      if n == 0 {
        eof = true
        return false
      }
      filled += n
      total += UInt64(n)
      lastByte = p[filled - 1]
      return true
    }

    /// Skips blanks (counting lines); false when the input is exhausted.
    func skipBlanks() throws(ReadError) -> Bool {
      while true {
        while pos < filled {
          let c = p[pos]
          if c == 0x0A {
            line += 1
          } else if c != 0x20 && c != 0x09 && c != 0x0D {
            return true
          }
          pos += 1
        }
        if try !refill() { return false }
      }
    }

    /// Skips to just past the next newline (JSON Lines resynchronisation).
    func skipLine() throws(ReadError) {
      while true {
        if let nl = memchr(p + pos, 0x0A, filled - pos) {
          pos = p.distance(to: nl.assumingMemoryBound(to: UInt8.self)) + 1
          line += 1
          return
        }
        pos = filled
        if try !refill() { return }
      }
    }

    /// In JSON Lines mode, after an error: skip lines until one starts with '{'.
    func resync() throws(ReadError) {
      try skipLine()
      while try skipBlanks() {
        if p[pos] == UInt8(ascii: "{") { return }
        try skipLine()
      }
    }

    func fatal(_ what: String) -> ReadError {
      .malformed(path: source.name, line: line, reason: what)
    }

    /// Counts newlines in p[from..<to] (to move `line` past a scanned record).
    func lines(_ from: Int, _ to: Int) -> Int {
      var n = 0
      var k = from
      while k < to, let nl = memchr(p + k, 0x0A, to - k) {
        n += 1
        k = p.distance(to: nl.assumingMemoryBound(to: UInt8.self)) + 1
      }
      return n
    }

    // Skip a UTF-8 byte-order mark.
    _ = try refill()
    if filled >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF { pos = 3 }

    loop: while true {
      guard try skipBlanks() else { break }
      let c = p[pos]
      switch mode {
      case .start:
        if c == UInt8(ascii: "[") {
          mode = .arrayFirst
          pos += 1
          continue loop
        }
        mode = .lines
        continue loop
      case .arrayFirst, .arrayNext:
        if c == UInt8(ascii: "]") {
          pos += 1
          mode = .arrayDone
          continue loop
        }
        if mode == .arrayNext {
          guard c == UInt8(ascii: ",") else { throw fatal(JSONSyntax.expectedCommaOrEnd.text) }
          pos += 1
          guard try skipBlanks() else { break loop }
          if p[pos] == UInt8(ascii: "]") {
            // A trailing comma (accepted, as Foundation does).
            pos += 1
            mode = .arrayDone
            continue loop
          }
        }
      case .arrayDone:
        throw fatal("data after the end of the JSON array")
      case .lines:
        if c != UInt8(ascii: "{") {
          d.malformed(line, JSONRecordIssue.notOneLine.text)
          try skipLine()
          continue loop
        }
      }
      // Scan one object at p[pos].
      let startLine = line
      var scanner: JSONScanner
      while true {
        scanner = JSONScanner(p, from: pos, end: filled, into: rec)
        do {
          try scanner.record()
          break
        } catch {
          switch error {
          case .incomplete:
            if filled - pos >= maxRecordBytes * 2 - 1 || (pos == 0 && filled == cap) {
              if mode == .lines {
                d.malformed(startLine, JSONRecordIssue.overlong.text)
                try skipLine()
                continue loop
              }
              throw fatal(JSONRecordIssue.overlong.text)
            }
            if try refill() { continue }
            // The input ends inside the record: a capture cut while being written.
            let number = mode == .lines ? startLine : elements + 1
            d.malformed(number, JSONRecordIssue.incomplete.text)
            d.cutLine = number
            if mode == .lines {
              // The record may run over several lines (an unclosed brace): count them, and
              // call the last line cut only when it has no newline.
              line = startLine + lines(pos, filled)
              if lastByte != 0x0A { d.truncatedLastLine = line }
            } else {
              d.truncatedLastLine = number
            }
            pos = filled
            break loop
          case .syntax(let why, let at):
            let errLine = startLine + lines(pos, at)
            if mode == .lines {
              d.malformed(startLine, why.text + (errLine != startLine ? " (line \(errLine))" : ""))
              line = errLine
              pos = at
              // The rest of this line goes; a multi-line object's other lines too.
              if errLine == startLine { try skipLine() } else { try resync() }
              continue loop
            }
            line = errLine
            throw fatal(why.text + " (array element \(elements + 1))")
          }
        }
      }
      line = startLine + scanner.newlines
      pos = scanner.i
      let number: Int
      if mode == .lines {
        number = startLine
        // Only blanks may follow on the record's line.
        var k = pos
        while k < filled && (p[k] == 0x20 || p[k] == 0x09 || p[k] == 0x0D) { k += 1 }
        if k < filled && p[k] != 0x0A {
          d.malformed(number, JSONRecordIssue.trailingData.text)
          pos = k
          try skipLine()
          continue loop
        }
      } else {
        elements += 1
        number = elements
        mode = .arrayNext
      }
      try body(rec, number, &d)
    }
    if (mode == .arrayFirst || mode == .arrayNext) && d.truncatedLastLine == nil {
      // The array never closed: cut while being written (after its last whole element).
      if elements > 0 {
        d.truncatedLastLine = elements
      } else {
        d.malformed(1, JSONRecordIssue.incomplete.text)
        d.truncatedLastLine = 1
      }
      d.cutLine = d.truncatedLastLine
    }
    // Lines: those of the input (a last line without '\n' counts); records in an array.
    d.lines = mode == .lines || mode == .start ? line - (lastByte == 0x0A ? 1 : 0) : elements
    d.bytes = total
    return d
  }

  // MARK: Records → TraceRecord

  /// Turns one scanned record into a `TraceRecord` (or counts it as malformed/foreign).
  static func decode(
    _ rec: JSONRecord, _ number: Int, _ d: inout ReadDiagnostics, _ tally: inout HitTally,
    _ scratch: inout TextCaptureReader.LineScratch, _ body: (TraceRecord) throws(ReadError) -> Void
  ) throws(ReadError) {
    if rec[.unterminated].kind == .bool && rec[.unterminated].flag {
      // The converted text line had no newline: cut while being written (as in the text
      // reader, it is not replayed and the capture is incomplete).
      d.truncatedLastLine = number
      d.malformed(number, TextCaptureReader.cutReason)
      d.cutLine = number
      let t = rec[.text]
      if recordKind(rec) == .probe
        || (t.kind == .string && TextCaptureReader.namesAProbedFunction(t.bytes))
      {
        d.damagedProbeLines += 1
      }
      return
    }
    switch recordKind(rec) {
    case nil:
      d.malformed(number, JSONRecordIssue.unknownType.text)
    case .text?:
      let t = rec[.text]
      if rec[.omitted].kind != .absent {
        guard case .ok(let n)? = integer(rec[.omitted]) else {
          return d.malformed(number, JSONRecordIssue.badOmitted.text)
        }
        return d.malformed(
          number, TextCaptureReader.overlongReason(Int(clamping: n), limit: LineSplitter().maxLineBytes))
      }
      guard t.kind == .string else { return d.malformed(number, JSONRecordIssue.noText.text) }
      try TextCaptureReader.handle(t.bytes, number, &d, &tally, &scratch, body)
    case .lost?:
      guard case .ok(let cpu)? = integer(rec[.cpu]), cpu <= UInt64(Int32.max),
        case .ok(let n)? = integer(rec[.events])
      else { return d.malformed(number, JSONRecordIssue.badLostCount.text) }
      try body(.lost(LostMarker(line: number, cpu: Int32(cpu), count: n)))
    case .probe?:
      switch probeHit(rec, number, into: &scratch.hit) {
      case .hit(let name):
        tally.note(scratch.hit, eventName: name, line: number, &d)
        try body(.hit(scratch.hit))
      case .foreign:
        d.foreignLines += 1
      case .issue(let why):
        d.malformed(number, why.text)
      }
    }
  }

  public enum RecordKind { case probe, lost, text }

  /// The record's `"type"` (absent = probe); nil if unknown.
  public static func recordKind(_ rec: JSONRecord) -> RecordKind? {
    let t = rec[.type]
    switch t.kind {
    case .absent: return .probe
    case .string:
      let b = t.bytes
      if equals(b, "probe") { return .probe }
      if equals(b, "lost") { return .lost }
      if equals(b, "text") { return .text }
      return nil
    default: return nil
    }
  }

  /// A non-negative integer field (number, or a string of decimal digits is *not* accepted).
  static func integer(_ s: JSONScalar) -> JSONNumber.IntResult? {
    guard s.kind == .number else { return nil }
    return JSONNumber.unsigned(s.bytes)
  }

  public enum ProbeDecode {
    /// The hit, and its event name (may be empty).
    case hit(ProbeHit, UnsafeBufferPointer<UInt8>)
    /// A well-formed record of a function outside the models.
    case foreign
    case issue(JSONRecordIssue)
  }

  /// Decodes a probe record. `number` becomes the hit's `line`.
  public static func probeHit(_ rec: JSONRecord, _ number: Int) -> ProbeDecode {
    var hit = ProbeHit(
      line: number, timestampNs: 0, cpu: 0, pid: 0, comm: Comm(), function: .pageTableAlloc,
      kind: .entry)
    switch probeHit(rec, number, into: &hit) {
    case .hit(let name): return .hit(hit, name)
    case .foreign: return .foreign
    case .issue(let why): return .issue(why)
    }
  }

  /// What `probeHit(_:_:into:)` found.
  public enum ProbeOutcome {
    /// `hit` holds the record; its event name (may be empty).
    case hit(UnsafeBufferPointer<UInt8>)
    case foreign
    case issue(JSONRecordIssue)
  }

  /// As `probeHit(_:_:)`, writing every field of a hit into `hit` (no record moved around).
  public static func probeHit(_ rec: JSONRecord, _ number: Int, into hit: inout ProbeHit)
    -> ProbeOutcome
  {
    // Timestamp.
    let ns: UInt64
    let ts = rec[.ts]
    let tsNs = rec[.tsNs]
    if ts.kind == .number || ts.kind == .string {
      guard ts.kind == .number || plainDecimal(ts.bytes),
        let v = JSONNumber.secondsToNs(ts.bytes)
      else { return .issue(.badTimestamp) }
      ns = v.ns
    } else if tsNs.kind == .number {
      guard case .ok(let v) = JSONNumber.unsigned(tsNs.bytes) else { return .issue(.badTimestamp) }
      ns = v
    } else if ts.kind == .absent && tsNs.kind == .absent {
      return .issue(.noTimestamp)
    } else {
      return .issue(.badTimestamp)
    }
    // CPU, pid, tgid.
    guard rec[.cpu].kind != .absent else { return .issue(.noCPU) }
    guard case .ok(let cpu)? = integer(rec[.cpu]), cpu <= UInt64(Int32.max) else {
      return .issue(.badCPU)
    }
    guard rec[.pid].kind != .absent else { return .issue(.noPID) }
    guard case .ok(let pid)? = integer(rec[.pid]), pid <= UInt64(Int32.max) else {
      return .issue(.badPID)
    }
    switch rec[.tgid].kind {
    case .absent, .null: break
    case .number:
      guard case .ok(let t) = JSONNumber.unsigned(rec[.tgid].bytes), t <= UInt64(Int32.max) else {
        return .issue(.badTgid)
      }
    default: return .issue(.badTgid)
    }
    for k in stringKeys {
      let kind = rec[k].kind
      if kind != .absent && kind != .string && kind != .null { return .issue(.badString) }
    }
    // Function and entry/return.
    let fn = rec[.function]
    guard fn.kind == .string, fn.bytes.count > 0 else { return .issue(.noFunction) }
    var kind = ProbeHit.Kind.entry
    switch rec[.probe].kind {
    case .absent, .null: break
    case .string:
      let b = rec[.probe].bytes
      if equals(b, "return") {
        kind = .ret
      } else if !equals(b, "entry") {
        return .issue(.badProbe)
      }
    default: return .issue(.badProbe)
    }
    switch rec.valuesKind {
    case .absent, .null, .composite: break
    default: return .issue(.valuesNotObject)
    }
    guard let function = KernelFunction.lookup(fn.bytes) else { return .foreign }
    var caller = CallerRole.other
    if kind == .ret, rec[.caller].kind == .string, let cp = rec[.caller].bytes.baseAddress {
      var ce = 0
      let cb = rec[.caller].bytes
      while ce < cb.count && cb[ce] != UInt8(ascii: "+") && cb[ce] != 0x20 { ce += 1 }
      caller = CallerRole.classify(UnsafeBufferPointer(start: cp, count: ce))
    }
    var comm = Comm()
    if rec[.comm].kind == .string { comm = Comm(rec[.comm].bytes) }
    hit.reset(
      line: number, timestampNs: ns, cpu: Int32(cpu), pid: Int32(pid), comm: comm,
      function: function, kind: kind, caller: caller)
    // Named values, by the same rules as text (`FtraceLineParser.roleOf`).
    for (index, entry) in rec.values.enumerated() {
      let value: UInt64
      let v = entry.value
      switch v.kind {
      case .number:
        switch JSONNumber.unsigned(v.bytes) {
        case .ok(let x): value = x
        case .overflow: return .issue(.valueOverflow)
        case .negative, .notInteger: return .issue(.badValue)
        }
      case .string:
        guard let vp = v.bytes.baseAddress else { continue }
        switch FtraceLineParser.parseHexBranchFree(vp, 0, v.bytes.count) {
        case .ok(let x): value = x
        case .overflow: return .issue(.valueOverflow)
        case .bad: continue  // "(fault)": the kernel could not fetch it; absent, as in text
        }
      case .null:
        continue
      default:
        return .issue(.badValue)
      }
      // Scanner views always have a base address (even when empty).
      let role = FtraceLineParser.roleOf(
        entry.name.baseAddress!, 0, entry.name.count, function: function, kind: kind,
        index: index)
      hit.assign(role, value)
    }
    let name = rec[.event].kind == .string ? rec[.event].bytes : UnsafeBufferPointer(start: nil, count: 0)
    return .hit(name)
  }

  static let stringKeys: [JSONKey] = [.comm, .flags, .event, .caller, .site]

  /// Whether the bytes are exactly `lit`.
  @inline(__always)
  static func equals(_ b: UnsafeBufferPointer<UInt8>, _ lit: StaticString) -> Bool {
    b.count == lit.utf8CodeUnitCount
      && (b.count == 0 || bytesEqual(UnsafeRawPointer(b.baseAddress!), UnsafeRawPointer(lit.utf8Start), b.count))
  }

  /// A timestamp given as a string must be digits with at most one '.' (no sign, no
  /// exponent): `"192.054846"`.
  static func plainDecimal(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
    var dot = false
    var digits = 0
    for c in b {
      if c == UInt8(ascii: ".") {
        if dot { return false }
        dot = true
      } else if c &- 48 < 10 {
        digits += 1
      } else {
        return false
      }
    }
    return digits > 0
  }
}
