// libFuzzer driver for the `text` target: all arguments go to libFuzzer.
//
// With `-sanitize=fuzzer` the link takes libFuzzer's own `main`, which calls
// `LLVMFuzzerTestOneInput` below; the top-level code is the entry when libFuzzer's `main` is
// not the one linked (it hands the arguments to `LLVMFuzzerRunDriver`, same behaviour).
import CLibFuzzer
import Glibc
import PTFragFuzzTargets

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  FuzzTargets.fuzzText(UnsafeBufferPointer(start: data, count: size))
  return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) })
