import ArgumentParser
import ControlProtocol
import NIOCore
import RepdConfig
import RepdDaemon
import RepdNet
import RepdSystem

struct Outdate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mark this node's disk Outdated: it is not promoted (without --force) and the peer's data wins at the next connection.",
        discussion: """
            Refused on a Primary and while connected to the peer (the connection decides the disk states then). Recorded in the metadata: it survives restarts. The peer's fence-peer handler does the same over the fencing path (repd fence-peer-outdate).
            Example: repd outdate r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String

    func run() async throws {
        try await Repd.guarded { try simpleControl(ControlRequest(.outdate), common: common, resource: resource) }
    }
}

struct SuspendIO: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suspend-io",
        abstract: "Hold new application I/O (requests wait, nothing fails) until `repd resume-io`.",
        discussion: "Requests already in flight finish. Example: repd suspend-io r0"
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String

    func run() async throws {
        try await Repd.guarded { try simpleControl(ControlRequest(.suspendIO), common: common, resource: resource) }
    }
}

/// repd's own fence-peer handler: asks the peer, over its `fence-address`, to outdate its disk,
/// and exits with DRBD's fence-peer exit code.
struct FencePeerOutdate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fence-peer-outdate",
        abstract: "A fence-peer handler: outdate the peer's disk over its fence-address; exit with DRBD's fence-peer code.",
        discussion: """
            Set it as the handler: `handlers { fence-peer "repd fence-peer-outdate"; }`, and give each node a `fence-address IP:PORT;` on a second network. The daemon runs it with DRBD_RESOURCE, REPD_CONFIG_DIR, REPD_NODE set. Exit codes: 3 the peer's disk is Inconsistent or missing, 4 the peer is Outdated now, 5 the peer is unreachable (assumed down), 6 the peer is Primary and stays (this node outdates itself), 1 anything else (with resource-and-stonith, I/O stays frozen).
            Example: repd fence-peer-outdate r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name (default: $DRBD_RESOURCE).") var resource: String?
    @Option(help: "Seconds to keep asking while the peer still sees the replication link up.") var timeout: Int = 30

    func run() async throws {
        guard let name = resource ?? environment("DRBD_RESOURCE") else {
            printError("repd fence-peer-outdate: no resource named and DRBD_RESOURCE is not set")
            throw ExitCode(1)
        }
        let config: ResolvedResource
        do {
            config = try common.resolve(name)
        } catch let error as CLIError {
            printError("repd fence-peer-outdate: \(error.message)")
            throw ExitCode(1)
        }
        guard let peer = config.peer, let address = peer.fenceAddress,
              let link = Resource.linkConfiguration(config, node: common.node) else {
            printError("repd fence-peer-outdate: the peer of \(name) has no fence-address in \(config.file); nothing can reach it besides the replication link")
            throw ExitCode(1)
        }
        let deadline = ProcessSupport.monotonicNanoseconds() + UInt64(min(max(1, timeout), 86_400)) * 1_000_000_000
        while true {
            let outcome = await FencePath.requestOutdate(configuration: link, host: address.host, port: address.port, timeout: .seconds(10),
                                                         mac: Resource.hmac, random: { ProcessSupport.randomUInt64() })
            switch outcome {
            case .answered(let code, let reason):
                if Int(code) == 20 && ProcessSupport.monotonicNanoseconds() < deadline {
                    // The peer still sees the replication link: it will notice the loss shortly.
                    try? await Task.sleep(nanoseconds: 1_000_000_000)
                    continue
                }
                print("repd fence-peer-outdate: \(peer.names.first ?? "peer") (\(address)): \(reason) (exit \(code <= 7 ? Int(code) : 1))")
                throw ExitCode(code <= 7 ? Int32(code) : 1)
            case .unreachable(let why):
                print("repd fence-peer-outdate: \(peer.names.first ?? "peer") is unreachable over the fencing path (\(why)): assumed down (exit 5)")
                throw ExitCode(5)
            case .refused(let why):
                printError("repd fence-peer-outdate: \(peer.names.first ?? "peer") refused: \(why)")
                throw ExitCode(1)
            }
        }
    }
}
