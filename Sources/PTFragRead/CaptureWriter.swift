import PTFragEvents

/// Bytes viewed in place (valid only while the record that holds them is being handled).
public typealias ByteView = UnsafeBufferPointer<UInt8>

extension UnsafeBufferPointer where Element == UInt8 {
  /// An empty view.
  public static var none: ByteView { ByteView(start: nil, count: 0) }
  /// Views `bytes[range]`.
  @inline(__always)
  public subscript(view range: Range<Int>) -> ByteView {
    ByteView(rebasing: self[range])
  }
}

/// One record of a capture with everything it prints, format-independent: what `ptfrag
/// convert` moves between text and JSON. Views are valid only during the callback that
/// hands the record out.
public struct CaptureRecordFields {
  public enum Kind: Sendable { case probe, lost, text }
  /// The `(tgid)` column: absent, `(-------)`, or a number.
  public enum Tgid: Equatable, Sendable {
    case absent, unknown
    case value(Int32)
  }
  /// A named value as it appeared: text as printed (hex, or `(fault)`), a JSON number
  /// literal (decimal), or a JSON null.
  public enum Value {
    case text(ByteView)
    case number(ByteView, UInt64)
    case null
  }

  public var kind: Kind = .text
  /// 1-based line (text, JSON Lines) or element (JSON array).
  public var number = 0
  /// The line was the input's last and had no newline.
  public var unterminated = false

  // Probe records.
  public var comm = ByteView.none
  public var pid: Int32 = 0
  public var tgid = Tgid.absent
  public var cpu: Int32 = 0
  public var flags: ByteView? = nil
  /// Nanoseconds, and how many fraction digits the timestamp was written with (6 in
  /// ftrace's `seconds.micros`).
  public var timestampNs: UInt64 = 0
  public var timestampDigits = 6
  public var event = ByteView.none
  /// The probed function as printed (suffixes such as `.isra.0` kept).
  public var function = ByteView.none
  public var probe = ProbeHit.Kind.entry
  /// Entry probes: the location as printed (`page_table_alloc+0x0/0x2c8`).
  public var site: ByteView? = nil
  /// Return probes: where the function returned to (`copy_page_range+0xd32/0x1500`).
  public var caller: ByteView? = nil
  public var values: [(name: ByteView, value: Value)] = []

  // Lost records.
  public var lostCPU: Int32 = 0
  public var lostEvents: UInt64 = 0

  // Text records: a line kept verbatim, or the size of an overlong line left out.
  public var text = ByteView.none
  public var omitted: Int? = nil

  public init() {}
}

/// Writes ftrace text exactly as the kernel prints it (kernel/trace/trace_output.c,
/// `trace_print_context` and the kprobe event printers):
///
///     %16s-%-7d [(%7s) ][%03d] [flags ]%5lu.%06lu: event: (location) name=value…
public enum TextLineWriter {
  /// `comm-pid [(tgid)] [cpu] [flags] seconds.fraction: `
  @inline(__always)
  public static func context(
    _ o: ByteSink, comm: ByteView, pid: Int32, tgid: CaptureRecordFields.Tgid = .absent,
    cpu: Int32, flags: ByteView?, timestampNs: UInt64, digits: Int = 6
  ) throws(WriteError) {
    try o.spaces(16 - comm.count)
    try o.bytes(comm)
    try o.byte(UInt8(ascii: "-"))
    let pidValue = UInt64(max(pid, 0))
    try o.decimal(pidValue)
    try o.spaces(7 - ByteSink.decimalWidth(pidValue) + 1)
    switch tgid {
    case .absent: break
    case .unknown: try o.literal("(-------) ")
    case .value(let t):
      try o.byte(UInt8(ascii: "("))
      let tv = UInt64(max(t, 0))
      try o.spaces(7 - ByteSink.decimalWidth(tv))
      try o.decimal(tv)
      try o.literal(") ")
    }
    try o.byte(UInt8(ascii: "["))
    try o.decimal(UInt64(max(cpu, 0)), minDigits: 3)
    try o.literal("] ")
    if let flags {
      try o.bytes(flags)
      try o.byte(0x20)
    }
    try timestamp(o, timestampNs, digits: digits)
    try o.literal(": ")
  }

  /// `%5lu.%0Nlu` (N = `digits`, 1…9; the nanoseconds below N digits are cut).
  @inline(__always)
  public static func timestamp(_ o: ByteSink, _ ns: UInt64, digits: Int) throws(WriteError) {
    let d = min(max(digits, 1), 9)
    let secs = ns / 1_000_000_000
    var frac = ns % 1_000_000_000
    for _ in d..<9 { frac /= 10 }
    try o.spaces(5 - ByteSink.decimalWidth(secs))
    try o.decimal(secs)
    try o.byte(UInt8(ascii: "."))
    try o.decimal(frac, minDigits: d)
  }

