import CZlib

/// The append-only record of verified chunks of a partial download: one line per chunk,
/// `<index> <sha256 hex> <crc32 hex>\n`, where the CRC-32 (zlib) covers `<index> <sha256 hex>`.
/// A crash can tear only the last line; the CRC rejects it, and every earlier line stands.
public enum ChunkJournal {
    public static func line(chunk: Int, digest: BlobDigest) -> String {
        let body = "\(chunk) \(digest.hex)"
        return body + " " + hex32(crc32(of: body)) + "\n"
    }

    /// Parses a journal; invalid or torn lines are skipped. A later line for the same chunk wins.
    public static func parse(_ text: String, chunkCount: Int) -> [Int: BlobDigest] {
        var out: [Int: BlobDigest] = [:]
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let parts = raw.split(separator: " ")
            guard parts.count == 3, let index = Int(parts[0]), index >= 0, index < chunkCount,
                  let digest = BlobDigest(ifValid: parts[1]) else { continue }
            let body = "\(parts[0]) \(parts[1])"
            guard hex32(crc32(of: body)) == parts[2] else { continue }
            out[index] = digest
        }
        return out
    }

    public static func crc32(of text: String) -> UInt32 {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBufferPointer { buf in
            UInt32(CZlib.crc32(0, buf.baseAddress, uInt(buf.count)))
        }
    }

    static func hex32(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 8 - s.count) + s
    }
}
