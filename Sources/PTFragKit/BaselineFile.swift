import PTFragRead
import PTFragReport

/// Reading and writing `--baseline` files (the format is documented on `Baseline`).
extension Baseline {
  /// Loads a baseline. A missing file is exit 66, an unreadable one 66/74, a file that is not a
  /// baseline 65, each with a message naming the file.
  public static func load(path: String) throws(AnalyzeError) -> Baseline {
    let bytes: [UInt8]
    do throws(ReadError) {
      var src = try FileSource(path: path)
      bytes = try src.readAll(limit: 64 << 20, what: "baseline")
    } catch {
      throw .baseline(error)
    }
    do throws(FormatError) {
      return try parse(bytes)
    } catch {
      throw .baseline(.malformed(path: path, line: error.line, reason: error.description))
    }
  }
}
