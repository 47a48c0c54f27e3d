// ptfrag-bench: throughput and peak memory of ptfrag on synthetic captures, next to
// `wc -l` and `grep -c` on the same files in the same run. See docs/benchmark.md.
//
// A dedicated executable rather than ordo-one/benchmark: every measurement here is one
// streaming pass over a file of 0.1–2 GB that must run in its own process (peak RSS is
// the child's `ru_maxrss`), next to external tools (wc, grep, gzip) timed the same way;
// ordo-one/benchmark measures in-process closures, would need swift-tools-version 6.1 and
// its malloc interposer, and adds nothing to one timed pass per process.
//
// Usage: swift build -c release && .build/release/ptfrag-bench [options]
//   --events 1000000,10000000   capture sizes (probe lines)
//   --repeat 3                  runs per measurement (the fastest counts)
//   --dir DIR                   where captures are written (default: a fresh temp dir)
//   --keep                      keep the captures
//   --model s390-6.1 --seed 1 --mms 8 --cpus 2
//   --only text|json|gzip       a subset of the measurements
//   --real 1,4,16               also real-shaped input: that many copies of a real capture
//                               (each with its addresses shifted into a disjoint range and its
//                               timestamps past the previous copy, so each replays as the
//                               original: many short-lived mms)
//   --corpus FILE               the real capture copied (default: the 6.1 capture without
//                               silent misses, Fixtures/corpus/s390/s390x-6.1-dev-nosoftirq.trace.gz)
// Internal: --child MODE FILE, one measurement in this process, MODE one of:
//   split (lines only), parse-lines (+ parse), parse (+ records), normalize (+ pairing),
//   replay1 (+ model, one thread), replay (analyze, two threads), inflate (zlib only).
//   Prints "seconds records peak-RSS-KiB"; run it under `perf stat -e cycles:u` for a
//   figure that other load on the machine does not change.

import PTFragEvents
import PTFragKit
import PTFragRead
import PTFragReplay
import PTFragSynth

#if canImport(Glibc)
  import Glibc
#endif

// MARK: - Clock, processes

func now() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

struct ProcessResult {
  var seconds: Double
  /// User + system CPU time of the process (all its threads).
  var cpuSeconds: Double
  var output: String
  var status: Int32
  /// Peak resident set of the process (`ru_maxrss`, KiB).
  var maxRSSKiB: Int = 0
}

/// Runs `argv` with stdout to `stdoutPath`; its wall time, output and exit status.
func spawn(_ argv: [String], stdoutPath: String) -> ProcessResult {
  var actions = posix_spawn_file_actions_t()
  posix_spawn_file_actions_init(&actions)
  defer { posix_spawn_file_actions_destroy(&actions) }
  posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
  var cargs = argv.map { strdup($0) }
  cargs.append(nil)
  defer { for p in cargs { free(p) } }
  var pid: pid_t = 0
  let t0 = now()
  let rc = posix_spawnp(&pid, argv[0], &actions, nil, &cargs, environ)
  guard rc == 0 else {
    return ProcessResult(seconds: 0, cpuSeconds: 0, output: "spawn failed: \(rc)", status: -1)
  }
  var status: Int32 = 0
  var usage = rusage()
  while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
  let cpu =
    Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
    + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
  let seconds = now() - t0
  let out = (try? readSmallFile(stdoutPath)) ?? ""
  let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
  return ProcessResult(seconds: seconds, cpuSeconds: cpu, output: out, status: exit, maxRSSKiB: Int(usage.ru_maxrss))
}

func readSmallFile(_ path: String) throws -> String {
  let fd = open(path, O_RDONLY)
  guard fd >= 0 else { return "" }
  defer { close(fd) }
  var bytes: [UInt8] = []
  var buf = [UInt8](repeating: 0, count: 65536)
  while true {
    let n = read(fd, &buf, buf.count)
    if n <= 0 { break }
    bytes += buf[0..<n]
  }
  return String(decoding: bytes, as: UTF8.self)
}

