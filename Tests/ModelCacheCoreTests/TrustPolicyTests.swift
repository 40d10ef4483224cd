import Testing
@testable import ModelCacheCore

/// Protocol §8: which digest a fetch trusts, the evidence it records for a URL, and how long a dead origin host is
/// left alone.
@Suite struct TrustPolicyTests {
    let a = BlobDigest.of(Array("a".utf8))
    let b = BlobDigest.of(Array("b".utf8))
    let policy = DigestResolution()
    let url = "http://origin.example/m.bin"
    let lastModified = "Tue, 01 Jan 2030 00:00:00 GMT"

    func claim(_ peer: String, node: String? = nil, _ d: BlobDigest, size: Int64 = 100, etag: String? = "\"v1\"",
               lastModified: String? = nil) -> DigestResolution.Claim {
        DigestResolution.Claim(peer: peer, node: node, entry: Catalogue.Entry(
            sha256: d, size: size, chunkSize: 65536, urls: [url], etag: etag, lastModified: lastModified))
    }

    func answered(digest: BlobDigest? = nil, size: Int64? = 100, etag: String? = "\"v1\"", lastModified: String? = nil)
        -> DigestResolution.OriginAnswer {
        .answered(digest: digest, size: size, etag: etag, lastModified: lastModified)
    }

    @Test func userDigestThenOriginDigestWin() {
        let liars = [claim("p", b), claim("q", b)]
        #expect(policy.decide(user: a, origin: answered(digest: b), claims: liars) == .init(expected: a, source: .user, contradicting: ["p", "q"]))
        #expect(policy.decide(user: nil, origin: answered(digest: a), claims: liars).expected == a)
        #expect(policy.decide(user: nil, origin: answered(digest: a), claims: liars).source == .origin)
    }

    @Test func oneLiarWithCopiedSizeAndETagCannotDecideWhileTheOriginAnswers() {
        let d = policy.decide(user: nil, origin: answered(), claims: [claim("liar", b)])
        #expect(d == .init(expected: nil, source: .computed))
    }

    @Test func oneNodeBehindTwoAddressesIsStillOneWitness() {
        let d = policy.decide(user: nil, origin: answered(), claims: [claim("p1", node: "n1", a), claim("p2", node: "n1", a)])
        #expect(d.expected == nil && d.source == .computed)
    }

    @Test func twoIndependentPeersMatchingTheOriginsValidatorsDecide() {
        let d = policy.decide(user: nil, origin: answered(lastModified: lastModified),
                              claims: [claim("p", node: "n1", a, lastModified: lastModified),
                                       claim("q", node: "n2", a, etag: "W/\"v1\"", lastModified: lastModified)])
        #expect(d == .init(expected: a, source: .peersAgree))
    }

    @Test func claimsThatMissAValidatorDoNotCount() {
        let two = { (size: Int64, etag: String?, lm: String?) in
            [self.claim("p", node: "n1", self.a, size: size, etag: etag, lastModified: lm),
             self.claim("q", node: "n2", self.a, size: size, etag: etag, lastModified: lm)]
        }
        // another size, another ETag, no ETag on the claims, another Last-Modified
        #expect(policy.decide(user: nil, origin: answered(), claims: two(99, "\"v1\"", nil)).expected == nil)
        #expect(policy.decide(user: nil, origin: answered(), claims: two(100, "\"v2\"", nil)).expected == nil)
        #expect(policy.decide(user: nil, origin: answered(), claims: two(100, nil, nil)).expected == nil)
        #expect(policy.decide(user: nil, origin: answered(lastModified: lastModified), claims: two(100, "\"v1\"", "Wed, 02 Jan 2030 00:00:00 GMT")).expected == nil)
        #expect(policy.decide(user: nil, origin: answered(lastModified: lastModified), claims: two(100, "\"v1\"", nil)).expected == nil)
        // an origin without ETag or size gives nothing to match
        #expect(policy.decide(user: nil, origin: answered(etag: nil), claims: two(100, "\"v1\"", nil)).expected == nil)
        #expect(policy.decide(user: nil, origin: answered(size: nil), claims: two(100, "\"v1\"", nil)).expected == nil)
    }

    @Test func aMatchingClaimForAnotherBlobVetoesThePeers() {
        let d = policy.decide(user: nil, origin: answered(),
                              claims: [claim("p", node: "n1", a), claim("q", node: "n2", a), claim("liar", node: "n3", b)])
        #expect(d == .init(expected: nil, source: .computed))
    }

