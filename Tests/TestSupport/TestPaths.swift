import Foundation

/// Where things are, relative to the package root (found from this file's path).
public enum TestPaths {
  /// <root>/Tests/TestSupport/TestPaths.swift → <root>
  public static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  public static func fixture(_ name: String) -> String { root.appendingPathComponent("Fixtures/junit/\(name)").path }
  public static func sample(_ name: String) -> String { root.appendingPathComponent("Fixtures/samples/\(name)").path }

  /// The JUnit XSD: the copy in Fixtures/junit, else ../shared/junit beside the package.
  public static var xsd: String {
    let candidates = [
      root.appendingPathComponent("Fixtures/junit/junit-10.xsd").path,
      root.deletingLastPathComponent().appendingPathComponent("shared/junit/junit-10.xsd").path,
    ]
    return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
  }

  /// Where the JUnit files the tests produce are kept for `.ci/run`'s second opinion
  /// (`Tests/ci/check-junit.py`): `$PTFRAG_JUNIT_SAMPLES`, else `<root>/.build/junit-samples`.
  public static var samplesDir: URL {
    if let d = ProcessInfo.processInfo.environment["PTFRAG_JUNIT_SAMPLES"], !d.isEmpty {
      return URL(fileURLWithPath: d)
    }
    return root.appendingPathComponent(".build/junit-samples")
  }

  /// A fresh scratch directory.
  public static func scratch() throws -> URL {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("ptfrag-junit-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    return d
  }
}

/// Runs the built `ptfrag` executable.
public enum PTFragProcess {
  public struct Result {
    public var status: Int32
    public var stdout: String
    public var stderr: String
  }

  /// The executable beside the test bundle (same build directory), else `.build/debug/ptfrag`.
  public static var executable: URL {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var dir = exe.deletingLastPathComponent()
    // macOS-style bundles: <build>/X.xctest/Contents/MacOS/X
    while dir.pathExtension == "xctest" || dir.lastPathComponent == "MacOS" || dir.lastPathComponent == "Contents" {
      dir = dir.deletingLastPathComponent()
    }
    let candidates = [
      dir.appendingPathComponent("ptfrag"), TestPaths.root.appendingPathComponent(".build/debug/ptfrag"),
    ]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
  }

  public static func run(_ arguments: [String], in directory: URL? = nil) throws -> Result {
    let scratch = try TestPaths.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let outURL = scratch.appendingPathComponent("stdout")
    let errURL = scratch.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)
    let p = Process()
    p.executableURL = executable
    p.arguments = arguments
    if let directory { p.currentDirectoryURL = directory }
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    try out.close()
    try err.close()
    return Result(
      status: p.terminationStatus,
      stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
      stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
  }
}