/// The 1-, 5- and 15-minute load averages (other work competing for the CPUs).
func loadAverage() -> String {
  let s = (try? readSmallFile("/proc/loadavg")) ?? ""
  return s.split(separator: " ").prefix(3).joined(separator: " ")
}

func fileSize(_ path: String) -> UInt64 {
  var st = stat()
  return stat(path, &st) == 0 ? UInt64(st.st_size) : 0
}

func selfPath() -> String {
  var buf = [CChar](repeating: 0, count: 4096)
  let n = readlink("/proc/self/exe", &buf, buf.count - 1)
  return n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
}

func fail(_ message: String) -> Never {
  var m = "ptfrag-bench: \(message)\n"
  m.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
  exit(1)
}

// MARK: - Child measurements (one per process, so ru_maxrss is this measurement's peak)

/// `--child MODE FILE`: prints "seconds records" for the work alone (no process start-up).
func child(_ mode: String, _ path: String) -> Never {
  let t0 = now()
  var records = 0
  do {
    switch mode {
    case "parse":
      // Read and parse every record; nothing downstream.
      _ = try CaptureReader.read(path: path) { _ in records += 1 }
    case "replay":
      // The whole analyze pipeline: read, normalize, replay (s390-6.1), report data.
      let report = try Analyzer.analyze(path: path, options: AnalyzeOptions())
      if let e = report.error { fail(e.message) }
      records = report.result?.events ?? 0
      if report.result?.findings.isEmpty != true { fail("\(path): the replay found divergences") }
    case "split":
      // The floor: split into lines, nothing else.
      var src = try FileSource(path: path)
      try LineSplitter().forEachLine(in: &src, overlong: { _, _ in }) { _, _ in records += 1 }
    case "parse-lines":
      // Split and parse every line; no records built downstream.
      var src = try FileSource(path: path)
      var fields = LineFields()
      var hit = ProbeHit(
        line: 0, timestampNs: 0, cpu: 0, pid: 0, comm: Comm(), function: .pageTableAlloc,
        kind: .entry)
      try LineSplitter().forEachLine(in: &src, overlong: { _, _ in }) { b, n in
        if case .hit = FtraceLineParser.parseLine(b, lineNumber: n, fields: &fields, hit: &hit) {
          records += 1
        }
      }
    case "normalize":
      // Read, parse and normalize (pair entries with returns); no model.
      var normalizer = Normalizer()
      _ = try CaptureReader.read(path: path) { r in normalizer.feed(r) { _ in records += 1 } }
    case "replay1":
      // The analyze pipeline on one thread (AnalyzeOptions.pipelined = false).
      let report = try Analyzer.analyze(path: path, options: AnalyzeOptions(pipelined: false))
      if let e = report.error { fail(e.message) }
      records = report.result?.events ?? 0
    case "compare":
      // ptfrag compare: the replay, then every strategy simulated on its workload.
      let c = try Comparer.compare(path: path, options: CompareOptions(analyze: AnalyzeOptions()))
      if let e = c.input.error { fail(e.message) }
      records = c.input.result?.events ?? 0
    case "inflate":
      // zlib alone: decompress into a buffer and drop the bytes.
      let src = try GzipSource(FileSource(path: path))
      let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
      while true {
        let n = try src.read(into: buf)
        if n == 0 { break }
        records += n
      }
    default:
      fail("unknown child mode \(mode)")
    }
  } catch let e as ReadError {
    fail(e.message)
  } catch let e as AnalyzeError {
    fail(e.message)
  } catch {
    fail("\(error)")
  }
  let seconds = now() - t0
  print(format6(seconds), records, peakRSSKiB())
  exit(0)
}

/// This process's peak resident set (VmHWM in /proc/self/status), in KiB. Measured here
/// rather than through wait4's ru_maxrss, which on Linux starts from the parent's peak.
func peakRSSKiB() -> Int {
  guard let status = try? readSmallFile("/proc/self/status") else { return 0 }
  for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
    return Int(line.dropFirst(6).filter { $0 >= "0" && $0 <= "9" }) ?? 0
  }
  return 0
}

