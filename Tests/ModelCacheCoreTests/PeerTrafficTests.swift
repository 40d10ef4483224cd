import Testing
import ModelCacheCore

/// Bytes exchanged per peer (issue 15, `modelcache peers`): bounded tables, one spelling per address.
@Suite struct PeerTrafficTests {
    @Test func countsReceivedByNameAndSentByHost() {
        var t = PeerTraffic()
        t.received(1000, fromPeer: "lab-a")
        t.received(24, fromPeer: "lab-a")
        t.received(0, fromPeer: "lab-b")
        t.received(-5, fromPeer: "lab-b")
        t.sent(4096, toHost: "192.0.2.7")
        t.sent(4, toHost: "::ffff:192.0.2.7")
        t.sent(10, toHost: "[FE80::1]")
        #expect(t.received(fromPeer: "lab-a") == 1024)
        #expect(t.received(fromPeer: "lab-b") == 0 && t.receivedByName["lab-b"] == nil)
        #expect(t.sent(toHosts: ["192.0.2.7"]) == 4100)
        #expect(t.sent(toHosts: ["fe80::1"]) == 10 && t.sent(toHosts: ["[fe80::1]"]) == 10)
    }

    /// A peer given by name (`localhost:7070`) is every address its name resolves to: each counted once.
    @Test func sentToTheAddressesOfOneNameCountsEachAddressOnce() {
        var t = PeerTraffic()
        t.sent(100, toHost: "127.0.0.1")
        t.sent(20, toHost: "::1")
        t.sent(3, toHost: "192.0.2.9")
        #expect(t.sent(toHosts: ["127.0.0.1", "::ffff:127.0.0.1", "[::1]"]) == 120)
        #expect(t.sent(toHosts: []) == 0)
        #expect(t.sent(toHosts: ["198.51.100.1"]) == 0)
    }

    @Test func tablesStayBoundedAndTheRestIsCountedAsOther() {
        var t = PeerTraffic(limit: 3)
        for i in 0..<10 {
            t.received(1, fromPeer: "peer-\(i)")
            t.sent(2, toHost: "10.0.0.\(i)")
        }
        t.received(5, fromPeer: "peer-0")  // a known name still counts in its own row
        #expect(t.receivedByName.count == 3 && t.sentByHost.count == 3)
        #expect(t.received(fromPeer: "peer-0") == 6)
        #expect(t.otherReceived == 7 && t.otherSent == 14)
        #expect(PeerTraffic(limit: -1).limit == 0)
    }

    @Test func canonicalHostKeepsOtherAddressesAsTheyAre() {
        #expect(PeerTraffic.canonicalHost("::ffff:10.1.2.3") == "10.1.2.3")
        #expect(PeerTraffic.canonicalHost("::ffff:abcd") == "::ffff:abcd")
        #expect(PeerTraffic.canonicalHost("Lab-Node.local") == "lab-node.local")
        #expect(PeerTraffic.canonicalHost("[::1]") == "::1")
    }
}
