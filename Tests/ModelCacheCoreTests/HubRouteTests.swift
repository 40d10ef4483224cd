import Foundation
import Testing
@testable import ModelCacheCore

@Suite struct HubRouteTests {
    let model = HubRepo(kind: .model, id: "acme/tiny-model")

    @Test func resolvePathsOfEveryShape() {
        #expect(HubRoute.parse(path: "/acme/tiny-model/resolve/main/config.json") == .resolve(model, revision: "main", path: "config.json"))
        #expect(HubRoute.parse(path: "/gpt2/resolve/main/model.safetensors")
                == .resolve(HubRepo(kind: .model, id: "gpt2"), revision: "main", path: "model.safetensors"))
        #expect(HubRoute.parse(path: "/datasets/acme/data/resolve/v1.0/train/part-0.parquet")
                == .resolve(HubRepo(kind: .dataset, id: "acme/data"), revision: "v1.0", path: "train/part-0.parquet"))
        // The client sends `refs/pr/1` as one encoded segment, and quotes file names.
        #expect(HubRoute.parse(path: "/acme/tiny-model/resolve/refs%2Fpr%2F1/a%20b.json")
                == .resolve(model, revision: "refs/pr/1", path: "a b.json"))
    }

    @Test func apiPaths() {
        #expect(HubRoute.parse(path: "/api/models/acme/tiny-model/revision/main") == .revision(model, revision: "main"))
        #expect(HubRoute.parse(path: "/api/datasets/acme/data/tree/abc") == .tree(HubRepo(kind: .dataset, id: "acme/data"), revision: "abc", path: ""))
        #expect(HubRoute.parse(path: "/api/models/acme/tiny-model/tree/main/tokenizer") == .tree(model, revision: "main", path: "tokenizer"))
        #expect(HubRoute.parse(path: "/api/agent-harnesses") == .otherAPI)
        #expect(HubRoute.parse(path: "/api/models/acme/tiny-model/xet-read-token/abc") == .otherAPI)
    }

    @Test func notHubPaths() {
        for p in ["/", "/v1/info", "/v1/blobs/abc", "/acme/tiny-model", "/acme/tiny-model/blob/main/x", "/modelcache.js"] {
            #expect(HubRoute.parse(path: p) == nil, "\(p)")
        }
    }

    @Test func noWayOutOfTheRepo() {
        #expect(HubRoute.parse(path: "/acme/tiny-model/resolve/main/../../etc/passwd") == nil)
        #expect(HubRoute.parse(path: "/acme/tiny-model/resolve/main/a//b") == nil)
        #expect(HubRoute.parse(path: "/acme/tiny-model/resolve/main/%2E%2E/x") == nil)
        #expect(HubRoute.parse(path: "/../x/resolve/main/f") == nil)
    }

    @Test func canonicalURLsRoundTrip() {
        let url = model.resolveURL(upstream: "https://huggingface.co", revision: "refs/pr/1", path: "dir/a b.json")
        #expect(url == "https://huggingface.co/acme/tiny-model/resolve/refs%2Fpr%2F1/dir/a%20b.json")
        #expect(HubRoute.parse(path: String(url.dropFirst("https://huggingface.co".count))) == .resolve(model, revision: "refs/pr/1", path: "dir/a b.json"))
        #expect(HubRepo(kind: .dataset, id: "a/b").revisionPath("main") == "/api/datasets/a/b/revision/main")
    }

    @Test func commitsAreFortyLowercaseHex() {
        #expect(HubRoute.isCommit("17e6624ee4452c3c8263c0802391e0f9b5dbc1b1"))
        #expect(!HubRoute.isCommit("main"))
        #expect(!HubRoute.isCommit("17E6624EE4452C3C8263C0802391E0F9B5DBC1B1"))
    }
}