func format6(_ x: Double) -> String {
  let micros = Int((x * 1e6).rounded())
  let s = String(micros % 1_000_000)
  return "\(micros / 1_000_000).\(String(repeating: "0", count: 6 - s.count))\(s)"
}

// MARK: - Options

struct Options {
  var sizes: [Int] = [1_000_000, 10_000_000]
  var repeats = 3
  var dir: String? = nil
  var keep = false
  var synth = SynthOptions()
  var only: Set<String> = ["text", "json", "gzip"]
  var realCopies: [Int] = []
  var corpus = "Fixtures/corpus/s390/s390x-6.1-dev-nosoftirq.trace.gz"
}

func parseOptions() -> Options {
  var o = Options()
  var args = CommandLine.arguments.dropFirst()
  func value(_ name: String) -> String {
    guard let v = args.popFirst() else { fail("\(name) needs a value") }
    return v
  }
  while let a = args.popFirst() {
    switch a {
    case "--child":
      let mode = value(a)
      child(mode, value(a))
    case "--events":
      o.sizes = value(a).split(separator: ",").map {
        guard let n = Int($0.filter { $0 != "_" }), n > 0 else {
          fail("--events takes sizes like 1000000,10000000")
        }
        return n
      }
    case "--repeat": o.repeats = max(1, Int(value(a)) ?? 3)
    case "--dir": o.dir = value(a)
    case "--keep": o.keep = true
    case "--model": o.synth.modelID = value(a)
    case "--seed": o.synth.seed = UInt64(value(a)) ?? 1
    case "--mms": o.synth.mms = Int(value(a)) ?? 8
    case "--cpus": o.synth.cpus = Int(value(a)) ?? 2
    case "--only": o.only = Set(value(a).split(separator: ",").map(String.init))
    case "--real":
      o.realCopies = value(a).split(separator: ",").map {
        guard let n = Int($0), n > 0 else { fail("--real takes copy counts like 1,4,16") }
        return n
      }
    case "--corpus": o.corpus = value(a)
    case "-h", "--help":
      print(
        "usage: ptfrag-bench [--events 1000000,10000000] [--repeat 3] [--dir DIR] [--keep] [--model M] [--seed S] [--mms K] [--cpus C] [--only text,json,gzip]"
      )
      exit(0)
    default: fail("unknown option \(a)")
    }
  }
  return o
}

// MARK: - Real-shaped input

/// Writes `copies` copies of the capture at `path` (text or gzip) to `out`: copy k has every
/// `mm=`, `table=`, `tlb=` and `head=` value shifted by k × 4 GiB (× 64 / 4096 for `head=`,
/// which names a struct page), which keeps every alignment, and its timestamps moved past
/// the previous copy's last by one second. Header lines are kept from the first copy only.
/// Returns the number of probe lines written.
func writeRealShaped(from path: String, copies: Int, to out: String) throws -> Int {
  var lines: [[UInt8]] = []
  var src = try CaptureInput.open(path: path)
  try LineSplitter().forEachLine(in: &src, overlong: { _, _ in }) { b, _ in lines.append(Array(b)) }
  // The capture's span, in microseconds.
  var firstUs: UInt64? = nil
  var lastUs: UInt64 = 0
  for l in lines where l.first != UInt8(ascii: "#") {
    if let (us, _, _) = timestamp(l) {
      if firstUs == nil { firstUs = us }
      lastUs = max(lastUs, us)
    }
  }
  let spanUs = lastUs - (firstUs ?? 0) + 1_000_000
  let sink = try ByteSink.create(path: out)
  var written = 0
  var buf: [UInt8] = []
  buf.reserveCapacity(1 << 20)
  for k in 0..<copies {
    let shift = UInt64(k) << 32
    for l in lines {
      if l.first == UInt8(ascii: "#") {
        if k == 0 { buf += l; buf.append(10) }
        continue
      }
      guard let (us, start, end) = timestamp(l) else { continue }
      buf += l[0..<start]
      let t = us + UInt64(k) * spanUs
      buf += Array("\(t / 1_000_000).".utf8)
      let frac = String(t % 1_000_000)
      buf += Array((String(repeating: "0", count: 6 - frac.count) + frac).utf8)
      buf += shifted(l[end...], shift)
      buf.append(10)
      written += 1
      if buf.count >= 1 << 20 {
        try sink.bytes(buf)
        buf.removeAll(keepingCapacity: true)
      }
    }
  }
  try sink.bytes(buf)
  try sink.flush()
  return written
}

