// swift-tools-version:6.0
//
// prefect-exporter: a Prometheus exporter for Prefect.
//
// The exporter targets Linux only: it uses Glibc, /proc and glibc's malloc_trim directly.
//
// Module map (each folder under Sources/ has one job):
//   CCurl, CMicroHTTPD, CZlib,      thin system-library targets for the C libraries
//   CGnuTLS, CCrypt, CMalloc
//   CCurlShim, CMicroHTTPDShim,     tiny C shims for calls Swift cannot make directly (variadic
//   CGnuTLSShim                     functions, C globals, headers outside the system modules)
//   Locking                         LockedValue, the one lock idiom (a pthread mutex ThreadSanitizer sees)
//   HTTPClient                      a blocking libcurl transport with a safe Swift API
//   PrefectAPI                      Prefect REST models, filters and the read-only client
//   Exposition                      the metric model, Prometheus text format and gzip
//   Aggregation                     pure tallies over Prefect objects (runs now, run history, due-run ledger)
//   Collectors                      one file per collector: its families, its queries, its series;
//                                   and the poll cycle that runs them, each failing alone
//   Poller                          the background poll loop, health families and snapshots
//   Rendering                       merges the pollers' snapshots into the page and renders it; the metric catalogue
//   WebConfig                       the web configuration file (--web.config.file): model and parser
//   WebServer                       the libmicrohttpd HTTP server: routes, TLS and basic auth
//   ExporterCLI                     flags, configuration, logging and wiring
//   prefect-exporter                the executable (a thin main)
//   prefect-exporter-bench          benchmark driver used by scripts/bench
import PackageDescription

let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "prefect-exporter",
    products: [
        .executable(name: "prefect-exporter", targets: ["prefect-exporter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // MARK: C interop
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CMicroHTTPD",
            pkgConfig: "libmicrohttpd",
            providers: [.apt(["libmicrohttpd-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CGnuTLS",
            pkgConfig: "gnutls",
            providers: [.apt(["libgnutls28-dev"])]
        ),
        .systemLibrary(
            name: "CCrypt",
            pkgConfig: "libcrypt",
            providers: [.apt(["libcrypt-dev"])]
        ),
        // glibc's malloc.h (malloc_trim); part of libc, nothing to link.
        .systemLibrary(name: "CMalloc"),
        .target(name: "CCurlShim", dependencies: ["CCurl"]),
        .target(name: "CMicroHTTPDShim", dependencies: ["CMicroHTTPD"]),
        .target(name: "CGnuTLSShim", dependencies: ["CGnuTLS"]),

        // MARK: Libraries
        .target(name: "Locking", swiftSettings: strictSwift),
        .target(
            name: "HTTPClient",
            dependencies: ["CCurl", "CCurlShim", "Locking"],
            swiftSettings: strictSwift
        ),
        .target(
            name: "PrefectAPI",
            dependencies: ["HTTPClient", "Locking", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift
        ),
        .target(
            name: "Exposition",
            dependencies: ["CZlib"],
            swiftSettings: strictSwift
        ),
        .target(
            name: "Aggregation",
            dependencies: ["PrefectAPI", "Exposition"],
            swiftSettings: strictSwift
        ),
        .target(
            name: "Collectors",
            dependencies: ["PrefectAPI", "Aggregation", "Exposition", "Locking"],
            swiftSettings: strictSwift
        ),
        .target(
            name: "Poller",
            dependencies: [
                "PrefectAPI", "Aggregation", "Collectors", "Exposition", "Locking",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "Rendering",
            dependencies: [
                "Exposition", "Collectors", "Poller", "PrefectAPI", "Locking",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "WebConfig",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: strictSwift
        ),
        .target(
            name: "WebServer",
            dependencies: [
                "WebConfig", "Locking", "CMicroHTTPD", "CMicroHTTPDShim", "CGnuTLS", "CGnuTLSShim", "CCrypt",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "ExporterCLI",
            dependencies: [
                "HTTPClient", "Locking", "PrefectAPI", "Exposition", "Aggregation", "Collectors", "Poller", "Rendering", "WebServer", "CMalloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "prefect-exporter",
            dependencies: ["ExporterCLI"],
            swiftSettings: strictSwift
        ),
        // Benchmarks: render, serve and poll figures printed by scripts/bench (not a test).
        .executableTarget(
            name: "prefect-exporter-bench",
            dependencies: [
                "HTTPClient", "Locking", "PrefectAPI", "Exposition", "Aggregation", "Collectors", "Poller", "Rendering", "WebServer",
                "ExporterCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: Tests (one suite per module)
        .testTarget(name: "HTTPClientTests", dependencies: ["HTTPClient", "Locking"], swiftSettings: strictSwift),
        .testTarget(name: "PrefectAPITests", dependencies: ["PrefectAPI", "Locking"], resources: [.copy("Fixtures")], swiftSettings: strictSwift),
        .testTarget(name: "ExpositionTests", dependencies: ["Exposition"], swiftSettings: strictSwift),
        .testTarget(
            name: "AggregationTests",
            dependencies: ["Aggregation", "Collectors", "PrefectAPI", "Exposition"],
            resources: [.copy("Fixtures")],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "PollerTests", dependencies: ["Poller", "Collectors", "Rendering", "Locking", "PrefectAPI", "Exposition", "Aggregation"],
            swiftSettings: strictSwift),
        .testTarget(name: "WebConfigTests", dependencies: ["WebConfig"], swiftSettings: strictSwift),
        .testTarget(name: "WebServerTests", dependencies: ["WebServer", "WebConfig", "Locking"], swiftSettings: strictSwift),
        .testTarget(name: "ExporterCLITests", dependencies: ["ExporterCLI"], swiftSettings: strictSwift),
    ]
)
