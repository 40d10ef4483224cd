import Foundation
import ModelCacheCore

/// The parser under test, from $FUZZ_TARGET (a global outside main.swift: initialized lazily on first use, since
/// libFuzzer's own `main` runs instead of this executable's top-level code).
let fuzzTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("ModelCacheFuzz: set FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return t
}()