  /// `event: (site)` for an entry probe.
  @inline(__always)
  public static func entry(_ o: ByteSink, event: ByteView, site: ByteView) throws(WriteError) {
    try o.bytes(event)
    try o.literal(": (")
    try o.bytes(site)
    try o.byte(UInt8(ascii: ")"))
  }

  /// `event: (caller <- function)` for a return probe.
  @inline(__always)
  public static func ret(_ o: ByteSink, event: ByteView, caller: ByteView, function: ByteView)
    throws(WriteError)
  {
    try o.bytes(event)
    try o.literal(": (")
    try o.bytes(caller)
    try o.literal(" <- ")
    try o.bytes(function)
    try o.byte(UInt8(ascii: ")"))
  }

  /// ` name=0x…`
  @inline(__always)
  public static func value(_ o: ByteSink, name: StaticString, _ v: UInt64) throws(WriteError) {
    try o.byte(0x20)
    try o.literal(name)
    try o.byte(UInt8(ascii: "="))
    try o.hex(v)
  }

  /// `CPU:N [LOST M EVENTS]`
  public static func lost(_ o: ByteSink, cpu: Int32, events: UInt64) throws(WriteError) {
    try o.literal("CPU:")
    try o.decimal(UInt64(max(cpu, 0)))
    try o.literal(" [LOST ")
    try o.decimal(events)
    try o.literal(" EVENTS]")
  }

  /// Writes a whole record (without its newline).
  public static func record(_ o: ByteSink, _ r: CaptureRecordFields) throws(WriteError) {
    switch r.kind {
    case .text:
      try o.bytes(r.text)
    case .lost:
      try lost(o, cpu: r.lostCPU, events: r.lostEvents)
    case .probe:
      try context(
        o, comm: r.comm, pid: r.pid, tgid: r.tgid, cpu: r.cpu, flags: r.flags,
        timestampNs: r.timestampNs, digits: r.timestampDigits)
      // Defaults for JSON that lacks them: event = the function (`<function>_ret` for a
      // return), site = the bare function, caller = `unknown`.
      if r.event.count > 0 {
        try o.bytes(r.event)
      } else {
        try o.bytes(r.function)
        if r.probe == .ret { try o.literal("_ret") }
      }
      try o.literal(": (")
      if r.probe == .ret {
        if let c = r.caller, c.count > 0 { try o.bytes(c) } else { try o.literal("unknown") }
        try o.literal(" <- ")
        try o.bytes(r.function)
      } else if let site = r.site, site.count > 0 {
        try o.bytes(site)
      } else {
        try o.bytes(r.function)
      }
      try o.byte(UInt8(ascii: ")"))
      for (name, v) in r.values {
        try o.byte(0x20)
        try o.bytes(name)
        try o.byte(UInt8(ascii: "="))
        switch v {
        case .text(let t): try o.bytes(t)
        case .number(_, let x): try o.hex(x)
        case .null: try o.literal("(fault)")
        }
      }
    }
  }

}

