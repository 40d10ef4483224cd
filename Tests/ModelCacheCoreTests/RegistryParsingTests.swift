import Foundation
import Testing
@testable import ModelCacheCore

/// The registry mirror's parsers (protocol §16): names, references, routes, upstream selection, challenges,
/// manifests' blob lists, token answers.
@Suite struct RegistryParsingTests {
    let hex = String(repeating: "ab", count: 32)

    @Test func namesFollowTheDistributionGrammar() {
        for ok in ["ubuntu", "library/ubuntu", "a/b/c", "my-org/my_repo", "x.y/z__w", "a--b", "0/9", "llama3.1"] {
            #expect(RegistryName.isValid(name: ok), "\(ok)")
        }
        for bad in ["", "Ubuntu", "a//b", "/a", "a/", "..", "a/../b", "a/./b", "-a", "a-", "a___b", "a_.b", ".a", "a b", "a%2Fb",
                    "a:b", "a\\b", "ü", String(repeating: "a", count: 256)] {
            #expect(!RegistryName.isValid(name: bad), "\(bad)")
        }
    }

    @Test func referencesAreATagOrASha256Digest() {
        #expect(RegistryReference(parsing: "latest") == .tag("latest"))
        #expect(RegistryReference(parsing: "v1.2_rc-3") == .tag("v1.2_rc-3"))
        #expect(RegistryReference(parsing: "sha256:" + hex) == .digest(BlobDigest(ifValid: hex)!))
        for bad in ["", ".hidden", "-x", "a/b", "..", String(repeating: "t", count: 129), "sha256:" + hex.uppercased(),
                    "sha256:abc", "sha512:" + hex + hex, "a b"] {
            #expect(RegistryReference(parsing: bad) == nil, "\(bad)")
        }
        #expect(RegistryName.digest("sha256:" + hex)?.hex == hex)
        #expect(RegistryName.digest(hex) == nil)
    }