@Suite struct HubXetTests {
    @Test func stripsXetHeadersAndOnlyXetLinks() {
        let headers: [(String, String)] = [
            ("X-Xet-Hash", "abc"), ("X-Xet-Refresh-Route", "/api/models/a/b/xet-read-token/c"), ("X-Repo-Commit", "c"),
            ("Link", "<https://huggingface.co/api/models/a/b/xet-read-token/c>; rel=\"xet-auth\", <https://cas/v1/reconstructions/h>; rel=\"xet-reconstruction-info\", <https://x/?a=1,2>; rel=\"next\""),
        ]
        let out = HubXet.strip(headers: headers)
        #expect(out.map(\.0) == ["X-Repo-Commit", "Link"])
        #expect(out[1].1 == "<https://x/?a=1,2>; rel=\"next\"")
        #expect(HubXet.strip(headers: [("Link", "<u>; rel=\"xet-auth\"")]).isEmpty)
    }

    @Test func stripsXetHashAtAnyDepth() throws {
        let json = #"[{"type":"file","path":"w.safetensors","xetHash":"h","lfs":{"oid":"o","size":1,"pointerSize":2,"xetHash":"h2"}}]"#
        let out = try #require(HubXet.strip(json: Array(json.utf8)))
        let text = String(decoding: out, as: UTF8.self)
        #expect(!text.contains("xetHash"))
        #expect(text.contains("\"pointerSize\":2"))
        #expect(HubXet.strip(json: Array("not json".utf8)) == nil)
    }

    @Test func nextLinkOfAPage() {
        #expect(HubXet.nextLink("<https://hub/api/models/a/tree/c?cursor=x&recursive=true>; rel=\"next\"") == "https://hub/api/models/a/tree/c?cursor=x&recursive=true")
        #expect(HubXet.nextLink("<https://hub/x>; rel=\"prev\"") == nil)
        #expect(HubXet.nextLink(nil) == nil)
    }
}

@Suite struct HubFileMetaTests {
    let repo = HubRepo(kind: .model, id: "acme/m")
    let sha = "1c2b22c898b340ed94ae728d0ae5c65bed380e0eac5827ca515c4f5ad3b01399"
    let commit = "17e6624ee4452c3c8263c0802391e0f9b5dbc1b1"

    @Test func lfsRedirectGivesSha256AndLinkedSize() throws {
        let m = try #require(HubFileMeta.from(headers: [
            ("X-Repo-Commit", commit), ("X-Linked-Etag", "\"\(sha)\""), ("X-Linked-Size", "25165824"),
            ("ETag", "W/\"redirect-body\""), ("Content-Length", "1190"), ("Location", "https://cdn/x")],
            status: 302, repo: repo, path: "w.safetensors", isPublic: true))
        #expect(m.sha256?.hex == sha)
        #expect(m.etag == sha)
        #expect(m.size == 25_165_824)
    }

    @Test func nonLFSFileHasGitEtagAndNoSha256() throws {
        let m = try #require(HubFileMeta.from(headers: [("X-Repo-Commit", commit), ("ETag", "\"c3790c3a38c9e976232ddd00121e362e92539f1f\""),
                                                        ("Content-Length", "65")], status: 200, repo: repo, path: "config.json", isPublic: true))
        #expect(m.sha256 == nil)
        #expect(m.size == 65)
        #expect(m.etag == "c3790c3a38c9e976232ddd00121e362e92539f1f")
    }

    @Test func aRedirectsOwnLengthIsNotTheFileSize() throws {
        let m = try #require(HubFileMeta.from(headers: [("X-Repo-Commit", commit), ("ETag", "\"e\""), ("Content-Length", "1190")],
                                              status: 302, repo: repo, path: "f", isPublic: true))
        #expect(m.size == nil)
    }

    @Test func commitAndEtagAreRequired() {
        #expect(HubFileMeta.from(headers: [("ETag", "\"e\"")], status: 200, repo: repo, path: "f", isPublic: true) == nil)
        #expect(HubFileMeta.from(headers: [("X-Repo-Commit", commit)], status: 200, repo: repo, path: "f", isPublic: true) == nil)
        #expect(HubFileMeta.from(headers: [("X-Repo-Commit", "main"), ("ETag", "\"e\"")], status: 200, repo: repo, path: "f", isPublic: true) == nil)
    }
}
