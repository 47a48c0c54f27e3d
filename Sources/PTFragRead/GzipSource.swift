import CZlib

/// Streaming gzip decompression (RFC 1952) over another byte source, through the system
/// zlib. Reads concatenated members (`cat a.gz b.gz`, `pigz`, log rotation) as one stream;
/// zero bytes after the last member (tape/block padding) are ignored.
///
/// Errors: corrupt data, a bad CRC/length trailer, a file cut inside a member, or non-gzip
/// bytes after a member are `ReadError.corrupt` (exit 65) with the 0-based offset in the
/// *compressed* input where decompression stopped; a failing read of the inner source keeps
/// its own error (exit 74).
public final class GzipSource<Inner: ByteSource>: ByteSource {
  public var name: String { inner.name }
  private var inner: Inner
  /// The z_stream must not move (zlib keeps a pointer back to it): heap-allocated.
  private let strm: UnsafeMutablePointer<z_stream>
  private let input: UnsafeMutableRawBufferPointer
  /// Compressed bytes read from `inner` so far.
  private var compressedRead: UInt64 = 0
  private var innerEOF = false
  /// Inside a member (between its header and its trailer).
  private var inMember = false
  private var finished = false
  private var members = 0

  /// Compressed input buffer, in bytes.
  public static var inputBytes: Int { 256 << 10 }

  public init(_ inner: Inner) throws(ReadError) {
    self.inner = inner
    strm = .allocate(capacity: 1)
    strm.initialize(to: z_stream())
    input = .allocate(byteCount: Self.inputBytes, alignment: 16)
    // 15 + 16: a gzip wrapper (not zlib, not raw deflate), 32 KiB window.
    let rc = ptfrag_inflateInit2(strm, 15 + 16)
    if rc != Z_OK {
      input.deallocate()
      strm.deallocate()
      throw .io(path: inner.name, reason: "zlib inflateInit2 failed (\(rc))")
    }
  }

  deinit {
    inflateEnd(strm)
    strm.deallocate()
    input.deallocate()
  }

  /// Offset in the compressed input of the next byte zlib has not consumed.
  private var compressedOffset: UInt64 { compressedRead - UInt64(strm.pointee.avail_in) }

  /// Members decompressed completely so far.
  public var completeMembers: Int { members }

  private func refill() throws(ReadError) {
    // zlib has consumed everything up to next_in; keep nothing (avail_in == 0 here).
    let n = try inner.read(into: input)
    if n == 0 {
      innerEOF = true
      return
    }
    compressedRead += UInt64(n)
    strm.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
    strm.pointee.avail_in = uInt(n)
  }

  /// At a member boundary: start the next member, or end the stream (EOF or zero padding).
  /// Returns false at the end of the stream.
  private func startMember() throws(ReadError) -> Bool {
    while true {
      if strm.pointee.avail_in == 0 {
        if innerEOF { return false }
        try refill()
        continue
      }
      let b = strm.pointee.next_in[0]
      if b == 0 {
        // Padding: skip zero bytes; anything else after them is still an error.
        strm.pointee.next_in += 1
        strm.pointee.avail_in -= 1
        continue
      }
      if members > 0 && b != 0x1f {
        throw .corrupt(
          path: name, offset: compressedOffset,
          reason: "data after the end of gzip member \(members) is not another gzip member")
      }
      if members > 0 { inflateReset(strm) }
      inMember = true
      return true
    }
  }

  public func read(into buffer: UnsafeMutableRawBufferPointer) throws(ReadError) -> Int {
    if finished || buffer.count == 0 { return 0 }
    strm.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
    strm.pointee.avail_out = uInt(buffer.count)
    while strm.pointee.avail_out > 0 {
      if !inMember {
        if try !startMember() {
          finished = true
          break
        }
      }
      if strm.pointee.avail_in == 0 {
        if !innerEOF { try refill() }
        if innerEOF && strm.pointee.avail_in == 0 {
          throw .corrupt(
            path: name, offset: compressedRead,
            reason:
              "the gzip stream ends inside member \(members + 1) (the file is truncated)")
        }
      }
      let (inBefore, outBefore) = (strm.pointee.avail_in, strm.pointee.avail_out)
      let rc = inflate(strm, Z_NO_FLUSH)
      switch rc {
      case Z_OK, Z_BUF_ERROR:
        if strm.pointee.avail_in == inBefore && strm.pointee.avail_out == outBefore {
          throw .corrupt(path: name, offset: compressedOffset, reason: "zlib makes no progress")
        }
        continue
      case Z_STREAM_END:
        inMember = false
        members += 1
      case Z_MEM_ERROR:
        throw .io(path: name, reason: "zlib is out of memory")
      default:
        let why = strm.pointee.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
        throw .corrupt(path: name, offset: compressedOffset, reason: "gzip data is corrupt: \(why)")
      }
    }
    return buffer.count - Int(strm.pointee.avail_out)
  }
}
