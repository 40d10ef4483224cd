import ArgumentParser
import ModelCacheCore

/// `serve --log-format text|logfmt|json` (ArgumentParser lists the cases and refuses others).
extension LogFormat: ExpressibleByArgument {}
