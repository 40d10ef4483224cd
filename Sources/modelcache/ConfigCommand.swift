import ArgumentParser
import ModelCache
import ModelCacheCore

/// `modelcache config`: the settings `serve` (and every command's cache folder) would use, and where each came from.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the effective settings and where each came from (flag, MODELCACHE_* variable, file:line, default).",
        discussion: "Takes serve's options too, to show what 'modelcache serve' with them would use. A wrong config file or variable exits with status 78.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: ServeOptions

    @Flag(help: "Print one JSON object: the file and every setting (key, value, source, origin, flag, env).")
    var json = false

    @Flag(help: "Print a commented example config file (every setting with its default) and exit.")
    var example = false

    func run() async throws {
        try await runReportingErrors {
            if example {
                print(ConfigReport.exampleFile(), terminator: "")
                return
            }
            var config = try global.loadConfig()
            _ = try global.root(&config)
            _ = try options.settings(&config, loadKey: false)  // checks every value as serve would
            _ = try options.logFormat(&config)
            let file = config.file?.path
            print(json ? ConfigReport.json(config.resolved, file: file) : ConfigReport.text(config.resolved, file: file),
                  terminator: json ? "\n" : "")
        }
    }
}
