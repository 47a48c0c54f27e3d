/// The one gate every string passes before it is written as XML: the JUnit file (before
/// libxml2 sees it) and the HTML page (before `esc` escapes markup).
///
/// XML 1.0 allows only `#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`,
/// even as a character reference: `&#27;` is as invalid as a raw ESC, and libxml2's writer
/// escapes markup (`<`, `&`, quotes, `>`) but passes forbidden characters through. Captures are
/// free to hold anything in a comm, a path or a malformed line, so every string is cleaned here:
///
/// | input | written as |
/// |---|---|
/// | C0 control U+0000–U+001F other than TAB, LF, CR | its Control Picture U+2400–U+241F (ESC → `␛`, NUL → `␀`) |
/// | DEL U+007F | `␡` U+2421 |
/// | C1 control U+0080–U+009F (allowed but discouraged by XML 1.0; terminals act on them) | U+FFFD |
/// | U+FFFE, U+FFFF | U+FFFD |
/// | invalid UTF-8 (bytes from the input) | U+FFFD per maximal invalid subsequence |
///
/// Markup characters (`<`, `&`, `"`, `'`, `]]>`) are left for libxml2 to escape; text is never
/// written as CDATA, so `]]>` needs no splitting.
public enum XMLSanitizer {
  /// Whether XML 1.0 (the `Char` production) allows `u` and ptfrag writes it as is.
  @inline(__always)
  public static func isClean(_ u: Unicode.Scalar) -> Bool {
    let v = u.value
    if v < 0x20 { return v == 0x09 || v == 0x0A || v == 0x0D }
    if v < 0x7F { return true }
    if v <= 0x9F { return false }
    return v != 0xFFFE && v != 0xFFFF
  }

  /// What `u` is written as when it is not clean.
  public static func replacement(_ u: Unicode.Scalar) -> Unicode.Scalar {
    let v = u.value
    if v < 0x20 { return Unicode.Scalar(0x2400 + v)! }
    if v == 0x7F { return "\u{2421}" }
    return "\u{FFFD}"
  }

  /// `s` with every character XML 1.0 forbids (or discourages, C1) replaced.
  public static func sanitize(_ s: String) -> String {
    if s.unicodeScalars.allSatisfy(isClean) { return s }
    var out = String.UnicodeScalarView()
    for u in s.unicodeScalars { out.append(isClean(u) ? u : replacement(u)) }
    return String(out)
  }

  /// Bytes from the input (not necessarily UTF-8), cleaned: invalid UTF-8 becomes U+FFFD.
  public static func sanitize<C: Collection>(utf8 bytes: C) -> String where C.Element == UInt8 {
    sanitize(String(decoding: bytes, as: UTF8.self))
  }

  /// `s` cut to at most `maxBytes` bytes of UTF-8 at a character boundary, and whether it was
  /// cut. The cut never splits a scalar.
  public static func prefix(_ s: String, maxBytes: Int) -> (String, cut: Bool) {
    if s.utf8.count <= maxBytes { return (s, false) }
    var n = 0
    var end = s.unicodeScalars.startIndex
    for i in s.unicodeScalars.indices {
      let w = UTF8.width(s.unicodeScalars[i])
      if n + w > maxBytes { break }
      n += w
      end = s.unicodeScalars.index(after: i)
    }
    return (String(s.unicodeScalars[..<end]), true)
  }
}
