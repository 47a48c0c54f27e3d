import PTFragEvents
import PTFragRead
import PTFragTestSupport
import XCTest

/// The repository root.
let repositoryRoot: String = TestPaths.root.path

func sampleBytes(_ name: String) throws -> [UInt8] {
  let path = repositoryRoot + "/Fixtures/samples/" + name
  guard let d = FileManager.default.contents(atPath: path) else {
    throw XCTSkip("fixture \(path) missing")
  }
  return [UInt8](d)
}

/// Everything a record carries, as one comparable line.
func describe(_ r: TraceRecord) -> String {
  switch r {
  case .lost(let m): return "lost line=\(m.line) cpu=\(m.cpu) count=\(m.count)"
  case .hit(let h):
    func v(_ x: UInt64?) -> String { x.map { String($0, radix: 16) } ?? "-" }
    return
      "hit line=\(h.line) ts=\(h.timestampNs) cpu=\(h.cpu) pid=\(h.pid) comm=\(h.comm.byteArray) "
      + "fn=\(h.function) kind=\(h.kind) caller=\(h.caller) mm=\(v(h.mm)) table=\(v(h.table)) "
      + "tlb=\(v(h.tlb)) vmaddr=\(v(h.vmaddr)) retval=\(v(h.retval))"
  }
}

/// Reads `bytes` with format detection; returns the records (described) and diagnostics.
func readAll(_ bytes: [UInt8], name: String = "<memory>") throws -> ([String], ReadDiagnostics) {
  var input = try CaptureInput(sniffing: MemorySource(bytes, name: name))
  var out: [String] = []
  let d = try CaptureReader.read(&input) { out.append(describe($0)) }
  return (out, d)
}

/// A source that hands out at most `step` bytes per read (a slow pipe).
struct TrickleSource: ByteSource {
  var base: MemorySource
  let step: Int
  var name: String { base.name }
  mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ReadError) -> Int {
    try base.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(step, buffer.count)]))
  }
}

func convert(_ bytes: [UInt8], to target: ConvertTarget) throws -> ([UInt8], ConvertSummary) {
  var input = try CaptureInput(sniffing: MemorySource(bytes))
  let sink = ByteSink(memoryNamed: "<out>")
  let s = try CaptureConverter.convert(&input, to: target, into: sink)
  return (sink.memory, s)
}
