import CLibXML2

/// Validates a JUnit document against an XSD (`junit-10.xsd`) through libxml2's schema API:
/// the self-check the test suite runs on every JUnit file it produces. Also reports documents
/// that are not well-formed XML 1.0 (a forbidden character, even as `&#N;`, is fatal there).
public enum JUnitSchema {
  /// The problems found, `line N: message` each; empty when `xml` is valid. Throws when the
  /// schema itself cannot be loaded.
  public static func validate(xml: [UInt8], schemaPath: String) throws -> [String] {
    xmlInitParser()
    let sink = ErrorSink()
    let ctxPtr = Unmanaged.passUnretained(sink).toOpaque()
    xmlSetStructuredErrorFunc(ctxPtr, collect)
    defer { xmlSetStructuredErrorFunc(nil, nil) }

    guard let parser = xmlSchemaNewParserCtxt(schemaPath) else {
      throw SchemaError(description: "cannot read schema \(schemaPath)")
    }
    defer { xmlSchemaFreeParserCtxt(parser) }
    guard let schema = xmlSchemaParse(parser) else {
      throw SchemaError(description: "cannot parse schema \(schemaPath): \(sink.messages.joined(separator: "; "))")
    }
    defer { xmlSchemaFree(schema) }
    sink.messages.removeAll()

    let options = Int32(XML_PARSE_NONET.rawValue)
    let doc = xml.withUnsafeBufferPointer { b in
      b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) {
        xmlReadMemory($0, Int32(b.count), "junit.xml", nil, options)
      }
    }
    guard let doc else {
      return sink.messages.isEmpty ? ["not well-formed XML"] : sink.messages
    }
    defer { xmlFreeDoc(doc) }
    guard let valid = xmlSchemaNewValidCtxt(schema) else {
      throw SchemaError(description: "libxml2: cannot create a validation context")
    }
    defer { xmlSchemaFreeValidCtxt(valid) }
    xmlSchemaSetValidStructuredErrors(valid, collect, ctxPtr)
    let rc = xmlSchemaValidateDoc(valid, doc)
    if rc != 0 && sink.messages.isEmpty { return ["invalid against \(schemaPath) (libxml2 code \(rc))"] }
    return sink.messages
  }

  /// The problems libxml2 finds parsing `xml` as XML 1.0 (no network, no DTD loading),
  /// `line N: message` each; empty when the document is well-formed. The HTML reports are
  /// XHTML, so this checks them too.
  public static func wellFormedProblems(xml: [UInt8], name: String = "document.xml") -> [String] {
    xmlInitParser()
    let sink = ErrorSink()
    let ctxPtr = Unmanaged.passUnretained(sink).toOpaque()
    xmlSetStructuredErrorFunc(ctxPtr, collect)
    defer { xmlSetStructuredErrorFunc(nil, nil) }
    let options = Int32(XML_PARSE_NONET.rawValue)
    let doc = xml.withUnsafeBufferPointer { b in
      b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) {
        xmlReadMemory($0, Int32(b.count), name, nil, options)
      }
    }
    guard let doc else { return sink.messages.isEmpty ? ["not well-formed XML"] : sink.messages }
    xmlFreeDoc(doc)
    return sink.messages
  }

  public struct SchemaError: Error, CustomStringConvertible {
    public var description: String
  }

  final class ErrorSink {
    var messages: [String] = []
  }
}

/// libxml2's structured error callback: appends `line N: message` to the sink.
private func collect(_ ctx: UnsafeMutableRawPointer?, _ error: xmlErrorPtr?) {
  guard let ctx, let e = error?.pointee else { return }
  let sink = Unmanaged<JUnitSchema.ErrorSink>.fromOpaque(ctx).takeUnretainedValue()
  var text = e.message.map { String(cString: $0) } ?? "error \(e.code)"
  while text.last == "\n" { text.removeLast() }
  sink.messages.append("line \(e.line): \(text)")
}

