import Dispatch
import PeerProtocol
import RepdConfig
import RepdCore
import RepdNet
import RepdSystem

/// Split brain: the after-sb policies (RepdCore's SplitBrainResolver), rr-conflict, the handlers,
/// and the operator's `connect [--discard-my-data] [--dry-run]` / `disconnect`.
extension Resource {
    var peerName: String { config.peer?.names.first ?? "peer" }

    /// The commands that resolve a split brain the policies left alone.
    var splitBrainRecovery: String {
        "on the node whose changes are to be dropped: `repd secondary \(config.name)` (if Primary) and "
            + "`repd connect --discard-my-data \(config.name)`; then on the other: `repd connect \(config.name)`"
    }

    // MARK: handlers

    /// Runs `handlers { NAME "command"; }` if configured, in the background, bounded in time.
    func runHandler(_ name: String, _ extra: [String: String] = [:]) {
        guard let command = config.handlers[name] else { return }
        var environment = [
            "DRBD_RESOURCE": config.name, "DRBD_PEER": peerName, "DRBD_MINOR": "\(config.local.minor ?? 0)",
            "REPD_RESOURCE": config.name, "REPD_NODE": node, "REPD_PEER": peerName, "REPD_HANDLER": name,
        ]
        if let address = config.peer?.address { environment["DRBD_PEER_ADDRESS"] = address.host }
        for (key, value) in extra { environment[key] = value }
        let variables = environment
        let logPath = run.logFile
        let logger = self.logger
        logger.info("running the \(name) handler: \(command)")
        DispatchQueue.global().async {
            let result = HandlerRunner.run(command: command, environment: variables, logPath: logPath, timeoutSeconds: Self.handlerTimeoutSeconds)
            if result == .exited(0) {
                logger.info("the \(name) handler finished")
            } else {
                logger.warning("the \(name) handler: \(result)")
            }
        }
    }

    static let handlerTimeoutSeconds = 60

    // MARK: the policies

    /// Called by the sync decision on rules 90/100: apply the policies for the number of Primaries.
    func handleSplitBrain(_ decision: SyncDecision, local: SyncView, remote: SyncView, report: PeerStateReport,
                          discardMyData: Bool, _ m: inout Mutable, _ effects: inout Effects) {
        guard let kind = SplitBrainKind(decision.strategy) else { return }
        let localSide = SplitBrainSide(node: node, view: local, discardMyData: discardMyData)
        let peerSide = SplitBrainSide(node: peerName, view: remote, discardMyData: report.flags.contains(.discardMyData))
        var resolution = SplitBrainResolver.resolve(kind, local: localSide, peer: peerSide, policies: config.net.splitBrainPolicies,
                                                    localResolves: localResolves)
        logger.error("split brain detected (rule \(decision.rule)): \(node) \(local.role.rawValue) generation \(gi(m.superblock.generation)), \(local.outOfSyncBlocks) blocks changed; \(peerName) \(remote.role.rawValue) generation \(gi(report.generation)), \(remote.outOfSyncBlocks) blocks changed")
        if resolution.localMustDemote {
            let demoted = demoteLocked(&m)
            resolution = resolution.afterDemotion(succeeded: demoted)
        }
        logger.warning("split brain: \(resolution.explanation)")
        let env = [
            "REPD_DECISION": decision.explanation, "REPD_RULE": "\(decision.rule)", "REPD_OUTCOME": "\(resolution.outcome)",
            "REPD_POLICY": "\(resolution.decidedBy)", "REPD_LOCAL_CHANGED_BLOCKS": "\(local.outOfSyncBlocks)",
            "REPD_PEER_CHANGED_BLOCKS": "\(remote.outOfSyncBlocks)",
        ]
        for handler in resolution.handlers where handler != .priLost { runHandler(handler.rawValue, env) }
        switch resolution.outcome {
        case .disconnect:
            splitBrainStandAlone("split brain (rule \(decision.rule)), not resolved: \(resolution.explanation)", &m, &effects)
        case .discardLocal, .discardPeer, .callPriLost:
            m.splitBrain = nil
            m.lastSyncSummary = "split brain resolved by \(resolution.decidedBy): \(resolution.explanation)"
            let strategy = resolution.strategy
            if case .becomeSyncTarget = strategy, !checkRRConflict(strategy, &m, &effects) { return }
            switch strategy {
            case .becomeSyncSource(let full): beginSync(source: true, full: full, &m, &effects)
            case .becomeSyncTarget(let full): beginSync(source: false, full: full, &m, &effects)
            default: splitBrainStandAlone("split brain: \(resolution.explanation)", &m, &effects)
            }
        }
    }

    /// Leaves the connection and stays StandAlone, saying how to resolve it.
    func splitBrainStandAlone(_ reason: String, _ m: inout Mutable, _ effects: inout Effects) {
        m.splitBrain = reason
        m.standAloneAfterSplitBrain = true
        m.linkMessage = "\(reason). To resolve: \(splitBrainRecovery)"
        logger.error("\(reason); the nodes disconnect (StandAlone). To resolve: \(splitBrainRecovery)")
        guard let connection = m.peer?.connection else { return }
        let link = self.link
        // Through the event loop like every other send, so that our state report goes out first.
        connection.channel.eventLoop.execute {
            connection.send(.error(reason: reason)).whenComplete { _ in
                link?.goStandAlone(reason: reason)
            }
        }
    }