    @Test func routes() {
        #expect(RegistryRoute.parse(path: "/v2/") == .ping)
        #expect(RegistryRoute.parse(path: "/v2") == .ping)
        #expect(RegistryRoute.parse(path: "/v2/library/ubuntu/manifests/22.04") == .manifest(name: "library/ubuntu", reference: .tag("22.04")))
        // A name may hold the verbs' words; the last two components decide.
        #expect(RegistryRoute.parse(path: "/v2/blobs/manifests/manifests/x") == .manifest(name: "blobs/manifests", reference: .tag("x")))
        #expect(RegistryRoute.parse(path: "/v2/a/blobs/sha256:" + hex) == .blob(name: "a", digest: BlobDigest(ifValid: hex)!))
        #expect(RegistryRoute.parse(path: "/v2/a/tags/list") == .unsupported)
        #expect(RegistryRoute.parse(path: "/v2/_catalog") == .unsupported)
        #expect(RegistryRoute.parse(path: "/v2/a/blobs/uploads/") == .unsupported)
        if case .invalid(let code, _)? = RegistryRoute.parse(path: "/v2/../x/manifests/v1") { #expect(code == "NAME_INVALID") } else { Issue.record("not invalid") }
        if case .invalid(let code, _)? = RegistryRoute.parse(path: "/v2/a/blobs/latest") { #expect(code == "DIGEST_INVALID") } else { Issue.record("not invalid") }
        if case .invalid(let code, _)? = RegistryRoute.parse(path: "/v2/a/manifests/%2e%2e") { #expect(code == "MANIFEST_INVALID") } else { Issue.record("not invalid") }
        for other in ["/", "/v1/catalogue", "/v20/", "/v2x", "/api/models/a"] { #expect(RegistryRoute.parse(path: other) == nil, "\(other)") }
        #expect(RegistryRoute.namespace(query: "ns=docker.io") == "docker.io")
        #expect(RegistryRoute.namespace(query: "a=1&ns=ghcr.io") == "ghcr.io")
        #expect(RegistryRoute.namespace(query: "ns=127.0.0.1%3A5000") == "127.0.0.1:5000")  // as containerd sends it
        #expect(RegistryRoute.namespace(query: nil) == nil)
    }

    @Test func upstreamSelection() throws {
        let m = try RegistryMirrors(parsing: ["registry.ollama.ai=https://registry.ollama.ai/", "docker.io=https://registry-1.docker.io"])
        let ollama = m.mirrors[0], hub = m.mirrors[1]
        #expect(ollama.base == "https://registry.ollama.ai")
        // containerd's ?ns= wins; then a path prefix naming a mirror; else the first mirror.
        #expect(m.select(name: "library/ubuntu", ns: "docker.io") == .mirror(hub, repository: "library/ubuntu"))
        #expect(m.select(name: "docker.io/library/ubuntu", ns: nil) == .mirror(hub, repository: "library/ubuntu"))
        #expect(m.select(name: "registry.ollama.ai/library/llama3", ns: nil) == .mirror(ollama, repository: "library/llama3"))
        #expect(m.select(name: "library/llama3", ns: nil) == .mirror(ollama, repository: "library/llama3"))
        #expect(m.select(name: "docker.io", ns: nil) == .mirror(ollama, repository: "docker.io"))
        #expect(m.select(name: "x", ns: "ghcr.io") == .unknownNamespace("ghcr.io"))
        #expect(RegistryMirrors([]).select(name: "x", ns: nil) == .none)
        for bad in ["docker.io", "=https://x", "Docker.io=https://x", "a=ftp://x", "a=https://x?q=1", "a:99999=https://x", "a b=https://x"] {
            #expect(throws: ModelCacheError.self, "\(bad)") { _ = try RegistryMirror(parsing: bad) }
        }
        #expect(throws: ModelCacheError.self) { _ = try RegistryMirrors(parsing: ["a=https://x", "a=https://y"]) }
        #expect(try RegistryMirror(parsing: "localhost:5000=http://127.0.0.1:5000").name == "localhost:5000")
    }

    @Test func challenges() {
        let hub = AuthChallenge.parse(#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#)
        #expect(hub == [AuthChallenge(scheme: "bearer", params: ["realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                                                                   "scope": "repository:library/ubuntu:pull"])])
        #expect(hub.first?.tokenURL(scope: "repository:library/debian:pull")
                == "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fdebian%3Apull")
        let two = AuthChallenge.parse(#"Basic realm="Registry \"Realm\"", Bearer realm=https://a/t, service=s"#)
        #expect(two.map(\.scheme) == ["basic", "bearer"])
        #expect(two.first?.realm == #"Registry "Realm""#)
        #expect(two.last?.params["service"] == "s")
        #expect(two.first?.tokenURL(scope: nil) == nil)  // not a bearer challenge
        #expect(AuthChallenge.parse(#"Bearer realm="file:///etc/passwd""#).first?.tokenURL(scope: nil) == nil)
        #expect(AuthChallenge.parse(#"Bearer realm="unterminated"#).map(\.scheme) == ["bearer"])
        #expect(AuthChallenge.parse("").isEmpty)
    }

    @Test func manifestsBlobListsAndTokens() {
        let ollama = #"""
        {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
         "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:\#(hex)","size":485},
         "layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:\#(String(repeating: "cd", count: 32))","size":4661211424},
                   {"mediaType":"application/vnd.ollama.image.license","digest":"md5:abc","size":1},
                   {"mediaType":"application/vnd.ollama.image.params","digest":"sha256:\#(String(repeating: "ef", count: 32))","size":-4}]}
        """#
        let m = OCIManifest.parse(Array(ollama.utf8))
        #expect(m?.blobs.map(\.size) == [485, 4_661_211_424])  // md5 and a negative size left out
        #expect(m?.blobs.last?.mediaType == "application/vnd.ollama.image.model")
        let index = #"{"schemaVersion":2,"manifests":[{"digest":"sha256:\#(hex)","size":7,"platform":{"os":"linux"}}]}"#
        #expect(OCIManifest.parse(Array(index.utf8))?.manifests.count == 1)
        #expect(OCIManifest.parse(Array("{}".utf8)) == nil)
        #expect(OCIManifest.parse(Array("[1]".utf8)) == nil)

        #expect(RegistryToken.parse(Array(#"{"token":"abc.def","expires_in":300}"#.utf8)) == RegistryToken(token: "abc.def", expiresIn: 300))
        #expect(RegistryToken.parse(Array(#"{"access_token":"x"}"#.utf8)) == RegistryToken(token: "x", expiresIn: 60))
        #expect(RegistryToken.parse(Array(#"{"token":"a\r\nInjected: 1"}"#.utf8)) == nil)
        #expect(RegistryToken.parse(Array(#"{"token":""}"#.utf8)) == nil)
        #expect(RegistryToken.parse(Array(#"{"token":"x","expires_in":999999}"#.utf8))?.expiresIn == 3600)
    }

    @Test func theSettingTakesAListOfMirrorsFromEverySource() throws {
        let kind = SettingSpec.registryMirrors.kind
        #expect(try kind.parse(.strings(["a.io=https://a.io", "b:5000=http://10.0.0.1:5000"]), name: "registry-mirrors", fromFile: true)
                == .list(["a.io=https://a.io", "b:5000=http://10.0.0.1:5000"]))
        #expect(try kind.parse(.string("a.io=https://a.io, b.io=https://b.io"), name: "MODELCACHE_REGISTRY_MIRRORS") == .list(["a.io=https://a.io", "b.io=https://b.io"]))
        #expect(throws: ModelCacheError.self) { _ = try kind.parse(.strings(["a.io"]), name: "registry-mirrors", fromFile: true) }
        #expect(throws: ModelCacheError.self) { _ = try kind.parse(.string("a.io=https://a.io"), name: "registry-mirrors", fromFile: true) }
    }
}
