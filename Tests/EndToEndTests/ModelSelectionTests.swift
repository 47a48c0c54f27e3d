import Testing

@testable import PTFragKit
import PTFragReplay
import PTFragReport

#if canImport(Glibc)
  import Glibc
#endif

/// The real captures and the hand-written fixtures through the whole pipeline: model choice
/// (`--model auto`), the 6.12 sample under s390-6.7, and the s390-6.6 fixtures.
@Suite("Model selection and the s390-6.6/6.7 models end to end")
struct ModelSelectionTests {
  static let root: String = {
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
  }()
  static func sample(_ v: String) -> (trace: String, profile: String) {
    let base = root + "/Fixtures/samples/s390x-\(v)-fork-exec"
    return (base + ".trace", base + ".kprobe_profile")
  }
  static func fixture(_ name: String) -> String { root + "/Fixtures/models/" + name }

  func analyze(_ path: String, model: String = "auto", profile: String? = nil, lookahead: Int? = nil)
    throws -> InputReport
  {
    var o = AnalyzeOptions(modelID: model, profilePath: profile)
    if let lookahead { o.detectionLookahead = lookahead }
    return try Analyzer.analyze(path: path, options: o)
  }

  @Test("the real 6.12 sample replays under s390-6.7 with no error finding")
  func sample612UnderD() throws {
    let s = Self.sample("6.12")
    for profile in [nil, s.profile] {
      let r = try analyze(s.trace, model: "s390-6.7", profile: profile)
      let result = try #require(r.result)
      #expect(result.findings.filter { $0.rule.severity == .error }.isEmpty, "\(result.findings.map(\.message))")
      #expect(result.findings.isEmpty && result.unexplainedInconclusive == 0)
      #expect(r.judgement(Gate(failOn: .error)).exitCode == .clean)
      #expect(result.stats.allocationsPredicted == 94 && result.stats.mmsBorn == 20)
    }
  }

  @Test("auto-detection: the 6.12 sample is s390-6.7, the 6.1 sample is s390-6.1")
  func autoDetectsSamples() throws {
    let d = try analyze(Self.sample("6.12").trace, profile: Self.sample("6.12").profile)
    #expect(d.result?.model.id == "s390-6.7")
    #expect(d.modelSelection.hasPrefix("auto-detected: s390-6.7"))
    #expect(d.modelSelection.contains("tlb_remove_table(0x3517000)"))
    #expect(d.judgement(Gate(failOn: .error)).exitCode == .clean)
    let a = try analyze(Self.sample("6.1").trace, profile: Self.sample("6.1").profile)
    #expect(a.result?.model.id == "s390-6.1")
    #expect(a.modelSelection.hasPrefix("auto-detected: s390-6.1"))
    #expect(a.modelSelection.contains("line 20") && a.modelSelection.contains("upper 2 KiB half"))
    // Same result as choosing the model by hand.
    let given = try analyze(Self.sample("6.1").trace, model: "s390-6.1", profile: Self.sample("6.1").profile)
    #expect(a.result?.findings.count == given.result?.findings.count)
    #expect(a.result?.inconclusive.map(\.line) == given.result?.inconclusive.map(\.line))
    #expect(a.result?.stats.allocationsPredicted == given.result?.stats.allocationsPredicted)
  }

  @Test("auto-detection reads standard input once")
  func autoFromStdin() throws {
    let fd = open(Self.sample("6.12").trace, O_RDONLY)
    #expect(fd >= 0)
    let saved = dup(0)
    dup2(fd, 0)
    close(fd)
    defer {
      dup2(saved, 0)
      close(saved)
    }
    let r = try analyze("-")
    #expect(r.result?.model.id == "s390-6.7")
    #expect(r.result?.events == 530)
  }

  @Test("refusals carry exit 64 (nothing decisive) and 65 (v6.14+ tlb values)")
  func refusals() throws {
    let dir = "/tmp/ptfrag-e2e-\(getpid())"
    mkdir(dir, 0o755)
    func write(_ name: String, _ text: String) -> String {
      let p = dir + "/" + name
      let f = fopen(p, "w")!
      fputs(text, f)
      fclose(f)
      return p
    }
    let crstOnly = write(
      "crst.trace",
      "            init-1       [001] .....   73.375388: crst_table_alloc: (crst_table_alloc+0x0/0xe8) mm=0x2b6aa00\n"
        + "            init-1       [001] .....   73.377549: crst_table_alloc_ret: (__pmd_alloc+0x2a/0x258 <- crst_table_alloc) table=0x2910000\n")
    let r = try analyze(crstOnly)
    #expect(r.error?.code == .usage && r.judgement(Gate(failOn: .error)).exitCode == .usage)
    #expect(r.error?.message.contains("give --model") == true)
    let ptdesc = write(
      "ptdesc.trace",
      "             cut-241     [000] .....    73.394398: tlb_remove_table: (tlb_remove_table+0x0/0x238) tlb=0x37ffeb0fa38 table=0x3d0800d4640\n")
    let p = try analyze(ptdesc)
    #expect(p.error?.code == .malformedInput)
    #expect(p.error?.message.contains("ptdesc") == true)
  }