    /// rr-conflict: a decision would make this Primary a SyncTarget. Returns whether to go on.
    func checkRRConflict(_ strategy: SyncStrategy, _ m: inout Mutable, _ effects: inout Effects) -> Bool {
        let check = RRConflictResolver.resolve(config.net.rrConflict, strategy: strategy, node: node, role: m.state.role, disk: m.state.disk)
        for handler in check.handlers { runHandler(handler.rawValue, ["REPD_OUTCOME": "\(check.outcome)"]) }
        switch check.outcome {
        case .noConflict:
            return true
        case .becomeSyncTarget:
            logger.warning("\(check.explanation)")
            return true
        case .disconnect:
            m.splitBrain = check.explanation
            m.standAloneAfterSplitBrain = false
            m.linkMessage = check.explanation
            logger.error("\(check.explanation)")
            let link = self.link
            effects.append { link?.goStandAlone(reason: check.explanation) }
            return false
        case .retryConnect:
            logger.warning("\(check.explanation)")
            let link = self.link
            effects.append { link?.dropConnection(reason: "rr-conflict retry-connect") }
            return false
        }
    }

    /// Demotes under the lock (call-pri-lost-after-sb); false if it cannot.
    func demoteLocked(_ m: inout Mutable) -> Bool {
        guard m.state.role == .primary else { return true }
        guard m.inFlight == 0 else {
            logger.warning("cannot become Secondary for call-pri-lost-after-sb: \(m.inFlight) requests in flight")
            return false
        }
        var state = m.state
        guard (try? state.apply(.demote)) != nil else { return false }
        m.state = state
        m.superblock.flags.remove(.primaryIndicator)
        m.superblock.generation.recordRole(primary: false)
        persistSuperblock(&m)
        logger.warning("role Secondary (call-pri-lost-after-sb)")
        attachment.follow(primary: false)
        return true
    }

    // MARK: connect, disconnect

    func operatorDisconnect() -> (ok: Bool, message: String) {
        guard let link else { return (false, "\(config.name) has no peer configured") }
        if link.isStandAlone { return (true, "already StandAlone") }
        link.goStandAlone(reason: "disconnected by the operator (`repd disconnect`)")
        return (true, "disconnected; StandAlone until `repd connect \(config.name)`")
    }

    func operatorConnect(discardMyData: Bool, dryRun: Bool) -> (ok: Bool, message: String) {
        guard let link else { return (false, "\(config.name) has no peer configured") }
        if dryRun { return dryRunConnect(discardMyData: discardMyData) }
        return withState { (m: inout Mutable, effects: inout Effects) -> (Bool, String) in
            if m.state.connection == .connected {
                return (false, "already connected to \(peerName)" + (discardMyData ? "; --discard-my-data applies only to a connection that decides a split brain" : ""))
            }
            if discardMyData && m.state.role == .primary {
                return (false, "this node is Primary: make it Secondary first (`repd secondary \(config.name)`), then connect with --discard-my-data")
            }
            m.discardMyData = discardMyData
            m.splitBrain = nil
            m.linkMessage = nil
            effects.append { link.connect() }
            logger.info("connect by the operator\(discardMyData ? " with --discard-my-data: our changes are dropped if the connection finds a split brain" : "")")
            return (true, "connecting to \(peerName)\(discardMyData ? " (this node's changes will be discarded in a split brain)" : "")")
        }
    }

    /// What connecting would decide, from the peer's state as last seen.
    private func dryRunConnect(discardMyData: Bool) -> (ok: Bool, message: String) {
        mutable.withLockedValue { m -> (Bool, String) in
            guard let report = m.lastPeerReport else {
                return (false, "the peer has not been seen since this daemon started: nothing to predict from")
            }
            let local = SyncView(
                generation: m.superblock.generation, disk: m.state.disk, role: m.state.role,
                crashedPrimary: m.superblock.flags.contains(.crashedPrimary), outOfSyncBlocks: UInt64(m.bitmap.outOfSyncCount))
            let remote = SyncView(
                generation: report.generation, disk: report.disk, role: report.role,
                crashedPrimary: report.flags.contains(.crashedPrimary), outOfSyncBlocks: report.outOfSyncBlocks)
            let decision = SyncDecider.decide(local: local, peer: remote, localResolves: localResolves)
            var lines = ["dry run, from \(peerName)'s state as last seen (\(report.role.rawValue)/\(report.disk.rawValue), generation \(gi(report.generation)), \(report.outOfSyncBlocks) blocks changed):",
                         "  sync decision: \(decision.explanation)"]
            if let kind = SplitBrainKind(decision.strategy) {
                let resolution = SplitBrainResolver.resolve(
                    kind, local: SplitBrainSide(node: node, view: local, discardMyData: discardMyData),
                    peer: SplitBrainSide(node: peerName, view: remote, discardMyData: false),
                    policies: config.net.splitBrainPolicies, localResolves: localResolves)
                lines.append("  split brain: \(resolution.decidedBy): \(resolution.outcome)")
                lines.append("  \(resolution.explanation)")
                if case .discardLocal = resolution.outcome {
                    lines.append("  \(node) would resync \(resolution.fullSync ? "the whole disk" : "the union of both sides' changed blocks (\(local.outOfSyncBlocks) here, \(remote.outOfSyncBlocks) there)") from \(peerName)")
                }
            }
            lines.append("  (nothing was changed)")
            return (true, lines.joined(separator: "\n"))
        }
    }
}

/// Generation identifiers in one line: current/bitmap/history.
func gi(_ g: GenerationIdentifiers) -> String {
    ([g.current, g.bitmap] + g.history).map { GenerationIdentifiers.text($0) }.joined(separator: ":")
}
