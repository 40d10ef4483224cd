// libFuzzer entry point for the parsers of FuzzTarget; the target is chosen by $FUZZ_TARGET (scripts/fuzz).
// Part of the package only with MODELCACHE_FUZZ=1 (Package.swift) and built with `--sanitize=fuzzer`.
import Foundation
import ModelCacheCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = start.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
    let broken = fuzzTarget.run(bytes)
    if !broken.isEmpty {  // an invariant the parser broke: abort, so libFuzzer saves this input as a crash
        FileHandle.standardError.write(Data("ModelCacheFuzz: \(broken.joined(separator: "; "))\n".utf8))
        abort()
    }
    return 0
}
