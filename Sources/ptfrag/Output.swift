#if canImport(Glibc)
  import Glibc
#endif

/// Writes to the standard streams and files without Foundation.
enum FileHandleOutput {
  static func stdout(_ s: String) { write(fd: 1, s) }
  static func stderr(_ s: String) { write(fd: 2, s) }

  static func write(fd: Int32, _ s: String) {
    var s = s
    s.withUTF8 { buf in
      var off = 0
      while off < buf.count {
        let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
        if n < 0 {
          if errno == EINTR { continue }
          return
        }
        off += n
      }
    }
  }

  struct WriteError: Error, CustomStringConvertible {
    var description: String
  }

  /// Writes `s` to `path` (replacing it), or to standard output for `-`.
  static func write(_ s: String, to path: String) throws {
    if path == "-" { return stdout(s) }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    if fd < 0 { throw WriteError(description: String(cString: strerror(errno))) }
    defer { close(fd) }
    var s = s
    try s.withUTF8 { buf in
      var off = 0
      while off < buf.count {
        let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
        if n < 0 {
          if errno == EINTR { continue }
          throw WriteError(description: String(cString: strerror(errno)))
        }
        off += n
      }
    }
  }
}

/// The real capture shipped in Fixtures/, found relative to this source file's package.
enum BundledSample {
  struct Paths {
    var trace: String
    var profile: String
  }
  static var root: String {
    // #filePath = <root>/Sources/ptfrag/Output.swift
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
  }
  static var s390x61: Paths {
    let base = root + "/Fixtures/samples/s390x-6.1-fork-exec"
    return Paths(trace: relative(base + ".trace"), profile: relative(base + ".kprobe_profile"))
  }
  /// The path relative to the working directory when it lies below it.
  static func relative(_ p: String) -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    guard getcwd(&buf, buf.count) != nil else { return p }
    let cwd = String(cString: buf)
    return p.hasPrefix(cwd + "/") ? String(p.dropFirst(cwd.count + 1)) : p
  }
}
