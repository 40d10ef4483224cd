import Foundation
import Testing
@testable import ModelCacheCore

/// The pure parts of `modelcache hf download` / `hf import` (protocol §15): patterns as huggingface_hub applies them,
/// the Hub cache's paths, tree listings, and the import plan.
@Suite struct HubCacheTests {
    let model = HubRepo(kind: .model, id: "acme/tiny-model")

    @Test func patternsMatchLikeFnmatchcase() {
        // Expected values from Python's fnmatch.fnmatchcase.
        let cases: [(String, String, Bool)] = [
            ("data/sub/x.json", "data/*.json", true), ("a.bin", "*.json", false), ("x[1].json", "x[1].json", false),
            ("x1.json", "x[1].json", true), ("x[.json", "x[.json", true), ("abc", "a?c", true), ("a/b", "a?b", true),
            ("Config.JSON", "*.json", false), ("b.txt", "[!a]*", true), ("a.txt", "[!a]*", false), ("]x", "[]]x", true),
            ("model-00001-of-00002.safetensors", "model-*-of-*.safetensors", true), ("", "*", true), ("a", "", false),
            ("v3.json", "v[0-9].json", true), ("vx.json", "v[0-9].json", false),
        ]
        for (path, pattern, expected) in cases {
            #expect(HubGlob.matches(path, pattern) == expected, "\(path) ~ \(pattern)")
        }
    }

    @Test func filterAppliesAllowThenIgnoreAndFoldersGetAStar() {
        let paths = ["config.json", "tokenizer/tokenizer.json", "model.safetensors", "README.md", "onnx/model.onnx"]
        #expect(HubGlob.filter(paths, allow: ["*.json"], ignore: ["tokenizer/*"]) == ["config.json"])
        #expect(HubGlob.filter(paths, allow: ["onnx/"], ignore: nil) == ["onnx/model.onnx"])
        #expect(HubGlob.filter(paths, allow: nil, ignore: ["*.md", "onnx\\"]) == ["config.json", "tokenizer/tokenizer.json", "model.safetensors"])
        #expect(HubGlob.filter(paths, allow: nil, ignore: nil) == paths)
    }

