import RepdCore
import RepdEngine

/// Invariants after every step, and the end of a schedule: every fault healed, the operator
/// resolving what DRBD leaves to an operator, then both replicas compared with each other and
/// with the ledger.
extension Simulation {
    /// Longest an application request may wait (simulated time).
    static let requestBound: UInt64 = 120_000_000_000

    func checkAfterStep() {
        for index in nodes.indices where nodes[index].engine != nil {
            if nodes[index].engine!.inFlight < 0 || nodes[index].engine!.writes.pendingWrites < 0 {
                violate("bookkeeping", "\(nodes[index].node) counts \(nodes[index].engine!.inFlight) requests and \(nodes[index].engine!.writes.pendingWrites) writes in flight")
            }
            // The oldest request is checked once a second (a scan of all requests per step costs).
            if now >= nextLivenessCheck, let (id, oldest) = nodes[index].requests.min(by: { $0.value.issuedAt < $1.value.issuedAt }),
               now > oldest.issuedAt + Self.requestBound {
                violate("liveness", "\(nodes[index].node)'s request \(id) (\(oldest.summary)) waits since t=\(milliseconds(oldest.issuedAt)) ms; \(summary); \(nodes[index].node) waits for: \(nodes[index].engine!.waitingSummary)")
            }
            checkDecision(index)
        }
        if now >= nextLivenessCheck { nextLivenessCheck = now + 1_000_000_000 }
        if inSync {
            wroteApart = [false, false]
            // What either side acknowledged so far is on both disks, durably: a later split brain
            // that discards one side's changes loses only what came after.
            if nodes.allSatisfy({ $0.engine?.awaitsPeerDurability == false && $0.engine?.unacknowledgedWrites == 0 && $0.requests.isEmpty }) {
                lastInSync = now
            }
        }
    }

    /// Connected on one connection, no resync, both UpToDate, nothing out of sync.
    var inSync: Bool {
        guard let a = nodes[0].engine, let b = nodes[1].engine, let sa = a.session, let sb = b.session,
              sa.connection == sb.connection, sa.report != nil, sb.report != nil else { return false }
        return a.state.replication == .established && b.state.replication == .established
            && a.state.disk == .upToDate && b.state.disk == .upToDate
            && a.metadata.bitmap.outOfSyncCount == 0 && b.metadata.bitmap.outOfSyncCount == 0
    }

    /// A split brain is reported whenever both sides wrote while apart; the side whose data a
    /// resolution discards loses its writes since the split, legitimately.
    func checkDecision(_ index: Int) {
        guard let session = nodes[index].engine?.session, let decision = session.decision else { return }
        // A node without a disk decides nothing about data: its attach later decides (on the same connection).
        guard decision.rule != SyncDecider.noDiskRule else { return }
        let key = session.connection << 16 | session.decisionCount
        guard !checkedDecisions.contains(key) || !discardedOn.contains(key) else { return }
        let node = nodes[index].node
        let splitBrain: Bool
        switch decision.strategy {
        case .splitBrain, .splitBrainUnresolvable, .unrelatedData: splitBrain = true
        default: splitBrain = false
        }
        if !checkedDecisions.contains(key) {
            checkedDecisions.insert(key)
            if wroteApart[0] && wroteApart[1] && !splitBrain {
                violate("split brain reported", "both nodes wrote while apart, but \(node) decided \(decision)")
            }
            if splitBrain && scenario.fencing == .resourceAndStonith && lastCrash.allSatisfy({ $0 < lastInSync }) {
                // Both nodes stayed up and the fencing path worked: one of them was fenced before it
                // acknowledged anything apart, so the data cannot have diverged.
                violate("fencing prevents split brain", "with fencing resource-and-stonith and no power loss since t=\(milliseconds(lastInSync)) ms, \(node) decided \(decision)")
            }
            // This decision accounts for what either side wrote apart so far.
            wroteApart = [false, false]
        }
        if splitBrain, !discardedOn.contains(key),
           [.syncTarget, .pausedSyncTarget].contains(nodes[index].engine!.state.replication) {
            discardedOn.insert(key)
            note("split brain resolved: \(node)'s changes since t=\(milliseconds(lastInSync)) ms are discarded")
            ledger.discarded(node: node, since: lastInSync)
            wroteApart[node.rawValue] = false
        }
    }

    // MARK: the end of a schedule

    func beginHealing() {
        healing = true
        note("healing: faults end, applications stop")
        network.partitionedUntil = 0
        network.stalledUntil = 0
        for node in SimNode.allCases {
            nodes[node.rawValue].disk.failing = nil
            nodes[node.rawValue].stalledUntil = min(nodes[node.rawValue].stalledUntil, now)
            nodes[node.rawValue].workloadUntil = 0
            if nodes[node.rawValue].engine == nil { boot(node) }
            if nodes[node.rawValue].engine?.link.userPausedSync == true { command(.resumeSync, on: node) }
        }
        queue.push(at: now + 500_000_000, .heal)
    }

