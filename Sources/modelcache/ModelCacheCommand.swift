import ArgumentParser
import Foundation
import ModelCache
import ModelCacheCore

@main
struct ModelCacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modelcache",
        abstract: "A peer-cooperative LAN cache for AI model files.",
        version: ModelCacheVersion.string,
        subcommands: [FetchCommand.self, ServeCommand.self, JobsCommand.self, StatusCommand.self, WaitCommand.self,
                      AbortCommand.self, PinCommand.self, UnpinCommand.self, ListCommand.self, AddCommand.self, RemoveCommand.self, VerifyCommand.self, DiscoverCommand.self,
                      TokenCommand.self, ConfigCommand.self,
                      PruneCommand.self, PeersCommand.self, HfCommand.self]
    )

    /// Parses and runs; a mistyped command gets a suggestion (ArgumentParser suggests options, not commands).
    static func main() async {
        let args = Array(CommandLine.arguments.dropFirst())
        if let word = args.first, !word.hasPrefix("-") {
            let names = configuration.subcommands.map { $0._commandName } + ["help"]
            if !names.contains(word) {
                let hint = Suggestion.closest(to: word, among: names).map { " Did you mean '\($0)'?" } ?? ""
                Terminal.error("unknown command '\(word)'.\(hint) See 'modelcache --help' for the commands")
                Self.exit(withError: ExitCode(64))
            }
        }
        await main(args)
    }
}

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Cache directory (default: $MODELCACHE_DIR, else cache-dir in the config file, else $XDG_CACHE_HOME/modelcache, else ~/.cache/modelcache).")
    var cacheDir: String?

    @Option(name: .long, help: ArgumentHelp("Config file (default: $MODELCACHE_CONFIG, else ~/.config/modelcache/config.toml, else /etc/modelcache/config.toml).", valueName: "path"))
    var config: String?

    @Flag(name: .shortAndLong, help: "Log what happens (info level) on stderr.")
    var verbose = false

    /// The config file and the MODELCACHE_* variables, checked (a wrong one: exit 78).
    func loadConfig() throws -> ConfigResolver {
        try ConfigLoader.load(flag: config)
    }

    /// The cache folder: --cache-dir, else $MODELCACHE_DIR, else the config file, else the default.
    func root(_ resolver: inout ConfigResolver) throws -> String {
        try resolver.text(.cacheDir, flag: cacheDir) ?? Store.defaultRoot()
    }

    var root: String {
        get throws {
            var r = try loadConfig()
            return try root(&r)
        }
    }

    func openStore() throws -> Store {
        Logging.bootstrapOnce(verbose: verbose)
        return try Store(root: try root, logger: Logging.logger("modelcache.store"))
    }

    /// The store, for a command that needs one to exist already (it never creates an empty cache).
    func openExistingStore(doing: String) throws -> Store {
        let root = try root
        if !root.isEmpty && PosixFile.list(root).isEmpty { throw CacheFolderError.missing(root, doing: doing) }
        return try openStore()  // refuses a folder that is not a cache
    }
}

/// Runs a command body, turning every failure into one line on stderr and a documented exit status.
func runReportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as ModelCacheError {
        Terminal.error(e.description)
        throw ExitCode(e.exitCode)
    } catch let e as CacheFolderError {
        Terminal.error(e.message)
        throw ExitCode(e.exitCode)
    } catch let e as ConfigError {
        Terminal.error(e.message)
        throw ExitCode(e.exitCode)
    } catch let e as NodeError {
        Terminal.error(e.message)
        throw ExitCode(e.exitCode)
    } catch let e as ExitCode {
        throw e
    } catch let e as ValidationError {
        Terminal.error(e.message)
        throw ExitCode(64)
    } catch let e as CancellationError {
        Terminal.error("interrupted (\(e)); verified chunks are kept, run the same command to resume")
        throw ExitCode(130)
    } catch {
        Terminal.error(String(describing: error))
        throw ExitCode(1)
    }
}
