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
                      TokenCommand.self]
    )
}

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Cache directory (default: $MODELCACHE_DIR, else $XDG_CACHE_HOME/modelcache, else ~/.cache/modelcache).")
    var cacheDir: String?

    @Flag(name: .shortAndLong, help: "Log what happens (info level) on stderr.")
    var verbose = false

    var root: String { cacheDir ?? Store.defaultRoot() }

    func openStore() throws -> Store {
        Logging.bootstrapOnce(verbose: verbose)
        return try Store(root: root, logger: Logging.logger("modelcache.store"))
    }

    /// The store, for a command that needs one to exist already (it never creates an empty cache).
    func openExistingStore(doing: String) throws -> Store {
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
