/// xoshiro256** (Blackman & Vigna), seeded through SplitMix64: a fixed, portable generator,
/// so a synthetic capture is byte-identical for a seed on every machine and Swift version
/// (the standard library's generator makes no such promise).
public struct SynthRandom: RandomNumberGenerator, Sendable {
  private var s: (UInt64, UInt64, UInt64, UInt64)

  public init(seed: UInt64) {
    var x = seed
    func splitmix() -> UInt64 {
      x &+= 0x9E37_79B9_7F4A_7C15
      var z = x
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    s = (splitmix(), splitmix(), splitmix(), splitmix())
  }

  @inline(__always)
  public mutating func next() -> UInt64 {
    let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
    let t = s.1 << 17
    s.2 ^= s.0
    s.3 ^= s.1
    s.1 ^= s.2
    s.0 ^= s.3
    s.2 ^= t
    s.3 = s.3 << 45 | s.3 >> 19
    return result
  }

  /// Uniform in `0..<n` (n > 0), by multiply-shift (Lemire; the tiny bias is irrelevant here
  /// and the result is the same everywhere).
  @inline(__always)
  public mutating func below(_ n: Int) -> Int {
    Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(n)).high)
  }

  /// Uniform in `lo...hi`.
  @inline(__always)
  public mutating func between(_ lo: Int, _ hi: Int) -> Int { lo + below(hi - lo + 1) }

  /// True with probability `permille`/1000.
  @inline(__always)
  public mutating func chance(_ permille: Int) -> Bool { below(1000) < permille }
}
