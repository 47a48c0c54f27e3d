// swift-tools-version: 6.0
//
// ptfrag — replay captured s390/powerpc page-table events through reference models
// of the kernel's PTE-fragment allocators.
//
// Flow, one module per stage:
//   PTFragRead   (text/JSON capture → ProbeHit)     knows formats, nothing of models
//   PTFragEvents (ProbeHit → Event, pairing)         the shared vocabulary
//   PTFragReplay (Event → model → Finding/Stats)     knows models, nothing of formats or reports
//   PTFragReport (result + gate → Judgement → text/JSON/HTML) the one verdict; renderers read it
//   PTFragJUnit  (judgement → JUnit XML via libxml2) the only product module importing libxml2
//   PTFragKit    (the pipeline the CLI drives)
//   ptfrag       (thin CLI)
//   PTFragTestSupport (Tests/TestSupport: paths, process runner, RNG, events) and PTFragJUnitCheck
//   (Tests/JUnitCheck: the JUnit schema check and census, libxml2): test-only, for the test
//   targets and the fuzz package, never linked into ptfrag
//
// Linux only: the CLI and the benchmark import Glibc unconditionally (open/write/fsync/rename
// for atomic report files, isatty, clock_gettime), and the system libraries come from Debian
// packages (zlib1g-dev, libxml2-dev). No other platform is declared: none is built or tested.
import PackageDescription

let package = Package(
  name: "ptfrag",
  products: [
    .executable(name: "ptfrag", targets: ["ptfrag"]),
    .library(name: "PTFragKit", targets: ["PTFragKit"]),
    // Every stage as a library, for the fuzz package under Fuzz/ (kept out of this package).
    .library(
      name: "PTFragStages",
      targets: ["PTFragKit", "PTFragRead", "PTFragEvents", "PTFragReplay", "PTFragReport", "PTFragJUnit"]),
    // Test-only code (JUnit schema validation and census), for the fuzz package's checks.
    .library(name: "PTFragJUnitCheck", targets: ["PTFragJUnitCheck"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
  ],
  targets: [
    .target(name: "PTFragEvents", swiftSettings: hotPath),
    // zlib (gzip input), through the system library: apt install zlib1g-dev.
    .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    .target(name: "PTFragRead", dependencies: ["PTFragEvents", "CZlib"], swiftSettings: hotPath),
    .target(name: "PTFragReplay", dependencies: ["PTFragEvents"], swiftSettings: hotPath),
    .target(name: "PTFragReport", dependencies: ["PTFragEvents", "PTFragReplay"]),
    .systemLibrary(
      name: "CLibXML2", path: "Sources/CLibXML2", pkgConfig: "libxml-2.0",
      providers: [.apt(["libxml2-dev"])]),
    .target(name: "PTFragJUnit", dependencies: ["CLibXML2", "PTFragReport", "PTFragReplay", "PTFragEvents"]),
    .target(
      name: "PTFragKit",
      dependencies: [
        "PTFragEvents", "PTFragRead", "PTFragReplay", "PTFragReport",
        .product(name: "Crypto", package: "swift-crypto"),
      ], swiftSettings: hotPath),
    // Synthetic captures (ptfrag synth, tests, the benchmark): a model decides every address.
    .target(name: "PTFragSynth", dependencies: ["PTFragEvents", "PTFragRead", "PTFragReplay"]),
    .executableTarget(
      name: "ptfrag",
      dependencies: [
        "PTFragKit", "PTFragJUnit", "PTFragSynth", "PTFragRead", "PTFragReplay", "PTFragReport",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    // Throughput and memory benchmark (run in release; see docs/benchmark.md).
    .executableTarget(
      name: "ptfrag-bench",
      dependencies: ["PTFragKit", "PTFragSynth", "PTFragRead", "PTFragEvents", "PTFragReplay"]),
    // What the tests share: the package root, the process runner, one seeded generator, one
    // event builder (EventScript). Plain targets under Tests/, not test bundles. The JUnit
    // check (libxml2) is a module of its own: a module that imports both Foundation and
    // libxml2 meets two definitions of ICU's UErrorCode (Foundation's bundled ICU and the
    // system's) and does not compile.
    .target(name: "PTFragTestSupport", dependencies: ["PTFragEvents"], path: "Tests/TestSupport"),
    .target(name: "PTFragJUnitCheck", dependencies: ["CLibXML2"], path: "Tests/JUnitCheck"),
    .testTarget(name: "PTFragReadTests", dependencies: ["PTFragRead", "PTFragEvents", "CZlib", "PTFragTestSupport"]),
    .testTarget(
      name: "PTFragSynthTests",
      dependencies: ["PTFragSynth", "PTFragKit", "PTFragRead", "PTFragReplay", "PTFragReport", "PTFragEvents"]),
    .testTarget(
      name: "PTFragReplayTests",
      dependencies: ["PTFragKit", "PTFragReplay", "PTFragReport", "PTFragEvents", "PTFragRead", "PTFragTestSupport"]),
    // Runs the built `ptfrag` executable (exit codes, stdout, JSON, JUnit) and the JUnit writer.
    .testTarget(
      name: "EndToEndTests",
      dependencies: [
        "ptfrag", "PTFragKit", "PTFragJUnit", "PTFragReport", "PTFragReplay", "PTFragEvents",
        "PTFragRead", "PTFragSynth", "PTFragTestSupport", "PTFragJUnitCheck",
      ]),
  ]
)

// The per-event modules, in release builds: no dynamic exclusivity checks (the models'
// class properties cost a runtime access-set update per access, ~15 % of `compare`). Debug
// builds, which the tests run, keep every check, so a violation still traps there.
var hotPath: [SwiftSetting] { [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))] }
