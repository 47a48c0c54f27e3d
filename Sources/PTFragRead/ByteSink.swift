#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Writing failed (exit 74).
public struct WriteError: Error, Sendable, Equatable {
  public var path: String
  public var reason: String
  public var message: String { "\(path): write error: \(reason)" }
}

/// A buffered byte writer to a file descriptor (or to memory), with the number formatting
/// the capture writers need. Not thread-safe.
public final class ByteSink {
  public let name: String
  private let fd: Int32
  private let ownsFD: Bool
  private let capacity: Int
  private let buf: UnsafeMutablePointer<UInt8>
  private var used = 0
  /// Everything written, for a memory sink (after `flush()`).
  public private(set) var memory: [UInt8] = []
  private let toMemory: Bool
  /// Bytes written in total (including those still buffered).
  public private(set) var total: UInt64 = 0

  /// Writes to `fd` (not closed at the end unless `closing`).
  public init(fd: Int32, name: String, closing: Bool = false, bufferBytes: Int = 1 << 20) {
    self.fd = fd
    self.name = name
    ownsFD = closing
    capacity = bufferBytes
    buf = .allocate(capacity: bufferBytes)
    toMemory = false
  }

  /// Collects the bytes in `memory`.
  public init(memoryNamed name: String = "<memory>", bufferBytes: Int = 64 << 10) {
    fd = -1
    self.name = name
    ownsFD = false
    capacity = bufferBytes
    buf = .allocate(capacity: bufferBytes)
    toMemory = true
  }

  /// Creates (or truncates) `path`; `-` is standard output.
  public static func create(path: String) throws(WriteError) -> ByteSink {
    if path == "-" { return ByteSink(fd: 1, name: "<stdout>") }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    if fd < 0 { throw WriteError(path: path, reason: String(cString: strerror(errno))) }
    return ByteSink(fd: fd, name: path, closing: true)
  }

  deinit {
    try? flush()
    buf.deallocate()
    if ownsFD { close(fd) }
  }

  public func flush() throws(WriteError) {
    guard used > 0 else { return }
    if toMemory {
      memory.append(contentsOf: UnsafeBufferPointer(start: buf, count: used))
      used = 0
      return
    }
    var off = 0
    while off < used {
      let n = write(fd, buf + off, used - off)
      if n < 0 {
        if errno == EINTR { continue }
        used = 0
        throw WriteError(path: name, reason: String(cString: strerror(errno)))
      }
      off += n
    }
    used = 0
  }

  /// Calls `body` with the bytes written since the last flush (for a sink used as a scratch
  /// line buffer, never flushed), then forgets them.
  public func takeBuffered<R>(_ body: (ByteView) throws -> R) rethrows -> R {
    defer {
      total -= UInt64(used)
      used = 0
    }
    return try body(ByteView(start: buf, count: used))
  }

  /// Room for `n` more bytes (n ≤ the buffer size, else flushed through).
  @inline(__always)
  private func reserve(_ n: Int) throws(WriteError) {
    if used + n > capacity { try flush() }
  }

  @inline(__always)
  public func byte(_ b: UInt8) throws(WriteError) {
    if used == capacity { try flush() }
    buf[used] = b
    used += 1
    total += 1
  }

  public func bytes(_ b: UnsafeBufferPointer<UInt8>) throws(WriteError) {
    guard let base = b.baseAddress, b.count > 0 else { return }
    if b.count > capacity {
      try flush()
      var off = 0
      while off < b.count {
        let n = min(capacity, b.count - off)
        buf.update(from: base + off, count: n)
        used = n
        try flush()
        off += n
      }
      total += UInt64(b.count)
      return
    }
    try reserve(b.count)
    (buf + used).update(from: base, count: b.count)
    used += b.count
    total += UInt64(b.count)
  }

  public func bytes(_ a: [UInt8]) throws(WriteError) {
    try a.withUnsafeBufferPointer { (b) throws(WriteError) in try bytes(b) }
  }

  @inline(__always)
  public func literal(_ s: StaticString) throws(WriteError) {
    try bytes(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
  }

  public func string(_ s: String) throws(WriteError) {
    var s = s
    var failure: WriteError? = nil
    s.withUTF8 { b in
      do throws(WriteError) { try bytes(b) } catch { failure = error }
    }
    if let failure { throw failure }
  }

  @inline(__always)
  public func spaces(_ n: Int) throws(WriteError) {
    guard n > 0 else { return }
    try reserve(n)
    (buf + used).initialize(repeating: 0x20, count: n)
    used += n
    total += UInt64(n)
  }

  /// Decimal digits of `v`, at least `minDigits` (zero-padded).
  @inline(__always)
  public func decimal(_ v: UInt64, minDigits: Int = 1) throws(WriteError) {
    var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch
    try withUnsafeMutableBytes(of: &tmp) { (raw) throws(WriteError) in
      let t = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
      var n = 0
      var x = v
      repeat {
        t[23 - n] = UInt8(truncatingIfNeeded: x % 10) + 48
        x /= 10
        n += 1
      } while x > 0
      while n < minDigits && n < 24 {
        t[23 - n] = 48
        n += 1
      }
      try bytes(UnsafeBufferPointer(start: t + 24 - n, count: n))
    }
  }

  /// Number of decimal digits of `v`.
  @inline(__always)
  public static func decimalWidth(_ v: UInt64) -> Int {
    var n = 1
    var x = v
    while x >= 10 {
      x /= 10
      n += 1
    }
    return n
  }

  /// `0x` and lowercase hex digits, as the kernel's `%llx` with `0x` (`0x0` for zero).
  @inline(__always)
  public func hex(_ v: UInt64) throws(WriteError) {
    try reserve(18)
    buf[used] = UInt8(ascii: "0")
    buf[used + 1] = UInt8(ascii: "x")
    var digits = 1
    var x = v >> 4
    while x != 0 {
      digits += 1
      x >>= 4
    }
    var k = used + 2 + digits
    x = v
    for _ in 0..<digits {
      k -= 1
      let d = UInt8(truncatingIfNeeded: x & 0xf)
      buf[k] = d < 10 ? d + 48 : d + 87
      x >>= 4
    }
    used += 2 + digits
    total += UInt64(2 + digits)
  }
}