  @Test("pte_free_defer after the look-ahead under s390-6.1 is a model-mismatch item")
  func lateDefer() throws {
    // Birth, two alloc entries and returns: the look-ahead ends before line 19.
    let r = try analyze(Self.fixture("s390-6.6/defer-window.trace"), lookahead: 5)
    let result = try #require(r.result)
    #expect(result.model.id == "s390-6.1")
    #expect(result.inconclusive.contains { $0.reason == .modelMismatch && $0.line == 19 })
    #expect(r.judgement(Gate(failOn: .error)).exitCode != .clean)
  }

  @Test("s390-6.6 fixture: an alloc inside the pte_free_defer window is legal")
  func deferWindowFixture() throws {
    let r = try analyze(Self.fixture("s390-6.6/defer-window.trace"))
    let result = try #require(r.result)
    #expect(result.model.id == "s390-6.6")
    #expect(result.findings.isEmpty)
    #expect(result.inconclusive.map(\.line) == [22] && result.unexplainedInconclusive == 0)
    #expect(result.stats.pagesAtEnd == 0 && result.stats.mmsDied == 1)
    #expect(r.judgement(Gate(failOn: .error)).exitCode == .clean)
  }

  @Test("s390-6.6 fixture: an alloc from an Active page outside any window fails at its line")
  func allocFromActiveFixture() throws {
    let r = try analyze(Self.fixture("s390-6.6/alloc-from-active.trace"))
    let result = try #require(r.result)
    #expect(result.model.id == "s390-6.6")
    #expect(result.findings.map { "\($0.rule.id)@\($0.line)" } == ["alloc-from-active@23"])
    #expect(result.findings.first?.relatedLines == [19])
    #expect(result.inconclusive.isEmpty)
    #expect(r.judgement(Gate(failOn: .error)).exitCode == .findings)
  }

  @Test("s390-6.6: pte_free_now called directly for a page whose other half predates the capture is legal")
  func directReleaseUnknownHalf() throws {
    let r = try analyze(Self.fixture("s390-6.6/direct-release-unknown-half.trace"), model: "s390-6.6")
    let result = try #require(r.result)
    #expect(result.findings.isEmpty, "\(result.findings.map(\.message))")
    #expect(result.inconclusive.isEmpty)
    #expect(r.judgement(Gate(failOn: .error)).exitCode == .clean)
  }

  @Test("s390-6.6: pte_free_now for a page that still holds a table seen allocated fails at its line")
  func directReleaseHoldingTable() throws {
    let r = try analyze(Self.fixture("s390-6.6/direct-release-holding-table.trace"), model: "s390-6.6")
    let result = try #require(r.result)
    #expect(result.findings.map { "\($0.rule.id)@\($0.line)" } == ["rcu-free-not-pending@26"])
    #expect(r.judgement(Gate(failOn: .error)).exitCode == .findings)
  }

  @Test("s390-6.6: a direct pte_free_now after a missed __tlb_remove_table hinges on the profile")
  func directReleaseAfterMissedExec() throws {
    let path = Self.fixture("s390-6.6/direct-release-after-missed-exec.trace")
    let missed = try analyze(
      path, model: "s390-6.6", profile: Self.fixture("s390-6.6/direct-release-after-missed-exec.kprobe_profile"))
    let m = try #require(missed.result)
    #expect(m.findings.isEmpty)
    #expect(m.inconclusive.map { "\($0.reason.rawValue)@\($0.line)" } == ["missed-tlb-exec@28"])
    #expect(m.unexplainedInconclusive == 0 && missed.judgement(Gate(failOn: .error)).exitCode == .clean)
    let zero = try analyze(
      path, model: "s390-6.6", profile: Self.fixture("s390-6.6/direct-release-zero-misses.kprobe_profile"))
    let z = try #require(zero.result)
    #expect(z.findings.map { "\($0.rule.id)@\($0.line)" } == ["rcu-free-not-pending@28"])
    #expect(zero.judgement(Gate(failOn: .error)).exitCode == .findings)
  }
}
