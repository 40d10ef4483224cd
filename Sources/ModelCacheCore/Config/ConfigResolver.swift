/// The effective settings: for each one, its flag if given, else its `MODELCACHE_*` variable, else config.toml, else
/// the default. The environment and the file are checked whole when the resolver is made (a wrong value is an error
/// even where a flag overrides it); a flag is checked when its setting is resolved. Each resolution is recorded, so
/// `modelcache config` shows exactly what `serve` would use and where each value came from.
public struct ConfigResolver: Sendable {
    public let file: ConfigFile?
    var environmentValues: [String: (value: SettingValue, variable: String)] = [:]
    var computedDefaults: [String: SettingValue]
    var resolvedByKey: [String: EffectiveSetting] = [:]

    /// - Parameter computedDefaults: defaults known only at run time, by key (`cache-dir`, `name`).
    public init(file: ConfigFile?, environment: [String: String], computedDefaults: [String: SettingValue] = [:]) throws(ConfigError) {
        self.file = file
        self.computedDefaults = computedDefaults
        for spec in SettingSpec.all {
            guard let text = environment[spec.env] else { continue }
            do {
                environmentValues[spec.key] = (try spec.kind.parse(.string(text), name: spec.env), spec.env)
            } catch {
                throw ConfigError(error.description)
            }
        }
    }

    /// The setting as it will be used. A flag's wrong value is an `invalidArgument` error (exit 64).
    public mutating func resolve(_ spec: SettingSpec, flag: (some FlagInput)?) throws(ModelCacheError) -> EffectiveSetting {
        let effective: EffectiveSetting
        if let raw = flag?.rawSetting {
            var name = spec.flag ?? spec.key
            if raw == .bool(false), name.hasPrefix("--") { name = "--no-" + name.dropFirst(2) }  // --no-mdns
            effective = EffectiveSetting(spec: spec, value: try spec.kind.parse(raw, name: name), source: .flag(name))
        } else if let e = environmentValues[spec.key] {
            effective = EffectiveSetting(spec: spec, value: e.value, source: .environment(e.variable))
        } else if let file, let entry = file.entries[spec.key] {
            effective = EffectiveSetting(spec: spec, value: entry.value, source: .file(path: file.path, line: entry.line))
        } else {
            effective = EffectiveSetting(spec: spec, value: spec.defaultValue ?? computedDefaults[spec.key], source: .defaultValue)
        }
        resolvedByKey[spec.key] = effective
        return effective
    }

    public mutating func text(_ spec: SettingSpec, flag: (some FlagInput)?) throws(ModelCacheError) -> String? {
        if case .text(let s)? = try resolve(spec, flag: flag).value { return s }
        return nil
    }

    public mutating func int(_ spec: SettingSpec, flag: (some FlagInput)?) throws(ModelCacheError) -> Int? {
        if case .int(let n)? = try resolve(spec, flag: flag).value { return n }
        return nil
    }

    public mutating func bool(_ spec: SettingSpec, flag: (some FlagInput)?) throws(ModelCacheError) -> Bool? {
        if case .bool(let b)? = try resolve(spec, flag: flag).value { return b }
        return nil
    }

    public mutating func bytes(_ spec: SettingSpec, flag: (some FlagInput)?) throws(ModelCacheError) -> Int64? {
        if case .bytes(let n)? = try resolve(spec, flag: flag).value { return n }
        return nil
    }

    public mutating func list(_ spec: SettingSpec, flag: (some FlagInput)?) throws(ModelCacheError) -> [String]? {
        if case .list(let l)? = try resolve(spec, flag: flag).value { return l }
        return nil
    }

    /// Every setting resolved so far, in the table's order (`modelcache config`).
    public var resolved: [EffectiveSetting] {
        SettingSpec.all.compactMap { resolvedByKey[$0.key] }
    }
}

/// A flag's parsed value as ArgumentParser gives it: nil or an empty list means "not given".
public protocol FlagInput: Sendable {
    var rawSetting: RawSetting? { get }
}

extension String: FlagInput {
    public var rawSetting: RawSetting? { .string(self) }
}

extension Int: FlagInput {
    public var rawSetting: RawSetting? { .int(self) }
}

extension Bool: FlagInput {
    public var rawSetting: RawSetting? { .bool(self) }
}

extension Array: FlagInput where Element == String {
    public var rawSetting: RawSetting? { isEmpty ? nil : .strings(self) }
}

/// "No flag for this setting" (file and environment only): `r.text(.x, flag: noFlag)`.
public let noFlag: String? = nil
