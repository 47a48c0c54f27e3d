import PTFragEvents
#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A hand-written scanner for one JSON object of ptfrag's capture schema
/// (docs/json-input.md). Byte-level, no allocation per record: string values are views
/// into the input, or into a reusable arena when they hold escapes.
///
/// RFC 8259 syntax, as Foundation's `JSONSerialization` reads it: no comments, no leading
/// zeros, no raw control characters in strings, valid `\u` escapes (surrogates paired), no
/// number beyond the range of a Double; one trailing comma before `}` or `]` is accepted
/// (Foundation accepts it too). Unknown keys are skipped whatever their value.

/// Why scanning stopped.
enum JSONScanError: Error {
  /// The input ended inside the object: read more and scan again from its start.
  case incomplete
  /// Not JSON; `at` is the byte index of the offending byte.
  case syntax(JSONSyntax, at: Int)
}

/// JSON syntax errors, with stable texts (they appear in reports).
public enum JSONSyntax: UInt8, Sendable {
  case expectedObject, expectedKey, expectedColon, expectedCommaOrEnd, expectedValue
  case badNumber, numberRange, badLiteral, badEscape, badUnicodeEscape, controlInString
  case tooDeep

  public var text: String {
    switch self {
    case .expectedObject: "expected '{' (each record is a JSON object)"
    case .expectedKey: "expected a \"key\""
    case .expectedColon: "expected ':' after a key"
    case .expectedCommaOrEnd: "expected ',' or the end of the object/array"
    case .expectedValue: "expected a JSON value"
    case .badNumber: "malformed JSON number"
    case .numberRange: "JSON number beyond the range of a double"
    case .badLiteral: "malformed literal (true/false/null)"
    case .badEscape: "invalid escape in a string"
    case .badUnicodeEscape: "invalid \\u escape (bad hex digits or an unpaired surrogate)"
    case .controlInString: "raw control character inside a string"
    case .tooDeep: "nesting deeper than 64 levels"
    }
  }
}

/// One scalar value of a known key, as it appeared.
public struct JSONScalar {
  public enum Kind: UInt8 { case absent, string, number, bool, null, composite }
  public var kind: Kind = .absent
  /// String: the decoded bytes; number: the literal; otherwise empty.
  public var bytes = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
  /// For `.bool`: its value.
  public var flag = false
  public init() {}
}

/// The keys of the schema (docs/json-input.md).
public enum JSONKey: Int, CaseIterable, Sendable {
  case type, ts, tsNs, cpu, pid, tgid, comm, flags, event, function, probe, caller, site
  case text, omitted, events, unterminated

  /// Looks a key up by its bytes (nil: unknown, skipped).
  @inline(__always)
  static func lookup(_ p: UnsafePointer<UInt8>, _ n: Int) -> JSONKey? {
    @inline(__always) func eq(_ lit: StaticString) -> Bool {
      lit.utf8CodeUnitCount == n && bytesEqual(UnsafeRawPointer(p), UnsafeRawPointer(lit.utf8Start), n)
    }
    switch n {
    case 2: return eq("ts") ? .ts : nil
    case 3:
      if eq("cpu") { return .cpu }
      if eq("pid") { return .pid }
      return nil
    case 4:
      switch p[0] {
      case UInt8(ascii: "t"): return eq("type") ? .type : eq("tgid") ? .tgid : eq("text") ? .text : nil
      case UInt8(ascii: "c"): return eq("comm") ? .comm : nil
      case UInt8(ascii: "s"): return eq("site") ? .site : nil
      default: return nil
      }
    case 5:
      if eq("ts_ns") { return .tsNs }
      if eq("flags") { return .flags }
      if eq("event") { return .event }
      if eq("probe") { return .probe }
      return nil
    case 6:
      if eq("caller") { return .caller }
      if eq("events") { return .events }
      return nil
    case 7: return eq("omitted") ? .omitted : nil
    case 8: return eq("function") ? .function : nil
    case 12: return eq("unterminated") ? .unterminated : nil
    default: return nil
    }
  }
}

/// One entry of a record's `"values"` object, in input order.
public struct JSONValueEntry {
  /// The value's name (`mm`, `table`, `arg1`, …).
  public var name: UnsafeBufferPointer<UInt8>
  public var value: JSONScalar
}

