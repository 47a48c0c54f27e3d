#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Several independent inputs (`ptfrag analyze a b c …`, `ptfrag compare a b …`) on up to
/// `jobs` threads at once. Each input is analyzed exactly as alone; the results come back in
/// input order, so the report is the same bytes whatever the thread count or the order the
/// inputs finish in.
public enum ManyInputs {
  /// CPUs online (1 when unknown): the default `--jobs`.
  public static var onlineCPUs: Int { Pipeline.onlineCPUs }

  /// How many inputs run at once: `jobs` (at least 1), never more than the inputs.
  public static func concurrency(inputs: Int, jobs: Int) -> Int { max(1, min(jobs, inputs)) }

  /// Whether each input should still use its own two-thread read/replay pipeline: only while
  /// the inputs running at once leave a CPU free for every second thread (otherwise the
  /// inputs themselves keep every CPU busy and the pipeline's hand-off only costs).
  public static func pipelined(inputs: Int, jobs: Int, cpus: Int = onlineCPUs) -> Bool {
    2 * concurrency(inputs: inputs, jobs: jobs) <= cpus || concurrency(inputs: inputs, jobs: jobs) == 1
  }

  /// `body(i)` for every `i` in `0..<count`, on `concurrency(inputs: count, jobs: jobs)`
  /// threads (the calling thread is one of them; with 1, everything runs on it, in order).
  /// Each thread takes the next index not yet taken. Returns the results by index.
  public static func map<T: Sendable>(count: Int, jobs: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
    let width = concurrency(inputs: count, jobs: jobs)
    if width <= 1 { return (0..<count).map(body) }
    let work = Work<T>(count: count, body: body)
    var threads: [pthread_t] = []
    for _ in 1..<width {
      var t = pthread_t()
      let context = Unmanaged.passRetained(work as AnyObject).toOpaque()
      let rc = pthread_create(
        &t, nil,
        { raw in
          let w = Unmanaged<AnyObject>.fromOpaque(raw!).takeRetainedValue() as! Drainable
          w.drain()
          return nil
        }, context)
      if rc != 0 {
        // No more threads: the ones started (and this one) do the rest.
        Unmanaged<AnyObject>.fromOpaque(context).release()
        break
      }
      threads.append(t)
    }
    work.drain()
    for t in threads { pthread_join(t, nil) }
    return work.results()
  }
}

private protocol Drainable: AnyObject { func drain() }

/// The shared index counter and result slots (each slot written by one thread, read after
/// every thread was joined).
private final class Work<T: Sendable>: Drainable, @unchecked Sendable {
  private var mutex = pthread_mutex_t()
  private var next = 0
  private let count: Int
  private let body: @Sendable (Int) -> T
  private var slots: [T?]

  init(count: Int, body: @escaping @Sendable (Int) -> T) {
    self.count = count
    self.body = body
    slots = Array(repeating: nil, count: count)
    pthread_mutex_init(&mutex, nil)
  }

  deinit { pthread_mutex_destroy(&mutex) }

  private func take() -> Int? {
    pthread_mutex_lock(&mutex)
    defer { pthread_mutex_unlock(&mutex) }
    guard next < count else { return nil }
    next += 1
    return next - 1
  }

  func drain() {
    while let i = take() {
      let r = body(i)
      pthread_mutex_lock(&mutex)
      slots[i] = r
      pthread_mutex_unlock(&mutex)
    }
  }

  func results() -> [T] {
    pthread_mutex_lock(&mutex)
    defer { pthread_mutex_unlock(&mutex) }
    return slots.map { $0! }
  }
}
