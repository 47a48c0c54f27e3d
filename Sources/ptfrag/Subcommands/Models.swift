import ArgumentParser
import PTFragReplay

struct Models: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "List the allocator models: kernels, source commits, summary, rules.")

  @Flag(help: "Also list each model's rules.")
  var rules = false

  func run() {
    var o = ""
    for m in ModelRegistry.all.map({ $0.descriptor }) {
      o += "\(m.id)\n  kernels:   \(m.kernels)\n  summary:   \(m.summary)\n"
      o += "  functions: \(m.functions.joined(separator: ", "))\n"
      for c in m.commits { o += "  commit:    \(c)\n" }
      for n in m.notes { o += "  note:      \(n)\n" }
      if m.simulationOnly { o += "  runs:      simulation only (no kernel ran it; `compare` shows its choices)\n" }
      if !m.replayableOn.isEmpty { o += "  replays:   captures of \(m.replayableOn.joined(separator: ", "))\n" }
      for c in m.checks where rules {
        o += "  checks:    \(c.scope.rawValue): \(c.rules.joined(separator: ", ")) — \(c.why)\n"
      }
      if rules {
        for r in m.rules { o += "  rule:      \(r.id) (\(r.severity)): \(r.summary)\n" }
      }
    }
    o += "auto (ptfrag analyze --model auto, the default)\n"
    o += "  summary:   detects the variant from the capture (2 KiB halves or tagged tlb values: s390-6.1, or s390-6.6 with pte_free_defer; untagged page-aligned tables on the tlb path: s390-6.7) and says why; refuses when it cannot tell\n"
    FileHandleOutput.stdout(o)
  }
}
