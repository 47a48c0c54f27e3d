import ArgumentParser
import PTFragKit

struct Probes: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Print the kprobe_events lines that capture a trace on a given s390x kernel.",
    discussion: """
      The output is ready to paste into /sys/kernel/tracing/kprobe_events (lines starting
      with '#' are comments the kernel ignores). It names only symbols that exist in that
      version: page_table_free_rcu through v6.10, __tlb_remove_table through v6.13,
      pte_free_defer and pte_free_now from v6.6 (THP=y), the _noprof entry points from
      v6.18. From v6.14 tlb_remove_table carries struct ptdesc pointers: the set is printed
      with a warning, and no model replays its tlb path.

      Versions before v\(ProbeSets.oldest) or after v\(ProbeSets.newest) are refused (exit 64).
      """)

  @Option(help: ArgumentHelp("Kernel version: 6.1, v6.12, 6.12.95+deb12-s390x, …", valueName: "VERSION"))
  var kernel: String

  func run() throws {
    do {
      let set = try ProbeSets.probes(forKernel: kernel)
      for w in set.warnings { FileHandleOutput.stderr("ptfrag: warning: \(w)\n") }
      FileHandleOutput.stdout(set.text)
    } catch {
      FileHandleOutput.stderr("ptfrag: \(error.message)\n")
      throw ExitCode(64)
    }
  }
}
