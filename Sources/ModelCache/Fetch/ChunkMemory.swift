import ModelCacheCore
import Synchronization

/// One chunk's bytes held in memory: an end-game duplicate streams here (not into the download's file), and is
/// written over the file's chunk only when it is verified first (`PartialDownload.takeOver`).
final class ChunkMemory: Sendable {
    private let bytes: Mutex<[UInt8]>

    init(count: Int) { bytes = Mutex([UInt8](repeating: 0, count: max(0, count))) }

    /// Copies `source` to `offset`; a write outside the chunk is refused (a source that sends more than it should).
    func write(_ source: UnsafeRawBufferPointer, at offset: Int) throws {
        try bytes.withLock { (b: inout [UInt8]) throws in
            guard offset >= 0, offset <= b.count, source.count <= b.count - offset else {
                throw ModelCacheError.protocolViolation("a source sent bytes outside chunk bounds (\(offset)+\(source.count) of \(b.count))")
            }
            b.withUnsafeMutableBytes { dst in
                guard let to = dst.baseAddress, let from = source.baseAddress, source.count > 0 else { return }
                (to + offset).copyMemory(from: from, byteCount: source.count)
            }
        }
    }

    func withBytes(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try bytes.withLock { (b: inout [UInt8]) throws in try b.withUnsafeBytes { try body($0) } }
    }
}
