import Testing
@testable import ModelCacheCore

struct ProgressLineTests {
    func meter(_ position: Int64, of total: Int64?, rate: Int64) -> TransferMeter {
        var m = TransferMeter(window: 5)
        m.record(bytes: 0, total: total, at: 0)
        m.record(bytes: position, total: total, at: Double(position) / Double(rate))
        return m
    }

    @Test(arguments: [20, 40, 50, 60, 80, 120, 200])
    func theLineFitsTheTerminalAndKeepsTheName(_ width: Int) {
        let m = meter(400 << 20, of: 1 << 30, rate: 40 << 20)
        let line = ProgressLine.fitted(name: "model.safetensors", phase: .transferring, meter: m,
                                       sources: ["origin": 100, "peer a": 5, "peer b": 7], now: 10, width: width)
        #expect(line.count <= width - 1, "\(width): \(line)")
        #expect(!line.contains("\n") && !line.contains("\r"))
        if width >= 40 { #expect(line.hasPrefix("model.safetensors"), "\(line)") }
        if width >= 60 { #expect(line.contains("39%") && line.contains("40.0 MiB/s"), "\(line)") }
        if width >= 120 {
            #expect(line.contains("[") && line.contains("400.0 MiB / 1.0 GiB") && line.contains("ETA 00:16")
                    && line.contains("peers 2 · origin"), "\(line)")
        }
    }

    @Test func waitingShowsTheStateWord() {
        let line = ProgressLine.fitted(name: "m.bin", phase: .waiting("waiting for the origin: connection refused, retrying"),
                                       meter: TransferMeter(), sources: [:], now: 3, width: 80)
        #expect(line == "m.bin  waiting for the origin: connection refused, retrying")
        let first = ProgressLine.fitted(name: "m.bin", phase: .transferring, meter: TransferMeter(), sources: [:], now: 0, width: 80)
        #expect(first == "m.bin  connecting")
        let narrow = ProgressLine.fitted(name: "m.bin", phase: .waiting("paused: offline (no route to host)"),
                                         meter: TransferMeter(), sources: [:], now: 3, width: 20)
        #expect(narrow.count == 19 && narrow.hasPrefix("m.bin  paused"))
    }

    @Test func anUnknownTotalShowsBytesAndRate() {
        let m = meter(3 << 20, of: nil, rate: 1 << 20)
        let line = ProgressLine.fitted(name: "x", phase: .transferring, meter: m, sources: [:], now: 3, width: 80)
        #expect(line == "x  3.0 MiB  1.0 MiB/s")
        #expect(ProgressLine.plain(name: "x", phase: .transferring, meter: m, sources: ["origin": 1], now: 3)
                == "x: 3.0 MiB, 1.0 MiB/s, origin")
    }

    @Test func namesComeFromTheURL() {
        #expect(ProgressLine.displayName(url: "https://huggingface.co/openai-community/gpt2/resolve/main/model.safetensors")
                == "openai-community/gpt2: model.safetensors")
        #expect(ProgressLine.displayName(url: "https://hf.co/datasets/o/d/resolve/abc/data/train%201.parquet?download=1")
                == "o/d: data/train 1.parquet")
        #expect(ProgressLine.displayName(url: "http://127.0.0.1:8080/some/file%20a.bin") == "file a.bin")
        #expect(ProgressLine.displayName(url: "http://host:1/") == "host:1")
    }

    @Test func shortenKeepsBothEnds() {
        #expect(ProgressLine.shorten("abcdefghij", to: 5) == "ab…ij")
        #expect(ProgressLine.shorten("abc", to: 5) == "abc")
        #expect(ProgressLine.shorten("abc", to: 1) == "…")
        #expect(ProgressLine.shorten("abc", to: 0) == "")
    }

    @Test func theSummarySaysWhereTheBytesCameFrom() {
        let line = TransferSummary.line(name: "m.bin", size: 1000 << 20, seconds: 10, moved: 1000 << 20,
                                        sources: ["origin": 70 << 20, "peer b": 930 << 20], cached: false)
        #expect(line == "m.bin: 1000.0 MiB in 00:10 (100.0 MiB/s) · peer b 930.0 MiB · origin 70.0 MiB · from the LAN: 93%")
        #expect(TransferSummary.line(name: "m.bin", size: 5, seconds: 0, moved: 0, sources: [:], cached: true)
                == "m.bin: 5 B, already in the cache")
        #expect(TransferSummary.lanShare([:]) == nil)
        #expect(TransferSummary.lanShare(["origin": 5]) == 0)
    }
}

struct UniquePrefixTests {
    @Test func aUniquePrefixFindsItsNameAndAnAmbiguousOneListsThem() {
        let ids = ["abc123", "abd456", "xyz", "ab"]
        #expect(UniquePrefix.match("abc", in: ids) == .unique("abc123"))
        #expect(UniquePrefix.match("ab", in: ids) == .exact("ab"))
        #expect(UniquePrefix.match("a", in: ids) == .ambiguous(["ab", "abc123", "abd456"]))
        #expect(UniquePrefix.match("q", in: ids) == .none)
        #expect(UniquePrefix.match("", in: ids) == .none)
        #expect(UniquePrefix.match("ab", in: ["abcd"], minimumLength: 4) == .none)
    }
}

struct SuggestionTests {
    let commands = ["fetch", "serve", "jobs", "status", "wait", "abort", "pin", "unpin", "list", "prune", "add", "rm", "verify", "peers"]

    @Test func typosGetTheNearestCommand() {
        #expect(Suggestion.closest(to: "fecth", among: commands) == "fetch")
        #expect(Suggestion.closest(to: "lis", among: commands) == "list")
        #expect(Suggestion.closest(to: "stauts", among: commands) == "status")
        #expect(Suggestion.closest(to: "veri", among: commands) == "verify")  // a unique prefix
        #expect(Suggestion.closest(to: "Serve", among: commands) == "serve")
    }

    @Test func farWordsGetNoSuggestion() {
        #expect(Suggestion.closest(to: "download", among: commands) == nil)
        #expect(Suggestion.closest(to: "", among: commands) == nil)
        #expect(Suggestion.closest(to: "x", among: []) == nil)
        #expect(Suggestion.closest(to: String(repeating: "z", count: 10_000), among: commands) == nil)
    }
}
