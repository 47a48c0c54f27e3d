import ArgumentParser
import PTFragKit
import PTFragReport

#if canImport(Glibc)
  import Glibc
#endif

/// `--jobs N`: how many inputs `analyze` and `compare` work on at once.
struct JobsOption: ParsableArguments {
  @Option(
    name: .customLong("jobs"),
    help: ArgumentHelp(
      "Inputs analyzed at once (default: the CPUs online, \(ManyInputs.onlineCPUs) here); 1 analyzes them one after the other. The report is the same bytes either way.",
      valueName: "N"))
  var jobs: Int?

  func validate() throws {
    if let j = jobs, j < 1 { throw ValidationError("--jobs must be 1 or more") }
  }

  var value: Int { jobs ?? ManyInputs.onlineCPUs }
}

/// What one input's work came to (`runInputs`).
enum InputOutcome<R: Sendable>: Sendable {
  case done(R)
  /// An error about the run, not the input (a kprobe_profile that cannot be read, an
  /// unknown model): the run stops at the first one, in input order.
  case failed(AnalyzeError)
  /// Not started: an earlier input failed so.
  case skipped
}

/// Runs `body` on every input, `jobs` at a time (`ManyInputs.map`), with progress on a
/// terminal: one input at a time shows its own line (`ProgressLine`, as ever); several at once
/// share one line (`ProgressBoard`). `body` gets the input's index and its progress callbacks.
/// Returns the results in input order, stopping at the first `.failed` (later inputs not yet
/// started are skipped, those running are finished and dropped): the same outcome, in the
/// same order, as one at a time.
func runInputs<R: Sendable>(
  _ paths: [String], jobs: Int,
  _ body: @escaping @Sendable (_ index: Int, _ progress: InputProgress) throws(AnalyzeError) -> R
) -> [InputOutcome<R>] {
  let width = ManyInputs.concurrency(inputs: paths.count, jobs: jobs)
  let board = width > 1 ? ProgressBoard(paths: paths) : nil
  let stop = StopFlag()
  let outcomes = ManyInputs.map(count: paths.count, jobs: jobs) { i -> InputOutcome<R> in
    if stop.isSet { return .skipped }
    let progress: InputProgress
    if let board {
      progress = board.progress(of: i)
    } else {
      progress = InputProgress(line: ProgressLine(path: paths[i]))
    }
    defer { progress.finished() }
    do throws(AnalyzeError) {
      return .done(try body(i, progress))
    } catch {
      stop.set()
      return .failed(error)
    }
  }
  board?.clear()
  var out: [InputOutcome<R>] = []
  for o in outcomes {
    out.append(o)
    if case .failed = o { break }
  }
  return out
}

/// One input's progress callbacks: bytes read, and `compare`'s pass.
struct InputProgress: Sendable {
  var reporter: (@Sendable (UInt64) -> Void)?
  var pass: @Sendable (Int) -> Void
  var finished: @Sendable () -> Void

  init(line: ProgressLine) {
    reporter = line.reporter
    pass = { line.pass = $0 }
    finished = { line.clear() }
  }

  init(
    reporter: (@Sendable (UInt64) -> Void)?, pass: @escaping @Sendable (Int) -> Void,
    finished: @escaping @Sendable () -> Void
  ) {
    self.reporter = reporter
    self.pass = pass
    self.finished = finished
  }
}

/// Set once, read by every worker.
final class StopFlag: @unchecked Sendable {
  private var mutex = pthread_mutex_t()
  private var value = false
  init() { pthread_mutex_init(&mutex, nil) }
  deinit { pthread_mutex_destroy(&mutex) }
  var isSet: Bool {
    pthread_mutex_lock(&mutex)
    defer { pthread_mutex_unlock(&mutex) }
    return value
  }
  func set() {
    pthread_mutex_lock(&mutex)
    value = true
    pthread_mutex_unlock(&mutex)
  }
}

/// Progress of several inputs read at once, on standard error, only when it is a terminal:
/// one line rewritten in place, at most every 0.2 s:
/// `ptfrag: 3 of 8 inputs done, 2 running: 41% of 131.7 MiB read`.
final class ProgressBoard: @unchecked Sendable {
  let enabled: Bool
  private let sizes: [UInt64?]
  private var bytes: [UInt64]
  private var running = 0
  private var done = 0
  private var lastNs: UInt64 = 0
  private var shown = false
  private var mutex = pthread_mutex_t()

  init(paths: [String]) {
    enabled = isatty(2) != 0
    sizes = paths.map { path in
      var st = stat()
      return path != "-" && stat(path, &st) == 0 && st.st_size > 0 ? UInt64(st.st_size) : nil
    }
    bytes = Array(repeating: 0, count: paths.count)
    pthread_mutex_init(&mutex, nil)
  }

  deinit { pthread_mutex_destroy(&mutex) }

  /// Input `i` starts; its callbacks.
  func progress(of i: Int) -> InputProgress {
    locked {
      running += 1
      show(force: true)
    }
    return InputProgress(
      reporter: enabled ? { @Sendable [self] n in self.locked { self.bytes[i] = n; self.show(force: false) } } : nil,
      pass: { @Sendable [self] p in
        // compare's second pass reads the input again from its start.
        if p > 1 { self.locked { self.bytes[i] = 0 } }
      },
      finished: { @Sendable [self] in
        self.locked {
          self.running -= 1
          self.done += 1
          if let s = self.sizes[i] { self.bytes[i] = s }
          self.show(force: true)
        }
      })
  }

  private func locked(_ body: () -> Void) {
    pthread_mutex_lock(&mutex)
    body()
    pthread_mutex_unlock(&mutex)
  }

  /// Called with the mutex held.
  private func show(force: Bool) {
    guard enabled else { return }
    let now = Stopwatch.monotonicNs()
    guard force || now - lastNs >= 200_000_000 else { return }
    lastNs = now
    var s = "\rptfrag: \(done) of \(sizes.count) inputs done, \(running) running"
    let total = sizes.reduce(UInt64(0)) { $0 + ($1 ?? 0) }
    if total > 0 {
      var read: UInt64 = 0
      for (i, size) in sizes.enumerated() { if let size { read += min(size, bytes[i]) } }
      s += ": \(min(100, read * 100 / total))% of \(formatBytes(Double(total))) read"
    }
    FileHandleOutput.stderr(s + "\u{1B}[K")
    shown = true
  }

  func clear() {
    locked {
      if shown { FileHandleOutput.stderr("\r\u{1B}[K") }
      shown = false
    }
  }
}
