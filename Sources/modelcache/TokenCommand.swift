import ArgumentParser
import Foundation
import ModelCache

/// Prints the node's browser API token, for a web app that starts or aborts downloads (protocol §12).
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print the token web apps need to start, abort, pin or delete through the node's browser API.",
        discussion: "The token lives in <cache-dir>/web-token (mode 0600) and is created on first use. Give it to a web app out of band (modelcache.configure({token})). The node's own status page needs none.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await runReportingErrors {
            let store = try global.openStore()
            print(try store.webToken())
        }
    }
}
