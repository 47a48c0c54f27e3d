#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import PTFragEvents

/// Why a line was not a probe hit ptfrag could use. Stable strings: they appear in reports.
public enum MalformedReason: UInt8, Sendable, CaseIterable {
  case noTaskPid, noCPU, noTimestamp, noEventName, noLocation, badValue, valueOverflow
  case badLostMarker, controlBytes, tornLine

  public var text: String {
    switch self {
    case .noTaskPid: "no TASK-PID field before [CPU]"
    case .noCPU: "no [CPU] field"
    case .noTimestamp: "no timestamp (seconds.micros:) after [CPU]"
    case .noEventName: "no event name after the timestamp"
    case .noLocation: "no probe location (func+off/size) after the event name"
    case .badValue: "a value is not hexadecimal"
    case .valueOverflow: "a value overflows 64 bits"
    case .badLostMarker: "malformed CPU:N [LOST M EVENTS] marker"
    case .controlBytes: "binary data (control bytes) in a text line"
    case .tornLine: "two records in one line (a write torn by another): its fields belong to two events"
    }
  }
}

/// The parse of one line of an ftrace text capture.
public enum ParsedLine {
  case hit(ProbeHit)
  case lost(LostMarker)
  /// A comment, a blank line, or a `cpus=N` header.
  case skip
  /// A well-formed probe line for a function outside the models (another tracer's events).
  case foreign
  case malformed(MalformedReason)
}

/// Where the fields of a parsed probe line lie (byte offsets into the line), for
/// conversion: everything a line prints, not only what the replay uses.
public struct LineFields: Sendable {
  public var comm = 0..<0
  public var pid = 0..<0
  /// The `(tgid)` column's content (`   1234` or `-------`), if the line has one.
  public var tgid: Range<Int>? = nil
  public var cpu = 0..<0
  /// The irq-info flags column (`.....`), if the line has one.
  public var flags: Range<Int>? = nil
  /// `seconds.fraction` (without the colon).
  public var timestamp = 0..<0
  /// The event name (without its colon).
  public var eventName = 0..<0
  /// Inside the location parentheses: `func+0x0/0x2c8` or `caller+off/size <- func`.
  public var location = 0..<0
  /// The probed function's symbol as printed (with any `.isra.0`-style suffix).
  public var function = 0..<0
  /// Return probes: the caller part (`caller+off/size`).
  public var caller: Range<Int>? = nil
  /// After the location's `)`: the `name=value` pairs, to the end of the trimmed line.
  public var values = 0..<0
  public init() {}
}

extension ProbeHit {
  /// Overwrites every field in place (values absent), as the readers' per-record path does.
  @inline(__always)
  mutating func reset(
    line: LineNumber, timestampNs: UInt64, cpu: Int32, pid: Int32, comm: Comm,
    function: KernelFunction, kind: Kind, caller: CallerRole
  ) {
    self = ProbeHit(
      line: line, timestampNs: timestampNs, cpu: cpu, pid: pid, comm: comm, function: function,
      kind: kind, caller: caller)
  }

  /// Stores `value` under `role` (nothing for a value of no role).
  @inline(__always)
  mutating func assign(_ role: ValueRole?, _ value: UInt64) {
    switch role {
    case .mm?: mm = value
    case .table?: table = value
    case .tlb?: tlb = value
    case .vmaddr?: vmaddr = value
    case .retval?: retval = value
    case .kernel?: kernel = value
    case nil: break
    }
  }
}

/// Parses one line of `/sys/kernel/tracing/trace`, `trace_pipe` or `trace-cmd report` output:
///
///     comm-pid [(tgid)] [cpu] [flags] seconds.frac: event: (location) name=value …
///
/// Byte-level, no allocation on the hit path. See docs/trace-format.md ("Ftrace text lines") for the variants.
public enum FtraceLineParser {
  @usableFromInline static let space = UInt8(ascii: " ")
  @usableFromInline static let tab = UInt8(ascii: "\t")

