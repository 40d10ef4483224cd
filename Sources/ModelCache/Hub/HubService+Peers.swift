import AsyncHTTPClient
import Foundation
import ModelCacheCore
import NIOCore
import NIOHTTP1
import Logging

/// Offline answers from the LAN: every node is a Hub endpoint, so a node whose upstream is unreachable asks its
/// peers' endpoints, marked local-only (a peer answers from what it holds, public things only, and never asks its
/// own upstream, so questions cannot loop). Peers are not trusted blindly: the answer most of them agree on wins,
/// and the bytes are still checked chunk by chunk against the manifest the peers agree on (protocol §8).
extension HubService {
    static let peerTimeout: TimeAmount = .seconds(3)
    static let peersAsked = 5

    func askPeers(_ repo: HubRepo, _ revision: String, _ path: String) async -> HubFileMeta? {
        let answers = await askAll(repo.resolvePath(revision, path: path), method: .HEAD) { status, headers, _ -> HubFileMeta? in
            guard (200...299).contains(status), var m = HubFileMeta.from(headers: headers, status: status, repo: repo, path: path, isPublic: true)
            else { return nil }
            let sha = headers.first { $0.0.caseInsensitiveCompare(HubService.sha256Header) == .orderedSame }?.1
            m.sha256 = m.sha256 ?? sha.flatMap(BlobDigest.init(ifValid:))
            return m
        }
        return HubService.majority(answers)
    }

    func askPeersJSON(_ path: String, validate: @escaping @Sendable ([UInt8]) -> Bool) async -> [UInt8]? {
        let answers = await askAll(path, method: .GET) { status, _, body -> [UInt8]? in
            (200...299).contains(status) && validate(body) ? body : nil
        }
        return HubService.majority(answers)
    }

    private func askAll<T: Sendable>(_ path: String, method: HTTPMethod,
                                     parse: @escaping @Sendable (Int, [(String, String)], [UInt8]) -> T?) async -> [T] {
        await node.askPeerEndpoints(path, method: method, http: upstream.http, logger: logger, parse: parse)
    }

    /// The most common answer (ties: the first seen).
    static func majority<T>(_ answers: [T]) -> T? where T: Hashable {
        var counts: [T: Int] = [:]
        for a in answers { counts[a, default: 0] += 1 }
        return answers.max { counts[$0, default: 0] < counts[$1, default: 0] }
    }
}

extension Node {
    /// Asks up to `HubService.peersAsked` peers' own endpoints (Hub §13, registry §16) the same question, marked
    /// local-only (answered from what they hold, public things only, never by their upstream), signed with the
    /// cluster key; returns the answers `parse` accepted.
    func askPeerEndpoints<T: Sendable>(_ path: String, method: HTTPMethod, http: HTTPClient, logger: Logger,
                                       parse: @escaping @Sendable (Int, [(String, String)], [UInt8]) -> T?) async -> [T] {
        var view = await directory.view()
        if view.peers.isEmpty {  // none known yet (a node just started): read their catalogues first
            await directory.refreshAll()
            view = await directory.view()
        }
        let peers = view.peers.prefix(HubService.peersAsked)
        let clusterKey = settings.clusterKey
        return await withTaskGroup(of: T?.self) { group in
            for p in peers {
                group.addTask {
                    var req = HTTPClientRequest(url: p.address.baseURL + path)
                    req.method = method
                    req.headers.add(name: HubService.localOnlyHeader, value: "1")
                    clusterKey?.sign(&req)
                    do {
                        let res = try await http.execute(req, timeout: HubService.peerTimeout, logger: logger)
                        let body = method == .HEAD ? [] : Array(buffer: try await res.body.collect(upTo: 64 << 20))
                        return parse(Int(res.status.code), res.headers.map { ($0.name, $0.value) }, body)
                    } catch {
                        logger.debug("peer did not answer an endpoint question", metadata: ["peer": "\(p.name)", "error": "\(error)"])
                        return nil
                    }
                }
            }
            var out: [T] = []
            for await a in group { if let a { out.append(a) } }
            return out
        }
    }
}