/// The `SECONDS.MICROS` stamp before the first ": " after the CPU field: (µs, start, end).
func timestamp(_ l: [UInt8]) -> (UInt64, Int, Int)? {
  guard let rb = l.firstIndex(of: UInt8(ascii: "]")) else { return nil }
  var i = rb + 1
  // flags, then blanks, then the stamp
  while i < l.count, l[i] != UInt8(ascii: " ") { i += 1 }
  while i < l.count, l[i] == UInt8(ascii: " ") { i += 1 }
  if i < l.count, !(l[i] >= 48 && l[i] <= 57) {
    while i < l.count, l[i] != UInt8(ascii: " ") { i += 1 }
    while i < l.count, l[i] == UInt8(ascii: " ") { i += 1 }
  }
  let start = i
  var sec: UInt64 = 0
  var frac: UInt64 = 0
  var digits = 0
  while i < l.count, l[i] >= 48, l[i] <= 57 { sec = sec * 10 + UInt64(l[i] - 48); i += 1 }
  guard i < l.count, l[i] == UInt8(ascii: ".") else { return nil }
  i += 1
  while i < l.count, l[i] >= 48, l[i] <= 57 { frac = frac * 10 + UInt64(l[i] - 48); i += 1; digits += 1 }
  guard digits == 6, i < l.count, l[i] == UInt8(ascii: ":") else { return nil }
  return (sec * 1_000_000 + frac, start, i)
}

/// `rest` with every `mm=0x…`, `table=0x…`, `tlb=0x…`, `head=0x…` value shifted.
func shifted(_ rest: ArraySlice<UInt8>, _ shift: UInt64) -> [UInt8] {
  guard shift != 0 else { return Array(rest) }
  var out: [UInt8] = []
  out.reserveCapacity(rest.count + 8)
  var i = rest.startIndex
  let keys: [([UInt8], UInt64)] = [
    (Array(" mm=0x".utf8), shift), (Array(" table=0x".utf8), shift), (Array(" tlb=0x".utf8), shift),
    (Array(" head=0x".utf8), shift / 4096 * 64),
  ]
  while i < rest.endIndex {
    var matched = false
    for (key, by) in keys where rest.endIndex - i >= key.count && rest[i..<i + key.count].elementsEqual(key) {
      out += key
      var j = i + key.count
      var v: UInt64 = 0
      while j < rest.endIndex, let d = hexDigit(rest[j]) { v = v << 4 | d; j += 1 }
      out += Array(String(v &+ by, radix: 16).utf8)
      i = j
      matched = true
      break
    }
    if !matched { out.append(rest[i]); i += 1 }
  }
  return out
}

func hexDigit(_ c: UInt8) -> UInt64? {
  switch c {
  case 48...57: UInt64(c - 48)
  case 97...102: UInt64(c - 87)
  case 65...70: UInt64(c - 55)
  default: nil
  }
}

// MARK: - The benchmark

struct Measurement {
  var name: String
  var seconds: Double  // fastest run: the work alone for ptfrag, wall time for tools
  var wall: Double  // fastest wall time including process start
  /// Least CPU time (user + system, all threads) of a run: independent of other load.
  var cpu: Double
  /// Peak RSS of the ptfrag measurement (nil for external tools: not measured).
  var maxRSSKiB: Int?
}

