import Foundation
import PTFragEvents
import PTFragKit
import PTFragRead
import PTFragReplay
import PTFragReport
import PTFragSynth
import XCTest

final class SynthTests: XCTestCase {
  func synthesize(_ configure: (inout SynthOptions) -> Void) throws -> ([UInt8], SynthSummary) {
    var o = SynthOptions()
    configure(&o)
    let sink = ByteSink(memoryNamed: "<synth>")
    let s = try Synthesizer(o).write(to: sink)
    return (sink.memory, s)
  }

  func temporaryFile(_ bytes: [UInt8], _ name: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ptfrag-synth-tests-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    addTeardownBlock {
      try? FileManager.default.removeItem(at: url)
      try? FileManager.default.removeItem(at: dir)  // this process's; tests run one at a time
    }
    return url.path
  }

  func lines(_ bytes: [UInt8]) -> [Substring] {
    String(decoding: bytes, as: UTF8.self).split(separator: "\n")
  }

  func testTheSameSeedGivesTheSameBytes() throws {
    let (a, _) = try synthesize { $0.events = 20_000; $0.seed = 42; $0.cpus = 3; $0.mms = 10 }
    let (b, _) = try synthesize { $0.events = 20_000; $0.seed = 42; $0.cpus = 3; $0.mms = 10 }
    XCTAssertEqual(a, b)
    let (c, _) = try synthesize { $0.events = 20_000; $0.seed = 43; $0.cpus = 3; $0.mms = 10 }
    XCTAssertNotEqual(a, c)
  }

  func testEveryConfigurationReplaysCleanUnderItsOwnModel() throws {
    let configurations: [(UInt64, Int, Int)] = [(1, 2, 8), (2, 1, 1), (3, 4, 40), (4, 2, 3), (5, 8, 100)]
    for (seed, cpus, mms) in configurations {
      let n = 30_000
      let (bytes, summary) = try synthesize {
        $0.events = n
        $0.seed = seed
        $0.cpus = cpus
        $0.mms = mms
      }
      let what = "seed \(seed), \(cpus) CPUs, \(mms) mms"
      XCTAssertEqual(summary.events, n, what)
      XCTAssertEqual(summary.modelFindings, 0, what)
      // Exactly n probe lines after the 12-line header.
      let all = lines(bytes)
      XCTAssertEqual(all.filter { !$0.hasPrefix("#") }.count, n, what)
      let path = try temporaryFile(bytes, "clean-\(seed).trace")
      let report = try Analyzer.analyze(path: path, options: AnalyzeOptions())
      let r = try XCTUnwrap(report.result, what)
      XCTAssertEqual(r.findings.count, 0, "\(what): \(r.findings.prefix(3).map(\.message))")
      XCTAssertEqual(r.unexplainedInconclusive, 0, "\(what): \(r.inconclusive.prefix(3).map(\.message))")
      XCTAssertEqual(Judgement(result: r, gate: Gate(failOn: .error)).verdict, .clean, what)
      XCTAssertEqual(report.read.malformed, 0, what)
      XCTAssertEqual(report.read.backwardsTimestamps, 0, what)
      XCTAssertEqual(r.stats.mmsBorn, summary.mmsBorn, what)
      XCTAssertEqual(r.stats.allocationsPredicted + r.stats.allocationsUnverified, summary.allocations, what)
      // Most allocations belong to mms born in the capture, so the model checks them.
      XCTAssertGreaterThan(r.stats.allocationsPredicted * 10, summary.allocations * 9, what)
      XCTAssertGreaterThan(r.stats.mmsDied, 100, what)
    }
  }

