// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

// The libFuzzer executable (scripts/fuzz) joins the package only when MODELCACHE_FUZZ=1, so the normal build and
// `swift test` never compile or link it. It depends on ModelCacheCore alone.
let fuzzTargets: [Target] = Context.environment["MODELCACHE_FUZZ"] == "1" ? [
    .executableTarget(name: "ModelCacheFuzz", dependencies: ["ModelCacheCore"], swiftSettings: swiftSettings),
] : []

let package = Package(
    name: "ModelCache",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "modelcache", targets: ["modelcache"]),
        .library(name: "ModelCacheCore", targets: ["ModelCacheCore"]),
        .library(name: "ModelCache", targets: ["ModelCache"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        // Exact: ModelCacheCore's FormCheck refuses the forms on which this version's toml++ aborts (checked by fuzzing).
        .package(url: "https://github.com/LebJe/TOMLKit.git", exact: "0.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CAvahi",
            pkgConfig: "avahi-client",
            providers: [.apt(["libavahi-client-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // sync_file_range(2), which Swift's Glibc module does not declare (it needs _GNU_SOURCE).
        .systemLibrary(name: "CLinuxIO"),
        // Pure logic: digests, manifests, chunk planning, scheduling decisions, the config file's rules. No I/O.
        .target(
            name: "ModelCacheCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                "CZlib",
            ],
            swiftSettings: swiftSettings
        ),
        // I/O shells: store (GRDB), origin and peer sources (AsyncHTTPClient), node (Hummingbird), discovery (avahi).
        .target(
            name: "ModelCache",
            dependencies: [
                "ModelCacheCore",
                "CAvahi",
                "CZlib",
                "CLinuxIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                // Prometheus text exposition (`/metrics`), on swift-metrics' CoreMetrics.
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The status page and modelcache.js, compiled into the binary (PackageResources.<name>).
            resources: [
                .embedInCode("Web/index.html"),
                .embedInCode("Web/status.css"),
                .embedInCode("Web/status.js"),
                .embedInCode("Web/modelcache.js"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "modelcache",
            dependencies: [
                "ModelCache",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings,
            // The release binary is linked by the toolchain's lld with packed relative relocations (DT_RELR, glibc
            // 2.36+): gold's 3.4 MB of RELA entries were read and applied page by page at every start, so a fetch
            // mapped 37 MiB of the binary; now 32 MiB (peak RSS of a 1 GiB fetch 70.1 -> 63.3 MiB, bench/README).
            linkerSettings: [.unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"],
                                          .when(platforms: [.linux], configuration: .release))]
        ),
        .testTarget(
            name: "ModelCacheCoreTests",
            dependencies: ["ModelCacheCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ModelCacheTests",
            dependencies: [
                "ModelCache",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
    ] + fuzzTargets
)