/// `allowed`: exit statuses that count as success (the product exits 2 on an inconclusive
/// verdict: the real-shaped input, given without a kprobe_profile, leaves the queued entries
/// at each copy's end unexplained).
func measure(_ name: String, _ repeats: Int, _ argv: [String], out: String, allowed: Set<Int32> = [0]) -> Measurement {
  var best = Measurement(name: name, seconds: .infinity, wall: .infinity, cpu: .infinity, maxRSSKiB: nil)
  for _ in 0..<repeats {
    let r = spawn(argv, stdoutPath: out)
    guard allowed.contains(r.status) else {
      fail("\(argv.joined(separator: " ")) exited \(r.status): \(r.output.prefix(2000))")
    }
    let fields = r.output.split(whereSeparator: { $0 == " " || $0 == "\n" })
    let isChild = argv.count > 1 && argv[1] == "--child"
    let s = isChild ? Double(fields.first ?? "") ?? r.seconds : r.seconds
    if s < best.seconds { best.seconds = s }
    if r.seconds < best.wall { best.wall = r.seconds }
    if r.cpuSeconds < best.cpu { best.cpu = r.cpuSeconds }
    if isChild, fields.count >= 3, let kib = Int(fields[2]) {
      best.maxRSSKiB = max(best.maxRSSKiB ?? 0, kib)
    } else if !isChild, argv[0].hasSuffix("/ptfrag") {
      // The product itself: its peak RSS as the kernel counted it.
      best.maxRSSKiB = max(best.maxRSSKiB ?? 0, r.maxRSSKiB)
    }
  }
  return best
}

func fmt(_ x: Double, _ digits: Int = 2) -> String {
  var p = 1.0
  for _ in 0..<digits { p *= 10 }
  let v = (x * p).rounded() / p
  var s = String(v)
  if let dot = s.firstIndex(of: ".") {
    let decimals = s.distance(from: dot, to: s.endIndex) - 1
    if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
  } else if digits > 0 {
    s += "." + String(repeating: "0", count: digits)
  }
  return s
}

