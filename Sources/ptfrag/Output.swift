import ArgumentParser
import PTFragReport

#if canImport(Glibc)
  import Glibc
#endif

/// Output that could not be delivered: a report file or standard output (exit 74).
struct OutputError: Error, CustomStringConvertible {
  var path: String
  var reason: String
  var description: String { "cannot write \(path): \(reason)" }
}

/// Writes to the standard streams and files without Foundation.
enum FileHandleOutput {
  /// The first failed write to standard output; `PTFrag.main` reports it and exits 74.
  nonisolated(unsafe) static var stdoutFailure: String? = nil

  /// Writes to standard output; a failure is remembered (see `stdoutFailure`).
  static func stdout(_ s: String) {
    if let e = writeAll(fd: 1, s), stdoutFailure == nil { stdoutFailure = e }
  }
  static func stderr(_ s: String) { _ = writeAll(fd: 2, s) }

  /// Writes all of `s` to `fd`; the reason when it could not.
  static func writeAll(fd: Int32, _ s: String) -> String? {
    var s = s
    return s.withUTF8 { buf -> String? in
      var off = 0
      while off < buf.count {
        let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
        if n < 0 {
          if errno == EINTR { continue }
          return reason(errno)
        }
        off += n
      }
      return nil
    }
  }

  static func reason(_ e: Int32) -> String {
    guard let p = strerror(e) else { return "error \(e)" }
    return String(cString: p)
  }

  /// Closes standard output at the end of the run: a close that fails (a deferred write
  /// error) is a failed write too.
  static func closeStdout() {
    if close(1) != 0 && errno != EBADF && stdoutFailure == nil { stdoutFailure = reason(errno) }
  }

  /// Writes `s` to `path`, or to standard output for `-`. A regular file (or a new one) is
  /// replaced atomically: written to a temporary file in the same directory, flushed, closed
  /// and renamed over `path`, so an interrupted run leaves the old file or none, never a
  /// truncated one. A device or FIFO (`/dev/stdout`, `/dev/full`) is written in place.
  static func write(_ s: String, to path: String) throws(OutputError) {
    if path == "-" {
      if let e = writeAll(fd: 1, s) { throw OutputError(path: "standard output", reason: e) }
      return
    }
    var target = path
    var st = stat()
    if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK, let real = realpath(path, nil) {
      target = String(cString: real)
      free(real)
    }
    let exists = stat(target, &st) == 0
    if exists && (st.st_mode & S_IFMT) != S_IFREG {
      let fd = open(target, O_WRONLY | O_TRUNC | O_CLOEXEC)
      if fd < 0 { throw OutputError(path: path, reason: reason(errno)) }
      let failure = writeAll(fd: fd, s)
      let closed = close(fd) == 0 ? nil : reason(errno)
      if let e = failure ?? closed { throw OutputError(path: path, reason: e) }
      return
    }
    let slash = target.lastIndex(of: "/")
    let dir = slash.map { String(target[..<$0]) } ?? "."
    let base = slash.map { String(target[target.index(after: $0)...]) } ?? target
    var template = Array("\(dir.isEmpty ? "/" : dir)/.\(base).ptfrag-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    if fd < 0 { throw OutputError(path: path, reason: reason(errno)) }
    let tmp = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    var mode: mode_t
    if exists {
      mode = st.st_mode & 0o7777
    } else {
      let mask = umask(0)
      umask(mask)
      mode = 0o666 & ~mask
    }
    var failure: String? = fchmod(fd, mode) == 0 ? nil : reason(errno)
    if failure == nil { failure = writeAll(fd: fd, s) }
    if failure == nil && fsync(fd) != 0 && errno != EINVAL && errno != EROFS { failure = reason(errno) }
    if close(fd) != 0 && failure == nil { failure = reason(errno) }
    if failure == nil && rename(tmp, target) != 0 { failure = reason(errno) }
    if let failure {
      unlink(tmp)
      throw OutputError(path: path, reason: failure)
    }
  }
}

/// The real capture shipped with ptfrag (`Fixtures/samples/s390x-6.1-fork-exec.trace` and its
/// kprobe_profile), which `ptfrag analyze` replays when given no FILE at a terminal. Found
/// from where the executable is, never from where it was compiled, in this order:
/// 1. `$PTFRAG_SAMPLES`: a directory holding the two files;
/// 2. `<prefix>/share/ptfrag/samples/`, for an executable installed as `<prefix>/bin/ptfrag`
///    (the install layout in the README: `Fixtures/samples/` copied there);
/// 3. `Fixtures/samples/` of the package the executable was built in: the parent of its
///    build directory (`<package>/.build/…/ptfrag`, as `swift run` and `swift build` leave it).
enum BundledSample {
  struct Paths {
    var trace: String
    var profile: String
  }
  static let name = "s390x-6.1-fork-exec"

  /// The sample is not where ptfrag looks (exit 66, as for any missing input).
  struct Absent: Error, CustomStringConvertible {
    var searched: [String]
    var description: String {
      "ptfrag: no FILE given, and the bundled sample capture \(BundledSample.name).trace is not installed (looked in "
        + searched.joined(separator: ", ")
        + "). Give a capture (ptfrag analyze FILE), or install the samples: copy Fixtures/samples/ to <prefix>/share/ptfrag/samples/ or set PTFRAG_SAMPLES to a directory holding them."
    }
  }

  /// The directories searched, in order, for an executable at `executable` (resolved).
  static func directories(executable: String?, environment: String?) -> [String] {
    var out: [String] = []
    if let env = environment, !env.isEmpty { out.append(env) }
    guard let exe = executable else { return out }
    var parts = exe.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    parts.removeLast()  // the executable's name
    if let bin = parts.last, bin == "bin" {
      out.append((parts.dropLast() + ["share", "ptfrag", "samples"]).joined(separator: "/"))
    }
    if let build = parts.lastIndex(where: { $0.hasPrefix(".build") }), build > 0 {
      out.append((parts[..<build] + ["Fixtures", "samples"]).joined(separator: "/"))
    }
    return out
  }

  /// This process's executable, symbolic links resolved.
  static var executablePath: String? {
    guard let p = realpath("/proc/self/exe", nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
  }

  static func exists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
  }

  /// The sample's trace and profile. Absent: says where ptfrag looked, on standard error, and
  /// exits 66 (input missing).
  static var s390x61: Paths {
    get throws {
      let env = getenv("PTFRAG_SAMPLES").map { String(cString: $0) }
      let dirs = directories(executable: executablePath, environment: env)
      for d in dirs {
        let base = d + "/" + name
        if exists(base + ".trace") && exists(base + ".kprobe_profile") {
          return Paths(trace: relative(base + ".trace"), profile: relative(base + ".kprobe_profile"))
        }
      }
      let absent = Absent(searched: dirs.isEmpty ? ["(no executable path, no PTFRAG_SAMPLES)"] : dirs)
      FileHandleOutput.stderr(absent.description + "\n")
      throw ArgumentParser.ExitCode(PTFragReport.ExitCode.inputMissing.rawValue)
    }
  }

  /// The path relative to the working directory when it lies below it.
  static func relative(_ p: String) -> String {
    guard let c = getcwd(nil, 0) else { return p }
    let cwd = String(cString: c)
    free(c)
    return p.hasPrefix(cwd + "/") ? String(p.dropFirst(cwd.count + 1)) : p
  }
}
