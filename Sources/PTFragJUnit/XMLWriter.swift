import CLibXML2
import PTFragReport

/// A thin owner of libxml2's `xmlTextWriter` writing into memory. Every string goes through
/// `XMLSanitizer` before libxml2 sees it; element and attribute names are ptfrag's own
/// ASCII constants. libxml2 escapes markup (`<`, `>`, `&`, quotes, CR/LF/TAB in attributes).
/// The first libxml2 error is kept and thrown by `finish()`.
final class XMLWriter {
  struct Failure: Error, CustomStringConvertible {
    var description: String
  }

  private let buffer: xmlBufferPtr
  private var writer: xmlTextWriterPtr?
  private var failure: String?

  init() throws(Failure) {
    xmlInitParser()
    guard let b = xmlBufferCreate() else { throw Failure(description: "libxml2: cannot allocate a buffer") }
    buffer = b
    guard let w = xmlNewTextWriterMemory(b, 0) else {
      xmlBufferFree(b)
      throw Failure(description: "libxml2: cannot create a text writer")
    }
    writer = w
    check(xmlTextWriterSetIndent(w, 1), "set indent")
    check(xmlTextWriterSetIndentString(w, "  "), "set indent string")
    check(xmlTextWriterStartDocument(w, "1.0", "UTF-8", nil), "start document")
  }

  deinit {
    if let writer { xmlFreeTextWriter(writer) }
    xmlBufferFree(buffer)
  }

  private func check(_ rc: Int32, _ what: @autoclosure () -> String) {
    if rc < 0 && failure == nil { failure = "libxml2: \(what()) failed" }
  }

  /// Calls `body` with `s` as a NUL-terminated `xmlChar` string. `s` is sanitized, so it
  /// holds no NUL of its own.
  private func withXMLChars(_ s: String, _ body: (UnsafePointer<xmlChar>) -> Int32) -> Int32 {
    XMLSanitizer.sanitize(s).withCString { p in
      body(UnsafeRawPointer(p).assumingMemoryBound(to: xmlChar.self))
    }
  }

  private func withName(_ name: StaticString, _ body: (UnsafePointer<xmlChar>) -> Int32) -> Int32 {
    body(UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: xmlChar.self))
  }

  func start(_ name: StaticString) {
    guard let w = writer else { return }
    check(withName(name) { xmlTextWriterStartElement(w, $0) }, "start <\(name)>")
  }

  func attribute(_ name: StaticString, _ value: String) {
    guard let w = writer else { return }
    check(
      withName(name) { n in withXMLChars(value) { v in xmlTextWriterWriteAttribute(w, n, v) } },
      "attribute \(name)")
  }

  /// Character data (escaped by libxml2, never CDATA).
  func text(_ value: String) {
    guard let w = writer, !value.isEmpty else { return }
    check(withXMLChars(value) { xmlTextWriterWriteString(w, $0) }, "text")
  }

  func end() {
    guard let w = writer else { return }
    check(xmlTextWriterEndElement(w), "end element")
  }

  /// `<name attrs…>text</name>` in one call.
  func element(_ name: StaticString, _ attributes: [(StaticString, String)] = [], text: String? = nil) {
    start(name)
    for (k, v) in attributes { attribute(k, v) }
    if let text { text.isEmpty ? () : self.text(text) }
    end()
  }

  /// Ends the document and returns its bytes (UTF-8, with the XML declaration).
  func finish() throws(Failure) -> [UInt8] {
    if let w = writer {
      check(xmlTextWriterEndDocument(w), "end document")
      xmlFreeTextWriter(w)  // flushes into `buffer`
      writer = nil
    }
    if let failure { throw Failure(description: failure) }
    let n = Int(xmlBufferLength(buffer))
    guard n > 0, let content = xmlBufferContent(buffer) else { return [] }
    return Array(UnsafeBufferPointer(start: content, count: n))
  }
}
