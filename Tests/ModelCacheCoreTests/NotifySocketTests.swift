import Testing
@testable import ModelCacheCore

/// `$NOTIFY_SOCKET` as systemd sets it (sd_notify(3)), and the readiness datagram.
@Suite struct NotifySocketTests {
    @Test func unsetOrEmptyMeansNoNotifications() throws {
        #expect(try NotifySocket.parse(nil) == nil)
        #expect(try NotifySocket.parse("") == nil)
    }

    @Test func pathAndAbstractAddresses() throws {
        let path = try #require(try NotifySocket.parse("/run/systemd/notify"))
        #expect(path.pathBytes == Array("/run/systemd/notify".utf8))
        #expect(!path.isAbstract)
        let abstract = try #require(try NotifySocket.parse("@sd-notify-123"))
        #expect(abstract.pathBytes == [0] + Array("sd-notify-123".utf8))
        #expect(abstract.isAbstract)
    }

    @Test func refusesWhatItCannotUse() {
        for bad in ["relative/path", "vsock:2:1234", "@", "/a\u{0}b", "/" + String(repeating: "x", count: 107),
                    "@" + String(repeating: "x", count: 108)] {
            #expect(throws: ModelCacheError.self) { try NotifySocket.parse(bad) }
        }
        // The longest that fit: a path with its NUL, an abstract name filling the field.
        #expect((try? NotifySocket.parse("/" + String(repeating: "x", count: 106))) != nil)
        #expect((try? NotifySocket.parse("@" + String(repeating: "x", count: 107))) != nil)
    }

    @Test func messageIsKeyValueLinesWithNoInjectedLines() {
        #expect(NotifySocket.message([("READY", "1"), ("STATUS", "serving on 0.0.0.0:7070")])
                == Array("READY=1\nSTATUS=serving on 0.0.0.0:7070".utf8))
        #expect(NotifySocket.message([("STATUS", "a\nREADY=1\rb")]) == Array("STATUS=a READY=1 b".utf8))
        #expect(NotifySocket.message([("STATUS", "x\r\nREADY=1")]) == Array("STATUS=x  READY=1".utf8))
    }
}
