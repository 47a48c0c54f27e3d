import ArgumentParser
import PTFragKit

struct Probes: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Print the kprobe_events lines that capture a trace on a given s390x or powerpc kernel.",
    discussion: """
      The output is ready to paste into /sys/kernel/tracing/kprobe_events (lines starting \
      with '#' are comments the kernel ignores). It names only symbols that exist in that \
      version: page_table_free_rcu through v6.10, __tlb_remove_table through v6.13, \
      pte_free_defer and pte_free_now from v6.6 (THP=y), the _noprof entry points from \
      v6.18. From v6.14 tlb_remove_table carries struct ptdesc pointers: the set is printed \
      with a warning, and no model replays its tlb path.

      Versions before v\(ProbeSets.oldest) or after v\(ProbeSets.newest) are refused (exit 64).

      --arch powerpc (or a kernel string naming it, e.g. 6.12.95+deb12-powerpc64le-64k) \
      prints the powerpc set (registers r3, r4, $retval): pte_fragment_alloc/_free, \
      pte_frag_destroy, tlb_remove_table, __tlb_remove_table, the mm's birth, exit and death \
      (init_new_context, arch_exit_mmap, destroy_context), pmd_fragment_alloc/_free, and \
      from v6.6 pte_free_defer and pte_free_now.
      """)

  @Option(help: ArgumentHelp("Kernel version: 6.1, v6.12, 6.12.95+deb12-s390x, …", valueName: "VERSION"))
  var kernel: String

  @Option(help: ArgumentHelp("Architecture: s390x or powerpc (default: the one the kernel string names, else s390x).", valueName: "ARCH"))
  var arch: String?

  func validate() throws {
    if let arch, ProbeSets.Arch(rawValue: arch) == nil {
      throw ValidationError("unknown architecture '\(arch)'; known: \(ProbeSets.Arch.allCases.map(\.rawValue).joined(separator: ", "))")
    }
  }

  func run() throws {
    do {
      let set = try ProbeSets.probes(forKernel: kernel, arch: arch.flatMap(ProbeSets.Arch.init(rawValue:)))
      for w in set.warnings { FileHandleOutput.stderr("ptfrag: warning: \(w)\n") }
      FileHandleOutput.stdout(set.text)
    } catch {
      FileHandleOutput.stderr("ptfrag: \(error.message)\n")
      throw ExitCode(64)
    }
  }
}
