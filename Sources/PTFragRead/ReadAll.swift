extension ByteSource {
  /// Reads the whole source into memory, for small side files (kprobe_profile, baseline).
  /// Throws `.malformed` at line 1 when it holds more than `limit` bytes.
  public mutating func readAll(limit: Int, what: String) throws(ReadError) -> [UInt8] {
    var bytes: [UInt8] = []
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 8)
    defer { chunk.deallocate() }
    while true {
      let n = try read(into: chunk)
      if n == 0 { return bytes }
      bytes += UnsafeRawBufferPointer(rebasing: chunk[0..<n])
      if bytes.count > limit {
        throw .malformed(path: name, line: 1, reason: "\(what) larger than \(limit >> 20) MiB")
      }
    }
  }
}
