import PTFragEvents
import PTFragRead

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Two-stage pipeline: `produce` runs on a second thread and emits items, which `consume`
/// receives on the calling thread, in order, in batches. On a machine with two or more
/// CPUs reading+parsing+normalizing and replaying then overlap, so a capture takes about as
/// long as the slower stage instead of both together. Results are the same as running the
/// stages one after the other: one producer, one consumer, order kept.
///
/// Memory: at most `depth` batches of `batchSize` items in flight.
///
/// Concrete types (not generic): the per-item path must be specialized code.
typealias Item = StagedItem
typealias Result = ReadDiagnostics
typealias Failure = ReadError

/// What `Analyzer`'s stage 1 (read, parse, normalize) hands stage 2 (detect, replay), in
/// input order: a normalized event, or a probe line of `function` read before the events
/// that follow it (sent only while detection may still read the counts: `ReplayStage.count`).
enum StagedItem {
  case event(Event)
  case hit(KernelFunction)
}

enum Pipeline {
  /// CPUs online (1 when unknown).
  static var onlineCPUs: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

  /// Runs the two stages; `produce` gets an `emit` function and returns its result (or
  /// throws, which is rethrown here after `consume` has seen everything emitted before).
  static func run(
    batchSize: Int = 4096, depth: Int = 4,
    produce: @escaping (_ emit: (Item) -> Void) throws(Failure) -> Result,
    consume: (Item) -> Void
  ) throws(Failure) -> Result {
    let queue = BatchQueue(depth: depth)
    let job = ProducerJob(queue: queue, batchSize: batchSize, produce: produce)
    var thread = pthread_t()
    let context = Unmanaged.passRetained(job as AnyObject).toOpaque()
    let rc = pthread_create(
      &thread, nil,
      { raw in
        let job = Unmanaged<AnyObject>.fromOpaque(raw!).takeRetainedValue() as! RunnableJob
        job.run()
        return nil
      }, context)
    if rc != 0 {
      // No thread: run the stages one after the other.
      Unmanaged<AnyObject>.fromOpaque(context).release()
      return try produce(consume)
    }
    while var batch = queue.pop() {
      for item in batch { consume(item) }
      batch.removeAll(keepingCapacity: true)  // unique here: the storage is reused
      queue.recycle(batch)
    }
    pthread_join(thread, nil)
    switch job.outcome! {
    case .success(let r): return r
    case .failure(let e): throw e
    }
  }
}

private protocol RunnableJob: AnyObject { func run() }

/// The producer side (lives on the second thread until it is joined).
private final class ProducerJob: RunnableJob, @unchecked Sendable {
  let queue: BatchQueue
  let batchSize: Int
  let produce: (_ emit: (Item) -> Void) throws(Failure) -> Result
  var outcome: Swift.Result<Result, Failure>? = nil

  init(
    queue: BatchQueue, batchSize: Int,
    produce: @escaping (_ emit: (Item) -> Void) throws(Failure) -> Result
  ) {
    self.queue = queue
    self.batchSize = batchSize
    self.produce = produce
  }

  func run() {
    var batch = queue.fresh(capacity: batchSize)
    do throws(Failure) {
      let r = try produce { item in
        batch.append(item)
        if batch.count == batchSize {
          queue.push(batch)
          batch = queue.fresh(capacity: batchSize)
        }
      }
      outcome = .success(r)
    } catch {
      outcome = .failure(error)
    }
    if !batch.isEmpty { queue.push(batch) }
    queue.finish()
  }
}

/// A bounded FIFO of batches between one producer and one consumer (mutex + conditions),
/// with emptied batches handed back for reuse.
private final class BatchQueue: @unchecked Sendable {
  private var mutex = pthread_mutex_t()
  private var notEmpty = pthread_cond_t()
  private var notFull = pthread_cond_t()
  private var full: [[Item]] = []
  private var spare: [[Item]] = []
  private var finished = false
  private let depth: Int

  init(depth: Int) {
    self.depth = depth
    pthread_mutex_init(&mutex, nil)
    pthread_cond_init(&notEmpty, nil)
    pthread_cond_init(&notFull, nil)
  }

  deinit {
    pthread_cond_destroy(&notFull)
    pthread_cond_destroy(&notEmpty)
    pthread_mutex_destroy(&mutex)
  }

  func push(_ batch: [Item]) {
    pthread_mutex_lock(&mutex)
    while full.count >= depth { pthread_cond_wait(&notFull, &mutex) }
    full.append(batch)
    pthread_cond_signal(&notEmpty)
    pthread_mutex_unlock(&mutex)
  }

  func finish() {
    pthread_mutex_lock(&mutex)
    finished = true
    pthread_cond_signal(&notEmpty)
    pthread_mutex_unlock(&mutex)
  }

  /// The next batch, or nil once the producer finished and everything was taken.
  func pop() -> [Item]? {
    pthread_mutex_lock(&mutex)
    defer { pthread_mutex_unlock(&mutex) }
    while full.isEmpty && !finished { pthread_cond_wait(&notEmpty, &mutex) }
    if full.isEmpty { return nil }
    let b = full.removeFirst()
    pthread_cond_signal(&notFull)
    return b
  }

  func recycle(_ batch: [Item]) {
    pthread_mutex_lock(&mutex)
    if spare.count < depth + 1 { spare.append(batch) }
    pthread_mutex_unlock(&mutex)
  }

  func fresh(capacity: Int) -> [Item] {
    pthread_mutex_lock(&mutex)
    let b = spare.popLast()
    pthread_mutex_unlock(&mutex)
    if let b { return b }
    var n: [Item] = []
    n.reserveCapacity(capacity)
    return n
  }
}