/// The scanned fields of one record; views valid until the next record is scanned.
public final class JSONRecord {
  /// Known keys, indexed by `JSONKey.rawValue`.
  // @exclusivity(unchecked): one scanner at a time fills a record; the runtime checks
  // cost several per cent of a JSON read.
  @exclusivity(unchecked) var scalars: UnsafeMutableBufferPointer<JSONScalar>
  /// `"values"`, in order; `valuesKind` says whether it was present and an object.
  @exclusivity(unchecked) public internal(set) var values: [JSONValueEntry] = []
  @exclusivity(unchecked) public internal(set) var valuesKind: JSONScalar.Kind = .absent
  /// Escape-decoded strings live here (as large as the largest record).
  var arena: UnsafeMutablePointer<UInt8>
  @exclusivity(unchecked) var arenaUsed = 0
  let arenaBytes: Int

  init(maxRecordBytes: Int) {
    scalars = .allocate(capacity: JSONKey.allCases.count)
    scalars.initialize(repeating: JSONScalar())
    arenaBytes = maxRecordBytes
    arena = .allocate(capacity: maxRecordBytes)
    values.reserveCapacity(16)
  }

  deinit {
    scalars.deallocate()
    arena.deallocate()
  }

  @inline(__always) public subscript(_ k: JSONKey) -> JSONScalar { scalars[k.rawValue] }

  @inline(__always) func reset() {
    for i in 0..<scalars.count { scalars[i].kind = .absent }
    values.removeAll(keepingCapacity: true)
    valuesKind = .absent
    arenaUsed = 0
  }
}

/// Scans `p[i..<end]`. `newlines` counts `\n` in the whitespace it skipped (for messages
/// and for the record's line).
struct JSONScanner {
  let p: UnsafePointer<UInt8>
  let end: Int
  var i: Int
  var newlines = 0
  let rec: JSONRecord

  init(_ p: UnsafePointer<UInt8>, from: Int, end: Int, into rec: JSONRecord) {
    self.p = p
    self.i = from
    self.end = end
    self.rec = rec
  }

  @inline(__always)
  mutating func skipWS() throws(JSONScanError) {
    // Compact JSON has no blanks: one compare (every token starts above 0x20).
    if i < end && p[i] > 0x20 { return }
    try skipBlanks()
  }

  mutating func skipBlanks() throws(JSONScanError) {
    while i < end {
      let c = p[i]
      if c == 0x20 || c == 0x09 || c == 0x0D {
        i += 1
      } else if c == 0x0A {
        newlines += 1
        i += 1
      } else {
        return
      }
    }
    throw .incomplete
  }

  /// Scans one object record into `rec` (reset first). On return `i` is just past `}`.
  mutating func record() throws(JSONScanError) {
    rec.reset()
    try skipWS()
    guard p[i] == UInt8(ascii: "{") else { throw .syntax(.expectedObject, at: i) }
    if try openEmpty(UInt8(ascii: "}")) { return }
    while true {
      let key = try memberKey()
      if let k = JSONKey.lookup(key.baseAddress ?? p, key.count) {
        rec.scalars[k.rawValue] = try scalar(depth: 1)
      } else if JSONCaptureReader.equals(key, "values") {
        try valuesObject()
      } else {
        _ = try scalar(depth: 1)
      }
      if try endOfMembers(UInt8(ascii: "}")) { return }
    }
  }

  /// Past an opening `{`/`[` (at `p[i]`): true if the object or array is empty (and then
  /// past its close).
  @inline(__always)
  mutating func openEmpty(_ close: UInt8) throws(JSONScanError) -> Bool {
    i += 1
    try skipWS()
    if p[i] == close {
      i += 1
      return true
    }
    return false
  }

  /// `"key" :` with the blanks around it; returns the key, leaves `i` at the value.
  @inline(__always)
  mutating func memberKey() throws(JSONScanError) -> UnsafeBufferPointer<UInt8> {
    try skipWS()
    let key = try string()
    try skipWS()
    guard p[i] == UInt8(ascii: ":") else { throw .syntax(.expectedColon, at: i) }
    i += 1
    try skipWS()
    return key
  }

  /// After a member: `,` (a trailing one before the close is accepted) or the close.
  /// Returns true at the close.
  @inline(__always)
  mutating func endOfMembers(_ close: UInt8) throws(JSONScanError) -> Bool {
    try skipWS()
    let c = p[i]
    i += 1
    if c == close { return true }
    guard c == UInt8(ascii: ",") else { throw .syntax(.expectedCommaOrEnd, at: i - 1) }
    try skipWS()
    if p[i] == close {
      i += 1
      return true
    }
    return false
  }