    @Test func selectionFollowsHfDownload() throws {
        let all = ["a.json", "b.json", "d/c.bin", "d/e.bin"]
        let single = try HubFileSelection(files: ["a.json"], include: ["*.bin"], exclude: [])
        #expect(single.single == "a.json" && single.apply(all) == ["a.json"])  // --include ignored, as hf warns
        #expect(try HubFileSelection(files: ["a.json", "d/"], include: [], exclude: []).apply(all) == ["a.json", "d/c.bin", "d/e.bin"])
        #expect(try HubFileSelection(files: [], include: ["*.json"], exclude: ["b*"]).apply(all) == ["a.json"])
        #expect(try HubFileSelection(files: [], include: [], exclude: []).apply(all) == all)
        #expect(throws: HubFileSelection.Problem.folderWithPatterns("d/")) {
            try HubFileSelection(files: ["d/"], include: ["*.bin"], exclude: [])
        }
        #expect(try HubFileSelection(files: ["missing.json"], include: [], exclude: []).apply(all).isEmpty)
    }

    @Test func folderNamesAndPathsAreTheClients() {
        let layout = HubCacheLayout(root: "/h/hub/")
        #expect(HubCacheLayout.folderName(model) == "models--acme--tiny-model")
        #expect(HubCacheLayout.folderName(HubRepo(kind: .dataset, id: "acme/data")) == "datasets--acme--data")
        #expect(HubCacheLayout.folderName(HubRepo(kind: .model, id: "gpt2")) == "models--gpt2")
        #expect(HubCacheLayout.repo(folderName: "models--acme--tiny-model") == model)
        #expect(HubCacheLayout.repo(folderName: "spaces--gpt2") == HubRepo(kind: .space, id: "gpt2"))
        for bad in [".locks", "models--", "models--a--b--c", "model--a--b", "models--..--x", "version.txt"] {
            #expect(HubCacheLayout.repo(folderName: bad) == nil, "\(bad)")
        }
        #expect(layout.blobPath(model, etag: "ab") == "/h/hub/models--acme--tiny-model/blobs/ab")
        #expect(layout.refPath(model, revision: "refs/pr/1") == "/h/hub/models--acme--tiny-model/refs/refs/pr/1")
        #expect(HubCacheLayout.symlinkTarget(path: "config.json", etag: "e") == "../../blobs/e")
        #expect(HubCacheLayout.symlinkTarget(path: "a/b/c.json", etag: "e") == "../../../../blobs/e")
    }

    @Test func blobNamesAreReadOnlyFromLinksIntoTheRepo() {
        let layout = HubCacheLayout(root: "/h/hub")
        let sha = String(repeating: "a", count: 64), sha1 = String(repeating: "b", count: 40)
        #expect(layout.blobName(symlinkTarget: "../../blobs/" + sha, path: "m.bin", repo: model) == sha)
        #expect(layout.blobName(symlinkTarget: "../../../blobs/" + sha1, path: "t/t.json", repo: model) == sha1)
        #expect(layout.blobName(symlinkTarget: "/h/hub/models--acme--tiny-model/blobs/" + sha, path: "m.bin", repo: model) == sha)
        #expect(layout.blobName(symlinkTarget: "../../blobs/" + sha, path: "t/t.json", repo: model) == nil)  // wrong depth
        #expect(layout.blobName(symlinkTarget: "/etc/passwd", path: "m.bin", repo: model) == nil)
        #expect(layout.blobName(symlinkTarget: "../../blobs/../../x/" + sha, path: "m.bin", repo: model) == nil)
        #expect(layout.blobName(symlinkTarget: "../../blobs/" + sha.uppercased(), path: "m.bin", repo: model) == nil)
    }

    @Test func cacheFolderAndTokenFollowTheClientsEnvironment() {
        let home = "/home/u"
        #expect(HubCacheLayout.defaultRoot(environment: [:], home: home) == "/home/u/.cache/huggingface/hub")
        #expect(HubCacheLayout.defaultRoot(environment: ["XDG_CACHE_HOME": "/x"], home: home) == "/x/huggingface/hub")
        #expect(HubCacheLayout.defaultRoot(environment: ["HF_HOME": "~/hf", "XDG_CACHE_HOME": "/x"], home: home) == "/home/u/hf/hub")
        #expect(HubCacheLayout.defaultRoot(environment: ["HF_HUB_CACHE": "/c", "HF_HOME": "/hf"], home: home) == "/c")
        #expect(HubCacheLayout.tokenPath(environment: ["HF_HOME": "/hf"], home: home) == "/hf/token")
        #expect(HubCacheLayout.token(environment: ["HF_TOKEN": " hf_x\n"], fileContents: "hf_file") == "hf_x")
        #expect(HubCacheLayout.token(environment: [:], fileContents: "hf_file\n") == "hf_file")
        #expect(HubCacheLayout.token(environment: ["HF_TOKEN": ""], fileContents: "  \n") == nil)
        #expect(HubCacheLayout.token(environment: ["HF_TOKEN": "hf_x", "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1"], fileContents: "hf_file") == nil)
    }

    @Test func gitBlobIDsAndLFSPointers() {
        #expect(HubTreeFile.gitBlobID(Array("hello\n".utf8)) == "ce013625030ba8dba906f756967f9e9ca394464a")
        let sha = "1c2b22c898b340ed94ae728d0ae5c65bed380e0eac5827ca515c4f5ad3b01399"
        let pointer = HubTreeFile.lfsPointer(sha256: sha, size: 25_165_824)
        #expect(pointer.count == 133)
        #expect(HubTreeFile.gitBlobID(pointer) == "a7e2e56e7e9abc518021156bc032e5c4852aa87e")  // as git (and the fake Hub) computes it
    }

    @Test func listingsRoundTripThroughBothFormats() throws {
        let files = [HubTreeFile(path: "a.json", size: 5, blobID: String(repeating: "1", count: 40), lfsSHA256: nil),
                     HubTreeFile(path: "m/x.bin", size: 9, blobID: String(repeating: "2", count: 40), lfsSHA256: String(repeating: "3", count: 64))]
        #expect(HubTreeFile.parse(apiListing: HubTreeFile.apiListing(files)) == files)
        #expect(HubTreeFile.parse(treeCache: HubTreeFile.treeCacheJSON(files)) == files)
        // Folders, unsafe paths, bad ids and bad sizes are dropped; a non-list is nil.
        let hostile = Array(#"""
            [{"type":"directory","path":"m","oid":"1111111111111111111111111111111111111111","size":0},
             {"type":"file","path":"../x","oid":"1111111111111111111111111111111111111111","size":1},
             {"type":"file","path":"y","oid":"zz","size":1},
             {"type":"file","path":"z","oid":"1111111111111111111111111111111111111111","size":-1},
             {"type":"file","path":"ok","oid":"1111111111111111111111111111111111111111","size":1,"xetHash":"q"}]
            """#.utf8)
        #expect(HubTreeFile.parse(apiListing: hostile)?.map(\.path) == ["ok"])
        #expect(HubTreeFile.parse(apiListing: Array("{}".utf8)) == nil)
        #expect(HubTreeFile.parse(treeCache: Array(#"{"format_version":2,"files":{}}"#.utf8)) == nil)
    }

    @Test func importPlanGroupsFilesByBlobWithTheirURLs() {
        let c1 = String(repeating: "c", count: 40), c2 = String(repeating: "d", count: 40)
        let lfs = String(repeating: "a", count: 64), cfg1 = String(repeating: "1", count: 40), cfg2 = String(repeating: "2", count: 40)
        var scan = HubCacheScan(repo: model)
        scan.refs = ["main": c2, "v1.0": c1, "gone": String(repeating: "e", count: 40)]
        scan.snapshots = [c1: ["m.bin": lfs, "config.json": cfg1], c2: ["m.bin": lfs, "config.json": cfg2, "lost.json": "3333333333333333333333333333333333333333"]]
        scan.blobSizes = [lfs: 100, cfg1: 10, cfg2: 11]
        let plan = HubImportPlan(scan: scan, upstream: "https://huggingface.co", isPublic: true)
        #expect(plan.blobs.map(\.name) == [cfg1, cfg2, lfs])  // smallest first; the missing blob is left out
        let shared = plan.blobs[2]
        #expect(shared.isLFS && shared.files.count == 2 && shared.files.allSatisfy { $0.sha256?.hex == lfs && $0.isPublic })
        #expect(Set(shared.urls) == [
            "https://huggingface.co/acme/tiny-model/resolve/\(c1)/m.bin", "https://huggingface.co/acme/tiny-model/resolve/v1.0/m.bin",
            "https://huggingface.co/acme/tiny-model/resolve/\(c2)/m.bin", "https://huggingface.co/acme/tiny-model/resolve/main/m.bin"])
        #expect(plan.blobs[0].files.first?.sha256 == nil)  // a plain file's sha256 is the store's to find
        #expect(plan.refs == ["main": c2, "v1.0": c1, c1: c1, c2: c2])  // "gone" names no snapshot here
        #expect(plan.trees[c2]?.map(\.path) == ["config.json", "m.bin"])
        #expect(plan.trees[c2]?.last?.blobID == HubTreeFile.gitBlobID(HubTreeFile.lfsPointer(sha256: lfs, size: 100)))
        // The client's own listing wins over one made from the snapshot.
        var withTree = scan
        withTree.trees[c1] = [HubTreeFile(path: "only.json", size: 1, blobID: cfg1, lfsSHA256: nil)]
        #expect(HubImportPlan(scan: withTree, upstream: "https://huggingface.co", isPublic: false).trees[c1]?.map(\.path) == ["only.json"])
        let dataset = HubImportPlan(scan: HubCacheScan(repo: HubRepo(kind: .dataset, id: "a/d")), upstream: "u", isPublic: true)
        #expect(dataset.blobs.isEmpty && dataset.refs.isEmpty)
    }
}
