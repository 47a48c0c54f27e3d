import Foundation
import PTFragEvents
import PTFragRead
import PTFragReplay
import PTFragTestSupport
import XCTest

/// Helpers shared by the model tests: fixtures, replaying text through a model, and
/// building events by hand.
enum Fixture {
  /// The package root.
  static var root: URL { TestPaths.root }

  static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

  /// Reads a capture file and replays it through `model` (text → hits → events → model).
  static func replay(
    _ relative: String, model: any AllocatorModel.Type, simulating: Bool = false,
    profileMisses: [KernelFunction: UInt64]? = nil
  ) throws -> ReplayResult {
    var source = try FileSource(path: path(relative))
    return try replay(&source, model: model, profileMisses: profileMisses)
  }

  /// Replays capture text (as a file would hold it).
  static func replay(text: String, model: any AllocatorModel.Type) throws -> ReplayResult {
    var source = MemorySource(Array(text.utf8))
    return try replay(&source, model: model, profileMisses: nil)
  }

  static func replay<S: ByteSource>(
    _ source: inout S, model: any AllocatorModel.Type, profileMisses: [KernelFunction: UInt64]?
  ) throws -> ReplayResult {
    let replayer = Replayer(model: model)
    var normalizer = Normalizer()
    _ = try TextCaptureReader().read(&source) { record in
      normalizer.feed(record) { replayer.apply($0) }
    }
    normalizer.finish { replayer.apply($0) }
    return replayer.finish(profileMisses: profileMisses)
  }
}

/// Builds events with increasing line numbers.
struct ProposalScript {
  var line = 0
  var ns: UInt64 = 1_000_000

  mutating func make(
    _ kind: Event.Kind, mm: UInt64? = nil, table: UInt64 = 0, pid: Int32 = 100,
    kernel: Bool? = nil, count: UInt64 = 0
  ) -> Event {
    line += 1
    ns += 1000
    return Event(
      kind: kind, line: line, timestampNs: ns, cpu: 0, pid: pid, comm: Comm("t"), mm: mm,
      table: table, count: count, kernel: kernel)
  }
}
