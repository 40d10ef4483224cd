public enum ModelCacheVersion { public static let string = "0.1.0" }
