import Foundation
import Testing
@testable import ModelCacheCore

/// Protocol §14: the cluster key's fingerprint, request and answer signatures, and the verifier's time window and
/// replay memory.
@Suite struct ClusterKeyTests {
    let key = ClusterKey(bytes: Array(0..<32))!
    let other = ClusterKey(bytes: Array(repeating: 7, count: 32))!
    let now: Int64 = 1_767_225_600
    let target = "/v1/catalogue"

    func signed(_ k: ClusterKey, method: String = "GET", target: String? = nil, time: Int64? = nil,
                nonce: String = ClusterKey.randomNonce()) -> (time: String, nonce: String, signature: String) {
        let h = k.signRequest(method: method, target: target ?? self.target, time: time ?? now, nonce: nonce)
        return (h[0].1, h[1].1, h[2].1)
    }

    func check(_ v: inout ClusterRequestVerifier, _ s: (time: String, nonce: String, signature: String), method: String = "GET",
               target: String? = nil, now: Int64? = nil) -> ClusterRequestVerifier.Refusal? {
        v.check(method: method, target: target ?? self.target, time: s.time, nonce: s.nonce, signature: s.signature, now: now ?? self.now)
    }

    // MARK: vectors (protocol/vectors/cluster-key-v1.json, generated with Python's hmac and hashlib)

    struct Vector: Decodable {
        var keyHex, fingerprint, method, target, nonce, signingString, signature, answerBody, answerSignature: String
        var time: Int64
    }

    func vector() throws -> Vector {
        let url = ProtocolVectorTests.vectorsDir.appendingPathComponent("cluster-key-v1.json")
        return try JSONDecoder().decode(Vector.self, from: Data(contentsOf: url))
    }

