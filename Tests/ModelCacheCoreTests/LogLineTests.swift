import Testing
@testable import ModelCacheCore

/// logfmt and JSON lines for `serve --log-format`: one line per event whatever the values hold, keys in a stable order.
@Suite struct LogLineTests {
    let line = LogLine(time: "2026-12-03T06:17:02.123Z", level: "info", label: "modelcache.node", message: "node listening",
                       metadata: ["node.id": "ab12", "listen": "0.0.0.0:7070"])

    @Test func logfmtPutsFixedKeysFirstThenMetadataSorted() {
        #expect(line.logfmt() == #"time=2026-12-03T06:17:02.123Z level=info label=modelcache.node msg="node listening" listen=0.0.0.0:7070 node.id=ab12"#)
    }

    @Test func metadataOrderDoesNotDependOnInsertionOrder() {
        var a: [String: String] = [:]
        var b: [String: String] = [:]
        let keys = (0..<50).map { "k\($0)" }
        for k in keys { a[k] = k }
        for k in keys.reversed() { b[k] = k }
        let la = LogLine(time: "t", level: "info", label: "l", message: "m", metadata: a)
        let lb = LogLine(time: "t", level: "info", label: "l", message: "m", metadata: b)
        #expect(la.logfmt() == lb.logfmt())
        #expect(la.json() == lb.json())
        #expect(la.fields.dropFirst(4).map(\.key) == keys.sorted())
    }

    @Test func logfmtQuotesOnlyWhenNeeded() {
        #expect(LogLine.logfmtValue("plain") == "plain")
        #expect(LogLine.logfmtValue("") == #""""#)
        #expect(LogLine.logfmtValue("two words") == #""two words""#)
        #expect(LogLine.logfmtValue("a=b") == #""a=b""#)
        #expect(LogLine.logfmtValue(#"say "hi""#) == #""say \"hi\"""#)
        #expect(LogLine.logfmtValue(#"C:\dir"#) == #""C:\\dir""#)
        #expect(LogLine.logfmtValue("tab\there") == #""tab\there""#)
        #expect(LogLine.logfmtValue("élan") == "élan")
    }

    @Test func newlinesAndControlCharactersNeverBreakTheLine() {
        let evil = LogLine(time: "t", level: "error", label: "l", message: "first\nsecond\r\nthird",
                           metadata: ["peer": "x\u{1}y\u{7F}", "k\ney": "v"])
        for out in [evil.logfmt(), evil.json()] {
            #expect(!out.contains("\n") && !out.contains("\r") && !out.contains("\u{1}") && !out.contains("\u{7F}"))
        }
        #expect(evil.logfmt().contains(#"msg="first\nsecond\r\nthird""#))
        #expect(evil.logfmt().contains(#"peer="x\u0001y\u007f""#))
        #expect(evil.logfmt().contains("k_ey=v"))  // a key cannot hold a newline either
        #expect(evil.json().contains(#""k\ney":"v""#))
    }

    @Test func jsonIsOneObjectWithEscapedStrings() {
        #expect(line.json() == #"{"time":"2026-12-03T06:17:02.123Z","level":"info","label":"modelcache.node","msg":"node listening","listen":"0.0.0.0:7070","node.id":"ab12"}"#)
        let q = LogLine(time: "t", level: "info", label: "l", message: #"a "quoted" \ path"#)
        #expect(q.json().contains(#""msg":"a \"quoted\" \\ path""#))
    }

    @Test func metadataCannotOverwriteTheLinesOwnKeys() {
        let l = LogLine(time: "t", level: "info", label: "l", message: "real", metadata: ["msg": "fake", "level": "critical"])
        #expect(l.logfmt() == "time=t level=info label=l msg=real meta.level=critical meta.msg=fake")
    }

    @Test func timestampsAreRFC3339UTC() {
        #expect(LogLine.timestamp(millisecondsSince1970: 0) == "1970-01-01T00:00:00.000Z")
        #expect(LogLine.timestamp(millisecondsSince1970: 951_782_400_000) == "2000-02-29T00:00:00.000Z")
        #expect(LogLine.timestamp(millisecondsSince1970: 1_796_278_622_123) == "2026-12-03T06:17:02.123Z")
        #expect(LogLine.timestamp(millisecondsSince1970: -1) == "1969-12-31T23:59:59.999Z")
    }
}