/// What a JUnit file holds, read back through libxml2's tree API: the counts each suite
/// declares next to the cases it really has, for tests that check a document from outside.
public struct JUnitCensus: Sendable {
  public struct Case: Sendable {
    public var classname: String
    public var name: String
    public var time: String?
    /// `passed`, `failure`, `error` or `skipped`.
    public var outcome: String
    /// The outcome element's `type` and `message` attributes and text.
    public var type: String?
    public var message: String?
    public var body: String
    public var systemOut: String?
  }
  public struct Suite: Sendable {
    public var attributes: [String: String]
    public var properties: [(name: String, value: String)]
    public var cases: [Case]
    public func property(_ name: String) -> String? { properties.first { $0.name == name }?.value }
    public func testcase(_ name: String) -> Case? { cases.first { $0.name == name } }
    public func count(_ outcome: String) -> Int { cases.filter { $0.outcome == outcome }.count }
  }
  public var rootAttributes: [String: String]
  public var suites: [Suite]

  public var tests: Int { suites.reduce(0) { $0 + $1.cases.count } }
  public func count(_ outcome: String) -> Int { suites.reduce(0) { $0 + $1.count(outcome) } }

  /// Reads `xml`; nil when it is not well-formed or its root is not `<testsuites>`.
  public init?(xml: [UInt8]) {
    xmlInitParser()
    let options = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue | XML_PARSE_NOWARNING.rawValue)
    let doc = xml.withUnsafeBufferPointer { b in
      b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) {
        xmlReadMemory($0, Int32(b.count), "junit.xml", nil, options)
      }
    }
    guard let doc else { return nil }
    defer { xmlFreeDoc(doc) }
    guard let root = xmlDocGetRootElement(doc), Self.name(root) == "testsuites" else { return nil }
    rootAttributes = Self.attributes(root)
    suites = Self.children(root, "testsuite").map { s in
      Suite(
        attributes: Self.attributes(s),
        properties: Self.children(s, "properties").flatMap { Self.children($0, "property") }.map {
          let a = Self.attributes($0)
          return (a["name"] ?? "", a["value"] ?? "")
        },
        cases: Self.children(s, "testcase").map { c in
          let a = Self.attributes(c)
          var out = Case(
            classname: a["classname"] ?? "", name: a["name"] ?? "", time: a["time"], outcome: "passed",
            type: nil, message: nil, body: "", systemOut: nil)
          for kind in ["failure", "error", "skipped"] {
            if let o = Self.children(c, kind).first {
              let oa = Self.attributes(o)
              out.outcome = kind
              out.type = oa["type"]
              out.message = oa["message"]
              out.body = Self.text(o)
            }
          }
          out.systemOut = Self.children(c, "system-out").first.map(Self.text)
          return out
        })
    }
  }

  static func name(_ n: xmlNodePtr) -> String { n.pointee.name.map { String(cString: $0) } ?? "" }

  static func children(_ n: xmlNodePtr, _ name: String) -> [xmlNodePtr] {
    var out: [xmlNodePtr] = []
    var c = n.pointee.children
    while let node = c {
      if node.pointee.type == XML_ELEMENT_NODE && Self.name(node) == name { out.append(node) }
      c = node.pointee.next
    }
    return out
  }

  static func attributes(_ n: xmlNodePtr) -> [String: String] {
    var out: [String: String] = [:]
    var a = n.pointee.properties
    while let attr = a {
      let key = attr.pointee.name.map { String(cString: $0) } ?? ""
      if let v = xmlGetProp(n, attr.pointee.name) {
        out[key] = String(cString: v)
        ptfrag_xml_free(v)
      }
      a = attr.pointee.next
    }
    return out
  }

  static func text(_ n: xmlNodePtr) -> String {
    guard let t = xmlNodeGetContent(n) else { return "" }
    defer { ptfrag_xml_free(t) }
    return String(cString: t)
  }
}
