import ArgumentParser
import Foundation
import ModelCache
import ModelCacheCore

struct PeersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers", abstract: "List the node's peers: address, how each was found, its blobs, its state, bytes taken from it and sent to it.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print a JSON array.") var json = false

    struct Row: Encodable {
        var name: String
        var address: String
        var foundBy: String
        var blobs: Int
        var state: String
        var lastError: String?
        /// Blob bytes the node's fetches took from this peer, and sent to its address, since the node started.
        var received: Int64
        var sent: Int64
    }

    func run() async throws {
        try await runReportingErrors {
            try await withRunningNode(global) { control in
                let peers = try await control.peers()
                let rows = peers.map { p in
                    Row(name: p.name, address: p.address, foundBy: p.foundBy.rawValue, blobs: p.blobs, state: p.state,
                        lastError: p.lastError, received: p.received ?? 0, sent: p.sent ?? 0)
                }
                if json { try printJSON(rows); return }
                if rows.isEmpty {
                    print("(no peers: other nodes appear through mDNS, or give them with 'modelcache serve --peer HOST:PORT')")
                    return
                }
                let nameWidth = min(24, max(4, rows.map(\.name.count).max() ?? 4))
                let addressWidth = min(40, max(7, rows.map(\.address.count).max() ?? 7))
                func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
                print("\(pad("NAME", nameWidth))  \(pad("ADDRESS", addressWidth))  FOUND   BLOBS  RECEIVED    SENT        STATE")
                for r in rows {
                    let state = r.lastError.map { "\(r.state): \($0)" } ?? r.state
                    print("\(pad(r.name, nameWidth))  \(pad(r.address, addressWidth))  \(pad(r.foundBy, 6))  \(pad(String(r.blobs), 5))  \(pad(ProgressText.bytes(r.received), 10))  \(pad(ProgressText.bytes(r.sent), 10))  \(state)")
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
