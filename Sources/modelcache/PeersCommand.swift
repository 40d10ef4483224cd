import ArgumentParser
import Foundation
import ModelCache
import ModelCacheCore

struct PeersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers", abstract: "List the node's peers: address, how each was found, its blobs, its state, bytes taken from it and sent to it.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print a JSON array.") var json = false

    /// A peer as the node reports it, plus its `state` word (JSON: the node's fields and "state").
    struct Row: Encodable {
        var status: PeerDirectory.Status
        enum Key: String, CodingKey { case state }

        func encode(to encoder: any Encoder) throws {
            try status.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(status.state, forKey: .state)
        }
    }

    func run() async throws {
        try await runReportingErrors {
            try await withRunningNode(global) { control in
                let rows = try await control.peers().map(Row.init)
                if json { try printJSON(rows); return }
                if rows.isEmpty {
                    print("(no peers: other nodes appear through mDNS, or give them with 'modelcache serve --peer HOST:PORT')")
                    return
                }
                let peers = rows.map(\.status)
                let nameWidth = min(24, max(4, peers.map(\.name.count).max() ?? 4))
                let addressWidth = min(40, max(7, peers.map(\.address.count).max() ?? 7))
                func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
                print("\(pad("NAME", nameWidth))  \(pad("ADDRESS", addressWidth))  FOUND   BLOBS  RECEIVED    SENT        STATE")
                for p in peers {
                    let state = p.lastError.map { "\(p.state): \($0)" } ?? p.state
                    print("\(pad(p.name, nameWidth))  \(pad(p.address, addressWidth))  \(pad(p.foundBy.rawValue, 6))  \(pad(String(p.blobs), 5))  \(pad(ProgressText.bytes(p.received ?? 0), 10))  \(pad(ProgressText.bytes(p.sent ?? 0), 10))  \(state)")
                }
            }
        }
    }
}

extension PeerDirectory.Status {
    /// `ok` (its catalogue was read), `quarantined` (it sent a wrong byte), `unreachable` (the last call failed) or
    /// `unknown` (not asked yet).
    var state: String {
        if quarantined { return "quarantined" }
        if lastError != nil { return "unreachable" }
        return catalogueVersion == nil ? "unknown" : "ok"
    }
}
