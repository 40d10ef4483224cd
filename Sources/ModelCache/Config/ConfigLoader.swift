#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ModelCacheCore

/// Reads the config file that applies (ConfigFile.locate) and the `MODELCACHE_*` variables, and returns the resolver
/// every command takes its settings from. A wrong file or variable is a ConfigError (exit 78).
public enum ConfigLoader {
    public static func load(flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ConfigResolver {
        var file: ConfigFile?
        if let location = try ConfigFile.locate(flag: flag, environment: environment, exists: PosixFile.exists) {
            file = try read(location)
        }
        var withoutDir = environment
        withoutDir["MODELCACHE_DIR"] = nil
        return try ConfigResolver(file: file, environment: environment, computedDefaults: [
            SettingSpec.cacheDir.key: .text(Store.defaultRoot(environment: withoutDir)),
            SettingSpec.name.key: .text(NodeSettings().name),
        ])
    }

    static func read(_ location: ConfigFile.Location) throws -> ConfigFile {
        let path = location.path
        let named = location.required ? " (named by --config or MODELCACHE_CONFIG)" : ""
        guard PosixFile.exists(path) else {
            throw ConfigError("config file \(path)\(named) does not exist: check the path, or give /dev/null for none")
        }
        var bytes = [UInt8](repeating: 0, count: ConfigFile.maxBytes + 1)
        let n: Int
        do {
            let f = try PosixFile(path: path, flags: O_RDONLY | O_NONBLOCK)
            n = try bytes.withUnsafeMutableBytes { p throws(ModelCacheError) in try f.read(into: p, at: 0) }
        } catch {
            throw ConfigError("cannot read config file \(path)\(named) (\(error)): make it readable, or name another with --config")
        }
        return try ConfigFile(path: path, bytes: Array(bytes.prefix(n)))
    }
}
