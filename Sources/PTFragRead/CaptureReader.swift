import PTFragEvents

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What reading a capture noticed besides its records: malformed lines (counted, the first
/// few kept with their line numbers), foreign probe lines, and the event names seen per
/// probed function (to resolve a kprobe_profile, which is keyed by event name).
public struct ReadDiagnostics: Sendable {
  public struct Sample: Sendable, Equatable {
    /// 1-based line.
    public var line: Int
    public var reason: String
  }
  /// Malformed lines in total.
  public var malformedCount = 0
  /// The first `maxSamples` malformed lines.
  public var samples: [Sample] = []
  public var maxSamples = 10
  /// Well-formed probe lines of functions outside the models.
  public var foreignLines = 0
  /// Lines read in total (text and JSON Lines; records for a JSON array), and the bytes read
  /// (after decompression).
  public var lines = 0
  public var bytes: UInt64 = 0
  /// The last line had no newline (a capture cut while being written).
  public var truncatedLastLine: Int? = nil
  /// 1-based line (JSON array: element) of a record the input ends inside of — a last line
  /// without newline that does not parse, a JSON record or array never closed: the capture was
  /// cut while being written, and the report is incomplete (exit 65).
  public var cutLine: Int? = nil
  /// 1-based line of the last malformed line counted.
  public var lastMalformedLine: Int? = nil
  /// Event names seen in the capture, by the function they probe and entry/return.
  public var eventNames: [String: (KernelFunction, ProbeHit.Kind)] = [:]
  /// `entries-in-buffer/entries-written: A/B` from the header, when present.
  public var entriesInBuffer: UInt64? = nil
  public var entriesWritten: UInt64? = nil
  /// Timestamps that went backwards on the same CPU (ftrace guarantees per-CPU order).
  public var backwardsTimestamps = 0
  public var firstBackwardsLine: Int? = nil
  /// The layout the input was read as (set by `CaptureReader`; text otherwise).
  public var format = DetectedFormat(format: .text, gzip: false)

  public init() {}

  /// Malformed lines that name a probed function: events that may be missing from the replay.
  public var damagedProbeLines = 0

  mutating func malformed(_ line: Int, _ reason: String) {
    malformedCount += 1
    lastMalformedLine = line
    if samples.count < maxSamples { samples.append(Sample(line: line, reason: reason)) }
  }
}

/// Bookkeeping every reader does per probe hit: the event names seen (learned without a
/// String per hit) and per-CPU timestamp order.
struct HitTally {
  /// Last-seen event name per (function, kind).
  private var learned = [[UInt8]?](repeating: nil, count: KernelFunction.allCases.count * 2)
  /// Last timestamp per CPU (CPUs 0…63; others are not checked).
  private var lastTs = [UInt64](repeating: 0, count: 64)

  @inline(__always)
  mutating func note(
    _ h: ProbeHit, eventName name: UnsafeBufferPointer<UInt8>, line: Int,
    _ d: inout ReadDiagnostics
  ) {
    let slot = Int(h.function.rawValue) * 2 + (h.kind == .ret ? 1 : 0)
    if name.count > 0, !Self.same(learned[slot], name) {
      let bytes = Array(name)
      learned[slot] = bytes
      d.eventNames[String(decoding: bytes, as: UTF8.self)] = (h.function, h.kind)
    }
    if h.cpu >= 0 && h.cpu < 64 {
      if h.timestampNs < lastTs[Int(h.cpu)] {
        d.backwardsTimestamps += 1
        if d.firstBackwardsLine == nil { d.firstBackwardsLine = line }
      }
      lastTs[Int(h.cpu)] = h.timestampNs
    }
  }
}

extension HitTally {
  @inline(__always)
  static func same(_ known: [UInt8]?, _ name: UnsafeBufferPointer<UInt8>) -> Bool {
    guard let known, known.count == name.count else { return false }
    return known.withUnsafeBufferPointer { k in
      bytesEqual(UnsafeRawPointer(k.baseAddress!), UnsafeRawPointer(name.baseAddress!), name.count)
    }
  }
}

/// Reads an ftrace text capture from a byte source and hands out its records in line order.
public struct TextCaptureReader {
  public var splitter = LineSplitter()
  public init() {}

  /// Reads everything; `body` gets every record. Malformed lines are counted in the returned
  /// diagnostics, never thrown: the caller applies its tolerance.
  public func read<S: ByteSource>(
    _ source: inout S, _ body: (TraceRecord) throws(ReadError) -> Void
  ) throws(ReadError) -> ReadDiagnostics {
    var d = ReadDiagnostics()
    var tally = HitTally()
    var scratch = LineScratch()
    let overlongLimit = splitter.maxLineBytes
    let (lines, bytes) = try splitter.forEachLine(
      in: &source,
      overlong: { line, n in d.malformed(line, Self.overlongReason(n, limit: overlongLimit)) },
      unterminatedLast: { line in d.truncatedLastLine = line }
    ) { (buf, lineNo) throws(ReadError) in
      if lineNo == d.truncatedLastLine {
        // ftrace ends every line with '\n': a last line without one was cut while being
        // written, and any of its values may be cut short (`table=0x388` of `0x388f8`). It is
        // not replayed; the capture is incomplete.
        Self.cut(buf, lineNo, &d)
        return
      }
      try Self.handle(buf, lineNo, &d, &tally, &scratch, body)
    }
    d.lines = lines
    d.bytes = bytes
    return d
  }

  static let cutReason =
    "the capture ends inside this line (no newline): cut while being written, its values cannot be trusted"

  /// The last line, cut: counted as malformed, as a damaged event when it names a probed
  /// function, and as the line the capture ends inside.
  static func cut(_ buf: UnsafeBufferPointer<UInt8>, _ lineNo: Int, _ d: inout ReadDiagnostics) {
    d.malformed(lineNo, cutReason)
    if namesAProbedFunction(buf) { d.damagedProbeLines += 1 }
    d.cutLine = lineNo
  }

  static func overlongReason(_ n: Int, limit: Int) -> String {
    "line of \(n) bytes is longer than the \(limit)-byte limit"
  }

  /// Storage the per-line path reuses.
  struct LineScratch {
    var fields = LineFields()
    var hit = ProbeHit(
      line: 0, timestampNs: 0, cpu: 0, pid: 0, comm: Comm(), function: .pageTableAlloc,
      kind: .entry)
  }

  /// Parses one text line (1-based `lineNo`) and hands its record to `body`, or counts it.
  @inline(__always)
  static func handle(
    _ buf: UnsafeBufferPointer<UInt8>, _ lineNo: Int, _ d: inout ReadDiagnostics,
    _ tally: inout HitTally, _ scratch: inout LineScratch,
    _ body: (TraceRecord) throws(ReadError) -> Void
  ) throws(ReadError) {
    switch FtraceLineParser.parseLine(
      buf, lineNumber: lineNo, fields: &scratch.fields, hit: &scratch.hit)
    {
    case .hit:
      tally.note(
        scratch.hit, eventName: UnsafeBufferPointer(rebasing: buf[scratch.fields.eventName]),
        line: lineNo, &d)
      try body(.hit(scratch.hit))
    case .lost(let m):
      try body(.lost(m))
    case .skip:
      if lineNo < 40 { header(buf, &d) }
    case .foreign:
      d.foreignLines += 1
    case .malformed(let why):
      d.malformed(lineNo, why.text)
      if Self.namesAProbedFunction(buf) { d.damagedProbeLines += 1 }
    }
  }

  /// Whether a line names a function the models replay (a damaged event, not an oops splat).
  static func namesAProbedFunction(_ buf: UnsafeBufferPointer<UInt8>) -> Bool {
    for f in KernelFunction.allCases {
      let sym = Array(f.symbol.utf8)
      guard buf.count >= sym.count else { continue }
      var i = 0
      while i + sym.count <= buf.count {
        if buf[i] == sym[0] {
          var k = 1
          while k < sym.count && buf[i + k] == sym[k] { k += 1 }
          if k == sym.count { return true }
        }
        i += 1
      }
    }
    return false
  }

  /// Picks `entries-in-buffer/entries-written: A/B` out of a header comment.
  static func header(_ buf: UnsafeBufferPointer<UInt8>, _ d: inout ReadDiagnostics) {
    let key = Array("entries-in-buffer/entries-written:".utf8)
    guard buf.count > key.count + 2 else { return }
    var start = -1
    outer: for i in 0...(buf.count - key.count) {
      for k in 0..<key.count where buf[i + k] != key[k] { continue outer }
      start = i + key.count
      break
    }
    guard start >= 0 else { return }
    var i = start
    func number() -> UInt64? {
      while i < buf.count && buf[i] == UInt8(ascii: " ") { i += 1 }
      var v: UInt64 = 0
      var any = false
      var overflow = false
      while i < buf.count && buf[i] &- 48 < 10 {
        let (m, o1) = v.multipliedReportingOverflow(by: 10)
        let (s, o2) = m.addingReportingOverflow(UInt64(buf[i] &- 48))
        overflow = overflow || o1 || o2
        v = s
        i += 1
        any = true
      }
      // A count past 64 bits is no count: the header is ignored rather than wrapped.
      return any && !overflow ? v : nil
    }
    guard let a = number(), i < buf.count, buf[i] == UInt8(ascii: "/") else { return }
    i += 1
    guard let b = number() else { return }
    d.entriesInBuffer = a
    d.entriesWritten = b
  }
}

/// `/sys/kernel/tracing/kprobe_profile`: per event name, hits and silent misses.
public struct KprobeProfile: Sendable, Equatable {
  public struct Entry: Sendable, Equatable {
    public var event: String
    public var hits: UInt64
    public var misses: UInt64
  }
  public var entries: [Entry]

  public init(entries: [Entry]) { self.entries = entries }

  /// Parses the profile text: `name hits misses` per line, blank lines ignored.
  public static func parse(_ text: String, path: String) throws(ReadError) -> KprobeProfile {
    var entries: [Entry] = []
    for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let fields = raw.split(whereSeparator: { $0 == " " || $0 == "\t" })
      if fields.isEmpty { continue }
      guard fields.count == 3, let h = UInt64(fields[1]), let m = UInt64(fields[2]) else {
        throw .malformed(
          path: path, line: i + 1, reason: "kprobe_profile line is not 'event hits misses'")
      }
      entries.append(Entry(event: String(fields[0]), hits: h, misses: m))
    }
    if entries.isEmpty {
      throw .malformed(path: path, line: 1, reason: "kprobe_profile has no entries")
    }
    return KprobeProfile(entries: entries)
  }

  /// Reads and parses a profile file.
  public static func load(path: String) throws(ReadError) -> KprobeProfile {
    var src = try FileSource(path: path)
    let bytes = try src.readAll(limit: 16 << 20, what: "kprobe_profile")
    return try parse(String(decoding: bytes, as: UTF8.self), path: path)
  }

  /// Misses per probed function, resolving event names through the names seen in the capture,
  /// else through the name itself (`group/name` → `name`) when it is a known symbol
  /// (`page_table_alloc_ret` style names resolve to the return probe of their stem).
  public func missesByFunction(eventNames: [String: (KernelFunction, ProbeHit.Kind)])
    -> [KernelFunction: UInt64]
  {
    var out: [KernelFunction: UInt64] = [:]
    for e in entries {
      if let f = Self.function(of: e, eventNames: eventNames) { out[f, default: 0] += e.misses }
    }
    return out
  }

  /// Hits per probed function (entry and return probes together), resolved as in
  /// `missesByFunction`; every function the profile has a probe on is a key.
  public func hitsByFunction(eventNames: [String: (KernelFunction, ProbeHit.Kind)])
    -> [KernelFunction: UInt64]
  {
    var out: [KernelFunction: UInt64] = [:]
    for e in entries {
      if let f = Self.function(of: e, eventNames: eventNames) { out[f, default: 0] += e.hits }
    }
    return out
  }

  /// The function an entry probes: through the event names seen in the capture, else its name.
  static func function(of e: Entry, eventNames: [String: (KernelFunction, ProbeHit.Kind)])
    -> KernelFunction?
  {
    let short = e.event.split(separator: "/").last.map(String.init) ?? e.event
    if let (fn, _) = eventNames[e.event] ?? eventNames[short] { return fn }
    let bySymbol = Dictionary(uniqueKeysWithValues: KernelFunction.allCases.map { ($0.symbol, $0) })
    if let fn = bySymbol[short] { return fn }
    if short.hasSuffix("_ret"), let fn = bySymbol[String(short.dropLast(4))] { return fn }
    return nil
  }

  /// Hits per probed function, resolved as in `missesByFunction`.
  public func covers(_ f: KernelFunction, eventNames: [String: (KernelFunction, ProbeHit.Kind)])
    -> Bool
  {
    let bySymbol = Dictionary(uniqueKeysWithValues: KernelFunction.allCases.map { ($0.symbol, $0) })
    for e in entries {
      let short = e.event.split(separator: "/").last.map(String.init) ?? e.event
      if let (fn, _) = eventNames[e.event] ?? eventNames[short], fn == f { return true }
      if bySymbol[short] == f { return true }
    }
    return false
  }
}
