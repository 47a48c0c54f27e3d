import ArgumentParser
import PTFragKit
import PTFragReport

@main
struct PTFrag: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ptfrag",
    abstract: "Replay captured s390/powerpc page-table events through reference models of the kernel's PTE-fragment allocators.",
    discussion: """
      ptfrag reads ftrace captures of page-table probes (the text of /sys/kernel/tracing/trace, \
      trace_pipe or trace-cmd report), replays them through a model of the allocator the \
      kernel ran, and reports every event the model says cannot happen.

      EXIT CODES
        0   clean: no finding at or above --fail-on, nothing unexplained
        1   findings at or above --fail-on (not counting --baseline ones), or a waste
            ratio above --max-waste-ratio
        2   inconclusive only (lost events, unexplained silent misses), or nothing
            replayed (an empty capture)
        64  usage error
        65  not a capture, cut inside its last line, or malformed beyond tolerance
        66  input missing or unreadable
        74  I/O error
      With several inputs the worst one decides.
      """,
    version: ptfragVersion,
    subcommands: [Analyze.self, Compare.self, Models.self, Probes.self, Convert.self, Synth.self],
    defaultSubcommand: Analyze.self)

  /// ArgumentParser's `main`, plus the one check every command's output needs: a write to
  /// standard output that failed (`> /dev/full`, a full disk), or its close, is exit 74
  /// whatever the command's own code, since its report never arrived.
  static func main() {
    var command: ParsableCommand
    do {
      command = try parseAsRoot()
    } catch {
      exit(withError: error)
    }
    var failure: Error? = nil
    do {
      try command.run()
    } catch let code as ArgumentParser.ExitCode {
      failure = code
    } catch {
      // What ArgumentParser would print on exit (`--help`, `help analyze`, a validation
      // error): printed now, while standard output is still open, then the bare code.
      let code = exitCode(for: error)
      let message = fullMessage(for: error)
      if !message.isEmpty {
        if code == .success { FileHandleOutput.stdout(message + "\n") } else { FileHandleOutput.stderr(message + "\n") }
      }
      failure = code
    }
    FileHandleOutput.closeStdout()
    if let e = FileHandleOutput.stdoutFailure {
      FileHandleOutput.stderr("ptfrag: cannot write standard output: \(e)\n")
      exit(withError: ExitCode(PTFragReport.ExitCode.ioError.rawValue))
    }
    exit(withError: failure)
  }
}
