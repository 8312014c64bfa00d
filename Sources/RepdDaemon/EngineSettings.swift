import RepdConfig
import RepdCore
import RepdEngine

extension EngineConfiguration {
    /// The engine's settings from a resource file, for this node.
    init(_ config: ResolvedResource, node: String, usableSize: UInt64) {
        self.init(resource: config.name, node: node, peerNode: config.peer.map { $0.names.first ?? "peer" }, usableSize: usableSize)
        let net = config.net
        switch net.protocol {
        case .A: replication = .A
        case .B: replication = .B
        case .C: replication = .C
        }
        allowTwoPrimaries = net.allowTwoPrimaries
        ackTimeoutNanoseconds = UInt64(max(1, net.timeoutDeciseconds)) * 100_000_000
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
        activityLogExtents = min(max(disk.alExtents, Resource.minimumActivityLogExtents), Resource.maximumActivityLogExtents)
        handlers = Set(config.handlers.keys)
        let become = config.startup.becomePrimaryOn
        becomePrimaryOnStart = become.contains("both") || become.contains(node)
        waitForConnectionSeconds = config.startup.wfcTimeoutSeconds
        handlerEnvironment["DRBD_MINOR"] = "\(config.local.minor ?? 0)"
        if let address = config.peer?.address { handlerEnvironment["DRBD_PEER_ADDRESS"] = address.host }
    }
}
