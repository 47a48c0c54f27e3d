import Dispatch

/// `body` of every element, on every CPU, in the order of `xs`: the parts of a report (one per
/// input) are independent, so a run over many captures renders them at once. Deterministic:
/// the result is `xs.map(body)` whatever the thread count.
func concurrentMap<T, R>(_ xs: [T], _ body: (T) -> R) -> [R] {
  guard xs.count > 1 else { return xs.map(body) }
  var out = [R?](repeating: nil, count: xs.count)
  out.withUnsafeMutableBufferPointer { buf in
    nonisolated(unsafe) let slots = buf
    nonisolated(unsafe) let items = xs
    withoutActuallyEscaping(body) { body in
      nonisolated(unsafe) let work = body
      DispatchQueue.concurrentPerform(iterations: items.count) { i in slots[i] = work(items[i]) }
    }
  }
  return out.map { $0! }
}
