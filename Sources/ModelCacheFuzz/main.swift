// libFuzzer entry point for the parsers of FuzzTarget; the target is chosen by $FUZZ_TARGET (scripts/fuzz).
// Part of the package only with MODELCACHE_FUZZ=1 (Package.swift) and built with `--sanitize=fuzzer`.
import ModelCacheCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = start.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
    fuzzTarget.run(bytes)
    return 0
}