  @inline(__always) static func isSpace(_ c: UInt8) -> Bool { c == space || c == tab }
  @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c &- 48 < 10 }

  /// Parses `line` (without its newline). `lineNumber` is 1-based.
  public static func parse(_ line: UnsafeBufferPointer<UInt8>, lineNumber: Int) -> ParsedLine {
    var ignored = 0..<0
    return parse(line, lineNumber: lineNumber, eventName: &ignored)
  }

  /// As `parse(_:lineNumber:)`; on a hit, `eventName` receives the byte range of the
  /// user-chosen event name (without its colon) inside `line`.
  public static func parse(
    _ line: UnsafeBufferPointer<UInt8>, lineNumber: Int, eventName: inout Range<Int>
  ) -> ParsedLine {
    var fields = LineFields()
    let r = parse(line, lineNumber: lineNumber, fields: &fields)
    eventName = fields.eventName
    return r
  }

  /// As `parse(_:lineNumber:)`; on a hit (or a foreign line), `fields` receives where each
  /// printed field lies.
  public static func parse(
    _ line: UnsafeBufferPointer<UInt8>, lineNumber: Int, fields: inout LineFields
  ) -> ParsedLine {
    var hit = ProbeHit(
      line: lineNumber, timestampNs: 0, cpu: 0, pid: 0, comm: Comm(), function: .pageTableAlloc,
      kind: .entry)
    switch parseLine(line, lineNumber: lineNumber, fields: &fields, hit: &hit) {
    case .hit: return .hit(hit)
    case .lost(let m): return .lost(m)
    case .skip: return .skip
    case .foreign: return .foreign
    case .malformed(let why): return .malformed(why)
    }
  }

  /// `ParsedLine` with the hit written into the caller's `ProbeHit` (every field of it), so
  /// that the reader's per-line path moves no record around.
  public enum LineKind {
    case hit
    case lost(LostMarker)
    case skip
    case foreign
    case malformed(MalformedReason)
  }

  /// As `parse(_:lineNumber:fields:)`, writing a hit into `hit` (all its fields).
  public static func parseLine(
    _ line: UnsafeBufferPointer<UInt8>, lineNumber: Int, fields: inout LineFields,
    hit: inout ProbeHit
  ) -> LineKind {
    guard let p = line.baseAddress else { return .skip }
    var n = line.count
    while n > 0 && (p[n - 1] == 13 || isSpace(p[n - 1])) { n -= 1 }  // CR, trailing blanks
    var i = 0
    // The comm is right-aligned in 16 columns: skip runs of 8 spaces at a time.
    while i + 8 <= n && UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self) == 0x2020_2020_2020_2020 {
      i += 8
    }
    while i < n && isSpace(p[i]) { i += 1 }
    if i == n { return .skip }
    let c0 = p[i]
    if c0 == UInt8(ascii: "#") { return .skip }
    if c0 == UInt8(ascii: "C") && n - i >= 4 && p[i + 1] == UInt8(ascii: "P")
      && p[i + 2] == UInt8(ascii: "U") && p[i + 3] == UInt8(ascii: ":")
    {
      return parseLost(p, i + 4, n, lineNumber)
    }
    if c0 == UInt8(ascii: "c") && n - i >= 5 && p[i + 1] == UInt8(ascii: "p")
      && p[i + 2] == UInt8(ascii: "u") && p[i + 3] == UInt8(ascii: "s")
      && p[i + 4] == UInt8(ascii: "=")
    {
      return .skip  // trace-cmd report header "cpus=N"
    }
    let commStart = i

    // Find "[digits]" preceded by blank, with "-digits" (and an optional "(tgid)") before it.
    var j = i + 1
    var cpuOpen = -1
    var dash = -1
    var pidEnd = -1
    while j < n {
      j = find(UInt8(ascii: "["), p, j, n)
      if j == n { break }
      if isSpace(p[j - 1]) {
        var k = j + 1
        while k < n && isDigit(p[k]) { k += 1 }
        if k > j + 1 && k < n && p[k] == UInt8(ascii: "]") {
          // Walk back over blanks and an optional (tgid) column.
          var b = j - 1
          while b > commStart && isSpace(p[b]) { b -= 1 }
          var tgid: Range<Int>? = nil
          if p[b] == UInt8(ascii: ")") {
            var o = b - 1
            while o > commStart && p[o] != UInt8(ascii: "(") { o -= 1 }
            tgid = (o + 1)..<b
            b = o - 1
            while b > commStart && isSpace(p[b]) { b -= 1 }
          }
          var d = b
          while d > commStart && isDigit(p[d]) { d -= 1 }
          if d < b && p[d] == UInt8(ascii: "-") && d >= commStart {
            cpuOpen = j
            dash = d
            pidEnd = b + 1
            fields.tgid = tgid
            break
          }
        }
      }
      j += 1
    }
    if cpuOpen < 0 {
      // Tell binary junk from a text line of another shape.
      for x in commStart..<n where p[x] < 32 && p[x] != tab { return .malformed(.controlBytes) }
      var hasBracket = false
      for x in commStart..<n where p[x] == UInt8(ascii: "[") { hasBracket = true; break }
      return .malformed(hasBracket ? .noTaskPid : .noCPU)
    }
    var pid: Int32 = 0
    var x = dash + 1
    // Over 9 digits could wrap an Int32 (pid_max is at most 2^22; CPUs are far fewer).
    if pidEnd - (dash + 1) > 9 { return .malformed(.valueOverflow) }
    while x < pidEnd {
      pid = pid &* 10 &+ Int32(p[x] &- 48)
      x += 1
    }
    let comm = Comm(UnsafeBufferPointer(start: p + commStart, count: dash - commStart))
    var cpu: Int32 = 0
    x = cpuOpen + 1
    if find(UInt8(ascii: "]"), p, x, n) - x > 9 { return .malformed(.valueOverflow) }
    while p[x] != UInt8(ascii: "]") {
      cpu = cpu &* 10 &+ Int32(p[x] &- 48)
      x += 1
    }
    i = x + 1

    // Flags column (optional), then "seconds.frac:".
    func token(_ from: Int) -> (Int, Int) {
      var s = from
      while s < n && isSpace(p[s]) { s += 1 }
      return (s, blank(p, s, n))
    }
    var (ts, te) = token(i)
    fields.flags = nil
    var stamp = timestamp(p, ts, te)
    if stamp == nil {
      fields.flags = ts..<te
      (ts, te) = token(te)
      stamp = timestamp(p, ts, te)
    }
    guard let timestampNs = stamp else { return .malformed(.noTimestamp) }
    fields.comm = commStart..<dash
    fields.pid = (dash + 1)..<pidEnd
    fields.cpu = (cpuOpen + 1)..<(i - 1)
    fields.timestamp = ts..<(te - 1)

    // Event name "name:" (user's choice; ignored except as a token).
    let (es, ee) = token(te)
    if es >= n || ee - es < 2 || p[ee - 1] != UInt8(ascii: ":") { return .malformed(.noEventName) }
    fields.eventName = es..<(ee - 1)

    // Location "(func+off/size)" or "(caller+off/size <- func)".
    var ls = ee
    while ls < n && isSpace(p[ls]) { ls += 1 }
    guard ls < n && p[ls] == UInt8(ascii: "(") else { return .malformed(.noLocation) }
    // A kprobe location is "(sym+off/size)" or "(sym+off/size <- sym)": no blank after the
    // parenthesis, no bracket or parenthesis inside. A line holding the start of one record and
    // another whole one (two writers of one file, a torn trace_pipe read) has the second
    // record's "[CPU]" and "(location" here; read as one, it would be an event of neither.
    let le = firstOf(UInt8(ascii: ")"), UInt8(ascii: "("), UInt8(ascii: "["), p, ls + 1, n)
    if le == n { return .malformed(.noLocation) }
    if p[le] != UInt8(ascii: ")") || ls + 1 < le && isSpace(p[ls + 1]) { return .malformed(.tornLine) }
    var arrow = -1
    var a = ls + 1
    while a + 1 < le {
      a = find(UInt8(ascii: "<"), p, a, le - 1)
      if a == le - 1 { break }
      if p[a + 1] == UInt8(ascii: "-") {
        arrow = a
        break
      }
      a += 1
    }
    let kind: ProbeHit.Kind
    var funcStart: Int
    var funcEnd: Int
    var caller = CallerRole.other
    if arrow >= 0 {
      kind = .ret
      funcStart = arrow + 2
      while funcStart < le && isSpace(p[funcStart]) { funcStart += 1 }
      funcEnd = le
      while funcEnd > funcStart && isSpace(p[funcEnd - 1]) { funcEnd -= 1 }
      var ce = ls + 1
      while ce < arrow && p[ce] != UInt8(ascii: "+") && !isSpace(p[ce]) { ce += 1 }
      caller = CallerRole.classify(UnsafeBufferPointer(start: p + ls + 1, count: ce - ls - 1))
    } else {
      kind = .entry
      funcStart = ls + 1
      funcEnd = find(UInt8(ascii: "+"), p, funcStart, le)
    }
    guard funcEnd > funcStart else { return .malformed(.noLocation) }
    fields.location = (ls + 1)..<le
    fields.function = funcStart..<funcEnd
    if arrow >= 0 {
      var ce = arrow
      while ce > ls + 1 && isSpace(p[ce - 1]) { ce -= 1 }
      fields.caller = (ls + 1)..<ce
    } else {
      fields.caller = nil
    }
    fields.values = min(le + 1, n)..<n
    guard
      let function = KernelFunction.lookup(
        UnsafeBufferPointer(start: p + funcStart, count: funcEnd - funcStart))
    else { return .foreign }

    hit.reset(
      line: lineNumber, timestampNs: timestampNs, cpu: cpu, pid: pid, comm: comm,
      function: function, kind: kind, caller: caller)

    // name=value pairs.
    var v = le + 1
    var valueIndex = 0
    while v < n {
      while v < n && isSpace(p[v]) { v += 1 }
      if v >= n { break }
      let ns = v
      v = blankOrEquals(p, v, n)
      guard v < n && p[v] == UInt8(ascii: "=") else {
        // A bare token: not a named value; skip it — unless it is another record's "[CPU]"
        // (a line torn after this record's location: the values that follow are that record's).
        if v - ns >= 3, p[ns] == UInt8(ascii: "["), p[v - 1] == UInt8(ascii: "]"),
          (ns + 1..<v - 1).allSatisfy({ isDigit(p[$0]) })
        {
          return .malformed(.tornLine)
        }
        continue
      }
      let nameEnd = v
      v += 1
      let value: UInt64
      switch scanHex(p, &v, n) {
      case .ok(let x): value = x
      case .overflow: return .malformed(.valueOverflow)
      case .bad:
        // "(fault)" and friends: the kernel could not fetch it. Treat as absent.
        valueIndex += 1
        continue
      }
      let role = roleOf(p, ns, nameEnd, function: function, kind: kind, index: valueIndex)
      valueIndex += 1
      hit.assign(role, value)
    }
    return .hit
  }

  /// `seconds.fraction:` (1…10 digits, a dot, 1 or more digits, a colon) → nanoseconds
  /// (fraction digits beyond 9 are cut); nil if `p[s..<e]` is not a timestamp.
  @inline(__always)
  static func timestamp(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> UInt64? {
    guard e - s >= 4, p[e - 1] == UInt8(ascii: ":") else { return nil }
    var k = s
    var secs: UInt64 = 0
    while k < e - 1 && isDigit(p[k]) {
      secs = secs &* 10 &+ UInt64(p[k] &- 48)
      k += 1
    }
    let before = k - s
    guard before > 0 && before <= 10, k < e - 1, p[k] == UInt8(ascii: ".") else { return nil }
    k += 1
    var frac: UInt64 = 0
    var digits = 0
    while k < e - 1 {
      let d = p[k] &- 48
      guard d < 10 else { return nil }
      if digits < 9 {
        frac = frac &* 10 &+ UInt64(d)
        digits += 1
      }
      k += 1
    }
    guard digits > 0 else { return nil }
    while digits < 9 {
      frac &*= 10
      digits += 1
    }
    return secs &* 1_000_000_000 &+ frac
  }

  enum HexResult { case ok(UInt64), bad, overflow }

  /// The first index in `i..<n` holding `byte` (or `n`); 8 bytes a step, inline (the
  /// distances in a line are short, where a call to memchr costs more than the search).
  @inline(__always)
  static func find(_ byte: UInt8, _ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
    firstOf(byte, byte, byte, p, i, n)
  }

  /// The first index at or after `i` holding a blank or `=` (or `n`); 8 bytes a step.
  @inline(__always)
  static func blankOrEquals(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
    firstOf(space, tab, UInt8(ascii: "="), p, i, n)
  }

  /// The first index at or after `i` holding a blank (or `n`); 8 bytes a step.
  @inline(__always)
  static func blank(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
    firstOf(space, tab, tab, p, i, n)
  }

  /// The first index in `i..<n` holding `a`, `b` or `c` (or `n`); 8 bytes a step.
  @inline(__always)
  static func firstOf(
    _ a: UInt8, _ b: UInt8, _ c: UInt8, _ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int
  ) -> Int {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let (pa, pb, pc) = (UInt64(a) &* ones, UInt64(b) &* ones, UInt64(c) &* ones)
    var k = i
    while k + 8 <= n {
      let w = UnsafeRawPointer(p + k).loadUnaligned(as: UInt64.self)
      let m = zeroBytes(w ^ pa) | zeroBytes(w ^ pb) | zeroBytes(w ^ pc)
      if m != 0 { return k + m.trailingZeroBitCount / 8 }
      k += 8
    }
    while k < n && p[k] != a && p[k] != b && p[k] != c { k += 1 }
    return k
  }

  /// High bit set in each byte of `w` that is zero; the lowest set bit marks the first
  /// (borrows can only mark bytes above a real zero byte).
  @inline(__always)
  static func zeroBytes(_ w: UInt64) -> UInt64 {
    (w &- 0x0101_0101_0101_0101) & ~w & 0x8080_8080_8080_8080
  }

  /// `parseHex` of the token at `v` (to the next blank); `v` ends past it. Up to 16 digits
  /// are converted 8 at a time (SWAR) from windows that end at the token's end; the window
  /// bytes before the token are masked to '0'. The line's own bytes are read, never past
  /// `p + n`.
  @inline(__always)
  static func scanHex(_ p: UnsafePointer<UInt8>, _ v: inout Int, _ n: Int) -> HexResult {
    let e = blank(p, v, n)
    let s = v
    v = e
    var k = s
    if e - k >= 2 && p[k] == UInt8(ascii: "0") && (p[k + 1] | 0x20) == UInt8(ascii: "x") {
      k += 2
    }
    if k >= e { return .bad }
    while k < e - 1 && p[k] == UInt8(ascii: "0") { k += 1 }  // leading zeros
    let digits = e - k
    guard digits <= 16, e >= 16 || (digits <= 8 && e >= 8) else { return parseHex(p, s, e) }
    let raw = UnsafeRawPointer(p)
    let low = min(digits, 8)
    guard let lo = hexLanes(raw.loadUnaligned(fromByteOffset: e - 8, as: UInt64.self), keep: low)
    else { return .bad }
    if digits <= 8 { return .ok(lo) }
    guard
      let hi = hexLanes(raw.loadUnaligned(fromByteOffset: e - 16, as: UInt64.self), keep: digits - 8)
    else { return .bad }
    return .ok(hi << 32 | lo)
  }

  /// The value of the last `keep` (1…8) bytes of `w` read as hex digits (the byte at the
  /// lowest address is the most significant); nil if one of them is not a hex digit.
  @inline(__always)
  static func hexLanes(_ w: UInt64, keep: Int) -> UInt64? {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let high: UInt64 = 0x8080_8080_8080_8080
    // Little-endian: the last bytes of the window are the high bytes of w.
    let kept: UInt64 = keep == 8 ? ~0 : ~0 << UInt64(8 * (8 - keep))
    let x = (w & kept) | (0x3030_3030_3030_3030 & ~kept)
    if x & high != 0 { return nil }
    let digit = (x &+ 0x50 &* ones) & ~(x &+ 0x46 &* ones)  // 0x30…0x39
    let l = x | (0x20 &* ones)
    let letter = (l &+ 0x1F &* ones) & ~(l &+ 0x19 &* ones)  // a…f, A…F
    if (digit | letter) & high != high { return nil }
    let nibbles = (x & 0x0F0F_0F0F_0F0F_0F0F) &+ ((x >> 6) & ones) &* 9
    var r = nibbles.byteSwapped  // the first digit in the highest byte
    r = (r | (r >> 4)) & 0x00FF_00FF_00FF_00FF
    r = (r | (r >> 8)) & 0x0000_FFFF_0000_FFFF
    r = (r | (r >> 16)) & 0x0000_0000_FFFF_FFFF
    return r
  }

  /// `parseHex` without a branch per digit (a-f versus 0-9 is data, not a predictable
  /// branch); for values that are not inside a text line (JSON strings).
  @inline(__always)
  static func parseHexBranchFree(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> HexResult {
    var k = s
    if e - k >= 2 && p[k] == UInt8(ascii: "0") && (p[k + 1] | 0x20) == UInt8(ascii: "x") {
      k += 2
    }
    if k >= e { return .bad }
    var x: UInt64 = 0
    var significant = 0
    var seenNonZero: UInt64 = 0
    var valid: UInt8 = 1
    while k < e {
      let c = p[k]
      let isDigit: UInt8 = c &- 48 < 10 ? 1 : 0
      let isLetter: UInt8 = (c | 0x20) &- 97 < 6 ? 1 : 0
      valid &= isDigit | isLetter
      let d = UInt64((c & 0xF) &+ 9 &* (c >> 6))  // the digit's value when valid
      seenNonZero |= d
      significant &+= seenNonZero != 0 ? 1 : 0
      x = x << 4 | d
      k += 1
    }
    if valid == 0 { return .bad }
    return significant > 16 ? .overflow : .ok(x)
  }

  @inline(__always)
  static func parseHex(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> HexResult {
    var k = s
    if e - k >= 2 && p[k] == UInt8(ascii: "0") && (p[k + 1] | 0x20) == UInt8(ascii: "x") {
      k += 2
    }
    if k >= e { return .bad }
    while k < e - 1 && p[k] == UInt8(ascii: "0") { k += 1 }  // leading zeros
    if e - k > 16 {
      for z in k..<e where hexValue(p[z]) == nil { return .bad }
      return .overflow
    }
    var x: UInt64 = 0
    while k < e {
      guard let d = hexValue(p[k]) else { return .bad }
      x = x << 4 | UInt64(d)
      k += 1
    }
    return .ok(x)
  }

  @inline(__always)
  static func hexValue(_ c: UInt8) -> UInt8? {
    if c &- 48 < 10 { return c &- 48 }
    let l = c | 0x20
    if l &- 97 < 6 { return l &- 87 }
    return nil
  }

  /// Maps a value name to its role. Known names first (`mm`, `table`, `tlb`, `vmaddr`, …);
  /// `argN` by the prototype; on a return probe the first value is the return value.
  @inline(__always)
  static func roleOf(
    _ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, function: KernelFunction, kind: ProbeHit.Kind,
    index: Int
  ) -> ValueRole? {
    let len = e - s
    if kind == .ret { return index == 0 ? .retval : nil }
    @inline(__always) func eq(_ lit: StaticString) -> Bool {
      guard lit.utf8CodeUnitCount == len else { return false }
      let q = lit.utf8Start
      for t in 0..<len where p[s + t] != q[t] { return false }
      return true
    }
    switch len {
    case 2: if eq("mm") { return .mm }
    case 3:
      if eq("tlb") { return .tlb }
      if eq("pte") { return .table }
    case 4:
      if eq("addr") { return .vmaddr }
      if eq("frag") { return .table }
      if eq("head") { return .table }
      if p[s] == UInt8(ascii: "a") && p[s + 1] == UInt8(ascii: "r") && p[s + 2] == UInt8(ascii: "g")
        && isDigit(p[s + 3])
      {
        let idx = Int(p[s + 3] &- 49)
        let roles = function.argumentRoles
        return idx >= 0 && idx < roles.count ? roles[idx] : nil
      }
    case 5: if eq("table") { return .table }
    case 6:
      if eq("vmaddr") { return .vmaddr }
      if eq("kernel") { return .kernel }
    case 7:
      if eq("pgtable") { return .table }
      if eq("address") { return .vmaddr }
    default: break
    }
    return nil
  }

  static func parseLost(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int, _ line: Int)
    -> LineKind
  {
    // "CPU:N [LOST M EVENTS]"
    var k = start
    var cpu: Int32 = 0
    var cd = 0
    while k < n && isDigit(p[k]) {
      if cd == 9 { return .malformed(.valueOverflow) }
      cpu = cpu &* 10 &+ Int32(p[k] &- 48)
      k += 1
      cd += 1
    }
    while k < n && isSpace(p[k]) { k += 1 }
    let lit: StaticString = "[LOST "
    guard cd > 0, n - k >= lit.utf8CodeUnitCount else { return .malformed(.badLostMarker) }
    for t in 0..<lit.utf8CodeUnitCount where p[k + t] != lit.utf8Start[t] {
      return .malformed(.badLostMarker)
    }
    k += lit.utf8CodeUnitCount
    var count: UInt64 = 0
    var dd = 0
    while k < n && isDigit(p[k]) {
      let (m, o1) = count.multipliedReportingOverflow(by: 10)
      let (a, o2) = m.addingReportingOverflow(UInt64(p[k] &- 48))
      if o1 || o2 { return .malformed(.valueOverflow) }
      count = a
      k += 1
      dd += 1
    }
    guard dd > 0 else { return .malformed(.badLostMarker) }
    return .lost(LostMarker(line: line, cpu: cpu, count: count))
  }
}
