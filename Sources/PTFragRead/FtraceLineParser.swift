import PTFragEvents

/// Why a line was not a probe hit ptfrag could use. Stable strings: they appear in reports.
public enum MalformedReason: UInt8, Sendable, CaseIterable {
  case noTaskPid, noCPU, noTimestamp, noEventName, noLocation, badValue, valueOverflow
  case badLostMarker, controlBytes

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

/// Parses one line of `/sys/kernel/tracing/trace`, `trace_pipe` or `trace-cmd report` output:
///
///     comm-pid [(tgid)] [cpu] [flags] seconds.frac: event: (location) name=value …
///
/// Byte-level, no allocation on the hit path. See trace-format.md for the variants.
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
    guard let p = line.baseAddress else { return .skip }
    var n = line.count
    while n > 0 && (p[n - 1] == 13 || isSpace(p[n - 1])) { n -= 1 }  // CR, trailing blanks
    var i = 0
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
      if p[j] == UInt8(ascii: "[") && isSpace(p[j - 1]) {
        var k = j + 1
        while k < n && isDigit(p[k]) { k += 1 }
        if k > j + 1 && k < n && p[k] == UInt8(ascii: "]") {
          // Walk back over blanks and an optional (tgid) column.
          var b = j - 1
          while b > commStart && isSpace(p[b]) { b -= 1 }
          if p[b] == UInt8(ascii: ")") {
            var o = b - 1
            while o > commStart && p[o] != UInt8(ascii: "(") { o -= 1 }
            b = o - 1
            while b > commStart && isSpace(p[b]) { b -= 1 }
          }
          var d = b
          while d > commStart && isDigit(p[d]) { d -= 1 }
          if d < b && p[d] == UInt8(ascii: "-") && d >= commStart {
            cpuOpen = j
            dash = d
            pidEnd = b + 1
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
    while x < pidEnd {
      pid = pid &* 10 &+ Int32(p[x] &- 48)
      x += 1
    }
    let comm = Comm(UnsafeBufferPointer(start: p + commStart, count: dash - commStart))
    var cpu: Int32 = 0
    x = cpuOpen + 1
    while p[x] != UInt8(ascii: "]") {
      cpu = cpu &* 10 &+ Int32(p[x] &- 48)
      x += 1
    }
    i = x + 1

    // Flags column (optional), then "seconds.frac:".
    func token(_ from: Int) -> (Int, Int) {
      var s = from
      while s < n && isSpace(p[s]) { s += 1 }
      var e = s
      while e < n && !isSpace(p[e]) { e += 1 }
      return (s, e)
    }
    var (ts, te) = token(i)
    if !looksLikeTimestamp(p, ts, te) {
      (ts, te) = token(te)
      if !looksLikeTimestamp(p, ts, te) { return .malformed(.noTimestamp) }
    }
    var secs: UInt64 = 0
    var k = ts
    while p[k] != UInt8(ascii: ".") {
      secs = secs &* 10 &+ UInt64(p[k] &- 48)
      k += 1
    }
    k += 1
    var frac: UInt64 = 0
    var digits = 0
    while p[k] != UInt8(ascii: ":") {
      if digits < 9 {
        frac = frac &* 10 &+ UInt64(p[k] &- 48)
        digits += 1
      }
      k += 1
    }
    while digits < 9 {
      frac &*= 10
      digits += 1
    }
    let timestampNs = secs &* 1_000_000_000 &+ frac

    // Event name "name:" (user's choice; ignored except as a token).
    let (es, ee) = token(te)
    if es >= n || ee - es < 2 || p[ee - 1] != UInt8(ascii: ":") { return .malformed(.noEventName) }
    eventName = es..<(ee - 1)

    // Location "(func+off/size)" or "(caller+off/size <- func)".
    var ls = ee
    while ls < n && isSpace(p[ls]) { ls += 1 }
    guard ls < n && p[ls] == UInt8(ascii: "(") else { return .malformed(.noLocation) }
    var le = ls + 1
    while le < n && p[le] != UInt8(ascii: ")") { le += 1 }
    guard le < n else { return .malformed(.noLocation) }
    var arrow = -1
    var a = ls + 1
    while a + 1 < le {
      if p[a] == UInt8(ascii: "<") && p[a + 1] == UInt8(ascii: "-") {
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
      funcEnd = funcStart
      while funcEnd < le && p[funcEnd] != UInt8(ascii: "+") { funcEnd += 1 }
    }
    guard funcEnd > funcStart else { return .malformed(.noLocation) }
    guard
      let function = KernelFunction.lookup(
        UnsafeBufferPointer(start: p + funcStart, count: funcEnd - funcStart))
    else { return .foreign }

    var hit = ProbeHit(
      line: lineNumber, timestampNs: timestampNs, cpu: cpu, pid: pid, comm: comm,
      function: function, kind: kind, caller: caller)

    // name=value pairs.
    var v = le + 1
    var valueIndex = 0
    while v < n {
      while v < n && isSpace(p[v]) { v += 1 }
      if v >= n { break }
      let ns = v
      while v < n && p[v] != UInt8(ascii: "=") && !isSpace(p[v]) { v += 1 }
      guard v < n && p[v] == UInt8(ascii: "=") else {
        // A bare token: not a named value; skip it.
        continue
      }
      let nameEnd = v
      v += 1
      let vs = v
      while v < n && !isSpace(p[v]) { v += 1 }
      let value: UInt64
      switch parseHex(p, vs, v) {
      case .ok(let x): value = x
      case .overflow: return .malformed(.valueOverflow)
      case .bad:
        // "(fault)" and friends: the kernel could not fetch it. Treat as absent.
        valueIndex += 1
        continue
      }
      let role = roleOf(p, ns, nameEnd, function: function, kind: kind, index: valueIndex)
      valueIndex += 1
      switch role {
      case .mm?: hit.mm = value
      case .table?: hit.table = value
      case .tlb?: hit.tlb = value
      case .vmaddr?: hit.vmaddr = value
      case .retval?: hit.retval = value
      case .kernel?: hit.kernel = value
      case nil: break
      }
    }
    return .hit(hit)
  }

  @inline(__always)
  static func looksLikeTimestamp(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> Bool {
    // digits '.' digits ':'
    guard e - s >= 4, p[e - 1] == UInt8(ascii: ":") else { return false }
    var k = s
    var dot = false
    var before = 0
    var after = 0
    while k < e - 1 {
      let c = p[k]
      if c == UInt8(ascii: ".") {
        if dot { return false }
        dot = true
      } else if isDigit(c) {
        if dot { after += 1 } else { before += 1 }
      } else {
        return false
      }
      k += 1
    }
    return dot && before > 0 && before <= 10 && after > 0
  }

  enum HexResult { case ok(UInt64), bad, overflow }

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
    -> ParsedLine
  {
    // "CPU:N [LOST M EVENTS]"
    var k = start
    var cpu: Int32 = 0
    var cd = 0
    while k < n && isDigit(p[k]) {
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
