import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import Testing
@testable import ModelCache
import ModelCacheCore

/// What the origin and peer client says when a source fails: a peer is named as a peer, a body that breaks off is a
/// `bodyCut` (dropped, or stalled for a whole read timeout), whatever the source.
@Suite(.serialized) struct SourceErrorTests {
    static func client(peer: Bool, readTimeout: TimeAmount = .seconds(30)) -> OriginClient {
        var c = OriginClient(http: HTTPClient.forModelCache(readTimeout: readTimeout), logger: Logger(label: "test"))
        c.isPeer = peer
        return c
    }

    static func info(_ url: String, size: Int64) -> OriginInfo {
        OriginInfo(requestedURL: url, finalURL: url, size: size, etag: nil, lastModified: nil, acceptsRanges: true, digest: nil)
    }

    /// Nothing listens on loopback port 1: the peer's client names the peer; the origin's names the origin.
    @Test func aPeerThatGivesNoAnswerIsNamedAsAPeer() async throws {
        let url = "http://127.0.0.1:1/v1/blobs/" + String(repeating: "ab", count: 32)
        for peer in [true, false] {
            let c = Self.client(peer: peer)
            do {
                try await c.fetch(url: url, range: 0..<10, info: Self.info(url, size: 10)) { _, _ in }
                Issue.record("a fetch from a port nothing listens on succeeded")
            } catch let e as ModelCacheError {
                if peer {
                    guard case .peerUnreachable(let name, _) = e else { Issue.record("peer: \(e)"); continue }
                    #expect(name == "127.0.0.1:1")
                    #expect(e.description.hasPrefix("cannot reach peer 127.0.0.1:1 ("))
                } else {
                    guard case .originUnreachable(let u, _) = e else { Issue.record("origin: \(e)"); continue }
                    #expect(u == url)
                }
                #expect(RetryPolicy.kind(of: e) == .offline && e.code == "fetch-error")
            }
            try await c.http.shutdown()
        }
    }

    /// A body that drops after some bytes, and one that stalls for the read timeout: both `bodyCut`, only the second
    /// stalled; the message names the URL and does not say "origin" (the same client fetches from peers).
    @Test func aBodyThatDropsOrStallsIsACut() async throws {
        let origin = try await TestOrigin.start()
        let data = testBytes(300_000, seed: 5)
        origin.serve("/cut.bin", data)
        let url = origin.url("/cut.bin")
        // 2 s: long enough for the answer's headers on a loaded machine (a timeout before them is no body cut).
        let c = Self.client(peer: true, readTimeout: .seconds(2))
        origin.inject(.dropAfter(bytes: 100_000, times: 1))
        var cut: ModelCacheError?
        do { try await c.fetch(url: url, range: 0..<300_000, info: Self.info(url, size: 300_000)) { _, _ in } } catch let e as ModelCacheError { cut = e }
        guard case .bodyCut(let u, let detail, let stalled)? = cut else { Issue.record("drop: \(String(describing: cut))"); return }
        #expect(u == url && !stalled)
        #expect(detail.contains("after") && !(cut?.description.contains("origin") ?? true))
        origin.clearFaults()
        origin.inject(.stallAfter(bytes: 50_000))
        var stall: ModelCacheError?
        do { try await c.fetch(url: url, range: 0..<300_000, info: Self.info(url, size: 300_000)) { _, _ in } } catch let e as ModelCacheError { stall = e }
        guard case .bodyCut(_, let why, true)? = stall else { Issue.record("stall: \(String(describing: stall))"); return }
        #expect(why.hasPrefix("stalled after"))
        #expect(stall.map { RetryPolicy.resumesInPlace(after: $0, fromPeer: true) } == false)
        try await c.http.shutdown()
        await origin.stop()
    }
}