  func testTheCaptureHasTheShapesOfARealOne() throws {
    let (bytes, _) = try synthesize { $0.events = 60_000; $0.seed = 7; $0.cpus = 2; $0.mms = 8 }
    let text = lines(bytes)
    XCTAssertEqual(text[2], "# entries-in-buffer/entries-written: 60000/60000   #P:2")
    var records: [ProbeHit] = []
    var input = try CaptureInput(sniffing: MemorySource(bytes))
    let d = try CaptureReader.read(&input) { if case .hit(let h) = $0 { records.append(h) } }
    XCTAssertEqual(d.malformedCount, 0)
    XCTAssertEqual(records.count, 60_000)
    // Timestamps never go backwards, and both CPUs take part.
    XCTAssertTrue(zip(records, records.dropFirst()).allSatisfy { $0.timestampNs <= $1.timestampNs })
    XCTAssertEqual(Set(records.map(\.cpu)), [0, 1])
    // mm births (crst_table_alloc returning into mm_init) and deaths (the pgd freed).
    let births = records.filter { $0.function == .crstTableAlloc && $0.kind == .ret && $0.caller == .mmInit }
    XCTAssertGreaterThan(births.count, 500)
    XCTAssertGreaterThan(records.filter { $0.function == .crstTableFree }.count, 500)
    // Tagged halves and untagged CRSTs in the tlb batch; both tags occur.
    let queued = records.filter { $0.function == .tlbRemoveTable }.compactMap(\.table)
    XCTAssertEqual(Set(queued.map { $0 & 3 }), [0, 1, 2])
    // The batches execute later, from idle, ksoftirqd and tasks, partly on another CPU.
    var queuedOn: [UInt64: Int32] = [:]
    var otherCPU = 0
    var comms = Set<String>()
    for h in records {
      if h.function == .tlbRemoveTable, let t = h.table { queuedOn[t] = h.cpu }
      if h.function == .tlbRemoveTableExec, let t = h.table {
        comms.insert(h.comm.description)
        if let q = queuedOn[t], q != h.cpu { otherCPU += 1 }
      }
    }
    XCTAssertTrue(comms.contains("<idle>"))
    XCTAssertTrue(comms.contains { $0.hasPrefix("ksoftirqd/") })
    XCTAssertGreaterThan(otherCPU, 100)
    // The immediate free (page_table_free) and comms with dashes and spaces appear.
    XCTAssertGreaterThan(records.filter { $0.function == .pageTableFree }.count, 0)
    let allComms = Set(records.map(\.comm.description))
    XCTAssertTrue(allComms.contains { $0.contains(" ") })
    XCTAssertTrue(allComms.contains { $0.contains("-") })
    // The lines are the kernel's layout: converting to JSON and back changes no byte.
    var j = try CaptureInput(sniffing: MemorySource(bytes))
    let json = ByteSink(memoryNamed: "<json>")
    _ = try CaptureConverter.convert(&j, to: .json, into: json)
    var back = try CaptureInput(sniffing: MemorySource(json.memory))
    let text2 = ByteSink(memoryNamed: "<text>")
    _ = try CaptureConverter.convert(&back, to: .text, into: text2)
    XCTAssertEqual(text2.memory, bytes)
  }

  func testLostMarkersMakeTheCaptureInconclusive() throws {
    let (bytes, summary) = try synthesize { $0.events = 30_000; $0.seed = 11; $0.lostBursts = 3 }
    XCTAssertEqual(summary.lostMarkers, 3)
    XCTAssertGreaterThan(summary.lostEvents, 0)
    let text = lines(bytes)
    XCTAssertEqual(text.filter { $0.hasPrefix("CPU:") && $0.hasSuffix(" EVENTS]") }.count, 3)
    XCTAssertEqual(text[2], "# entries-in-buffer/entries-written: 30000/\(30_000 + summary.lostEvents)   #P:2")
    let path = try temporaryFile(bytes, "lost.trace")
    let report = try Analyzer.analyze(path: path, options: AnalyzeOptions())
    let r = try XCTUnwrap(report.result)
    XCTAssertEqual(r.stats.lostMarkers, 3)
    XCTAssertEqual(r.stats.lostEvents, UInt64(summary.lostEvents))
    XCTAssertEqual(Judgement(result: r, gate: Gate(failOn: .error)).verdict, .inconclusive)
    XCTAssertTrue(r.findings.allSatisfy { $0.rule.severity == .info })
  }

  func testModelsItCannotPrintAreRefused() {
    var o = SynthOptions()
    o.modelID = "no-such-model"
    XCTAssertThrowsError(try Synthesizer(o)) { XCTAssertEqual($0 as? SynthError, .unknownModel("no-such-model")) }
    o.modelID = "s390-6.1"
    o.cpus = 0
    XCTAssertThrowsError(try Synthesizer(o))
  }
}

