import Testing
@testable import ModelCacheCore

/// Who may use the browser routes: every refusal, CORS only for allowed origins, preflights, the token.
@Suite struct BrowserAccessTests {
    let token = String(repeating: "ab", count: 32)
    var access: BrowserAccess {
        BrowserAccess(allowedOrigins: ["http://localhost:8000", "https://App.Example/"], names: ["lab-3", "10.0.0.5"],
                      port: 7070, token: token, nodeUser: 1000)
    }

    func request(_ method: String = "GET", kind: BrowserAccess.Kind = .api, host: String? = "127.0.0.1:7070",
                 origin: String? = nil, site: String? = nil, mode: String? = nil, token: String? = nil,
                 loopback: Bool = true, user: UInt32? = 1000) -> BrowserAccess.Request {
        BrowserAccess.Request(method: method, kind: kind, host: host, origin: origin, fetchSite: site, fetchMode: mode,
                              token: token, remoteIsLoopback: loopback, clientUser: user)
    }

    func refusal(_ d: BrowserAccess.Decision) -> (Int, String)? {
        if case .refuse(let status, let code, _) = d { return (status, code) }
        return nil
    }

    func headers(_ d: BrowserAccess.Decision) -> [String: String]? {
        switch d {
        case .allow(let h), .preflight(let h): Dictionary(h.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        case .refuse: nil
        }
    }

    @Test func aLocalClientWithoutOriginMayRead() {
        #expect(headers(access.decide(request())) == [:])
        #expect(headers(access.decide(request(host: "localhost:7070"))) == [:])
        #expect(headers(access.decide(request(host: "[::1]:7070"))) == [:])
        #expect(headers(access.decide(request(host: "LAB-3:7070"))) == [:])
        #expect(headers(access.decide(request(host: "10.0.0.5:7070"))) == [:])
    }

    @Test func refusesPeersOnTheLAN() {
        let r = refusal(access.decide(request(loopback: false)))
        #expect(r?.0 == 403 && r?.1 == "not-local")
        // Even with the token and an allowed origin.
        #expect(refusal(access.decide(request("POST", origin: "http://localhost:8000", token: token, loopback: false)))?.1 == "not-local")
        #expect(refusal(access.decide(request(kind: .statusPage, loopback: false)))?.1 == "not-local")
    }

    @Test func answersOnlyTheNodesUserAndRoot() {
        // Another account on the same machine reaches loopback too: refused, even with the token, for every kind.
        for kind in [BrowserAccess.Kind.statusPage, .asset, .api] {
            let other = refusal(access.decide(request(kind: kind, user: 1001)))
            #expect(other?.0 == 403 && other?.1 == "other-user", "\(kind)")
            #expect(refusal(access.decide(request(kind: kind, user: nil)))?.1 == "owner-unknown", "\(kind)")
            #expect(refusal(access.decide(request(kind: kind, user: 1000))) == nil, "\(kind)")
            #expect(refusal(access.decide(request(kind: kind, user: 0))) == nil, "\(kind)")  // root reads the token file anyway
        }
        #expect(refusal(access.decide(request("POST", token: token, user: 1001)))?.1 == "other-user")
        #expect(refusal(access.decide(request("OPTIONS", origin: "http://localhost:8000", user: 65534)))?.1 == "other-user")
        // A LAN client is refused as such, whatever the owner lookup said.
        #expect(refusal(access.decide(request(loopback: false, user: nil)))?.1 == "not-local")
        // A node run as root answers root only (and the node's user is root).
        let rootNode = BrowserAccess(allowedOrigins: [], names: [], port: 7070, token: token, nodeUser: 0)
        #expect(refusal(rootNode.decide(request(user: 0))) == nil)
        #expect(refusal(rootNode.decide(request(user: 1000)))?.1 == "other-user")
    }

    @Test func refusesForeignHostNames() {
        // DNS rebinding: the attacker's name points at 127.0.0.1, the browser sends it as Host.
        #expect(refusal(access.decide(request(host: "evil.example:7070", origin: "http://evil.example:7070")))?.1 == "unknown-host")
        #expect(refusal(access.decide(request(host: "127.0.0.1:8080")))?.1 == "unknown-host")  // wrong port
        #expect(refusal(access.decide(request(host: "127.0.0.1")))?.1 == "unknown-host")       // port 7070 is not 80
        #expect(refusal(access.decide(request(host: nil)))?.1 == "unknown-host")
        #expect(refusal(access.decide(request(host: "0.0.0.0:7070")))?.1 == "unknown-host")
        #expect(refusal(access.decide(request(host: "127.0.0.1:7070", loopback: true))) == nil)
    }

    @Test func port80NeedsNoPortInHost() {
        let a = BrowserAccess(allowedOrigins: [], names: [], port: 80, token: token, nodeUser: 1000)
        #expect(refusal(a.decide(request(host: "localhost"))) == nil)
        #expect(refusal(a.decide(request(host: "localhost:80"))) == nil)
        #expect(refusal(a.decide(request(host: "localhost:81")))?.1 == "unknown-host")
    }

    @Test func refusesOriginsNotAllowed() {
        let r = refusal(access.decide(request(origin: "http://evil.example")))
        #expect(r?.0 == 403 && r?.1 == "origin-not-allowed")
        #expect(refusal(access.decide(request(origin: "null")))?.1 == "origin-not-allowed")
        #expect(refusal(access.decide(request(origin: "http://localhost:8001")))?.1 == "origin-not-allowed")
        #expect(refusal(access.decide(request(kind: .asset, origin: "http://evil.example")))?.1 == "origin-not-allowed")
        #expect(refusal(access.decide(request("OPTIONS", origin: "http://evil.example")))?.1 == "origin-not-allowed")
    }

    @Test func refusesCrossSiteRequestsWithoutOrigin() {
        // An <img> or <video> on another site: no Origin header, but Sec-Fetch-Site tells.
        #expect(refusal(access.decide(request(site: "cross-site", mode: "no-cors")))?.1 == "origin-not-allowed")
        #expect(refusal(access.decide(request(site: "same-site", mode: "no-cors")))?.1 == "origin-not-allowed")
        // A <script src=…/modelcache.js> is fine, and so is following a link to the status page.
        #expect(refusal(access.decide(request(kind: .asset, site: "cross-site", mode: "no-cors"))) == nil)
        #expect(refusal(access.decide(request(kind: .statusPage, site: "cross-site", mode: "navigate"))) == nil)
        #expect(refusal(access.decide(request(site: "same-origin", mode: "cors"))) == nil)
    }

    @Test func allowedOriginsGetCORSHeaders() {
        let h = headers(access.decide(request(origin: "http://localhost:8000")))
        #expect(h?["Access-Control-Allow-Origin"] == "http://localhost:8000")
        #expect(h?["Vary"] == "Origin")
        #expect(h?["Access-Control-Expose-Headers"]?.contains("Content-Range") == true)
        #expect(headers(access.decide(request(origin: "https://app.example")))?["Access-Control-Allow-Origin"] == "https://app.example")
        #expect(headers(access.decide(request(origin: "https://app.example:443")))?["Access-Control-Allow-Origin"] == "https://app.example")
    }

    @Test func sameOriginNeedsNoCORS() {
        #expect(headers(access.decide(request(kind: .statusPage, origin: "http://127.0.0.1:7070"))) == [:])
        #expect(headers(access.decide(request("POST", origin: "http://127.0.0.1:7070", token: token))) == [:])
    }

    @Test func theStatusPageIsNeverServedCrossOrigin() {
        // It holds the token: not even an allowed origin may read it.
        #expect(refusal(access.decide(request(kind: .statusPage, origin: "http://localhost:8000")))?.1 == "origin-not-allowed")
    }

    @Test func preflightsOnlyForAllowedOrigins() {
        guard case .preflight(let list) = access.decide(request("OPTIONS", origin: "http://localhost:8000")) else {
            Issue.record("no preflight"); return
        }
        let h = Dictionary(list.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(h["Access-Control-Allow-Origin"] == "http://localhost:8000")
        #expect(h["Access-Control-Allow-Headers"]?.contains("X-ModelCache-Token") == true)
        #expect(h["Access-Control-Allow-Methods"]?.contains("POST") == true)
        #expect(h["Access-Control-Allow-Private-Network"] == "true")
        // A preflight carries no token and needs none.
        #expect(refusal(access.decide(request("OPTIONS", origin: "http://localhost:8000", token: nil))) == nil)
        #expect(refusal(access.decide(request("OPTIONS", origin: "http://evil.example"))) != nil)
    }

    @Test func actionsNeedTheToken() {
        for method in ["POST", "DELETE", "PUT", "PATCH"] {
            let missing = refusal(access.decide(request(method, origin: "http://localhost:8000")))
            #expect(missing?.0 == 401 && missing?.1 == "token-required")
            let wrong = refusal(access.decide(request(method, origin: "http://localhost:8000", token: "x" + token.dropFirst())))
            #expect(wrong?.0 == 401 && wrong?.1 == "bad-token")
            #expect(refusal(access.decide(request(method, token: token + "0")))?.1 == "bad-token")
            #expect(refusal(access.decide(request(method, origin: "http://localhost:8000", token: token))) == nil)
        }
        #expect(refusal(access.decide(request("GET", token: nil))) == nil)
        #expect(refusal(access.decide(request("HEAD", token: nil))) == nil)
    }

    @Test func presentedToken() {
        #expect(BrowserAccess.presentedToken(header: "abc", authorization: "Bearer xyz") == "abc")
        #expect(BrowserAccess.presentedToken(header: nil, authorization: "Bearer xyz") == "xyz")
        #expect(BrowserAccess.presentedToken(header: nil, authorization: "bearer  xyz ") == "xyz")
        #expect(BrowserAccess.presentedToken(header: nil, authorization: "Basic eHl6") == nil)
        #expect(BrowserAccess.presentedToken(header: "", authorization: nil) == nil)
    }

    @Test func normalizedOrigins() {
        #expect(BrowserAccess.normalizedOrigin("HTTP://LocalHost:8000/") == "http://localhost:8000")
        #expect(BrowserAccess.normalizedOrigin("http://a.example:80") == "http://a.example")
        #expect(BrowserAccess.normalizedOrigin("https://a.example:443") == "https://a.example")
        #expect(BrowserAccess.normalizedOrigin("https://a.example:8443") == "https://a.example:8443")
        #expect(BrowserAccess.normalizedOrigin("http://a.example/path") == nil)
        #expect(BrowserAccess.normalizedOrigin("null") == nil)
        #expect(BrowserAccess.normalizedOrigin("file://") == nil)
        #expect(BrowserAccess.normalizedOrigin("http://user@a.example") == nil)
        #expect(BrowserAccess.normalizedOrigin("localhost:8000") == nil)
    }

    @Test func loopbackAddresses() {
        #expect(BrowserAccess.isLoopback(ip: "127.0.0.1"))
        #expect(BrowserAccess.isLoopback(ip: "127.0.1.1"))
        #expect(BrowserAccess.isLoopback(ip: "::1"))
        #expect(BrowserAccess.isLoopback(ip: "::ffff:127.0.0.1"))
        #expect(!BrowserAccess.isLoopback(ip: "10.0.0.5"))
        #expect(!BrowserAccess.isLoopback(ip: "::ffff:10.0.0.5"))
        #expect(!BrowserAccess.isLoopback(ip: "fe80::1"))
        #expect(!BrowserAccess.isLoopback(ip: "1.127.0.0"))
    }

    @Test func tokenComparison() {
        #expect(BrowserAccess.constantTimeEqual("abc", "abc"))
        #expect(!BrowserAccess.constantTimeEqual("abc", "abd"))
        #expect(!BrowserAccess.constantTimeEqual("abc", "abcd"))
        #expect(!BrowserAccess.constantTimeEqual("", "a"))
    }

    @Test func ownHostsCoverLoopbackNamesAndAddresses() {
        #expect(access.ownHosts.isSuperset(of: ["127.0.0.1:7070", "localhost:7070", "[::1]:7070", "lab-3:7070", "10.0.0.5:7070"]))
        let any = BrowserAccess(allowedOrigins: [], names: ["0.0.0.0", "fd00::5"], port: 7070, token: token, nodeUser: 1000)
        #expect(!any.ownHosts.contains("0.0.0.0:7070"))
        #expect(any.ownHosts.contains("[fd00::5]:7070"))
    }
}
