import ArgumentParser
import PTFragRead

extension ConvertTarget: ExpressibleByArgument {}

struct Convert: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Convert a capture between ftrace text and ptfrag's JSON (JSON Lines or an array).",
    discussion: """
      The input's format is detected (text, JSON Lines, JSON array; gzip-compressed or not).
      text → json keeps every line as one record (probe lines as probe records, LOST markers
      as lost records, header and other lines verbatim as text records), so record numbers
      are the text's line numbers and the conversion is lossless: json → text gives back the
      kernel's lines byte for byte.

      json → text writes each record as the kernel would print it and reads every line back;
      a record that text cannot hold unchanged (or a malformed record) becomes a
      '# ptfrag convert: …' comment line, is reported on standard error, and the exit status
      is 65. The JSON schema is described in docs/json-input.md.

      EXIT CODES
        0   converted, lossless
        65  malformed input, or records that could not be converted unchanged
        66  input missing or unreadable
        74  I/O error
      """)

  @Argument(help: ArgumentHelp("The capture to convert ('-' = standard input).", valueName: "FILE"))
  var file: String

  @Option(help: "Output format: text, json (JSON Lines), json-array.")
  var to: ConvertTarget

  @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("Write to FILE instead of standard output.", valueName: "FILE"))
  var output: String = "-"

  func run() throws {
    var input: CaptureInput
    do {
      input = try CaptureInput.open(path: file)
    } catch {
      FileHandleOutput.stderr("ptfrag: \(error.message)\n")
      throw ExitCode(error.exitCode)
    }
    let sink = try openOutput(output)
    let summary: ConvertSummary
    do {
      summary = try CaptureConverter.convert(&input, to: to, into: sink)
    } catch {
      FileHandleOutput.stderr("ptfrag: \(error.message)\n")
      throw ExitCode(error.exitCode)
    }
    if !summary.lossless {
      var m = "ptfrag: \(file): \(summary.lossyCount) record(s) could not be converted unchanged:\n"
      for n in summary.notes { m += "  \(file):\(n.number): \(n.reason)\n" }
      if summary.lossyCount > summary.notes.count {
        m += "  … and \(summary.lossyCount - summary.notes.count) more\n"
      }
      FileHandleOutput.stderr(m)
      throw ExitCode(65)
    }
  }
}

/// Opens `path` for writing (`-` = standard output); a failure is reported and exits 74.
func openOutput(_ path: String) throws -> ByteSink {
  do {
    return try ByteSink.create(path: path)
  } catch {
    FileHandleOutput.stderr("ptfrag: \(error.message)\n")
    throw ExitCode(74)
  }
}
