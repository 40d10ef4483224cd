import ArgumentParser
import Foundation
import ModelCache
import ModelCacheCore

#if canImport(Glibc)
import Glibc
#endif

struct DiscoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "discover",
        abstract: "Look for modelcache nodes on the LAN over mDNS, printing each event as one JSON line.",
        discussion: """
            Browses _modelcache._tcp through avahi-daemon (and publishes one service when --publish-port \
            is given) for --seconds, then exits. Each stdout line is a JSON object with "event" \
            (found, lost, unavailable, available) and "t" (seconds since start); found adds instance, \
            host, port and txt; lost adds instance; unavailable adds reason.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Publish a _modelcache._tcp service on this TCP port while discovering.")
    var publishPort: Int?

    @Option(help: "Instance name to publish (default: the host name).")
    var name: String?

    @Option(help: "How long to run, in seconds.")
    var seconds: Double = 5

    @Option(help: ArgumentHelp("Node id to advertise: 16 lowercase hex digits (default: random).", visibility: .hidden))  // for the LAN tests
    var nodeID: String?

    @Option(help: ArgumentHelp("Catalogue version to advertise.", visibility: .hidden))  // for the LAN tests
    var catalogueVersion: UInt64 = 0

    @Option(help: ArgumentHelp("After this many seconds, advertise catalogue version + 1 (exercises TXT updates).", visibility: .hidden))  // for the LAN tests
    var bumpAfter: Double?

    func validate() throws {
        if let publishPort, !(1...65535).contains(publishPort) { throw ValidationError("--publish-port must be between 1 and 65535") }
        guard seconds > 0, seconds <= 86_400 else { throw ValidationError("--seconds must be more than 0 and at most 86400") }
        if let nodeID, !PeerTXT.isValidNodeID(nodeID) { throw ValidationError("--node-id must be 16 lowercase hex digits") }
        if bumpAfter != nil, publishPort == nil { throw ValidationError("--bump-after needs --publish-port") }
        if let bumpAfter, !(bumpAfter >= 0 && bumpAfter <= 86_400) { throw ValidationError("--bump-after must be from 0 to 86400 seconds") }
    }

    func run() async throws {
        try await runReportingErrors {
            Logging.bootstrapOnce(verbose: global.verbose)
            let logger = Logging.logger("modelcache.discovery")
            // validate() checked the node id, so this cannot fail.
            guard let txt = PeerTXT(nodeID: nodeID ?? PeerTXT.randomNodeID(), catalogueVersion: catalogueVersion) else {
                throw ValidationError("--node-id must be 16 lowercase hex digits")
            }
            let discovery: AvahiDiscovery
            if let publishPort {
                discovery = AvahiDiscovery(instanceName: name ?? Self.hostName(), port: publishPort, txt: txt, logger: logger)
            } else {
                discovery = AvahiDiscovery(browsingOnlyWith: logger)
            }
            let start = ContinuousClock.now
            let bumpAfter = self.bumpAfter
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await discovery.run() }
                group.addTask {
                    for await event in discovery.events {
                        EventLine(event, since: start).write()
                    }
                }
                if let bumpAfter {
                    group.addTask {
                        try? await Task.sleep(for: .seconds(bumpAfter))
                        guard !Task.isCancelled else { return }
                        var bumped = txt
                        bumped.catalogueVersion &+= 1
                        logger.info("advertising a new catalogue version", metadata: ["mdns.txt": "\(bumped)"])
                        discovery.update(txt: bumped)
                    }
                }
                try? await Task.sleep(for: .seconds(seconds))
                group.cancelAll()
                try await group.waitForAll()
            }
        }
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "modelcache" }
        let name = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return name.isEmpty ? "modelcache" : name
    }
}

/// One stdout line per ``DiscoveryEvent``.
private struct EventLine: Encodable {
    struct TXT: Encodable {
        var txtvers: Int
        var pv: UInt16
        var id: String
        var cv: UInt64
    }

    var event: String
    var t: Double
    var instance: String?
    var host: String?
    var port: Int?
    var txt: TXT?
    var reason: String?

    init(_ e: DiscoveryEvent, since start: ContinuousClock.Instant) {
        let d = ContinuousClock.now - start
        t = ((Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18) * 1000).rounded() / 1000
        switch e {
        case .found(let p):
            event = "found"
            instance = p.instance
            host = p.host
            port = p.port
            txt = TXT(txtvers: PeerTXT.formatVersion, pv: p.txt.protocolVersion, id: p.txt.nodeID, cv: p.txt.catalogueVersion)
        case .lost(let i):
            event = "lost"
            instance = i
        case .unavailable(let r):
            event = "unavailable"
            reason = r
        case .available:
            event = "available"
        }
    }

    func write() {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return }
        // Unbuffered, so a reader on a pipe sees each event as it happens.
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}
