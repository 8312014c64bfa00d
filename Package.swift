// swift-tools-version:6.0
import PackageDescription

// Layering (see Docs/Architecture.md):
//   RepdCore, RepdConfig          pure logic, standard library only (RepdConfig parses the
//                                 split-brain policies RepdCore defines)
//   NBDProtocol, ControlProtocol  wire formats (NIOCore), no sockets
//   RepdSystem                    the one place that calls POSIX
//   RepdStorage                   backing device and metadata store
//   RepdNet                       NBD server and control socket (NIOPosix)
//   RepdDaemon                    a running resource; ties everything together
//   repd                          the command line, thin
let nioCore: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")
let nioPosix: Target.Dependency = .product(name: "NIOPosix", package: "swift-nio")
let nioHTTP: Target.Dependency = .product(name: "NIOHTTP1", package: "swift-nio")
let nioConcurrency: Target.Dependency = .product(name: "NIOConcurrencyHelpers", package: "swift-nio")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let nioSSL: Target.Dependency = .product(name: "NIOSSL", package: "swift-nio-ssl")
let systemPackage: Target.Dependency = .product(name: "SystemPackage", package: "swift-system")

// The engine and the simulator are optimised in debug builds too: `swift test` runs thousands of
// simulated schedules, and unoptimised Swift is ten times slower at it.
let optimized: [SwiftSetting] = [.unsafeFlags(["-O"])]

let package = Package(
    name: "repd",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "repd", targets: ["repd"]),
        .executable(name: "repd-sim", targets: ["repd-sim"]),
        .executable(name: "repd-fuzz", targets: ["repd-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.4.0"),
        // HMAC-SHA1/SHA256 for the peer authentication (cram-hmac-alg) and digests for verify.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.0"),
        // TLS on the replication link and on NBD (STARTTLS), with X.509 certificates.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
    ],
    targets: [
        .target(name: "RepdCore"),
        .target(name: "RepdConfig", dependencies: ["RepdCore"]),
        .target(name: "NBDProtocol", dependencies: ["RepdCore", nioCore]),
        .target(name: "PeerProtocol", dependencies: ["RepdCore", nioCore]),
        .target(name: "ControlProtocol", dependencies: ["RepdCore"]),
        .target(name: "CRepdSystem"),
        .target(name: "RepdSystem", dependencies: ["CRepdSystem", systemPackage]),
        .target(name: "RepdStorage", dependencies: ["RepdCore", "RepdSystem", "RepdConfig"]),
        // The replication logic as a deterministic state machine: no I/O, no clock (see Engine.swift).
        .target(name: "RepdEngine", dependencies: ["RepdCore", "PeerProtocol", nioCore], swiftSettings: optimized),
        // Two engines against simulated disks, link and applications, through seeded fault schedules.
        .target(name: "RepdSimulation", dependencies: ["RepdEngine", "RepdCore", "PeerProtocol", nioCore], swiftSettings: optimized),
        .executableTarget(name: "repd-sim", dependencies: [
            "RepdSimulation", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // What hostile NBD clients and peers can send, fed to the decoders and the engine: a libFuzzer
        // binary with `swift build --sanitize=fuzzer`, a seeded mutation fuzzer otherwise.
        .executableTarget(name: "repd-fuzz", dependencies: ["NBDProtocol", "PeerProtocol", "RepdEngine", "RepdCore", nioCore],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .target(name: "RepdNet", dependencies: ["RepdCore", "NBDProtocol", "PeerProtocol", "ControlProtocol", "RepdSystem", nioCore, nioPosix, nioHTTP, nioConcurrency, nioSSL,
                                          .product(name: "NIOTLS", package: "swift-nio"), logging]),
        .target(name: "RepdDaemon", dependencies: [
            "RepdCore", "RepdConfig", "NBDProtocol", "PeerProtocol", "ControlProtocol", "RepdSystem", "RepdStorage", "RepdNet",
            "RepdEngine", nioCore, nioPosix, nioConcurrency, nioSSL, logging, .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(name: "repd", dependencies: [
            "RepdCore", "RepdConfig", "ControlProtocol", "RepdStorage", "RepdDaemon", "RepdSystem", "RepdNet", nioPosix,
            .product(name: "ArgumentParser", package: "swift-argument-parser"), logging,
        ]),
        .systemLibrary(name: "CNBD", pkgConfig: "libnbd", providers: [.apt(["libnbd-dev"])]),

        .testTarget(name: "RepdCoreTests", dependencies: ["RepdCore"]),
        .testTarget(name: "RepdConfigTests", dependencies: ["RepdConfig", "RepdCore", "RepdStorage"], resources: []),
        .testTarget(name: "ControlProtocolTests", dependencies: ["ControlProtocol", "RepdCore"]),
        .testTarget(name: "NBDProtocolTests", dependencies: ["NBDProtocol", "RepdCore", nioCore]),
        .testTarget(name: "PeerProtocolTests", dependencies: [
            "PeerProtocol", "RepdCore", nioCore,
            .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOTestUtils", package: "swift-nio"),
        ]),
        .testTarget(name: "RepdEngineTests", dependencies: ["RepdEngine", "RepdCore", "PeerProtocol", nioCore]),
        .testTarget(name: "RepdSimulationTests", dependencies: ["RepdSimulation", "RepdEngine"]),
        .testTarget(name: "RepdSystemTests", dependencies: ["RepdSystem"]),
        .testTarget(name: "IntegrationTests", dependencies: ["CNBD", "RepdCore"]),
    ],
    swiftLanguageModes: [.v6]
)
