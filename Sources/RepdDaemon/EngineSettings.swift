import RepdConfig
import RepdCore
import RepdEngine
import RepdSystem

extension EngineConfiguration {
    /// The engine's settings for a resource that runs: the handlers learn the directory of the
    /// resource file and the run directory.
    init(resolved config: ResolvedResource, node: String, usableSize: UInt64, runDirectory: String) {
        let directory = config.file.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        self.init(config, node: node, usableSize: usableSize, configDirectory: ProcessSupport.absolutePath(directory.isEmpty ? "." : directory),
                  runDirectory: ProcessSupport.absolutePath(runDirectory))
    }

    /// The engine's settings from a resource file, for this node.
    init(_ config: ResolvedResource, node: String, usableSize: UInt64, configDirectory: String = "", runDirectory: String = "") {
        self.init(resource: config.name, node: node, peerNode: config.peer.map { $0.names.first ?? "peer" }, usableSize: usableSize)
        let net = config.net
        switch net.protocol {
        case .A: replication = .A
        case .B: replication = .B
        case .C: replication = .C
        }
        allowTwoPrimaries = net.allowTwoPrimaries
        ackTimeoutNanoseconds = UInt64(max(1, net.timeoutDeciseconds)) * 100_000_000
        koCount = net.koCount
        splitBrainPolicies = net.splitBrainPolicies
        rrConflict = net.rrConflict
        csumsAlgorithm = net.csumsAlg
        verifyAlgorithm = net.verifyAlg
        let disk = config.disk
        resync = ResyncController.Settings(
            fixedRate: disk.resyncRateBytesPerSecond, planAhead: disk.cPlanAheadDeciseconds, fillTarget: disk.cFillTargetBytes,
            delayTarget: disk.cDelayTargetDeciseconds, maxRate: disk.cMaxRateBytesPerSecond, minRate: disk.cMinRateBytesPerSecond)
        onIOError = OnIOError(rawValue: disk.onIOError) ?? .detach
        diskTimeoutNanoseconds = UInt64(disk.diskTimeoutDeciseconds) * 100_000_000
        suspendWithoutData = disk.onNoDataAccessible == "suspend-io"
        fencing = FencingPolicy(rawValue: disk.fencing) ?? .dontCare
        activityLogExtents = min(max(disk.alExtents, Resource.minimumActivityLogExtents), Resource.maximumActivityLogExtents)
        handlers = Set(config.handlers.keys)
        let become = config.startup.becomePrimaryOn
        becomePrimaryOnStart = become.contains("both") || become.contains(node)
        waitForConnectionSeconds = config.startup.wfcTimeoutSeconds
        // DRBD's handler environment (8.4 and 9 names), and what `repd fence-peer-outdate` needs to
        // find the resource file again.
        handlerEnvironment["DRBD_MINOR"] = "\(config.local.minor ?? 0)"
        handlerEnvironment["DRBD_VOLUME"] = "0"
        handlerEnvironment["DRBD_CONF"] = config.file
        handlerEnvironment["DRBD_BACKING_DEV"] = config.local.disk
        handlerEnvironment["DRBD_MY_ADDRESS"] = config.local.address.host
        handlerEnvironment["DRBD_MY_AF"] = config.local.address.family == .ipv6 ? "ipv6" : "ipv4"
        handlerEnvironment["DRBD_MY_NODE_ID"] = "\(config.local.nodeId ?? 0)"
        if let peer = config.peer {
            handlerEnvironment["DRBD_PEER_ADDRESS"] = peer.address.host
            handlerEnvironment["DRBD_PEER_AF"] = peer.address.family == .ipv6 ? "ipv6" : "ipv4"
            handlerEnvironment["DRBD_PEERS"] = peer.names.joined(separator: " ")
            handlerEnvironment["DRBD_PEER_NODE_ID"] = "\(peer.nodeId ?? 1)"
        }
        handlerEnvironment["REPD_CONFIG_DIR"] = configDirectory
        handlerEnvironment["REPD_RUN_DIR"] = runDirectory
        handlerEnvironment["REPD_NODE"] = node
    }
}
