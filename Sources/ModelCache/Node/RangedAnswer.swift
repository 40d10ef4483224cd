import HTTPTypes
import Hummingbird
import ModelCacheCore

/// How to answer a GET or HEAD of `size` bytes that may carry a `Range` header (one range, RFC 9110): the status,
/// the headers (`Accept-Ranges`, `Content-Range`, `Content-Length`) and the bytes to send, or the headers of a `416`.
/// Shared by the peer API, the browser API and the Hugging Face endpoint; each words its own 416.
enum RangedAnswer {
    case serve(HTTPResponse.Status, HTTPFields, Range<Int64>)
    case unsatisfiable(HTTPFields)

    /// `ignoreRange`: answer the whole body whatever the request asked (a server may always do so).
    static func decide(size: Int64, rangeHeader: String?, headers base: HTTPFields, ignoreRange: Bool = false) -> RangedAnswer {
        var h = base
        h[.acceptRanges] = "bytes"
        // A size is ours or checked, but never build a backwards range (it traps) whatever it is.
        guard size >= 0 else {
            h[.contentRange] = "bytes */0"
            return .unsatisfiable(h)
        }
        switch ignoreRange ? .whole : ByteRangeRequest.parse(rangeHeader, size: size) {
        case .whole:
            h[.contentLength] = String(size)
            return .serve(.ok, h, 0..<size)
        case .range(let r):
            h[.contentRange] = ContentRange(first: r.lowerBound, last: r.upperBound - 1, total: size).header
            h[.contentLength] = String(r.count)
            return .serve(.partialContent, h, r)
        case .unsatisfiable:
            h[.contentRange] = "bytes */\(size)"
            return .unsatisfiable(h)
        }
    }
}

extension RangedAnswer {
    /// The answer to a GET or HEAD of a stored blob (peer API, browser API): `ETag` = its digest, octet-stream, then
    /// `extra`; a 416 that says the blob's size. `answering` runs once the request is one to answer (not a 416);
    /// a HEAD or an empty range gets the headers alone, anything else what `send` makes of the status, headers, range.
    static func blob(_ digest: BlobDigest, size: Int64, rangeHeader: String?, head: Bool, extra: HTTPFields = [:],
                     answering: () -> Void = {},
                     send: (HTTPResponse.Status, HTTPFields, Range<Int64>) throws -> Response) throws -> Response {
        var base = HTTPFields()
        base[.eTag] = "\"\(digest.hex)\""
        base[.contentType] = "application/octet-stream"
        base.append(contentsOf: extra)
        switch decide(size: size, rangeHeader: rangeHeader, headers: base) {
        case .unsatisfiable(let h):
            return try PeerAPI.errorResponse(.rangeNotSatisfiable, "range-not-satisfiable", "the blob has \(size) bytes", headers: h)
        case .serve(let status, let headers, let range):
            answering()
            if head || range.isEmpty { return Response(status: status, headers: headers) }
            return try send(status, headers, range)
        }
    }
}