    @Test func matchesTheProtocolVector() throws {
        let v = try vector()
        let keyBytes = try #require(Hex.decode(v.keyHex))
        let k = try #require(ClusterKey(bytes: keyBytes))
        #expect(k.fingerprint == v.fingerprint)
        #expect(ClusterKey.signingString(method: v.method, target: v.target, time: v.time, nonce: v.nonce) == v.signingString)
        let headers = k.signRequest(method: v.method, target: v.target, time: v.time, nonce: v.nonce)
        #expect(headers.map(\.0) == [ClusterKey.timeHeader, ClusterKey.nonceHeader, ClusterKey.signatureHeader])
        #expect(headers.map(\.1) == [String(v.time), v.nonce, v.signature])
        #expect(k.signAnswer(nonce: v.nonce, body: Array(v.answerBody.utf8)) == v.answerSignature)
        #expect(k.validAnswer(v.answerSignature, nonce: v.nonce, body: Array(v.answerBody.utf8)))
        var verifier = ClusterRequestVerifier(key: k)
        #expect(verifier.check(method: v.method, target: v.target, time: String(v.time), nonce: v.nonce, signature: v.signature,
                               now: v.time + 59) == nil)
    }

    // MARK: key

    @Test func keySizeIsBounded() {
        #expect(ClusterKey(bytes: Array(repeating: 1, count: 15)) == nil)
        #expect(ClusterKey(bytes: Array(repeating: 1, count: 16)) != nil)
        #expect(ClusterKey(bytes: Array(repeating: 1, count: 4096)) != nil)
        #expect(ClusterKey(bytes: Array(repeating: 1, count: 4097)) == nil)
    }

    @Test func fingerprintIs16HexAndDiffersBetweenKeysAndNeverShowsTheKey() {
        #expect(key.fingerprint.utf8.count == 16 && PeerTXT.isValidNodeID(key.fingerprint))
        #expect(key.fingerprint != other.fingerprint)
        #expect(!"\(key)".contains(Hex.encode(key.bytes.prefix(4))))
    }

    @Test func sameClusterOnlyForEqualFingerprints() {
        #expect(ClusterKey.sameCluster(ours: nil, theirs: nil))
        #expect(ClusterKey.sameCluster(ours: key.fingerprint, theirs: key.fingerprint))
        #expect(!ClusterKey.sameCluster(ours: key.fingerprint, theirs: other.fingerprint))
        #expect(!ClusterKey.sameCluster(ours: key.fingerprint, theirs: nil))
        #expect(!ClusterKey.sameCluster(ours: nil, theirs: key.fingerprint))
    }

    @Test func peerAPINeedsTheKeyEvenFromLoopbackOtherPathsOnlyFromOtherHosts() {
        for path in ["/v1/catalogue", "/v1/info", "/v1/blobs/abc", "/v1/blobs/abc/availability"] {
            #expect(ClusterKey.required(path: path, remoteIsLoopback: true))
            #expect(ClusterKey.required(path: path, remoteIsLoopback: false))
        }
        for path in ["/", "/modelcache.js", "/v1/web/jobs", "/metrics", "/api/models/a/b/revision/main", "/a/b/resolve/main/x"] {
            #expect(!ClusterKey.required(path: path, remoteIsLoopback: true))
            #expect(ClusterKey.required(path: path, remoteIsLoopback: false))
        }
    }

    @Test func nonceIs32LowercaseHex() {
        let n = ClusterKey.randomNonce()
        #expect(n.utf8.count == 32 && Hex.decode(n)?.count == 16)
        #expect(n != ClusterKey.randomNonce())
    }

    // MARK: verifier

    @Test func acceptsASignedRequestOnce() {
        var v = ClusterRequestVerifier(key: key)
        let s = signed(key)
        #expect(check(&v, s) == nil)
        #expect(check(&v, s) == .replay)
        #expect(check(&v, signed(key)) == nil)
    }

    @Test func refusesMissingAndMalformedHeaders() {
        var v = ClusterRequestVerifier(key: key)
        #expect(v.check(method: "GET", target: target, time: nil, nonce: nil, signature: nil, now: now) == .missing)
        let s = signed(key)
        #expect(v.check(method: "GET", target: target, time: s.time, nonce: nil, signature: s.signature, now: now) == .malformed)
        #expect(v.check(method: "GET", target: target, time: "12a", nonce: s.nonce, signature: s.signature, now: now) == .malformed)
        #expect(v.check(method: "GET", target: target, time: "99999999999999999999999", nonce: s.nonce, signature: s.signature, now: now) == .malformed)
        #expect(v.check(method: "GET", target: target, time: s.time, nonce: "xyz", signature: s.signature, now: now) == .malformed)
        #expect(v.check(method: "GET", target: target, time: s.time, nonce: s.nonce, signature: s.signature.uppercased(), now: now) == .malformed)
        #expect(v.check(method: "GET", target: target, time: s.time, nonce: s.nonce, signature: String(s.signature.dropLast(2)), now: now) == .malformed)
        #expect(v.remembered == 0)
    }

    @Test func refusesStaleAndFutureTimes() {
        var v = ClusterRequestVerifier(key: key)
        #expect(check(&v, signed(key, time: now - 61)) == .stale)
        #expect(check(&v, signed(key, time: now + 61)) == .future)
        #expect(check(&v, signed(key, time: now - 60)) == nil)
        #expect(check(&v, signed(key, time: now + 60)) == nil)
    }

    @Test func refusesAnotherKeyAndAnyChangedPart() {
        var v = ClusterRequestVerifier(key: key)
        #expect(check(&v, signed(other)) == .badSignature)
        #expect(check(&v, signed(key), method: "HEAD") == .badSignature)
        #expect(check(&v, signed(key), target: "/v1/catalogue?x=1") == .badSignature)
        let s = signed(key)
        #expect(check(&v, (String(now + 1), s.nonce, s.signature)) == .badSignature)
        #expect(check(&v, (s.time, ClusterKey.randomNonce(), s.signature)) == .badSignature)
        #expect(v.remembered == 0)  // nothing unsigned fills the replay memory
    }

    @Test func aReplayAfterTheWindowIsStaleAndItsNonceForgotten() {
        var v = ClusterRequestVerifier(key: key)
        let s = signed(key)
        #expect(check(&v, s) == nil)
        #expect(check(&v, s, now: now + 30) == .replay)
        #expect(check(&v, s, now: now + 61) == .stale)
        #expect(v.remembered == 0)
    }

    @Test func theReplayMemoryIsBoundedAndADroppedNonceCannotBeReplayed() {
        var v = ClusterRequestVerifier(key: key, maxNonces: 4)
        let first = signed(key, time: now - 10)
        #expect(check(&v, first) == nil)
        for i in 0..<4 { #expect(check(&v, signed(key, time: now - 5 + Int64(i))) == nil) }
        #expect(v.remembered == 4)
        // `first` was dropped to make room: the floor rose to its time, so replaying it is refused.
        #expect(v.floor == now - 10)
        #expect(check(&v, first) == .stale)
        #expect(check(&v, signed(key, time: now)) == nil)
        #expect(v.remembered == 4)
    }

    @Test func answersAreBoundToTheNonceAndTheBody() {
        let body = Array("{\"blobs\":[]}".utf8)
        let sig = key.signAnswer(nonce: "n1", body: body)
        #expect(key.validAnswer(sig, nonce: "n1", body: body))
        #expect(!key.validAnswer(sig, nonce: "n2", body: body))
        #expect(!key.validAnswer(sig, nonce: "n1", body: body + [0x20]))
        #expect(!other.validAnswer(sig, nonce: "n1", body: body))
        #expect(!key.validAnswer(nil, nonce: "n1", body: body))
        #expect(!key.validAnswer("zz", nonce: "n1", body: body))
    }

    // MARK: TXT

    @Test func txtCarriesTheFingerprintOnlyWithAKey() throws {
        let plain = try #require(PeerTXT(nodeID: "07f8078ddfcf40b6", catalogueVersion: 1))
        #expect(!plain.encode().contains { $0.hasPrefix("ck=") })
        let keyed = try #require(PeerTXT(nodeID: "07f8078ddfcf40b6", catalogueVersion: 1, clusterFingerprint: key.fingerprint))
        #expect(keyed.encode().last == "ck=\(key.fingerprint)")
        #expect(PeerTXT.parse(keyed.encode().map { Array($0.utf8) }) == keyed)
        #expect(PeerTXT.parse(plain.encode().map { Array($0.utf8) })?.clusterFingerprint == nil)
        // a malformed or duplicated ck makes the record unusable
        let base = plain.encode()
        #expect(PeerTXT.parse((base + ["ck=XYZ"]).map { Array($0.utf8) }) == nil)
        #expect(PeerTXT.parse((base + ["ck=\(key.fingerprint)", "CK=\(key.fingerprint)"]).map { Array($0.utf8) }) == nil)
        #expect(PeerTXT(nodeID: "07f8078ddfcf40b6", catalogueVersion: 1, clusterFingerprint: "short") == nil)
    }
}