  /// `"values": {…}` (any other value type is kept as its kind, and rejected later).
  mutating func valuesObject() throws(JSONScanError) {
    guard p[i] == UInt8(ascii: "{") else {
      rec.valuesKind = try scalar(depth: 1).kind
      return
    }
    rec.valuesKind = .composite
    if try openEmpty(UInt8(ascii: "}")) { return }
    while true {
      let name = try memberKey()
      let v = try scalar(depth: 2)
      rec.values.append(JSONValueEntry(name: name, value: v))
      if try endOfMembers(UInt8(ascii: "}")) { return }
    }
  }

  /// Any value; objects and arrays are skipped (kind `.composite`).
  mutating func scalar(depth: Int) throws(JSONScanError) -> JSONScalar {
    var s = JSONScalar()
    let c = p[i]
    switch c {
    case UInt8(ascii: "\""):
      s.kind = .string
      s.bytes = try string()
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
      s.kind = .number
      s.bytes = try number()
    case UInt8(ascii: "t"):
      try literal("true")
      s.kind = .bool
      s.flag = true
    case UInt8(ascii: "f"):
      try literal("false")
      s.kind = .bool
    case UInt8(ascii: "n"):
      try literal("null")
      s.kind = .null
    case UInt8(ascii: "{"), UInt8(ascii: "["):
      try skipComposite(depth: depth)
      s.kind = .composite
    default:
      throw .syntax(.expectedValue, at: i)
    }
    return s
  }

  @inline(__always)
  mutating func literal(_ lit: StaticString) throws(JSONScanError) {
    let n = lit.utf8CodeUnitCount
    for k in 0..<n {
      if i + k >= end { throw .incomplete }
      if p[i + k] != lit.utf8Start[k] { throw .syntax(.badLiteral, at: i + k) }
    }
    i += n
  }

  /// Skips an object or array (iteratively checked, nested up to 64 levels).
  mutating func skipComposite(depth: Int) throws(JSONScanError) {
    if depth > 64 { throw .syntax(.tooDeep, at: i) }
    let isObject = p[i] == UInt8(ascii: "{")
    let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
    if try openEmpty(close) { return }
    while true {
      if isObject {
        _ = try memberKey()
      } else {
        try skipWS()
      }
      _ = try scalar(depth: depth + 1)
      if try endOfMembers(close) { return }
    }
  }