    @Test func aQuorumBelowTwoIsRaisedToTwo() {
        #expect(DigestResolution(minIndependentPeers: 1).minIndependentPeers == 2)
        let three = DigestResolution(minIndependentPeers: 3)
        #expect(three.decide(user: nil, origin: answered(), claims: [claim("p", node: "n1", a), claim("q", node: "n2", a)]).expected == nil)
    }

    @Test func offlineOneTeacherIsEnoughAndATieDecidesNothing() {
        #expect(policy.decide(user: nil, origin: .offline, claims: [claim("teacher", a, etag: nil)]) == .init(expected: a, source: .peers))
        let majority = policy.decide(user: nil, origin: .offline,
                                     claims: [claim("p", node: "n1", a), claim("q", node: "n2", a), claim("r", node: "n3", b)])
        #expect(majority == .init(expected: a, source: .peers, contradicting: ["r"]))
        #expect(policy.decide(user: nil, origin: .offline, claims: [claim("p", node: "n1", a), claim("q", node: "n2", b)]).expected == nil)
        #expect(policy.decide(user: nil, origin: .offline, claims: []) == .init(expected: nil, source: .computed))
        // A node counts once however many addresses it answers on.
        #expect(policy.decide(user: nil, origin: .offline,
                              claims: [claim("p1", node: "n1", b), claim("p2", node: "n1", b), claim("q", node: "n2", a)]).expected == nil)
    }

    // MARK: URLEvidence

    @Test func onlyFirstHandEvidenceIsAdvertisedAndUserEvidenceIsNeverReused() {
        #expect(URLEvidence.allCases.filter(\.isFirstHand) == [.originDigest, .originBytes, .import])
        #expect(URLEvidence.allCases.filter { !$0.isReusable } == [.user])
        #expect(URLEvidence.user.replaces(.user))
        #expect(!URLEvidence.user.replaces(.originBytes) && !URLEvidence.user.replaces(.peers))
        #expect(URLEvidence.peers.replaces(.originDigest) && URLEvidence.originBytes.replaces(.user))
        #expect([URLEvidence.user, .peers, .originBytes].min() == .originBytes)
    }

    @Test func commitEvidenceFollowsWhoVouchedForTheBytes() {
        func ev(_ s: DigestResolution.Origin, origin: BlobDigest? = nil, only: Bool) -> URLEvidence {
            URLEvidence.forCommit(decided: s, originDigest: origin, committed: a, onlyOriginBytes: only)
        }
        #expect(ev(.origin, origin: a, only: false) == .originDigest)
        #expect(ev(.user, origin: a, only: false) == .originDigest)
        #expect(ev(.computed, only: true) == .originBytes)
        #expect(ev(.user, only: true) == .originBytes)       // --sha256, every byte from the origin
        #expect(ev(.user, only: false) == .user)             // --sha256, peers' bytes: nobody else vouched
        #expect(ev(.user, origin: b, only: false) == .user)
        #expect(ev(.peers, only: false) == .peers)
        #expect(ev(.peersAgree, only: false) == .peersAgree)
        #expect(ev(.peersAgree, only: true) == .originBytes)
    }

    @Test func aHitRecordsAMappingOnlyWhenSomeoneButTheUserVouches() {
        #expect(URLEvidence.forHit(decided: .user, originDigest: nil, hit: a) == nil)
        #expect(URLEvidence.forHit(decided: .user, originDigest: b, hit: a) == nil)
        #expect(URLEvidence.forHit(decided: .user, originDigest: a, hit: a) == .originDigest)
        #expect(URLEvidence.forHit(decided: .origin, originDigest: a, hit: a) == .originDigest)
        #expect(URLEvidence.forHit(decided: .peers, originDigest: nil, hit: a) == .peers)
        #expect(URLEvidence.forHit(decided: .peersAgree, originDigest: nil, hit: a) == .peersAgree)
    }

    // MARK: OriginHealth

    @Test func aFailedHostIsDownForADoublingWhileAndASuccessForgetsIt() {
        var h = OriginHealth(settings: .init(first: .seconds(10), longest: .seconds(35)))
        let t0 = ContinuousClock.now
        let host = "http://origin.example:80"
        #expect(!h.isDown(host, now: t0))
        h.failed(host, now: t0)
        #expect(h.isDown(host, now: t0 + .seconds(9)) && !h.isDown(host, now: t0 + .seconds(10)))
        h.failed(host, now: t0 + .seconds(10))
        #expect(h.downUntil(host, now: t0 + .seconds(10)) == t0 + .seconds(30))
        h.failed(host, now: t0 + .seconds(30))
        #expect(h.downUntil(host, now: t0 + .seconds(30)) == t0 + .seconds(65))  // 40 s capped at 35
        #expect(!h.isDown("http://other.example:80", now: t0 + .seconds(31)))
        h.succeeded(host)
        #expect(!h.isDown(host, now: t0 + .seconds(31)))
        h.failed(host, now: t0 + .seconds(40))
        #expect(h.downUntil(host, now: t0 + .seconds(40)) == t0 + .seconds(50))  // back to the first wait
    }

    @Test func manyFailuresStayBoundedAndManyHostsAreCapped() {
        var h = OriginHealth(settings: .init(first: .seconds(1), longest: .seconds(300)))
        let t0 = ContinuousClock.now
        for _ in 0..<1000 { h.failed("http://h:80", now: t0) }
        #expect(h.downUntil("http://h:80", now: t0) == t0 + .seconds(300))
        for i in 0..<(OriginHealth.capacity + 10) { h.failed("http://h\(i):80", now: t0 + .seconds(Double(i))) }
        #expect(!h.isDown("http://h0:80", now: t0 + .milliseconds(1)))  // the soonest to recover was forgotten
        #expect(h.isDown("http://h\(OriginHealth.capacity + 9):80", now: t0 + .seconds(Double(OriginHealth.capacity + 9))))
    }

    @Test func hostKeysIgnorePathCaseAndDefaultPorts() {
        #expect(OriginHealth.key(of: "http://Origin.Example/a/b?c") == "http://origin.example:80")
        #expect(OriginHealth.key(of: "https://origin.example/x") == "https://origin.example:443")
        #expect(OriginHealth.key(of: "http://127.0.0.1:8080/x") == "http://127.0.0.1:8080")
        #expect(OriginHealth.key(of: "http://user@[::1]:81/x") == "http://[::1]:81")
        #expect(OriginHealth.key(of: "http://[::1]/x") == "http://[::1]:80")
        #expect(OriginHealth.key(of: "no-scheme") == nil)
        #expect(OriginHealth.key(of: "http:///path") == nil)
    }
}

