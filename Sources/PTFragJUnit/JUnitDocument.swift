import PTFragReport

/// A JUnit XML document as ptfrag writes it (flat: `testsuites` → `testsuite` → `testcase`).
/// The counts on every suite are computed from its cases, so they cannot disagree.
public struct JUnitDocument: Sendable {
  public var name: String
  public var suites: [JUnitSuite]

  public init(name: String, suites: [JUnitSuite]) {
    self.name = name
    self.suites = suites
  }

  public var tests: Int { suites.reduce(0) { $0 + $1.tests } }
  public var failures: Int { suites.reduce(0) { $0 + $1.failures } }
  public var errors: Int { suites.reduce(0) { $0 + $1.errors } }
  public var skipped: Int { suites.reduce(0) { $0 + $1.skipped } }
  /// Sum of the suites' times, in ns.
  public var timeNs: UInt64 { suites.reduce(0) { $0 + $1.timeNs } }
}

/// One `<testsuite>`: one input replayed through one model.
public struct JUnitSuite: Sendable {
  public struct Property: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
      self.name = name
      self.value = value
    }
  }

  public var name: String
  /// ISO 8601, UTC, without a zone suffix (`2026-11-26T01:12:00`), as Ant and Surefire write it.
  public var timestamp: String
  public var hostname: String
  /// Wall time of the input's analysis, in ns.
  public var timeNs: UInt64
  public var properties: [Property]
  public var cases: [JUnitCase]

  public init(
    name: String, timestamp: String, hostname: String, timeNs: UInt64, properties: [Property],
    cases: [JUnitCase]
  ) {
    self.name = name
    self.timestamp = timestamp
    self.hostname = hostname
    self.timeNs = timeNs
    self.properties = properties
    self.cases = cases
  }

  public var tests: Int { cases.count }
  public var failures: Int { cases.filter { if case .failure = $0.outcome { true } else { false } }.count }
  public var errors: Int { cases.filter { if case .error = $0.outcome { true } else { false } }.count }
  public var skipped: Int { cases.filter { if case .skipped = $0.outcome { true } else { false } }.count }
}

/// One `<testcase>`: one rule or check of a model on one input.
public struct JUnitCase: Sendable {
  public enum Outcome: Sendable {
    case passed
    /// The check found something: `<failure type message>body</failure>`.
    case failure(type: String, message: String, body: String)
    /// The check could not run at all (the input could not be replayed).
    case error(type: String, message: String, body: String)
    /// The check does not apply to this input, or the capture cannot decide it.
    case skipped(message: String, body: String?)
  }

  /// The model id (or `ptfrag` for an input that was not replayed).
  public var classname: String
  /// The rule id or check name.
  public var name: String
  public var timeNs: UInt64
  public var outcome: Outcome
  /// Context for a case that passed with something to say (findings below `--fail-on`,
  /// known findings, figures behind a check).
  public var systemOut: String?

  public init(classname: String, name: String, timeNs: UInt64 = 0, outcome: Outcome, systemOut: String? = nil) {
    self.classname = classname
    self.name = name
    self.timeNs = timeNs
    self.outcome = outcome
    self.systemOut = systemOut
  }
}

extension JUnitDocument {
  /// The document as JUnit XML (UTF-8, XML 1.0), written through libxml2's text writer.
  /// Every string is sanitized first (`XMLSanitizer`); times have 3 decimals (seconds).
  public func xml() throws -> [UInt8] {
    let w = try XMLWriter()
    w.start("testsuites")
    w.attribute("name", name)
    w.attribute("tests", String(tests))
    w.attribute("failures", String(failures))
    w.attribute("errors", String(errors))
    w.attribute("time", JUnitDocument.seconds(timeNs))
    for s in suites {
      w.start("testsuite")
      w.attribute("name", s.name)
      w.attribute("tests", String(s.tests))
      w.attribute("failures", String(s.failures))
      w.attribute("errors", String(s.errors))
      w.attribute("skipped", String(s.skipped))
      w.attribute("time", JUnitDocument.seconds(s.timeNs))
      w.attribute("timestamp", s.timestamp)
      w.attribute("hostname", s.hostname)
      w.start("properties")
      for p in s.properties { w.element("property", [("name", p.name), ("value", p.value)]) }
      w.end()
      for c in s.cases {
        w.start("testcase")
        w.attribute("classname", c.classname)
        w.attribute("name", c.name)
        w.attribute("time", JUnitDocument.seconds(c.timeNs))
        switch c.outcome {
        case .passed: break
        case .failure(let type, let message, let body):
          w.element("failure", [("type", type), ("message", message)], text: body)
        case .error(let type, let message, let body):
          w.element("error", [("type", type), ("message", message)], text: body)
        case .skipped(let message, let body):
          w.element("skipped", [("message", message)], text: body)
        }
        if let out = c.systemOut { w.element("system-out", text: out) }
        w.end()
      }
      w.end()
    }
    w.end()
    return try w.finish()
  }

  /// Seconds with 3 decimals (`12.345`), rounded to the nearest millisecond.
  public static func seconds(_ ns: UInt64) -> String {
    formatMilli(ns / 1_000_000 + (ns % 1_000_000 >= 500_000 ? 1 : 0))
  }
}
