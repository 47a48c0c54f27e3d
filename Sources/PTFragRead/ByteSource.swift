#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Errors of the read layer. Each maps to a documented exit code (see `exitCode`).
public enum ReadError: Error, Sendable, Equatable {
  /// The input does not exist (exit 66).
  case missing(path: String)
  /// The input exists but cannot be opened for reading (permissions; exit 66).
  case unreadable(path: String, reason: String)
  /// The input is a directory (exit 66).
  case isDirectory(path: String)
  /// A read failed part-way (exit 74).
  case io(path: String, reason: String)
  /// The input is not a capture ptfrag can read (exit 65).
  case malformed(path: String, line: Int, reason: String)
  /// Compressed input is corrupt or truncated; `offset` is the 0-based byte offset in the
  /// compressed file at which decompression stopped (exit 65).
  case corrupt(path: String, offset: UInt64, reason: String)

  /// sysexits(3) codes, as documented in the README.
  public var exitCode: Int32 {
    switch self {
    case .missing, .unreadable, .isDirectory: 66
    case .io: 74
    case .malformed, .corrupt: 65
    }
  }

  public var message: String {
    switch self {
    case .missing(let p): "\(p): no such file"
    case .unreadable(let p, let r): "\(p): cannot open: \(r)"
    case .isDirectory(let p): "\(p): is a directory, not a capture"
    case .io(let p, let r): "\(p): read error: \(r)"
    case .malformed(let p, let l, let r): "\(p):\(l): \(r)"
    case .corrupt(let p, let o, let r): "\(p): compressed byte \(o): \(r)"
    }
  }
}

/// A stream of bytes: a file, stdin, or (later) a decompressor over one of them.
public protocol ByteSource {
  /// Reads up to `buffer.count` bytes; returns 0 at end of input.
  mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ReadError) -> Int
  /// The name used in messages (`path` or `-` for stdin).
  var name: String { get }
}

/// A file descriptor read with read(2). Opening checks existence, permission and type.
public final class FileSource: ByteSource {
  public let name: String
  private var fd: Int32
  private let ownsFD: Bool

  /// Opens `path`; `-` means standard input.
  public init(path: String) throws(ReadError) {
    name = path
    if path == "-" {
      fd = 0
      ownsFD = false
      return
    }
    var st = stat()
    if stat(path, &st) != 0 {
      let e = errno
      if e == ENOENT || e == ENOTDIR { throw .missing(path: path) }
      throw .unreadable(path: path, reason: String(cString: strerror(e)))
    }
    if (st.st_mode & S_IFMT) == S_IFDIR { throw .isDirectory(path: path) }
    let f = open(path, O_RDONLY | O_CLOEXEC)
    if f < 0 {
      let e = errno
      if e == ENOENT { throw .missing(path: path) }
      throw .unreadable(path: path, reason: String(cString: strerror(e)))
    }
    fd = f
    ownsFD = true
  }

  deinit { if ownsFD && fd >= 0 { close(fd) } }

  public func read(into buffer: UnsafeMutableRawBufferPointer) throws(ReadError) -> Int {
    while true {
      #if canImport(Glibc)
        let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
      #else
        let n = Darwin.read(fd, buffer.baseAddress, buffer.count)
      #endif
      if n >= 0 { return n }
      let e = errno
      if e == EINTR { continue }
      if e == EISDIR { throw .isDirectory(path: name) }
      throw .io(path: name, reason: String(cString: strerror(e)))
    }
  }
}

/// An in-memory source (tests, fuzzing).
public struct MemorySource: ByteSource {
  public let name: String
  private let bytes: [UInt8]
  private var offset = 0
  public init(_ bytes: [UInt8], name: String = "<memory>") {
    self.bytes = bytes
    self.name = name
  }
  public init(_ text: String, name: String = "<memory>") {
    self.init(Array(text.utf8), name: name)
  }
  public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ReadError) -> Int {
    let n = min(buffer.count, bytes.count - offset)
    if n <= 0 { return 0 }
    bytes.withUnsafeBytes { src in
      buffer.baseAddress!.copyMemory(from: src.baseAddress! + offset, byteCount: n)
    }
    offset += n
    return n
  }
}

/// Splits a byte source into lines without copying them: each line is handed out as a
/// buffer into an internal chunk (valid only during the callback). Uses memchr.
/// Lines longer than `maxLineBytes` are reported through `overlong` and skipped
/// without buffering them.
public struct LineSplitter {
  /// Largest line handed out whole, in bytes.
  public let maxLineBytes: Int
  private let chunkBytes: Int

  public init(maxLineBytes: Int = 1 << 20, chunkBytes: Int = 1 << 20) {
    self.maxLineBytes = maxLineBytes
    self.chunkBytes = max(chunkBytes, maxLineBytes * 2)
  }

  /// Calls `body(line, lineNumber)` for every line (without its `\n`; a final line without
  /// `\n` is still handed out and flagged through `unterminatedLast`). Line numbers are 1-based.
  /// Returns the number of lines and the total byte count.
  @discardableResult
  public func forEachLine<S: ByteSource>(
    in source: inout S,
    overlong: (_ line: Int, _ bytes: Int) -> Void,
    unterminatedLast: (_ line: Int) -> Void = { _ in },
    _ body: (UnsafeBufferPointer<UInt8>, Int) throws(ReadError) -> Void
  ) throws(ReadError) -> (lines: Int, bytes: UInt64) {
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 16)
    defer { buf.deallocate() }
    let base = buf.baseAddress!.assumingMemoryBound(to: UInt8.self)
    var filled = 0  // bytes valid in buf
    var lineNo = 0
    var total: UInt64 = 0
    var skipping = false  // inside an overlong line, discarding until '\n'
    var skippedBytes = 0
    var eof = false
    while !eof {
      let n = try source.read(into: UnsafeMutableRawBufferPointer(start: base + filled, count: chunkBytes - filled))
      if n == 0 { eof = true }
      total += UInt64(n)
      filled += n
      var start = 0
      while start < filled {
        let remaining = filled - start
        guard let nl = memchr(base + start, 0x0A, remaining) else { break }
        let end = base.distance(to: nl.assumingMemoryBound(to: UInt8.self))
        lineNo += 1
        if skipping {
          skipping = false
          overlong(lineNo, skippedBytes + (end - start))
        } else if end - start > maxLineBytes {
          overlong(lineNo, end - start)
        } else {
          try body(UnsafeBufferPointer(start: base + start, count: end - start), lineNo)
        }
        start = end + 1
      }
      // Keep the incomplete tail.
      let tail = filled - start
      if eof {
        if tail > 0 || skipping {
          lineNo += 1
          if skipping {
            overlong(lineNo, skippedBytes + tail)
          } else if tail > maxLineBytes {
            overlong(lineNo, tail)
          } else {
            unterminatedLast(lineNo)
            try body(UnsafeBufferPointer(start: base + start, count: tail), lineNo)
          }
        }
        break
      }
      if tail > maxLineBytes || (skipping && tail > 0) {
        // Discard: the line is too long to hand out.
        if !skipping { skippedBytes = 0 }
        skipping = true
        skippedBytes += tail
        filled = 0
        continue
      }
      if start > 0 && tail > 0 { memmove(base, base + start, tail) }
      filled = tail
    }
    return (lineNo, total)
  }
}
