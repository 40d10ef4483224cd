import Testing
import ModelCacheCore

/// Who may read `/metrics`: loopback, or a client that proved the cluster key; anyone else `403 not-local`.
struct MetricsAccessTests {
    @Test func loopbackIsLetIn() {
        #expect(MetricsAccess.decide(remoteIsLoopback: true, provedClusterKey: false) == .allow)
    }

    @Test func aLANClientWithTheClusterKeyIsLetIn() {
        #expect(MetricsAccess.decide(remoteIsLoopback: false, provedClusterKey: true) == .allow)
        #expect(MetricsAccess.decide(remoteIsLoopback: true, provedClusterKey: true) == .allow)
    }

    @Test func aLANClientWithoutItIsRefused() throws {
        guard case .refuse(let status, let code, let message) = MetricsAccess.decide(remoteIsLoopback: false, provedClusterKey: false) else {
            Issue.record("a LAN client without the cluster key was let in")
            return
        }
        #expect(status == 403 && code == "not-local")
        #expect(message.contains("127.0.0.1") && !message.contains("\n"))
    }
}
