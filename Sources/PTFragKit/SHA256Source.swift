import Crypto
import PTFragRead

/// A byte source that hashes (SHA-256) every byte it passes through, so that an input is read
/// once for both the replay and its digest. Wrap the source closest to the file (before any
/// decompression): the digest is then that of the file as stored, what `sha256sum` prints.
public struct SHA256Source<Base: ByteSource>: ByteSource {
  public var base: Base
  private var hasher = SHA256()
  /// Bytes hashed so far.
  public private(set) var count: UInt64 = 0

  /// Receives the digest when the base source reports its end (for a reader that owns the
  /// source, possibly on another thread).
  public let sink: DigestSink?

  public init(_ base: Base, sink: DigestSink? = nil) {
    self.base = base
    self.sink = sink
  }

  public var name: String { base.name }

  public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ReadError) -> Int {
    let n = try base.read(into: buffer)
    if n > 0 {
      hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
      count += UInt64(n)
    } else if let sink, sink.hex == nil {
      sink.hex = hexDigest
    }
    return n
  }

  /// The digest of the bytes read so far, as 64 lowercase hex digits.
  public var hexDigest: String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(64)
    for b in hasher.finalize() {
      out.append(digits[Int(b >> 4)])
      out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
  }
}

/// Where a `SHA256Source` leaves its digest at end of input.
public final class DigestSink: @unchecked Sendable {
  /// 64 lowercase hex digits, once the whole input was read.
  public var hex: String?
  public init() {}
}
