// swift-tools-version:6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "ReaderSync",
    platforms: [.macOS(.v14), .iOS(.v17)],
    products: [
        .library(name: "ReaderSync", targets: ["ReaderSync"]),
        .library(name: "ReaderSyncServer", targets: ["ReaderSyncServer"]),
        .executable(name: "readersync", targets: ["readersync"]),
        .executable(name: "readersync-server", targets: ["readersync-server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        // Already in the graph through Hummingbird; the server hashes bearer tokens with its SHA-256.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // Also already in the graph through Hummingbird: the server's connection guard is a NIO channel handler
        // over the HTTP/1 codec, and TLS comes from NIOSSL (through HummingbirdTLS).
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        // Already in the graph through HummingbirdTesting: the TLS tests sync through it with a trusted test root.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // A build-time plugin only (`swift package generate-documentation`): the DocC catalog of ReaderSync is
        // built, warnings as errors, by Tools/scripts/docs.sh in CI. No target links it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin.git", from: "1.5.0"),
    ],
    targets: [
        // zlib, as the system provides it; the shim wraps the init macros.
        .systemLibrary(
            name: "CZlib",
            path: "Sources/CZlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]
        ),
        .target(
            name: "ReaderSync",
            dependencies: [
                "CZlib",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            // Expensive invariant checks (see Replica+Invariants.swift) run in debug builds, so in every test run.
            swiftSettings: strictSettings + [.define("READERSYNC_INVARIANTS", .when(configuration: .debug))]
        ),
        .target(
            name: "ReaderSyncServer",
            dependencies: [
                "ReaderSync",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "readersync",
            dependencies: [
                "ReaderSync",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "readersync-server",
            dependencies: [
                "ReaderSync",
                "ReaderSyncServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: strictSettings
        ),
        // Benchmarks: Tools/scripts/bench.sh runs them on a release build.
        .executableTarget(
            name: "readersync-bench",
            dependencies: [
                "ReaderSync",
                "ReaderSyncServer",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tools/Benchmarks/Sources/readersync-bench",
            swiftSettings: strictSettings
        ),
        // Mutation fuzzer for bundles: Tools/scripts/fuzz.sh runs it on a release build.
        .executableTarget(
            name: "readersync-fuzz",
            dependencies: ["ReaderSync"],
            path: "Tools/Fuzz/Sources/readersync-fuzz",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ReaderSyncTests",
            dependencies: [
                "ReaderSync",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ReaderSyncServerTests",
            dependencies: [
                "ReaderSync",
                "ReaderSyncServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CLITests",
            dependencies: ["ReaderSync", "readersync"],
            swiftSettings: strictSettings
        ),
    ]
)