/// Protocol §8 with a cluster key (§14): members' claims.
@Suite struct MemberTrustTests {
    let a = BlobDigest.of(Array("a".utf8))
    let b = BlobDigest.of(Array("b".utf8))
    let policy = DigestResolution()

    func claim(_ peer: String, _ d: BlobDigest, member: Bool, etag: String? = "\"v1\"") -> DigestResolution.Claim {
        DigestResolution.Claim(peer: peer, node: peer, entry: Catalogue.Entry(
            sha256: d, size: 100, chunkSize: 65536, urls: ["http://origin.example/m.bin"], etag: etag), member: member)
    }

    let answered = DigestResolution.OriginAnswer.answered(digest: nil, size: 100, etag: "\"v1\"", lastModified: nil)

    @Test func oneMembersMatchingClaimDecidesWhileTheOriginAnswers() {
        #expect(policy.decide(user: nil, origin: answered, claims: [claim("m", a, member: true)]) == .init(expected: a, source: .peersAgree))
        // a stranger alone still cannot
        #expect(policy.decide(user: nil, origin: answered, claims: [claim("s", a, member: false)]).expected == nil)
    }

    @Test func aMembersClaimMustStillMatchTheOriginsValidatorsAndBeUncontradicted() {
        #expect(policy.decide(user: nil, origin: answered, claims: [claim("m", a, member: true, etag: "\"v2\"")]).expected == nil)
        #expect(policy.decide(user: nil, origin: answered, claims: [claim("m", a, member: true), claim("n", b, member: true)]).expected == nil)
    }

    @Test func offlineOnlyMembersCountWhenAnyMemberClaims() {
        let d = policy.decide(user: nil, origin: .offline,
                              claims: [claim("m", a, member: true), claim("s1", b, member: false), claim("s2", b, member: false)])
        #expect(d == .init(expected: a, source: .peers, contradicting: ["s1", "s2"]))
        // without members the old rule holds (most distinct nodes)
        let old = policy.decide(user: nil, origin: .offline,
                                claims: [claim("x", a, member: false), claim("s1", b, member: false), claim("s2", b, member: false)])
        #expect(old.expected == b)
    }
}