/// Writes records in ptfrag's JSON schema (docs/json-input.md), one object per record,
/// keys in a fixed order, no blanks.
public enum JSONRecordWriter {
  /// Writes one object (without a separator or newline). Returns false when a string was
  /// not valid UTF-8 (its bad bytes were replaced with U+FFFD).
  @discardableResult
  public static func record(_ o: ByteSink, _ r: CaptureRecordFields) throws(WriteError) -> Bool {
    var clean = true
    switch r.kind {
    case .text:
      try o.literal("{\"type\":\"text\",\"text\":")
      clean = try string(o, r.text) && clean
      if let n = r.omitted {
        try o.literal(",\"omitted\":")
        try o.decimal(UInt64(max(n, 0)))
      }
    case .lost:
      try o.literal("{\"type\":\"lost\",\"cpu\":")
      try o.decimal(UInt64(max(r.lostCPU, 0)))
      try o.literal(",\"events\":")
      try o.decimal(r.lostEvents)
    case .probe:
      try o.literal("{\"ts\":")
      let d = min(max(r.timestampDigits, 1), 9)
      var frac = r.timestampNs % 1_000_000_000
      for _ in d..<9 { frac /= 10 }
      try o.decimal(r.timestampNs / 1_000_000_000)
      try o.byte(UInt8(ascii: "."))
      try o.decimal(frac, minDigits: d)
      try o.literal(",\"cpu\":")
      try o.decimal(UInt64(max(r.cpu, 0)))
      try o.literal(",\"pid\":")
      try o.decimal(UInt64(max(r.pid, 0)))
      switch r.tgid {
      case .absent: break
      case .unknown: try o.literal(",\"tgid\":null")
      case .value(let t):
        try o.literal(",\"tgid\":")
        try o.decimal(UInt64(max(t, 0)))
      }
      try o.literal(",\"comm\":")
      clean = try string(o, r.comm) && clean
      if let f = r.flags {
        try o.literal(",\"flags\":")
        clean = try string(o, f) && clean
      }
      if r.event.count > 0 {
        try o.literal(",\"event\":")
        clean = try string(o, r.event) && clean
      }
      try o.literal(",\"function\":")
      clean = try string(o, r.function) && clean
      if r.probe == .ret {
        try o.literal(",\"probe\":\"return\"")
        if let c = r.caller {
          try o.literal(",\"caller\":")
          clean = try string(o, c) && clean
        }
      } else {
        try o.literal(",\"probe\":\"entry\"")
        if let s = r.site {
          try o.literal(",\"site\":")
          clean = try string(o, s) && clean
        }
      }
      try o.literal(",\"values\":{")
      for (i, (name, v)) in r.values.enumerated() {
        if i > 0 { try o.byte(UInt8(ascii: ",")) }
        clean = try string(o, name) && clean
        try o.byte(UInt8(ascii: ":"))
        switch v {
        case .text(let t): clean = try string(o, t) && clean
        case .number(let lit, _): try o.bytes(lit)
        case .null: try o.literal("null")
        }
      }
      try o.byte(UInt8(ascii: "}"))
    }
    if r.unterminated { try o.literal(",\"unterminated\":true") }
    try o.byte(UInt8(ascii: "}"))
    return clean
  }

  /// A JSON string: `"`, `\`, and control characters escaped; valid UTF-8 copied; each
  /// byte of an invalid sequence replaced by U+FFFD. Returns false if any was replaced.
  public static func string(_ o: ByteSink, _ b: ByteView) throws(WriteError) -> Bool {
    try o.byte(UInt8(ascii: "\""))
    var clean = true
    var k = 0
    var runStart = 0
    @inline(__always) func flushRun(_ upTo: Int) throws(WriteError) {
      if upTo > runStart { try o.bytes(b[view: runStart..<upTo]) }
    }
    while k < b.count {
      let c = b[k]
      if c >= 0x20 && c < 0x80 && c != UInt8(ascii: "\"") && c != UInt8(ascii: "\\") {
        k += 1
        continue
      }
      if c >= 0x80 {
        let n = utf8SequenceLength(b, k)
        if n > 0 {
          k += n
          continue
        }
        try flushRun(k)
        try o.literal("\u{FFFD}")
        clean = false
        k += 1
        runStart = k
        continue
      }
      try flushRun(k)
      switch c {
      case UInt8(ascii: "\""): try o.literal("\\\"")
      case UInt8(ascii: "\\"): try o.literal("\\\\")
      case 0x0A: try o.literal("\\n")
      case 0x0D: try o.literal("\\r")
      case 0x09: try o.literal("\\t")
      default:
        try o.literal("\\u00")
        let hexDigits: StaticString = "0123456789abcdef"
        try o.byte(hexDigits.utf8Start[Int(c >> 4)])
        try o.byte(hexDigits.utf8Start[Int(c & 0xf)])
      }
      k += 1
      runStart = k
    }
    try flushRun(k)
    try o.byte(UInt8(ascii: "\""))
    return clean
  }

  /// Length of the valid UTF-8 sequence starting at `b[k]` (a byte ≥ 0x80), 0 if invalid.
  static func utf8SequenceLength(_ b: ByteView, _ k: Int) -> Int {
    let c = b[k]
    let n: Int
    let minValue: UInt32
    var v: UInt32
    switch c {
    case 0xC2...0xDF: n = 2; v = UInt32(c & 0x1F); minValue = 0x80
    case 0xE0...0xEF: n = 3; v = UInt32(c & 0x0F); minValue = 0x800
    case 0xF0...0xF4: n = 4; v = UInt32(c & 0x07); minValue = 0x10000
    default: return 0
    }
    guard k + n <= b.count else { return 0 }
    for j in 1..<n {
      let cc = b[k + j]
      guard cc & 0xC0 == 0x80 else { return 0 }
      v = v << 6 | UInt32(cc & 0x3F)
    }
    if v < minValue || v > 0x10FFFF || (v >= 0xD800 && v < 0xE000) { return 0 }
    return n
  }
}
