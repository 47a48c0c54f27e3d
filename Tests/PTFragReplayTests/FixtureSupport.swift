import Foundation
import PTFragEvents
import PTFragRead
import PTFragReplay
import PTFragTestSupport
import XCTest

/// Helpers shared by the model tests: fixtures and replaying text through a model (events
/// by hand: `EventScript`, in PTFragTestSupport).
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
