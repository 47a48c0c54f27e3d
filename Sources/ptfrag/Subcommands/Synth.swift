import ArgumentParser
import PTFragRead
import PTFragReplay
import PTFragSynth

struct Synth: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write a realistic synthetic capture (tests, benchmarks), deterministic for a seed.",
    usage: "ptfrag synth [<options>]",
    discussion: """
      The capture is ftrace text exactly as the kernel prints it (header, kprobe and \
      kretprobe lines): shells fork children, children fault, exec (a new mm is born, the \
      forked one torn down through the tlb batch) and exit; tlb batches execute later in \
      softirq context on the CPU that handed them to call_rcu (a task migrated while it gathered flushes on its new CPU), in the order that CPU did (RCU's per-CPU callback order); CPUs interleave by timestamp. Every \
      allocation's table is the one the model says the kernel hands out, so the capture \
      replays clean under that model (with --lost, inconclusive by design). \
      The same options and seed give the same bytes.
      """)

  @Option(help: "The model that decides the addresses: \(SynthDialect.supportedModels.joined(separator: ", ")).")
  var model: String = ModelRegistry.defaultModel.descriptor.id

  @Option(help: "Probe lines to write (events lost by --lost come on top).")
  var events: Int = 10_000

  @Option(help: "Random seed.")
  var seed: UInt64 = 1

  @Option(help: "mms alive at once (shells and their children).")
  var mms: Int = 8

  @Option(help: "CPUs.")
  var cpus: Int = 2

  @Option(help: "Ring-buffer overruns: this many 'CPU:N [LOST M EVENTS]' markers.")
  var lost: Int = 0

  @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("Write to FILE instead of standard output.", valueName: "FILE"))
  var output: String = "-"

  func run() throws {
    var o = SynthOptions()
    o.modelID = model
    o.events = events
    o.seed = seed
    o.mms = mms
    o.cpus = cpus
    o.lostBursts = lost
    let synth: Synthesizer
    do {
      synth = try Synthesizer(o)
    } catch {
      throw ValidationError(error.message)
    }
    let sink = try openOutput(output)
    do {
      _ = try synth.write(to: sink)
    } catch {
      FileHandleOutput.stderr("ptfrag: \(error.message)\n")
      throw ExitCode(74)
    }
  }
}