func run() {
  let o = parseOptions()
  let me = selfPath()
  var dir = o.dir ?? ""
  if dir.isEmpty {
    var template = Array("/tmp/ptfrag-bench-XXXXXX".utf8CString)
    guard let p = mkdtemp(&template) else { fail("cannot create a temporary directory") }
    dir = String(decoding: UnsafeRawBufferPointer(start: p, count: strlen(p)), as: UTF8.self)
  } else if mkdir(dir, 0o755) != 0 && errno != EEXIST {
    fail("cannot create \(dir): \(String(cString: strerror(errno)))")
  }
  let scratch = dir + "/stdout.txt"
  var report = "# ptfrag-bench\n\n"
  report += "model \(o.synth.modelID), seed \(o.synth.seed), \(o.synth.mms) mms, \(o.synth.cpus) CPUs; "
  report += "fastest of \(o.repeats) runs; captures in \(dir)\n"
  report += "CPUs online: \(sysconf(Int32(_SC_NPROCESSORS_ONLN))); load average at start: \(loadAverage())\n\n"
  print(report, terminator: "")
  var cleanup: [String] = []
  if !o.realCopies.isEmpty { realShaped(o, me: me, dir: dir, scratch: scratch, cleanup: &cleanup) }
  for n in o.sizes where !o.only.isSubset(of: ["real"]) {
    // 1. The captures: text (synth), JSON Lines (convert), gzip of the text.
    var so = o.synth
    so.events = n
    let text = "\(dir)/synth-\(n).trace"
    let t0 = now()
    do {
      let sink = try ByteSink.create(path: text)
      _ = try Synthesizer(so).write(to: sink)
    } catch let e as SynthError {
      fail(e.message)
    } catch {
      fail("\(error)")
    }
    let synthSeconds = now() - t0
    cleanup.append(text)
    let jsonl = "\(dir)/synth-\(n).jsonl"
    let gz = text + ".gz"
    if o.only.contains("json") {
      do {
        var input = try CaptureInput.open(path: text)
        let sink = try ByteSink.create(path: jsonl)
        _ = try CaptureConverter.convert(&input, to: .json, into: sink)
      } catch {
        fail("convert: \(error)")
      }
      cleanup.append(jsonl)
    }
    if o.only.contains("gzip") {
      let r = spawn(["gzip", "-6", "-k", "-f", text], stdoutPath: scratch)
      guard r.status == 0 else { fail("gzip failed") }
      cleanup.append(gz)
    }
    let bytes = fileSize(text)
    let mb = Double(bytes) / 1e6
    let events = Double(n)
    print("## \(n) events: \(fmt(mb, 1)) MB text (synthesized in \(fmt(synthSeconds, 1)) s)")
    // Warm the page cache for everyone.
    _ = spawn(["cat", text], stdoutPath: "/dev/null")

    // 2. Measurements on the same file, in the same run.
    let wc = measure("wc -l", o.repeats, ["wc", "-l", text], out: scratch)
    // grep stops at the first match when its output is /dev/null: write to a file.
    let grep = measure("grep -c page_table_alloc", o.repeats, ["grep", "-c", "page_table_alloc", text], out: scratch)
    var rows: [(Measurement, UInt64)] = [(wc, bytes), (grep, bytes)]
    if o.only.contains("text") {
      rows.append((measure("ptfrag parse (text)", o.repeats, [me, "--child", "parse", text], out: scratch), bytes))
      rows.append((measure("ptfrag parse+replay (text)", o.repeats, [me, "--child", "replay", text], out: scratch), bytes))
    }
    if o.only.contains("json") {
      let jb = fileSize(jsonl)
      rows.append((measure("ptfrag parse (JSON Lines)", o.repeats, [me, "--child", "parse", jsonl], out: scratch), jb))
      rows.append((measure("ptfrag parse+replay (JSON Lines)", o.repeats, [me, "--child", "replay", jsonl], out: scratch), jb))
    }
    if o.only.contains("gzip") {
      let gb = fileSize(gz)
      rows.append((measure("zlib inflate only (.gz)", o.repeats, [me, "--child", "inflate", gz], out: scratch), gb))
      rows.append((measure("ptfrag parse+replay (.gz)", o.repeats, [me, "--child", "replay", gz], out: scratch), gb))
    }
    var table = "| measurement | seconds | CPU s | Mevents/s | MB/s (of the file read) | peak RSS MB | throughput vs grep -c |\n"
    table += "|---|---:|---:|---:|---:|---:|---:|\n"
    for (m, b) in rows {
      let eps = events / m.seconds / 1e6
      let mbps = Double(b) / 1e6 / m.seconds
      let ratio = grep.seconds / m.seconds
      let rss = m.maxRSSKiB.map { fmt(Double($0) / 1024, 1) } ?? "—"
      table += "| \(m.name) | \(fmt(m.seconds, 3)) | \(fmt(m.cpu, 3)) | \(fmt(eps, 2)) | \(fmt(mbps, 0)) | \(rss) | \(fmt(ratio, 3)) |\n"
    }
    print(table)
    // The targets.
    func row(_ name: String) -> Measurement? { rows.first { $0.0.name == name }?.0 }
    if let r = row("ptfrag parse+replay (text)") {
      print("- parse+replay (text) at \(fmt(grep.seconds / r.seconds, 3)) × grep -c's throughput (target ≥ 0.333)")
      print("- peak RSS \(fmt(Double(r.maxRSSKiB ?? 0) / 1024, 1)) MB (target < 100 MB on 10 M events)")
      if let j = row("ptfrag parse+replay (JSON Lines)") {
        print("- JSON Lines takes \(fmt(j.seconds / r.seconds, 2)) × the text path's time (target ≤ 2)")
      }
      if let g = row("ptfrag parse+replay (.gz)"), let z = row("zlib inflate only (.gz)") {
        print("- gzip adds \(fmt(g.seconds - r.seconds, 3)) s; zlib alone takes \(fmt(z.seconds, 3)) s (target: added ≤ zlib)")
      }
    }
    print("")
  }
  print("load average at the end: \(loadAverage())")
  if !o.keep {
    for f in cleanup { unlink(f) }
    unlink(scratch)
    if o.dir == nil { rmdir(dir) }
  }
}

