// swift-tools-version: 6.0
//
// libFuzzer harnesses for ptfrag, in their own package so the normal build never sees
// `-sanitize=fuzzer`. Build and run: see Fuzz/README.md (`Fuzz/run.sh TARGET SECONDS`).
import PackageDescription

let package = Package(
  name: "ptfrag-fuzz",
  dependencies: [.package(name: "ptfrag", path: "..")],
  targets: [
    // Declares libFuzzer's LLVMFuzzerRunDriver (no library to link: -sanitize=fuzzer brings it).
    .systemLibrary(name: "CLibFuzzer"),
    // The three fuzz targets as plain functions (bytes in, trap on a broken invariant).
    .target(
      name: "PTFragFuzzTargets",
      dependencies: [
        .product(name: "PTFragStages", package: "ptfrag"), .product(name: "PTFragJUnitCheck", package: "ptfrag"),
      ]),
    .executableTarget(name: "fuzz-text", dependencies: ["PTFragFuzzTargets", "CLibFuzzer"]),
    .executableTarget(name: "fuzz-json", dependencies: ["PTFragFuzzTargets", "CLibFuzzer"]),
    .executableTarget(name: "fuzz-analyze", dependencies: ["PTFragFuzzTargets", "CLibFuzzer"]),
  ]
)
