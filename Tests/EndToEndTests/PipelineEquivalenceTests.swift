import Testing

@testable import PTFragKit
import PTFragReplay
import PTFragReport

#if canImport(Glibc)
  import Glibc
#endif

/// The two-thread pipeline (read+parse+normalize ∥ detect+replay) gives the same report as
/// one thread on real captures with `--model auto`: the detection reads the probe-line
/// counts as they stand at each event (a profile from another kernel is set aside by the
/// functions seen so far), the profile fit reads the totals, and a refusal stops the replay.
@Suite("Pipelined and one-thread analysis give identical reports")
struct PipelineEquivalenceTests {
  static let root: String = {
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
  }()
  static let s390 = root + "/Fixtures/corpus/s390/"

  /// The JSON report of `path`, pipelined or on one thread.
  func json(
    _ path: String, model: String = "auto", profile: String? = nil, lookahead: Int? = nil,
    pipelined: Bool
  ) throws -> (String, InputReport) {
    var o = AnalyzeOptions(modelID: model, profilePath: profile, pipelined: pipelined)
    if let lookahead { o.detectionLookahead = lookahead }
    let r = try Analyzer.analyze(path: path, options: o)
    return (JSONReport.render(RunReport(inputs: [r], failOn: .error, toolVersion: "test")), r)
  }

  func expectSame(
    _ path: String, model: String = "auto", profile: String? = nil, lookahead: Int? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws -> InputReport {
    let (two, r) = try json(path, model: model, profile: profile, lookahead: lookahead, pipelined: true)
    let (one, _) = try json(path, model: model, profile: profile, lookahead: lookahead, pipelined: false)
    #expect(two == one, "\(path) model \(model) profile \(profile ?? "-") look-ahead \(lookahead ?? 0)", sourceLocation: sourceLocation)
    return r
  }

  @Test("the pipeline runs on two threads here (else this suite compares a path with itself)")
  func twoCPUs() {
    #expect(Pipeline.onlineCPUs > 1)
  }

  @Test("real s390 captures, auto-detected, with and without their kprobe_profile")
  func s390Captures() throws {
    for name in ["s390x-6.1-dev", "s390x-6.12-dev"] {
      let trace = Self.s390 + name + ".trace.gz"
      let plain = try expectSame(trace)
      #expect(plain.result != nil && plain.modelSelection.hasPrefix("auto-detected: "))
      let profiled = try expectSame(trace, profile: Self.s390 + name + ".kprobe_profile")
      #expect(profiled.result != nil && profiled.profileMismatch.isEmpty)
    }
  }

  @Test("a profile from another kernel: set aside by the probe lines seen before the decision")
  func foreignProfile() throws {
    // The 6.12 profile has no page_table_free_rcu, which the 6.1 capture has: detection
    // distrusts it from the counts at its decision (early or late in the capture), the
    // profile fit reports it from the totals. Look-ahead 3: refused, nothing decisive yet.
    let trace = Self.s390 + "s390x-6.1-dev.trace.gz"
    let profile = Self.s390 + "s390x-6.12-dev.kprobe_profile"
    let early = try expectSame(trace, profile: profile, lookahead: 3)
    #expect(early.error?.code == .usage && early.result == nil)
    for lookahead in [40, 300, 5000, VariantDetector.defaultMaxEvents] {
      let r = try expectSame(trace, profile: profile, lookahead: lookahead)
      #expect(!r.profileMismatch.isEmpty, "\(lookahead): \(r.modelSelection) \(r.error?.message ?? "")")
      #expect(r.modelSelection.contains("the kprobe_profile is not used"), "\(lookahead): \(r.modelSelection)")
    }
    // The same under a given model (no detection: the counts do not travel in the stream).
    let given = try expectSame(trace, model: "s390-6.1", profile: profile)
    #expect(!given.profileMismatch.isEmpty)
  }

  @Test("a powerpc capture, auto-detected")
  func powerpcCapture() throws {
    let r = try expectSame(Self.root + "/Fixtures/corpus/ppc64/6.12.95+deb12-powerpc64le-64k-radix-small.trace.gz")
    #expect(r.result?.model.id.hasPrefix("powerpc") == true)
  }

  @Test("refusals: the same error either way")
  func refusals() throws {
    let dir = "/tmp/ptfrag-pipeline-eq-\(getpid())"
    mkdir(dir, 0o755)
    defer { rmdir(dir) }
    func write(_ name: String, _ text: String) -> String {
      let p = dir + "/" + name
      let f = fopen(p, "w")!
      fputs(text, f)
      fclose(f)
      return p
    }
    let crst = write(
      "crst.trace",
      "            init-1       [001] .....   73.375388: crst_table_alloc: (crst_table_alloc+0x0/0xe8) mm=0x2b6aa00\n"
        + "            init-1       [001] .....   73.377549: crst_table_alloc_ret: (__pmd_alloc+0x2a/0x258 <- crst_table_alloc) table=0x2910000\n")
    defer { unlink(crst) }
    let undecidable = try expectSame(crst)
    #expect(undecidable.error?.code == .usage)
    // A v6.14+ line (ptdesc tlb values): refused.
    let ptdesc = write(
      "ptdesc.trace",
      "             cut-241     [000] .....    73.394398: tlb_remove_table: (tlb_remove_table+0x0/0x238) tlb=0x37ffeb0fa38 table=0x3d0800d4640\n")
    defer { unlink(ptdesc) }
    let unsupported = try expectSame(ptdesc)
    #expect(unsupported.error?.code == .malformedInput)
    // Too short a look-ahead to decide on the 6.1 sample's first events: refused, same way.
    let sample = Self.root + "/Fixtures/samples/s390x-6.1-fork-exec.trace"
    for lookahead in [1, 2, 3] { _ = try expectSame(sample, lookahead: lookahead) }
  }
}