    /// What an operator does until the pair is in sync; then the final checks.
    func healStep() {
        if inSync && nodes.allSatisfy({ $0.requests.isEmpty && $0.writesInFlight.isEmpty }) {
            finalChecks()
            return
        }
        if now > endOfSchedule + 600_000_000_000 {
            violate("convergence", "the nodes did not get back in sync within 600 s after the faults ended: \(summary)")
            return
        }
        queue.push(at: now + 500_000_000, .heal)
        guard let a = nodes[0].engine, let b = nodes[1].engine else { return }
        let connected = a.state.connection == .connected && b.state.connection == .connected
        for node in SimNode.allCases {
            // A node frozen by a fence that could not be done: the operator lets it go on.
            if case .frozen? = nodes[node.rawValue].engine?.fence?.phase { command(.resumeIO, on: node) }
        }
        for node in SimNode.allCases {
            // A node without its disk gets it back (or a new one when it had failed).
            guard let engine = nodes[node.rawValue].engine, !engine.diskAttached, nodes[node.rawValue].attachCommand == nil else { continue }
            if engine.state.role == .primary && !engine.state.servedByPeer {
                command(.secondary, on: node)
            } else {
                attach(node, fresh: nodes[node.rawValue].failedRecord != nil && pick(3) == 0)
            }
        }
        if nodes[0].standAlone || nodes[1].standAlone {
            if a.link.splitBrain != nil || b.link.splitBrain != nil {
                // Resolve as DRBD's guide says: beta's changes go.
                let victim = SimNode.beta, keeper = victim.other
                let v = nodes[victim.rawValue].engine!, k = nodes[keeper.rawValue].engine!
                if v.state.role == .primary { command(.secondary, on: victim) }
                if k.state.role == .secondary && v.state.role == .secondary && k.state.disk >= .outdated { command(.primary(force: false), on: keeper) }
                if v.state.role == .secondary {
                    note("operator: \(victim)'s changes are discarded")
                    ledger.discarded(node: victim, since: lastInSync)
                    wroteApart[victim.rawValue] = false
                    command(.connect(discardMyData: true, dryRun: false), on: victim)
                    command(.connect(discardMyData: false, dryRun: false), on: keeper)
                }
            } else {
                for node in SimNode.allCases where nodes[node.rawValue].standAlone { command(.connect(discardMyData: false, dryRun: false), on: node) }
            }
            return
        }
        guard connected else { return }
        if a.state.disk == .inconsistent && b.state.disk == .inconsistent && a.session?.resync == nil {
            command(.primary(force: true), on: .alpha)
        } else if a.state.replication == .established && b.state.replication == .established
                    && a.state.disk == .upToDate && b.state.disk == .upToDate
                    && a.metadata.bitmap.outOfSyncCount + b.metadata.bitmap.outOfSyncCount > 0 {
            // Blocks a verify found (or a failed write left) out of sync: the operator repairs them
            // from the node whose disk did not fail.
            let target = failingDisk
            if nodes[target.rawValue].engine?.state.role == .primary { command(.secondary, on: target) }
            command(.invalidateRemote(full: false), on: target.other)
        }
    }

    var summary: String {
        nodes.map { runtime in
            guard let e = runtime.engine else { return "\(runtime.node) down" }
            return "\(runtime.node) \(e.state.role.rawValue)/\(e.state.disk.rawValue) \(e.state.connection.rawValue) \(e.state.replication.rawValue) "
                + "peer \(e.state.peerRole.rawValue)/\(e.state.peerDisk.rawValue), \(e.metadata.bitmap.outOfSyncCount) blocks out of sync, "
                + "\(runtime.requests.count) requests, \(e.outstandingIO) I/O outstanding\(runtime.standAlone ? ", StandAlone" : "")"
        }.joined(separator: "; ")
    }

    /// Both replicas identical, block for block, and every acknowledged write that must survive there.
    func finalChecks() {
        finished = true
        let a = nodes[0].disk, b = nodes[1].disk
        for block in 0..<scenario.blockCount where a.current(block) != b.current(block) {
            violate("replicas identical after the resync",
                    "block \(block): alpha has \(ledger.describe(a.current(block))), beta has \(ledger.describe(b.current(block))); both say in sync")
            return
        }
        for block in 0..<scenario.blockCount {
            if let problem = ledger.check(value: a.current(block), block: block, against: ledger.mustSurvive(block: block)) {
                violate("no acknowledged write lost", problem)
                return
            }
        }
        note("in sync; replicas identical; ledger checked")
    }
}
