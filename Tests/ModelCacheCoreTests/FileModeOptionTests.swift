import Testing
@testable import ModelCacheCore

/// `serve --control-socket-mode`: octal, the owner keeps read and write, nothing executable or special.
@Suite struct FileModeOptionTests {
    @Test func acceptsOwnerAndGroupModes() throws {
        #expect(try FileModeOption.socketMode("0600", option: "--m") == 0o600)
        #expect(try FileModeOption.socketMode("660", option: "--m") == 0o660)
        #expect(try FileModeOption.socketMode("0666", option: "--m") == 0o666)
        #expect(try FileModeOption.socketMode(" 0640 ", option: "--m") == 0o640)
    }

    @Test func refusesOtherText() {
        for bad in ["", "rw", "0x1b0", "0689", "-600", "00600", "0700", "0400", "0200", "1660", "4660", "0670", "99999999999999999999"] {
            #expect(throws: ModelCacheError.self) { try FileModeOption.socketMode(bad, option: "--m") }
        }
    }
}
