import Foundation
import Testing
import ModelCacheCore

/// Every input the fuzzer ever crashed a parser with (Tests/Fuzz/crashes/<target>/), and every seed of its corpus
/// (Tests/Fuzz/corpus/<target>/: the edge values), fed to that parser again: it must return, never trap. A trap
/// here kills the test process, which fails the run.
@Suite struct FuzzReplayTests {
    static let fuzzRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static func files(_ kind: String, _ target: String) -> [URL] {
        let dir = fuzzRoot.appendingPathComponent(kind).appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().map { dir.appendingPathComponent($0) }
    }

    @Test(arguments: FuzzTarget.allCases)
    func everyKeptCrashAndSeedIsParsedWithoutTrapping(_ target: FuzzTarget) throws {
        let inputs = Self.files("crashes", target.rawValue) + Self.files("corpus", target.rawValue)
        // Every target has seeds in git: an empty list means the files were not found, not that all is well.
        #expect(!Self.files("corpus", target.rawValue).isEmpty, "no seed corpus for \(target.rawValue)")
        for file in inputs {
            let broken = target.run(Array(try Data(contentsOf: file)))
            #expect(broken.isEmpty, "\(file.lastPathComponent): \(broken)")
        }
    }

    @Test func crashFoldersNameKnownTargets() throws {
        let dir = Self.fuzzRoot.appendingPathComponent("crashes").path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        for name in names where !name.hasPrefix(".") {
            #expect(FuzzTarget(rawValue: name) != nil, "Tests/Fuzz/crashes/\(name) is not a FuzzTarget")
        }
    }
}

/// The trap fixes of issue 17 §2, each at the parser.
@Suite struct TrapEdgeTests {
    static let max = "9223372036854775807"

    @Test func rangeWithInt64MaxEndIsClampedToTheLastByte() {
        #expect(ByteRangeRequest.parse("bytes=0-\(Self.max)", size: 100) == .range(0..<100))
        #expect(ByteRangeRequest.parse("bytes=99-\(Self.max)", size: 100) == .range(99..<100))
        #expect(ByteRangeRequest.parse("bytes=\(Self.max)-\(Self.max)", size: 100) == .unsatisfiable)
        #expect(ByteRangeRequest.parse("bytes=-\(Self.max)", size: 100) == .range(0..<100))
        #expect(ByteRangeRequest.parse("bytes=0-\(Self.max)", size: Int64.max) == .range(0..<Int64.max))
        #expect(ByteRangeRequest.parse("bytes=0-9223372036854775808", size: 100) == .unsatisfiable)
        // Found by scripts/fuzz against the old parser (Tests/Fuzz/crashes/range/): a sign before the number.
        #expect(ByteRangeRequest.parse("bytes=0-+\(Self.max)", size: 100) == .unsatisfiable)
        #expect(ByteRangeRequest.parse("bytes=+1-2", size: 100) == .unsatisfiable)
    }

    @Test func contentRangeWhoseLastByteIsPastTheTotalIsRejected() {
        #expect(ContentRange(parsing: "bytes 0-9/10") == ContentRange(first: 0, last: 9, total: 10))
        #expect(ContentRange(parsing: "bytes 0-10/10") == nil)
        #expect(ContentRange(parsing: "bytes 0-\(Self.max)/\(Self.max)") == nil)
        #expect(ContentRange(parsing: "bytes 0-\(Self.max)/*")?.last == Int64.max)
    }

    @Test func hugeSizeIsRefusedNotATrap() throws {
        // An origin's or a peer's size of Int64.max: no overflow in the chunk count, no 2^49-bit bitmap either.
        #expect(throws: ModelCacheError.self) { try ChunkLayout(size: Int64.max, chunkSize: ChunkLayout.minimumChunkSize) }
        #expect(throws: ModelCacheError.self) { try ChunkLayout(size: Int64.max, chunkSize: ChunkLayout.maximumChunkSize) }
        let biggest = try ChunkLayout(size: Int64(ChunkLayout.maximumChunkCount) * 4 << 20 - 1)
        #expect(biggest.count == ChunkLayout.maximumChunkCount)
        #expect(try ChunkLayout(size: 0, chunkSize: 16384).count == 0)
        #expect(try ChunkLayout(size: 16385, chunkSize: 16384).count == 2)
    }

    @Test func negativeHubSizeIsIgnored() {
        let headers = [("X-Repo-Commit", String(repeating: "a", count: 40)), ("ETag", "\"e\""), ("X-Linked-Size", "-1"), ("Content-Length", "-5")]
        let meta = HubFileMeta.from(headers: headers, status: 200, repo: HubRepo(kind: .model, id: "a/b"), path: "f", isPublic: true)
        #expect(meta != nil && meta?.size == nil)
        #expect(ByteRangeRequest.parse(nil, size: -1) == .unsatisfiable)
    }

