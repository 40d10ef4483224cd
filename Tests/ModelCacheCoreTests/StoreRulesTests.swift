import Testing
import ModelCacheCore

/// The pure rules behind the store's safety: which folder is a cache, which blob may be served, where -o puts a file.
struct CacheFolderTests {
    let tag = Array(CacheFolder.tagContents.utf8)

    @Test func emptyPathIsRefused() {
        guard case .refuse(let why) = CacheFolder.decide(path: "", entries: nil, tag: nil) else { Issue.record("not refused"); return }
        #expect(why.contains("empty"))
    }

    @Test func missingOrEmptyFolderBecomesACache() {
        #expect(CacheFolder.decide(path: "/x/new", entries: nil, tag: nil) == .create)
        #expect(CacheFolder.decide(path: "/x/empty", entries: [], tag: nil) == .create)
    }

    @Test func taggedFolderIsUsed() {
        #expect(CacheFolder.decide(path: "/c", entries: ["CACHEDIR.TAG", "blobs"], tag: tag) == .use)
    }

    @Test func nonEmptyUntaggedFolderIsRefusedNamingItAndWhatToDo() {
        for entries in [["etc", "usr", "tmp"], ["notes.txt"], ["blobs"], ["index.sqlite"]] {
            guard case .refuse(let why) = CacheFolder.decide(path: "/home/ann", entries: entries, tag: nil) else {
                Issue.record("\(entries) not refused"); continue
            }
            #expect(why.contains("/home/ann") && why.contains("--cache-dir") && !why.contains("\n"))
        }
    }

    @Test func aCacheFromBeforeTheTagIsAdopted() {
        #expect(CacheFolder.decide(path: "/c", entries: ["blobs", "index.sqlite", "partial", "tmp"], tag: nil) == .adopt)
    }

    @Test func aTagWithoutTheSignatureIsRefused() {
        guard case .refuse = CacheFolder.decide(path: "/c", entries: ["CACHEDIR.TAG"], tag: Array("Signature: 0000".utf8)) else {
            Issue.record("not refused"); return
        }
    }

    @Test func tagStartsWithTheExactConventionSignature() {
        #expect(CacheFolder.tagContents.hasPrefix("Signature: 8a477f597d28d172789f06886806bc55\n"))
        #expect(CacheFolder.tagContents.contains("modelcache"))
        #expect(CacheFolder.isValidTag(tag))
    }

    @Test func onlyTheToolsOwnTemporaryNamesAreRemovable() {
        #expect(CacheFolder.isOwnTemporary("import-3F2A"))
        for name in ["import-", "notes.txt", "x-import-1", "../import-1/x", ".X11-unix", "systemd-private-abc"] {
            #expect(!CacheFolder.isOwnTemporary(name), "\(name)")
        }
    }
}

struct BlobTrustTests {
    let recorded = BlobStat(size: 100, mtimeNanos: 1_700_000_000_000_000_000, inode: 42)
    let digest = BlobDigest.of(Array("x".utf8))

    @Test func unchangedStatIsTrustedWithoutReading() {
        #expect(BlobTrust.check(recorded: recorded, current: recorded, indexedSize: 100) == .trust)
    }

    @Test func changedMtimeOrInodeIsRehashed() {
        var touched = recorded
        touched.mtimeNanos += 1
        #expect(BlobTrust.check(recorded: recorded, current: touched, indexedSize: 100) == .rehash)
        var replaced = recorded
        replaced.inode = 43
        #expect(BlobTrust.check(recorded: recorded, current: replaced, indexedSize: 100) == .rehash)
    }

    @Test func wrongSizeIsEvictedWithoutReading() {
        var grown = recorded
        grown.size = 101
        #expect(BlobTrust.check(recorded: recorded, current: grown, indexedSize: 100) == .evict)
    }

    @Test func noRecordedStatIsRehashedOnce() {
        #expect(BlobTrust.check(recorded: nil, current: recorded, indexedSize: 100) == .rehash)
    }

    @Test func missingFileIsNotServed() {
        #expect(BlobTrust.check(recorded: recorded, current: nil, indexedSize: 100) == .missing)
    }

    @Test func rehashKeepsRightBytesAndEvictsWrongOrUnreadableOnes() {
        #expect(BlobTrust.afterRehash(expected: digest, got: digest) == .keep)
        #expect(BlobTrust.afterRehash(expected: digest, got: BlobDigest.of(Array("y".utf8))) == .evict)
        #expect(BlobTrust.afterRehash(expected: digest, got: nil) == .evict)
    }
}

struct OutputTargetTests {
    @Test func fileNameIsTheURLsLastPathComponent() {
        #expect(OutputTarget.fileName(fromURL: "https://h/org/model/resolve/main/model.safetensors?download=1") == "model.safetensors")
        #expect(OutputTarget.fileName(fromURL: "http://h:8080/a/b%20c.bin#frag") == "b c.bin")
        #expect(OutputTarget.fileName(fromURL: "http://h/dir/") == "dir")
    }

    @Test func unsafeOrEmptyNamesAreRejected() {
        for url in ["http://h", "http://h/", "http://h/a/..", "http://h/a/%2E%2E", "http://h/a/%2Fetc%2Fpasswd", "http://h/a/.",
                    "http://h/a%00b", "http://h/%ZZ/" ] {
            let name = OutputTarget.fileName(fromURL: url)
            #expect(name == nil || (name != ".." && name != "." && !(name ?? "").contains("/") && !(name ?? "").isEmpty), "\(url)")
        }
        #expect(OutputTarget.fileName(fromURL: "http://h/a/..") == nil)
        #expect(OutputTarget.fileName(fromURL: "http://h/a/%2E%2E") == nil)
        #expect(OutputTarget.fileName(fromURL: "http://h/a/%2Fetc%2Fpasswd") == nil)
        #expect(OutputTarget.fileName(fromURL: "http://h/a%00b") == nil)
    }

    @Test func folderOutputGetsTheURLsName() {
        #expect(OutputTarget.destination(output: "out/", isExistingDirectory: false, url: "http://h/m.bin") == "out/m.bin")
        #expect(OutputTarget.destination(output: "/d", isExistingDirectory: true, url: "http://h/x/m.bin") == "/d/m.bin")
        #expect(OutputTarget.destination(output: "/d/file", isExistingDirectory: false, url: "http://h/m.bin") == "/d/file")
        #expect(OutputTarget.destination(output: "/d/", isExistingDirectory: true, url: "http://h/") == nil)
    }
}

/// A cache folder shared with its group (the systemd unit's) shares its index files with the group too.
@Suite struct SharedIndexModeTests {
    @Test func groupWritableFolderGivesTheGroupReadAndWrite() {
        #expect(CacheFolder.sharedIndexMode(folderMode: 0o042770, fileMode: 0o100640) == 0o660)
        #expect(CacheFolder.sharedIndexMode(folderMode: 0o040770, fileMode: 0o100600) == 0o660)
        #expect(CacheFolder.sharedIndexMode(folderMode: 0o040770, fileMode: 0o100644) == 0o664)
        #expect(CacheFolder.sharedIndexMode(folderMode: 0o040770, fileMode: 0o100660) == nil)  // already shared
    }

    @Test func privateFolderLeavesFilesAlone() {
        for folder: UInt32 in [0o040700, 0o040755, 0o040750] {
            #expect(CacheFolder.sharedIndexMode(folderMode: folder, fileMode: 0o100644) == nil)
        }
    }
}
