import ArgumentParser
import AsyncHTTPClient
import Foundation
import ModelCache
import ModelCacheCore

/// `modelcache hf …`: the Hugging Face Hub cache, without Python (protocol §15).
struct HfCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hf", abstract: "Hugging Face: download repos into the Hub cache through the node, import the Hub cache.",
        subcommands: [HfDownloadCommand.self, HfImportCommand.self])
}

/// What the hf commands share: the repo argument, the Hub cache folder, the client's token.
enum HfSupport {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }
    static var home: String { environment["HOME"] ?? NSHomeDirectory() }

    static func repo(_ id: String, type: String) throws -> HubRepo {
        guard let kind = HubRepo.Kind(rawValue: type + "s") else {
            throw ValidationError("--repo-type must be model, dataset or space, not '\(type)'")
        }
        let parts = id.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("--") }),
              id.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 32 && $0 != "%" && $0 != "?" && $0 != "#" }) else {
            throw ValidationError("'\(id)' is not a repo id: give owner/name (for example openai-community/gpt2)")
        }
        return HubRepo(kind: kind, id: id)
    }

    /// The Hub cache: `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`, as the client.
    static func layout(_ path: String? = nil) -> HubCacheLayout {
        let root = path ?? HubCacheLayout.defaultRoot(environment: environment, home: home)
        return HubCacheLayout(root: URL(fileURLWithPath: root).standardizedFileURL.path)
    }

    /// `--token`, else `HF_TOKEN`, else the token file (`HF_TOKEN_PATH`, else `HF_HOME/token`), as an Authorization value.
    static func authorization(token: String?) -> String? {
        if let token, !token.isEmpty { return "Bearer " + token }
        let file = PosixFile.readAll(HubCacheLayout.tokenPath(environment: environment, home: home)).map { String(decoding: $0.prefix(4096), as: UTF8.self) }
        return HubCacheLayout.token(environment: environment, fileContents: file).map { "Bearer " + $0 }
    }

    /// An HTTP client for the body, shut down after it (also when it throws).
    static func withHTTP<T>(_ body: (HTTPClient) async throws -> T) async throws -> T {
        let http = HTTPClient.forModelCache()
        do {
            let r = try await body(http)
            try? await http.shutdown()
            return r
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    static func say(_ line: String) { FileHandle.standardError.write(Data(("modelcache: " + line + "\n").utf8)) }
}