  /// A number literal (validated per RFC 8259); returns its bytes.
  mutating func number() throws(JSONScanError) -> UnsafeBufferPointer<UInt8> {
    let start = i
    @inline(__always) func digit(_ k: Int) throws(JSONScanError) -> Bool {
      if k >= end { throw .incomplete }
      return p[k] &- 48 < 10
    }
    if p[i] == UInt8(ascii: "-") { i += 1 }
    if i >= end { throw .incomplete }
    // Decimal exponent of the leading significant digit (range check, as Foundation does).
    var magnitude = 0
    var significant = false
    if p[i] == UInt8(ascii: "0") {
      i += 1
    } else if try digit(i) {
      significant = true
      while try digit(i) {
        i += 1
        magnitude += 1
      }
      magnitude -= 1
    } else {
      throw .syntax(.badNumber, at: i)
    }
    if i >= end { throw .incomplete }
    if p[i] == UInt8(ascii: ".") {
      i += 1
      guard try digit(i) else { throw .syntax(.badNumber, at: i) }
      while try digit(i) {
        if !significant {
          magnitude -= 1
          significant = p[i] != UInt8(ascii: "0")
        }
        i += 1
      }
    }
    if p[i] | 0x20 == UInt8(ascii: "e") {
      i += 1
      if i >= end { throw .incomplete }
      var negative = false
      if p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") {
        negative = p[i] == UInt8(ascii: "-")
        i += 1
      }
      guard try digit(i) else { throw .syntax(.badNumber, at: i) }
      var e = 0
      while try digit(i) {
        e = min(e * 10 + Int(p[i] &- 48), 1_000_000)
        i += 1
      }
      magnitude += negative ? -e : e
    }
    if significant && magnitude > 308 { throw .syntax(.numberRange, at: start) }
    return UnsafeBufferPointer(start: p + start, count: i - start)
  }

  /// A string (at its opening quote); returns its content, escape-decoded into the arena
  /// when it has escapes.
  @inline(__always)
  mutating func string() throws(JSONScanError) -> UnsafeBufferPointer<UInt8> {
    guard p[i] == UInt8(ascii: "\"") else { throw .syntax(.expectedKey, at: i) }
    i += 1
    let start = i
    // Skip plain bytes 8 at a time: stop at a quote, a backslash or a control byte.
    while i + 8 <= end {
      let w = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
      let ones: UInt64 = 0x0101_0101_0101_0101
      let m =
        FtraceLineParser.zeroBytes(w ^ (0x22 &* ones)) | FtraceLineParser.zeroBytes(w ^ (0x5C &* ones))
        | ((w &- 0x20 &* ones) & ~w & 0x8080_8080_8080_8080)  // bytes below 0x20
      if m != 0 {
        i += m.trailingZeroBitCount / 8
        break
      }
      i += 8
    }
    while true {
      if i >= end { throw .incomplete }
      let c = p[i]
      if c == UInt8(ascii: "\"") {
        i += 1
        return UnsafeBufferPointer(start: p + start, count: i - 1 - start)
      }
      if c == UInt8(ascii: "\\") { break }
      if c < 0x20 { throw .syntax(.controlInString, at: i) }
      i += 1
    }
    return try escapedString(from: start)
  }

  /// The rest of a string that holds an escape (at `p[i]`), decoded into the arena.
  mutating func escapedString(from start: Int) throws(JSONScanError) -> UnsafeBufferPointer<UInt8> {
    // Copy what was scanned, then decode escapes.
    let out = rec.arena + rec.arenaUsed
    var n = i - start
    out.update(from: p + start, count: n)
    while true {
      if i >= end { throw .incomplete }
      let c = p[i]
      if c == UInt8(ascii: "\"") {
        i += 1
        break
      }
      if c < 0x20 { throw .syntax(.controlInString, at: i) }
      if c != UInt8(ascii: "\\") {
        out[n] = c
        n += 1
        i += 1
        continue
      }
      if i + 1 >= end { throw .incomplete }
      let e = p[i + 1]
      i += 2
      switch e {
      case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out[n] = e
      case UInt8(ascii: "b"): out[n] = 0x08
      case UInt8(ascii: "f"): out[n] = 0x0C
      case UInt8(ascii: "n"): out[n] = 0x0A
      case UInt8(ascii: "r"): out[n] = 0x0D
      case UInt8(ascii: "t"): out[n] = 0x09
      case UInt8(ascii: "u"):
        var cp = try hex4()
        if cp >= 0xD800 && cp < 0xDC00 {
          // A high surrogate must be followed by \u and a low surrogate.
          if i + 2 > end { throw .incomplete }
          guard p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u") else {
            throw .syntax(.badUnicodeEscape, at: i)
          }
          i += 2
          let lo = try hex4()
          guard lo >= 0xDC00 && lo < 0xE000 else { throw .syntax(.badUnicodeEscape, at: i - 4) }
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
        } else if cp >= 0xDC00 && cp < 0xE000 {
          throw .syntax(.badUnicodeEscape, at: i - 4)
        }
        n += utf8(cp, out + n)
        continue
      default:
        throw .syntax(.badEscape, at: i - 1)
      }
      n += 1
    }
    rec.arenaUsed += n
    return UnsafeBufferPointer(start: out, count: n)
  }

  mutating func hex4() throws(JSONScanError) -> UInt32 {
    if i + 4 > end { throw .incomplete }
    var v: UInt32 = 0
    for k in 0..<4 {
      guard let d = FtraceLineParser.hexValue(p[i + k]) else {
        throw .syntax(.badUnicodeEscape, at: i + k)
      }
      v = v << 4 | UInt32(d)
    }
    i += 4
    return v
  }

  /// Writes `cp` as UTF-8; returns the byte count.
  @inline(__always)
  func utf8(_ cp: UInt32, _ o: UnsafeMutablePointer<UInt8>) -> Int {
    switch cp {
    case 0..<0x80:
      o[0] = UInt8(cp)
      return 1
    case 0x80..<0x800:
      o[0] = UInt8(0xC0 | (cp >> 6))
      o[1] = UInt8(0x80 | (cp & 0x3F))
      return 2
    case 0x800..<0x10000:
      o[0] = UInt8(0xE0 | (cp >> 12))
      o[1] = UInt8(0x80 | ((cp >> 6) & 0x3F))
      o[2] = UInt8(0x80 | (cp & 0x3F))
      return 3
    default:
      o[0] = UInt8(0xF0 | (cp >> 18))
      o[1] = UInt8(0x80 | ((cp >> 12) & 0x3F))
      o[2] = UInt8(0x80 | ((cp >> 6) & 0x3F))
      o[3] = UInt8(0x80 | (cp & 0x3F))
      return 4
    }
  }
}