/// The model keeps occupancy by difference around each event; a full recount after every
/// event of synthetic captures, clean and damaged, must agree.
final class OccupancyRecountTests: XCTestCase {
  func testOccupancyEqualsARecountAfterEveryEvent() throws {
    var o = SynthOptions()
    o.events = 6_000
    o.cpus = 3
    o.mms = 12
    for seed: UInt64 in 1...6 {
      o.seed = seed
      o.lostBursts = seed == 6 ? 2 : 0
      let sink = ByteSink(memoryNamed: "<synth>")
      _ = try Synthesizer(o).write(to: sink)
      var lines = sink.memory.split(separator: 0x0A, omittingEmptySubsequences: false)
      // Damage: drop, duplicate and swap lines (missed events, double frees, reordering).
      var state = seed
      func random(_ n: Int) -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int((state >> 33) % UInt64(n))
      }
      if seed > 2 {
        for _ in 0..<60 {
          let i = 12 + random(lines.count - 13)
          switch random(3) {
          case 0: lines.remove(at: i)
          case 1: lines.insert(lines[i], at: i)
          default: lines.swapAt(i, min(lines.count - 1, i + 1 + random(20)))
          }
        }
      }
      let bytes = Array(lines.joined(separator: [0x0A]))
      let replayer = Replayer(model: S390v61Model.self)
      let model = try XCTUnwrap(replayer.model as? S390v61Model)
      var normalizer = Normalizer()
      var checked = 0
      var input = try CaptureInput(sniffing: MemorySource(bytes))
      _ = try CaptureReader.read(&input) { record in
        normalizer.feed(record) { e in
          replayer.apply(e)
          checked += 1
          XCTAssertTrue(model.occupancyMatchesRecount(), "seed \(seed): after \(e.kind) at line \(e.line)")
        }
      }
      XCTAssertGreaterThan(checked, 5_000)
      if seed > 2 { XCTAssertGreaterThan(replayer.context.findings.count + replayer.context.inconclusive.count, 0) }
    }
  }
}

/// `synth` promises captures that replay clean under their model: on many seeds and lengths,
/// not a handful (a batch that ran on another CPU than the one that handed it to call_rcu
/// left an earlier batch of that CPU never run on 6 of 120 pairs, e.g. --events 2000 --seed 7).
final class SynthManySeedsTests: XCTestCase {
  func testEverySeedAndLengthReplaysWithoutErrorOrUnexplainedItem() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ptfrag-synth-seeds-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let lengths = [300, 700, 1200, 2000, 3500]
    var pairs = 0
    var bad: [String] = []
    for seed: UInt64 in 1...24 {
      for n in lengths {
        var o = SynthOptions()
        o.events = n
        o.seed = seed
        // Mostly the default 2 CPUs (the seed the issue names among them), some 3 and 4.
        o.cpus = [2, 2, 3, 4][Int(seed % 4)]
        if seed == 7 { o.cpus = 2 }
        let sink = ByteSink(memoryNamed: "<synth>")
        _ = try Synthesizer(o).write(to: sink)
        let url = dir.appendingPathComponent("s\(seed)-\(n).trace")
        try Data(sink.memory).write(to: url)
        let report = try Analyzer.analyze(path: url.path, options: AnalyzeOptions(pipelined: false))
        let r = try XCTUnwrap(report.result, "seed \(seed), \(n) events")
        let errors = r.findings.filter { $0.rule.severity == .error }
        if !errors.isEmpty || r.unexplainedInconclusive > 0 {
          bad.append(
            "--events \(n) --seed \(seed) --cpus \(o.cpus): \(errors.count) error(s), \(r.unexplainedInconclusive) unexplained: \((errors.map(\.message) + r.inconclusive.map(\.message)).prefix(2))")
        }
        pairs += 1
      }
    }
    XCTAssertEqual(pairs, 120)
    XCTAssertEqual(bad, [], "\(bad.count) of \(pairs) pairs")
    // The pair the issue names.
    XCTAssertFalse(bad.contains { $0.hasPrefix("--events 2000 --seed 7 --cpus 2:") })
  }
}
