#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import PTFragReplay

/// Findings already known (`--baseline FILE`): a finding listed in the baseline is reported as
/// known and does not fail the gate. `--write-baseline FILE` writes every finding of a run.
///
/// A finding is matched by model id, rule id and a **signature** built from the finding's
/// structured fields that stay the same when the same bug shows up in another capture of the
/// same workload — never from its message, so rewording a message keeps every baseline:
/// - the kernel function of the event (`page_table_free_rcu`);
/// - where in its page the table lies (`lower half`, `fragment 7`), if it is a table;
/// - the model state before → after (`PA L → PA L`: the model's own notation, no addresses).
///
/// Schema 1 files (ptfrag ≤ 0.1 wrote the state and the message with every number blanked)
/// still load and match by that older signature; `--write-baseline` writes schema 2.
///
/// Not in the signature, because they change from one capture to the next: line numbers,
/// timestamps, CPUs, pids, comms (the same bug may hit another task), mm and page addresses
/// (allocation order, KASLR), the page's history (how many times a page was reused before).
/// Matching is by set, not by count: a signature in the baseline covers every finding with
/// that signature (races make counts vary between runs).
///
/// The file (JSON, `schemaVersion` 2; `count` and `example` are for people and are ignored
/// when matching):
/// ```json
/// { "schemaVersion": 2, "tool": "ptfrag", "toolVersion": "0.1.0",
///   "findings": [ { "model": "s390-6.1", "rule": "double-free",
///                   "signature": "page_table_free_rcu lower half | PA L → PA L",
///                   "count": 1, "example": "a.trace:13: page_table_free_rcu of …" } ] }
/// ```
public struct Baseline: Sendable {
  public static let schemaVersion = 2
  /// The schemas this ptfrag reads.
  public static let readableSchemas = 1...2
  /// The schema of the signatures in `entries`.
  public var schema: Int

  public struct Entry: Sendable, Hashable, Codable {
    public var model: String
    public var rule: String
    public var signature: String
    /// Occurrences when the baseline was written (information only).
    public var count: Int?
    /// One occurrence, `path:line: message` (information only).
    public var example: String?
    public init(model: String, rule: String, signature: String, count: Int? = nil, example: String? = nil) {
      self.model = model
      self.rule = rule
      self.signature = signature
      self.count = count
      self.example = example
    }
  }

  public var entries: [Entry]
  private var keys: Set<Key>

  struct Key: Hashable {
    var model: String
    var rule: String
    var signature: String
  }

  public init(entries: [Entry], schema: Int = Baseline.schemaVersion) {
    self.entries = entries
    self.schema = schema
    keys = Set(entries.map { Key(model: $0.model, rule: $0.rule, signature: $0.signature) })
  }

  /// The stable signature of a finding (see the type's documentation), of `schema`.
  public static func signature(of f: Finding, schema: Int = Baseline.schemaVersion) -> String {
    if schema == 1 { return "\(f.stateBefore) → \(f.stateAfter) | \(shape(f.message))" }
    return "\(f.kind.symbol)\(f.location.map { " " + $0.text } ?? "") | \(f.stateBefore) → \(f.stateAfter)"
  }

  /// `message` with hexadecimal numbers replaced by `0x…` and decimal numbers by `#`.
  public static func shape(_ message: String) -> String {
    var out = String.UnicodeScalarView()
    let s = Array(message.unicodeScalars)
    var i = 0
    func isDigit(_ u: Unicode.Scalar) -> Bool { u.value >= 48 && u.value <= 57 }
    func isHex(_ u: Unicode.Scalar) -> Bool {
      isDigit(u) || (u.value >= 97 && u.value <= 102) || (u.value >= 65 && u.value <= 70)
    }
    while i < s.count {
      if s[i] == "0", i + 2 < s.count, s[i + 1] == "x" || s[i + 1] == "X", isHex(s[i + 2]) {
        i += 2
        while i < s.count && isHex(s[i]) { i += 1 }
        out.append(contentsOf: "0x…".unicodeScalars)
      } else if isDigit(s[i]) {
        while i < s.count && isDigit(s[i]) { i += 1 }
        out.append("#")
      } else {
        out.append(s[i])
        i += 1
      }
    }
    return String(out)
  }

  public func contains(model: String, _ f: Finding) -> Bool {
    keys.contains(Key(model: model, rule: f.rule.id, signature: Self.signature(of: f, schema: schema)))
  }