    @Test func originInfoFromNoHopsIsEmptyNotATrap() {
        let info = OriginInfo.from(hops: [])
        #expect(info.size == nil && info.finalURL.isEmpty)
    }

    @Test(arguments: ["http://127.0.0.1:70000/x", "http://[::1]:99999999999999999999/x", "http://h:65536/", "http://h:0/",
                      "http://h:-1/", "ftp://h/x", "http:///x", "not a url"])
    func urlCheckRefusesWhatTheHTTPClientWouldTrapOn(_ url: String) {
        #expect(HTTPURLCheck.problem(url) != nil)
    }

    @Test(arguments: ["http://127.0.0.1:65535/x", "https://huggingface.co/gpt2/resolve/main/config.json", "http://[::1]:7070/v1/info",
                      "http://user:pw@h:8080/x?a=1:2"])
    func urlCheckAcceptsOrdinaryURLs(_ url: String) {
        #expect(HTTPURLCheck.problem(url) == nil)
    }

    @Test func maxSizeOverflowIsAnError() throws {
        #expect(try CommandLineNumber.size("200G", option: "--max-size") == 200 << 30)
        #expect(try CommandLineNumber.size("8388607T", option: "--max-size") == 8_388_607 << 40)
        for bad in ["99999999999T", "8388608T", "9223372036854775808", "-1", "1.5G", "", "G", "12X", "+5"] {
            #expect(throws: ModelCacheError.self, "\(bad)") { try CommandLineNumber.size(bad, option: "--max-size") }
            do { _ = try CommandLineNumber.size(bad, option: "--max-size") } catch {
                #expect(error.description.hasPrefix("--max-size '\(bad)'"))
                #expect(!error.description.contains("\n"))
                #expect(error.exitCode == 64)
            }
        }
    }

    @Test func portsAreCheckedByTheSameParser() throws {
        #expect(try CommandLineNumber.port("7070", option: "--listen") == 7070)
        #expect(try CommandLineNumber.port("0", option: "--listen", allowAny: true) == 0)
        for bad in ["0", "65536", "99999999999999999999", "-1", "x"] {
            #expect(throws: ModelCacheError.self) { try CommandLineNumber.port(bad, option: "--peer") }
        }
    }

    @Test func protocolViolationsAreFinalNotRetried() {
        #expect(!ModelCacheError.protocolViolation("Content-Length lies").isRetryable)
        #expect(!ModelCacheError.originStatus(url: "u", status: 404, reason: "").isRetryable)
        #expect(ModelCacheError.originStatus(url: "u", status: 503, reason: "").isRetryable)
        #expect(ModelCacheError.originUnreachable(url: "u", detail: "").isRetryable)
        #expect(JobTransition.verdict(for: .protocolViolation("x")) == .fail(.fetchError, ModelCacheError.protocolViolation("x").description))
    }

    @Test func connectionCapFollowsTheOpenFileLimit() {
        #expect(ConnectionBudget.maxConnections(requested: 512, openFileLimit: 1_048_576) == 512)
        #expect(ConnectionBudget.maxConnections(requested: 512, openFileLimit: 256) == 64)
        #expect(ConnectionBudget.maxConnections(requested: 512, openFileLimit: 100) == ConnectionBudget.floor)
        #expect(ConnectionBudget.maxConnections(requested: 0, openFileLimit: UInt64.max) == ConnectionBudget.floor)
    }

    @Test func gateRefusesPastTheTotalAndPastOneAddressShare() {
        var gate = ConnectionGate(maxTotal: 4, maxPerAddress: 2)
        let first = [gate.admit("10.0.0.1"), gate.admit("10.0.0.1"), gate.admit("10.0.0.1")]
        #expect(first == [true, true, false], "a third from one address is refused")
        let others = [gate.admit("10.0.0.2"), gate.admit("10.0.0.3"), gate.admit("10.0.0.4")]
        #expect(others == [true, true, false], "past the total is refused")
        gate.release("10.0.0.1")
        let again = gate.admit("10.0.0.4")
        #expect(again && gate.total == 4)
        gate.release("10.0.0.9")  // never admitted: nothing changes
        #expect(gate.total == 4 && gate.count(of: "10.0.0.1") == 1)
        #expect(ConnectionGate.perAddressShare(of: 512) == 128 && ConnectionGate.perAddressShare(of: 8) == 8)
    }
}
