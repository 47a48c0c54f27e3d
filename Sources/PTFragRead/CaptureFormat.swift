import PTFragEvents

/// The layout of a capture's (decompressed) bytes.
public enum CaptureFormat: String, Sendable, CaseIterable {
  /// ftrace text: `/sys/kernel/tracing/trace`, `trace_pipe`, `trace-cmd report`.
  case text = "ftrace-text"
  /// ptfrag's JSON schema, one object per line (docs/json-input.md).
  case jsonLines = "json-lines"
  /// ptfrag's JSON schema, one array of objects.
  case jsonArray = "json-array"
}

/// What the detector found: the layout, and whether the bytes were gzip-compressed.
public struct DetectedFormat: Sendable, Equatable {
  public var format: CaptureFormat
  public var gzip: Bool
  public init(format: CaptureFormat, gzip: Bool) {
    self.format = format
    self.gzip = gzip
  }
  /// `ftrace-text`, `json-lines+gzip`, …: the name reports use.
  public var name: String { format.rawValue + (gzip ? "+gzip" : "") }
}

/// A byte source that first hands out bytes already read (while sniffing), then the rest.
public struct PrefixedSource<Base: ByteSource>: ByteSource {
  public var name: String { base.name }
  private var prefix: [UInt8]
  private var offset = 0
  private var base: Base
  public init(prefix: [UInt8], base: Base) {
    self.prefix = prefix
    self.base = base
  }
  public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ReadError) -> Int {
    if offset < prefix.count {
      let n = min(buffer.count, prefix.count - offset)
      prefix.withUnsafeBytes { src in
        buffer.baseAddress!.copyMemory(from: src.baseAddress! + offset, byteCount: n)
      }
      offset += n
      if offset == prefix.count {
        prefix = []
        offset = 0
      }
      return n
    }
    return try base.read(into: buffer)
  }
}

/// Any byte source behind one type (reads are per chunk, so the indirection costs nothing).
public struct AnyByteSource: ByteSource {
  private var base: any ByteSource
  public init(_ base: any ByteSource) { self.base = base }
  public var name: String { base.name }
  public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ReadError) -> Int {
    try base.read(into: buffer)
  }
}

/// Detects a capture's format from its first bytes and hands out its decompressed bytes:
///
/// 1. gzip magic `1f 8b` at the start → decompress (GzipSource), then go on with step 2 on
///    the decompressed bytes;
/// 2. the first byte that is not blank (space, tab, CR, LF; a UTF-8 byte-order mark is
///    skipped) is `{` → JSON Lines, `[` → a JSON array, anything else (or nothing) → text.
///
/// Works on pipes (`-`): the sniffed bytes are replayed, nothing is seeked.
public struct CaptureInput: ByteSource {
  public let detected: DetectedFormat
  private var source: AnyByteSource
  public var name: String { source.name }

  /// Blank bytes read while looking for the first significant byte, at most.
  static let maxSniffBytes = 16 << 20

  /// Opens `path` (`-` = standard input) and detects its format.
  public static func open(path: String) throws(ReadError) -> CaptureInput {
    try CaptureInput(sniffing: FileSource(path: path))
  }

  public init<S: ByteSource>(sniffing raw: S) throws(ReadError) {
    var raw = raw
    let (head, _) = try Self.sniff(&raw) { bytes in bytes.count >= 2 }
    if head.count >= 2 && head[0] == 0x1f && head[1] == 0x8b {
      var gz = AnyByteSource(try GzipSource(PrefixedSource(prefix: head, base: raw)))
      let (inner, first) = try Self.sniff(&gz) { Self.firstSignificant($0) != nil }
      detected = DetectedFormat(format: Self.format(first), gzip: true)
      source = AnyByteSource(PrefixedSource(prefix: inner, base: gz))
    } else {
      var plain = AnyByteSource(PrefixedSource(prefix: head, base: raw))
      let (bytes, first) = try Self.sniff(&plain) { Self.firstSignificant($0) != nil }
      detected = DetectedFormat(format: Self.format(first), gzip: false)
      source = AnyByteSource(PrefixedSource(prefix: bytes, base: plain))
    }
  }

  public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ReadError) -> Int {
    try source.read(into: buffer)
  }

  /// Reads from `s` until `enough(bytes)` or end of input (or `maxSniffBytes`); returns the
  /// bytes read and the first significant byte among them.
  static func sniff<S: ByteSource>(_ s: inout S, enough: ([UInt8]) -> Bool) throws(ReadError)
    -> ([UInt8], UInt8?)
  {
    var bytes: [UInt8] = []
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
    defer { chunk.deallocate() }
    while !enough(bytes) && bytes.count < maxSniffBytes {
      let n = try s.read(into: chunk)
      if n == 0 { break }
      bytes += UnsafeRawBufferPointer(rebasing: chunk[0..<n])
    }
    return (bytes, firstSignificant(bytes))
  }

  static func firstSignificant(_ bytes: [UInt8]) -> UInt8? {
    var i = 0
    if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { i = 3 }
    while i < bytes.count {
      switch bytes[i] {
      case 0x20, 0x09, 0x0D, 0x0A: i += 1
      default: return bytes[i]
      }
    }
    return nil
  }

  static func format(_ first: UInt8?) -> CaptureFormat {
    switch first {
    case UInt8(ascii: "{")?: .jsonLines
    case UInt8(ascii: "[")?: .jsonArray
    default: .text
    }
  }
}

/// Reads a capture of any format ptfrag knows, in record order.
public enum CaptureReader {
  /// Reads `input` with the reader its detected format calls for. The returned diagnostics
  /// carry the format's name (`ReadDiagnostics.format`).
  public static func read(
    _ input: inout CaptureInput, _ body: (TraceRecord) throws(ReadError) -> Void
  ) throws(ReadError) -> ReadDiagnostics {
    var d: ReadDiagnostics
    switch input.detected.format {
    case .text: d = try TextCaptureReader().read(&input, body)
    case .jsonLines, .jsonArray: d = try JSONCaptureReader().read(&input, body)
    }
    d.format = input.detected
    return d
  }

  /// Opens `path` (`-` = standard input), detects its format, and reads it.
  public static func read(path: String, _ body: (TraceRecord) throws(ReadError) -> Void)
    throws(ReadError) -> ReadDiagnostics
  {
    var input = try CaptureInput.open(path: path)
    return try read(&input, body)
  }
}