  /// Marks the input's findings that the baseline lists as known; returns how many.
  @discardableResult
  public func apply(to input: inout InputReport) -> Int {
    guard let model = input.result?.model.id else { return 0 }
    var n = 0
    for k in input.result!.findings.indices where contains(model: model, input.result!.findings[k]) {
      input.result!.findings[k].known = true
      n += 1
    }
    return n
  }

  /// A baseline of every finding in `run` (one entry per model, rule and signature).
  public static func of(_ run: RunReport) -> Baseline {
    var order: [Key] = []
    var byKey: [Key: Entry] = [:]
    for input in run.inputs {
      guard let r = input.result else { continue }
      for f in r.findings {
        let key = Key(model: r.model.id, rule: f.rule.id, signature: signature(of: f))
        if byKey[key] == nil {
          order.append(key)
          byKey[key] = Entry(
            model: key.model, rule: key.rule, signature: key.signature, count: 0,
            example: "\(input.path):\(f.line): \(f.message)")
        }
        byKey[key]!.count! += 1
      }
    }
    order.sort { ($0.model, $0.rule, $0.signature) < ($1.model, $1.rule, $1.signature) }
    return Baseline(entries: order.map { byKey[$0]! })
  }

  /// The file's text (deterministic: entries sorted by model, rule, signature).
  public func rendered(toolVersion: String) -> String {
    let doc: JSON = .object([
      ("schemaVersion", .int(Self.schemaVersion)),
      ("tool", .string("ptfrag")),
      ("toolVersion", .string(toolVersion)),
      (
        "findings",
        .array(
          entries.map { e in
            var kv: [(String, JSON)] = [
              ("model", .string(e.model)), ("rule", .string(e.rule)), ("signature", .string(e.signature)),
            ]
            if let c = e.count { kv.append(("count", .int(c))) }
            if let x = e.example { kv.append(("example", .string(x))) }
            return .object(kv)
          })
      ),
    ])
    return doc.serialized() + "\n"
  }

  /// Why a baseline file could not be used.
  public struct FormatError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// 1-based line of the file the reason is about.
    public var line: Int = 1
  }

  /// What is wrong, in the file's words, without the decoder's debug dump.
  static func formatError(_ error: any Error, _ bytes: [UInt8]) -> FormatError {
    let what = "not a ptfrag baseline (a JSON object with schemaVersion and findings, as --write-baseline writes)"
    // The first byte that is not white space: where a file that is not JSON shows it.
    var line = 1
    var first: UInt8? = nil
    for b in bytes {
      if b == 0x0A { line += 1; continue }
      if b == 0x20 || b == 0x09 || b == 0x0D { continue }
      first = b
      break
    }
    guard first == UInt8(ascii: "{") else {
      return FormatError(
        description: first == nil ? "\(what): the file is empty" : "\(what): it does not start with '{'",
        line: first == nil ? 1 : line)
    }
    func field(_ path: [any CodingKey]) -> String {
      path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    }
    let reason: String
    switch error as? DecodingError {
    case .keyNotFound(let key, let ctx)?:
      reason = "no \(field(ctx.codingPath + [key])) field"
    case .typeMismatch(let type, let ctx)?, .valueNotFound(let type, let ctx)?:
      reason = "\(field(ctx.codingPath)) is not \(type == String.self ? "a string" : type == Int.self ? "an integer" : "of the expected type")"
    default:
      reason = "it is not valid JSON"
    }
    return FormatError(description: "\(what): \(reason)", line: line)
  }

  /// Parses a baseline file's bytes.
  public static func parse(_ bytes: [UInt8]) throws(FormatError) -> Baseline {
    struct File: Decodable {
      var schemaVersion: Int
      var findings: [Entry]
    }
    let file: File
    do {
      file = try JSONDecoder().decode(File.self, from: Data(bytes))
    } catch {
      throw formatError(error, bytes)
    }
    guard readableSchemas.contains(file.schemaVersion) else {
      throw FormatError(
        description: "baseline schemaVersion \(file.schemaVersion) is not supported (this ptfrag reads \(readableSchemas.lowerBound) to \(readableSchemas.upperBound); write it again with --write-baseline)")
    }
    return Baseline(entries: file.findings, schema: file.schemaVersion)
  }
}