/// The `ptfrag` executable built beside this one (`.build/release/ptfrag`).
func ptfragExecutable(besides me: String) -> String {
  let dir = me.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
  let path = (dir.isEmpty ? "." : dir) + "/ptfrag"
  guard access(path, X_OK) == 0 else { fail("\(path): not found (swift build -c release builds it)") }
  return path
}

/// The real-shaped input at each length: `wc -l`, `grep -c` (to a file), ptfrag parse,
/// parse+replay (text), the same gzipped, and compare, with the peak RSS of each.
func realShaped(_ o: Options, me: String, dir: String, scratch: String, cleanup: inout [String]) {
  print("## real-shaped input: copies of \(o.corpus)\n")
  var table = "| copies | events | MB | measurement | seconds | CPU s | Mevents/s | MB/s | peak RSS MB | vs grep -c |\n"
  table += "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n"
  for copies in o.realCopies {
    let text = "\(dir)/real-\(copies).trace"
    let events: Int
    do { events = try writeRealShaped(from: o.corpus, copies: copies, to: text) } catch {
      fail("\(o.corpus): \(error)")
    }
    cleanup.append(text)
    let gz = text + ".gz"
    if o.only.contains("gzip") {
      guard spawn(["gzip", "-6", "-k", "-f", text], stdoutPath: scratch).status == 0 else { fail("gzip failed") }
      cleanup.append(gz)
    }
    _ = spawn(["cat", text], stdoutPath: "/dev/null")
    let bytes = fileSize(text)
    let wc = measure("wc -l", o.repeats, ["wc", "-l", text], out: scratch)
    let grep = measure("grep -c page_table_alloc", o.repeats, ["grep", "-c", "page_table_alloc", text], out: scratch)
    var rows: [(Measurement, UInt64)] = [(wc, bytes), (grep, bytes)]
    rows.append((measure("ptfrag parse (text)", o.repeats, [me, "--child", "parse", text], out: scratch), bytes))
    rows.append((measure("ptfrag parse+replay (text)", o.repeats, [me, "--child", "replay", text], out: scratch), bytes))
    // The product end to end (process start, replay, the report rendered and written).
    let cli = ptfragExecutable(besides: me)
    rows.append((measure("ptfrag analyze (text report)", o.repeats, [cli, "analyze", "--model", "s390-6.1", text], out: scratch, allowed: [0, 2]), bytes))
    rows.append((measure("ptfrag analyze --format json", o.repeats, [cli, "analyze", "--model", "s390-6.1", "--format", "json", text], out: scratch, allowed: [0, 2]), bytes))
    if o.only.contains("gzip") {
      rows.append((measure("ptfrag parse+replay (.gz)", o.repeats, [me, "--child", "replay", gz], out: scratch), fileSize(gz)))
    }
    if o.only.contains("compare") {
      rows.append((measure("ptfrag compare", 1, [me, "--child", "compare", text], out: scratch), bytes))
    }
    for (m, b) in rows {
      let rss = m.maxRSSKiB.map { fmt(Double($0) / 1024, 1) } ?? "—"
      table += "| \(copies) | \(events) | \(fmt(Double(bytes) / 1e6, 1)) | \(m.name) | \(fmt(m.seconds, 3)) | \(fmt(m.cpu, 3)) | "
      table += "\(fmt(Double(events) / m.seconds / 1e6, 2)) | \(fmt(Double(b) / 1e6 / m.seconds, 0)) | \(rss) | \(fmt(grep.seconds / m.seconds, 3)) |\n"
    }
    if !o.keep {
      unlink(text)
      unlink(gz)
    }
  }
  print(table)
}

run()
