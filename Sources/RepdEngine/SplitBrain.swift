import PeerProtocol
import RepdCore

/// Split brain: the after-sb policies (RepdCore's SplitBrainResolver), rr-conflict, and the
/// StandAlone state that waits for the operator.
extension Engine {
    /// The commands that resolve a split brain the policies left alone.
    var splitBrainRecovery: String {
        let resource = configuration.resource
        return "on the node whose changes are to be dropped: `repd secondary \(resource)` (if Primary) and "
            + "`repd connect --discard-my-data \(resource)`; then on the other: `repd connect \(resource)`"
    }

    /// Called by the sync decision on rules 90/100: apply the policies for the number of Primaries.
    mutating func handleSplitBrain(_ decision: SyncDecision, local: SyncView, remote: SyncView, report: PeerStateReport, discardMyData: Bool) {
        guard let kind = SplitBrainKind(decision.strategy), let current = session else { return }
        let localSide = SplitBrainSide(node: configuration.node, view: local, discardMyData: discardMyData)
        let peerSide = SplitBrainSide(node: peerName, view: remote, discardMyData: report.flags.contains(.discardMyData))
        var resolution = SplitBrainResolver.resolve(kind, local: localSide, peer: peerSide, policies: configuration.splitBrainPolicies,
                                                    localResolves: current.localResolves)
        log(.error, "split brain detected (rule \(decision.rule)): \(configuration.node) \(local.role.rawValue) generation \(generationText(metadata.superblock.generation)), \(local.outOfSyncBlocks) blocks changed; \(peerName) \(remote.role.rawValue) generation \(generationText(report.generation)), \(remote.outOfSyncBlocks) blocks changed")
        if resolution.localMustDemote {
            resolution = resolution.afterDemotion(succeeded: demoteForSplitBrain())
        }
        log(.warning, "split brain: \(resolution.explanation)")
        let environment = [
            "REPD_DECISION": decision.explanation, "REPD_RULE": "\(decision.rule)", "REPD_OUTCOME": "\(resolution.outcome)",
            "REPD_POLICY": "\(resolution.decidedBy)", "REPD_LOCAL_CHANGED_BLOCKS": "\(local.outOfSyncBlocks)",
            "REPD_PEER_CHANGED_BLOCKS": "\(remote.outOfSyncBlocks)",
        ]
        for handler in resolution.handlers where handler != .priLost { runHandler(handler.rawValue, environment) }
        switch resolution.outcome {
        case .disconnect:
            splitBrainStandAlone("split brain (rule \(decision.rule)), not resolved: \(resolution.explanation)")
        case .discardLocal, .discardPeer, .callPriLost:
            link.splitBrain = nil
            link.lastSyncSummary = "split brain resolved by \(resolution.decidedBy): \(resolution.explanation)"
            let strategy = resolution.strategy
            if case .becomeSyncTarget = strategy, !checkRRConflict(strategy) { return }
            switch strategy {
            case .becomeSyncSource(let full): beginSync(source: true, full: full)
            case .becomeSyncTarget(let full): beginSync(source: false, full: full)
            default: splitBrainStandAlone("split brain: \(resolution.explanation)")
            }
        }
    }

    /// Leaves the connection and stays StandAlone, saying how to resolve it.
    mutating func splitBrainStandAlone(_ reason: String) {
        link.splitBrain = reason
        link.standAloneAfterSplitBrain = true
        link.message = "\(reason). To resolve: \(splitBrainRecovery)"
        log(.error, "\(reason); the nodes disconnect (StandAlone). To resolve: \(splitBrainRecovery)")
        guard session != nil else { return }
        // After our state report, so that the peer learns why.
        send(.error(reason: reason))
        goStandAlone(reason: reason)
    }

    /// rr-conflict: a decision would make this Primary a SyncTarget. Returns whether to go on.
    mutating func checkRRConflict(_ strategy: SyncStrategy) -> Bool {
        let check = RRConflictResolver.resolve(configuration.rrConflict, strategy: strategy, node: configuration.node,
                                               role: state.role, disk: state.disk)
        for handler in check.handlers { runHandler(handler.rawValue, ["REPD_OUTCOME": "\(check.outcome)"]) }
        switch check.outcome {
        case .noConflict:
            return true
        case .becomeSyncTarget:
            log(.warning, check.explanation)
            return true
        case .disconnect:
            link.splitBrain = check.explanation
            link.standAloneAfterSplitBrain = false
            link.message = check.explanation
            log(.error, check.explanation)
            goStandAlone(reason: check.explanation)
            return false
        case .retryConnect:
            log(.warning, check.explanation)
            if let connection = session?.connection { emit(.dropConnection(connection, reason: "rr-conflict retry-connect")) }
            return false
        }
    }

    /// Demotes at once (call-pri-lost-after-sb); false if requests are in flight.
    mutating func demoteForSplitBrain() -> Bool {
        guard state.role == .primary else { return true }
        guard inFlight == 0, roleChange == nil else {
            log(.warning, "cannot become Secondary for call-pri-lost-after-sb: \(inFlight) requests in flight")
            return false
        }
        guard (try? state.apply(.demote)) != nil else { return false }
        metadata.superblock.flags.remove(.primaryIndicator)
        metadata.superblock.generation.recordRole(primary: false)
        commitSuperblock()
        log(.warning, "role Secondary (call-pri-lost-after-sb)")
        emit(.roleChanged(.secondary))
        return true
    }
}