/// Decoding of number literals the scanner validated.
enum JSONNumber {
  /// A non-negative integer literal (no fraction, no exponent) that fits 64 bits.
  enum IntResult { case ok(UInt64), notInteger, negative, overflow }

  static func unsigned(_ b: UnsafeBufferPointer<UInt8>) -> IntResult {
    guard let p = b.baseAddress, b.count > 0 else { return .notInteger }
    if p[0] == UInt8(ascii: "-") {
      // "-0" is zero.
      if b.count == 2 && p[1] == UInt8(ascii: "0") { return .ok(0) }
      for k in 1..<b.count where p[k] &- 48 >= 10 { return .notInteger }
      return .negative
    }
    var v: UInt64 = 0
    for k in 0..<b.count {
      let d = p[k] &- 48
      if d >= 10 { return .notInteger }
      let (m, o1) = v.multipliedReportingOverflow(by: 10)
      let (a, o2) = m.addingReportingOverflow(UInt64(d))
      if o1 || o2 { return .overflow }
      v = a
    }
    return .ok(v)
  }

  /// Seconds as a decimal (`192.054846`, `1.92e2`) → nanoseconds, exact (no floating
  /// point); digits below 1 ns are cut, as the text parser does. `fraction` is the number of
  /// fraction digits written (6 for ftrace's microseconds), for printing it back.
  static func secondsToNs(_ b: UnsafeBufferPointer<UInt8>) -> (ns: UInt64, fraction: Int)? {
    guard let p = b.baseAddress, b.count > 0, p[0] != UInt8(ascii: "-") else { return nil }
    // Fast path: up to 10 digits, a dot, up to 9 digits (ftrace's seconds.micros).
    if b.count <= 20 {
      var k = 0
      var secs: UInt64 = 0
      while k < b.count && p[k] &- 48 < 10 {
        secs = secs * 10 + UInt64(p[k] &- 48)
        k += 1
      }
      if k > 0 && k <= 10 && k < b.count && p[k] == UInt8(ascii: ".") {
        k += 1
        let fracStart = k
        var frac: UInt64 = 0
        while k < b.count && p[k] &- 48 < 10 {
          frac = frac * 10 + UInt64(p[k] &- 48)
          k += 1
        }
        let digits = k - fracStart
        if k == b.count && digits > 0 && digits <= 9 {
          for _ in digits..<9 { frac *= 10 }
          return (secs * 1_000_000_000 + frac, digits)
        }
      } else if k == b.count && k <= 10 {
        return (secs * 1_000_000_000, 0)
      }
    }
    var mant: UInt64 = 0
    var scale = 0  // value = mant × 10^scale
    var k = 0
    var fraction = 0
    var sawDot = false
    var significant = 0
    while k < b.count {
      let c = p[k]
      if c == UInt8(ascii: ".") {
        sawDot = true
      } else if c &- 48 < 10 {
        if significant < 19 {
          mant = mant * 10 + UInt64(c &- 48)
          if mant > 0 { significant += 1 }
          if sawDot { scale -= 1 }
        } else if !sawDot {
          scale += 1
        }
        if sawDot { fraction += 1 }
      } else {
        break
      }
      k += 1
    }
    if k < b.count {
      // Exponent.
      k += 1
      var neg = false
      if p[k] == UInt8(ascii: "+") || p[k] == UInt8(ascii: "-") {
        neg = p[k] == UInt8(ascii: "-")
        k += 1
      }
      var e = 0
      while k < b.count {
        e = min(e * 10 + Int(p[k] &- 48), 10_000)
        k += 1
      }
      scale += neg ? -e : e
      fraction = max(0, fraction - (neg ? -e : e))
    }
    // ns = mant × 10^(scale + 9)
    var ns = mant
    var s = scale + 9
    while s < 0 {
      ns /= 10
      s += 1
    }
    while s > 0 {
      let (m, o) = ns.multipliedReportingOverflow(by: 10)
      if o { return nil }
      ns = m
      s -= 1
    }
    return (ns, min(fraction, 9))
  }
}
