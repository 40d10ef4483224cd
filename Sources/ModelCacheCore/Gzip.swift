import CZlib

/// One-shot gzip with zlib, for catalogues (a few KB to a few MB of JSON). Hand-written over the `CZlib`
/// system-library target: one call each way is all the node needs, and it keeps zlib the single compression
/// dependency (the HTTP client is configured not to decompress, so peers decode explicitly).
public enum Gzip {
    public static func compress(_ input: [UInt8], level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        // windowBits 15 + 16 selects the gzip wrapper.
        guard modelcache_deflateInit2(&stream, level, 15 + 16) == Z_OK else { return [] }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 32)
        var input = input
        let produced: Int = input.withUnsafeMutableBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = inBuf.baseAddress
                stream.avail_in = uInt(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = uInt(outBuf.count)
                let r = deflate(&stream, Z_FINISH)
                return r == Z_STREAM_END ? outBuf.count - Int(stream.avail_out) : -1
            }
        }
        return produced < 0 ? [] : Array(output.prefix(produced))
    }

    /// Returns nil for input that is not valid gzip or inflates past `limit` bytes (a zip bomb from a hostile peer).
    public static func decompress(_ input: [UInt8], limit: Int = 256 << 20) -> [UInt8]? {
        var stream = z_stream()
        guard modelcache_inflateInit2(&stream, 15 + 16) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        var input = input
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        return input.withUnsafeMutableBufferPointer { inBuf -> [UInt8]? in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = uInt(inBuf.count)
            while true {
                let (r, n) = chunk.withUnsafeMutableBufferPointer { c -> (Int32, Int) in
                    stream.next_out = c.baseAddress
                    stream.avail_out = uInt(c.count)
                    let r = inflate(&stream, Z_NO_FLUSH)
                    return (r, c.count - Int(stream.avail_out))
                }
                out.append(contentsOf: chunk.prefix(n))
                if out.count > limit { return nil }
                if r == Z_STREAM_END { return out }
                if r != Z_OK { return nil }
                if n == 0 && stream.avail_in == 0 { return nil }  // truncated input
            }
        }
    }
}
