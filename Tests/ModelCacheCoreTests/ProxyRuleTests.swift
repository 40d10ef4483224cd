import Testing
import ModelCacheCore

/// curl's proxy rules: the scheme's variable (lower case first), NO_PROXY by host, domain suffix, `*`, port and IP
/// network, `--origin-proxy URL` for both schemes, `--origin-proxy none` over the environment.
struct ProxyRuleTests {
    let squid = ProxyRule.Server(host: "squid.site", port: 3128)

    func rule(_ env: [String: String], option: String? = nil) throws -> ProxyRule {
        try ProxyRule.resolve(option: option, environment: env)
    }

    @Test func eachSchemeHasItsOwnVariable() throws {
        let r = try rule(["http_proxy": "http://squid.site:3128", "https_proxy": "http://tunnel.site:8080/"])
        #expect(r.server(for: "http://hf.co/a") == squid)
        #expect(r.server(for: "https://hf.co/a") == ProxyRule.Server(host: "tunnel.site", port: 8080))
        let onlyHTTP = try rule(["http_proxy": "squid.site:3128"])
        #expect(onlyHTTP.server(for: "http://hf.co/a") == squid)
        #expect(onlyHTTP.server(for: "https://hf.co/a") == nil)
    }

    @Test func lowerCaseWinsAndEmptyIsUnset() throws {
        let r = try rule(["http_proxy": "http://squid.site:3128", "HTTP_PROXY": "http://other:1",
                          "https_proxy": "", "HTTPS_PROXY": "http://squid.site:3128"])
        #expect(r.server(for: "http://o/f") == squid)
        #expect(r.server(for: "https://o/f") == squid)
        #expect(try rule(["HTTP_PROXY": "http://squid.site:3128"]).server(for: "http://o/f") == squid)
        #expect(try rule([:]).isDirect)
        #expect(try rule(["http_proxy": "  "]).isDirect)
    }

    @Test func proxyURLs() throws {
        #expect(try ProxyRule.Server(parsing: "http://squid.site", name: "x") == ProxyRule.Server(host: "squid.site", port: 1080))
        let auth = try ProxyRule.Server(parsing: "http://me:p%40ss@[fd00::1]:3128", name: "x")
        #expect(auth.host == "fd00::1" && auth.port == 3128 && auth.credentials == "me:p@ss")
        #expect(auth.authorization == "Basic bWU6cEBzcw==")
        #expect(auth.description == "http://[fd00::1]:3128")
        for bad in ["https://squid:3128", "socks5://squid:1080", "http://squid:99999", "http://", "http://squid:3128/path", "http://squid:x"] {
            #expect(throws: ModelCacheError.self, "\(bad)") { try ProxyRule.Server(parsing: bad, name: "http_proxy") }
        }
        #expect(throws: ModelCacheError.self) { try rule(["https_proxy": "socks5://x:1"]) }
    }

    @Test func optionOverridesTheEnvironment() throws {
        let env = ["http_proxy": "http://other:1", "https_proxy": "http://other:1", "no_proxy": "intranet"]
        let r = try rule(env, option: "http://squid.site:3128")
        #expect(r.server(for: "http://hf.co/f") == squid && r.server(for: "https://hf.co/f") == squid)
        #expect(r.server(for: "http://files.intranet/f") == nil)  // NO_PROXY still applies, as with curl -x
        #expect(try rule(env, option: "none").isDirect)
        #expect(try rule(env, option: " NONE ").server(for: "http://hf.co/f") == nil)
        #expect(throws: ModelCacheError.self) { try rule([:], option: "ftp://x") }
    }

    @Test func noProxyByNameAndSuffix() throws {
        let r = try rule(["http_proxy": "http://squid.site:3128", "NO_PROXY": "example.com, .corp.lan,*.test ,localhost"])
        #expect(r.server(for: "http://example.com/f") == nil)
        #expect(r.server(for: "http://a.b.example.com/f") == nil)
        #expect(r.server(for: "http://EXAMPLE.COM./f") == nil)
        #expect(r.server(for: "http://notexample.com/f") == squid)
        #expect(r.server(for: "http://corp.lan/f") == nil)
        #expect(r.server(for: "http://x.corp.lan:8080/f") == nil)
        #expect(r.server(for: "http://x.test/f") == nil)
        #expect(r.server(for: "http://localhost:9/f") == nil)
        #expect(r.server(for: "http://hf.co/f") == squid)
        #expect(try rule(["http_proxy": "http://squid.site:3128", "no_proxy": "*"]).server(for: "http://hf.co/f") == nil)
        #expect(try rule(["http_proxy": "http://squid.site:3128", "no_proxy": "hf.co", "NO_PROXY": "*"]).server(for: "http://x.org/f") == squid)
    }

    @Test func noProxyByPortAndAddress() throws {
        let r = try rule(["http_proxy": "http://squid.site:3128",
                          "no_proxy": "mirror.lan:8080,10.0.0.0/8,192.168.1.7,[::1]:80,fd00::/8,bad/99,1.2.3.4:0"])
        #expect(r.server(for: "http://mirror.lan:8080/f") == nil)
        #expect(r.server(for: "http://mirror.lan/f") == squid)
        #expect(r.server(for: "http://10.200.3.4/f") == nil)
        #expect(r.server(for: "http://11.0.0.1/f") == squid)
        #expect(r.server(for: "http://192.168.1.7:81/f") == nil)
        #expect(r.server(for: "http://192.168.1.8/f") == squid)
        #expect(r.server(for: "http://[::1]/f") == nil)
        #expect(r.server(for: "http://[::1]:81/f") == squid)
        #expect(r.server(for: "http://[fd12::5]:9/f") == nil)
        #expect(r.server(for: "http://[fe80::1]/f") == squid)
        #expect(r.server(for: "http://1.2.3.4/f") == squid)  // the unreadable entries were ignored
        // A name suffix never matches an IP literal's text.
        #expect(try rule(["http_proxy": "http://s:1", "no_proxy": "3.4"]).server(for: "http://1.2.3.4/f") != nil)
    }

    @Test func nonHTTPURLsAndGarbageGoDirect() throws {
        let r = try rule(["http_proxy": "http://squid.site:3128", "https_proxy": "http://squid.site:3128"])
        #expect(r.server(for: "ftp://o/f") == nil)
        #expect(r.server(for: "not a url") == nil)
        #expect(r.server(for: "http:///f") == nil)
        #expect(NoProxy(parsing: String(repeating: "a", count: 10_000)).isEmpty)
    }
}
