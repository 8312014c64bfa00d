import PeerProtocol
import RepdCore

/// DRBD's `fencing`: what a Primary does when it loses a peer whose disk may hold the data.
public enum FencingPolicy: String, Sendable, Hashable {
    /// Nothing: both sides go on (a split brain is found when they meet again).
    case dontCare = "dont-care"
    /// The `fence-peer` handler runs; I/O goes on meanwhile.
    case resourceOnly = "resource-only"
    /// I/O is frozen (nothing completes, nothing new starts) until the handler has fenced the peer,
    /// or the operator runs `repd resume-io`.
    case resourceAndStonith = "resource-and-stonith"
}

/// Why application I/O is held, in DRBD 9's words (`suspended:user,fencing`).
public enum SuspendReason: String, Sendable, Hashable, CaseIterable {
    /// `repd suspend-io`.
    case user
    /// `fencing resource-and-stonith`: the link went and the peer is not fenced yet.
    case fencing
    /// No disk here and no UpToDate peer, with `on-no-data-accessible suspend-io`.
    case noData = "no-data"
}

/// A fencing run: the `fence-peer` handler runs, or it failed and I/O stays frozen.
public struct FenceRun: Sendable {
    public enum Phase: Sendable, Equatable {
        case running
        case frozen(reason: String)
    }
    public var phase: Phase
    /// What started it: the link went while Primary, or a disconnected node is being promoted.
    public var reason: String
    /// I/O is frozen while it lasts (resource-and-stonith after the link went while Primary).
    public var freezesIO: Bool
    /// Monotonic nanoseconds.
    public var startedAt: UInt64
    /// Writes and flushes that were waiting for the peer when the link went: they complete once
    /// the peer is fenced (the data is on this disk and marked out of sync for the peer).
    var heldWrites: [UInt64] = []
    var heldFlushes: [UInt64] = []
    /// The new generation the lost peer calls for, started only once the peer is fenced: a node
    /// that is outdated instead keeps its generation and resyncs from the bitmap, with no split brain.
    var newGenerationDue = false
    /// A promotion that waits for the fence.
    var promotion: PendingPromotion?
}

struct PendingPromotion: Sendable {
    let command: CommandID?
    let force: Bool
    let reason: String?
}

/// The answer to the peer's fence-peer handler asking this node to outdate its disk (over the
/// fencing path): DRBD's fence-peer exit codes, which the handler exits with.
public enum FenceAnswer: Int, Sendable {
    /// The disk is Inconsistent or there is none: nothing to outdate.
    case inconsistent = 3
    /// The disk is Outdated (now, or already).
    case outdated = 4
    /// This node is Primary and stays: the asking node is to outdate itself.
    case primary = 6
    /// Still connected to the asking node over the replication link: ask again once it is down.
    case connected = 20
    /// Refused (the text says why).
    case refused = 21
}

extension Engine {
    /// The I/O a new request finds held, and why.
    public var suspendReasons: [SuspendReason] {
        var reasons: [SuspendReason] = []
        if userSuspended { reasons.append(.user) }
        if fence?.freezesIO == true { reasons.append(.fencing) }
        if !suspended.isEmpty && !state.hasDisk && !state.servedByPeer && configuration.suspendWithoutData { reasons.append(.noData) }
        return reasons
    }

    /// New application requests wait (they are not counted in flight until they go on).
    var ioSuspended: Bool { userSuspended || fence?.freezesIO == true }

    /// The node that wins when both are Primary and both fence: the one whose name sorts first
    /// (the same rule as the connection's leader), so both sides agree without asking.
    var winsFencingTie: Bool { configuration.node < peerName }

    // MARK: starting

    /// Whether losing the peer now calls for fencing: this node is Primary with the data, and the
    /// peer's disk may hold data too (it was not known to be Outdated or missing).
    func fencingNeeded(peerHadData: Bool) -> Bool {
        configuration.fencing != .dontCare && configuration.peerNode != nil && state.role == .primary && state.disk == .upToDate
            && peerHadData && !shuttingDown && link.splitBrain == nil
    }

    /// The link went while Primary: fence the peer (with resource-and-stonith, I/O is frozen until then).
    mutating func startFencing(reason: String, freeze: Bool, heldWrites: [UInt64], heldFlushes: [UInt64], newGenerationDue: Bool) {
        fence = FenceRun(phase: .running, reason: reason, freezesIO: freeze, startedAt: now,
                         heldWrites: heldWrites, heldFlushes: heldFlushes, newGenerationDue: newGenerationDue)
        log(.warning, "fencing (\(configuration.fencing.rawValue)): \(reason)"
            + (freeze ? "; application I/O is suspended until the peer is fenced" : ""))
        runFencePeerHandler()
    }

    mutating func runFencePeerHandler() {
        guard configuration.handlers.contains("fence-peer") else {
            return fenceFailed("no fence-peer handler is configured (add `fence-peer \"repd fence-peer-outdate\";` to the handlers section)")
        }
        _ = runHandler("fence-peer", ["DRBD_PEER_AT_FENCE": peerName], purpose: .fencePeer)
    }

    /// A disconnected node with fencing that is asked to become Primary first fences the peer,
    /// unless the peer is known to be Outdated (DRBD does the same).
    func promotionNeedsFence(force: Bool) -> Bool {
        configuration.fencing != .dontCare && configuration.peerNode != nil && state.connection != .connected
            && state.role == .secondary && state.hasDisk && state.disk >= .consistent
            && !metadata.superblock.flags.contains(.peerOutdated) && ![.outdated, .inconsistent, .diskless].contains(state.peerDisk)
    }

    mutating func fenceBeforePromotion(_ id: CommandID?, force: Bool, reason: String?) {
        fence = FenceRun(phase: .running, reason: "promotion while the peer is not connected", freezesIO: false, startedAt: now,
                         promotion: PendingPromotion(command: id, force: force, reason: reason))
        log(.info, "fencing before the promotion: the peer is not connected and not known to be Outdated")
        runFencePeerHandler()
    }

    // MARK: the handler's answer

    /// The fence-peer handler ended: DRBD's exit codes decide.
    mutating func fencePeerFinished(_ result: HandlerResult) {
        guard fence != nil else { return }
        switch result {
        case .exited(3): peerFenced(disk: .inconsistent, "fence-peer: the peer's disk is Inconsistent or worse (exit 3)")
        case .exited(4): peerFenced(disk: .outdated, "fence-peer: the peer's disk is Outdated (exit 4)")
        case .exited(5):
            if state.disk == .upToDate {
                peerFenced(disk: .outdated, "fence-peer: the peer is unreachable, assumed down (exit 5)")
            } else {
                fenceFailed("fence-peer: the peer is unreachable (exit 5) and this disk is \(state.disk.rawValue), not UpToDate")
            }
        case .exited(6): outdateSelf("fence-peer: the peer is Primary (exit 6): this node's disk is Outdated")
        case .exited(7): peerFenced(disk: .outdated, "fence-peer: the peer was fenced (STONITH, exit 7)")
        case .exited(let status): fenceFailed("fence-peer exited with status \(status), which fences nothing")
        case .failed(let why): fenceFailed("fence-peer did not run to the end: \(why)")
        }
    }

    /// The peer cannot write any more (or holds nothing): this node goes on.
    mutating func peerFenced(disk: DiskState, _ why: String) {
        guard let run = fence else { return }
        fence = nil
        log(.info, "\(why): fencing done; \(run.freezesIO ? "I/O resumes" : "this node goes on")")
        if state.connection != .connected { _ = try? state.apply(.peer(role: .unknown, disk: disk)) }
        if disk == .outdated {
            metadata.superblock.flags.insert(.peerOutdated)
            link.fencedPeer = true
        }
        link.message = why
        finishFence(run)
        if let promotion = run.promotion { promote(promotion.command, force: promotion.force, reason: promotion.reason, fenced: true) }
    }

    /// Held writes complete, the deferred generation starts, suspended requests go on.
    mutating func finishFence(_ run: FenceRun) {
        if run.newGenerationDue && state.role == .primary && state.disk == .upToDate {
            metadata.superblock.generation.startNewCurrent(newUUID(), primary: true)
            log(.info, "new current generation \(hex(metadata.superblock.generation.current)) (Primary without its peer)")
            writes.generationPending = true
            commitSuperblock(then: .generationGate)
        } else {
            commitSuperblock()
        }
        releaseHeld(run, failure: nil)
        resumeSuspended()
    }

    /// The held writes and flushes complete (or fail, when this node was outdated).
    mutating func releaseHeld(_ run: FenceRun, failure: IOFailure?) {
        for id in run.heldWrites {
            guard case .localWrite(var op)? = operations[id] else { continue }
            op.held = false
            if let failure, op.localError == nil { op.localError = failure }
            operations[id] = .localWrite(op)
            completeIfDone(id)
        }
        for flushID in run.heldFlushes {
            writes.flushes[flushID]?.held = false
            if let failure { writes.flushes[flushID]?.failure = failure }
            completeFlushIfDone(flushID)
        }
    }

    /// The handler could not fence the peer: with resource-and-stonith I/O stays frozen (the
    /// operator decides with `repd resume-io`); otherwise this node goes on, and says so.
    mutating func fenceFailed(_ why: String) {
        guard var run = fence else { return }
        if let promotion = run.promotion {
            fence = nil
            log(.error, "\(why): the promotion is refused")
            return answerRoleChange(promotion.command, false, "refusing to become Primary: fencing the peer failed: \(why)")
        }
        if run.freezesIO {
            run.phase = .frozen(reason: why)
            fence = run
            let message = "\(why); I/O stays suspended (fencing resource-and-stonith): make sure \(peerName) cannot write "
                + "(powered off, or `repd outdate` there), then `repd resume-io \(configuration.resource)`"
            log(.error, message)
            link.message = message
        } else {
            fence = nil
            log(.warning, "\(why); this node goes on without knowing that \(peerName) is fenced (fencing resource-only)")
            link.message = why
            finishFence(run)
        }
    }

    /// This node loses: its disk is Outdated (durably), what was held fails, and it stays so until
    /// the peer resyncs it.
    mutating func outdateSelf(_ why: String) {
        let run = fence
        fence = nil
        log(.error, why)
        link.message = why
        markOutdated()
        let failure = IOFailure(.io, "\(configuration.resource) on \(configuration.node): outdated by fencing; \(peerName) has the data")
        // Writes still on their way to this disk were admitted before the freeze: only this disk
        // will have them, and the peer's resync overwrites it, so none may be acknowledged (found
        // by the simulator, seed 7469: writes in flight at the outdate completed afterwards).
        for (id, operation) in operations {
            guard case .localWrite(var op) = operation, !op.completed, op.localError == nil else { continue }
            op.localError = failure
            operations[id] = .localWrite(op)
        }
        for id in writes.flushes.keys where writes.flushes[id]?.failure == nil { writes.flushes[id]?.failure = failure }
        if let run {
            releaseHeld(run, failure: failure)
            if let promotion = run.promotion {
                answerRoleChange(promotion.command, false, "refusing to become Primary: \(why)")
            }
        }
        failSuspended(failure)
    }

    /// The disk becomes Outdated, recorded before anything else depends on it. A Diskless node has
    /// none to outdate: it stays Diskless and the detached disk's metadata is left alone (found by
    /// the simulator, seed 4318: a node that had detached its failing disk took it up again as
    /// Outdated when its fence-peer handler exited 6, and read from it).
    mutating func markOutdated() {
        guard diskAttached else { return }
        _ = try? state.apply(.attach(.outdated))
        metadata.superblock.flags.insert(.consistent)
        metadata.superblock.flags.remove(.wasUpToDate)
        commitSuperblock()
    }

    /// Every suspended request fails.
    mutating func failSuspended(_ failure: IOFailure) {
        let held = suspended
        suspended.removeAll()
        for request in held {
            switch request {
            case .read(let id, _, _, _), .write(let id, _), .flush(let id):
                completeWrite(id, .failed(.io, failure.message))
            }
        }
    }

    // MARK: outdate

    /// `repd outdate` (the operator) or the peer's fence-peer handler over the fencing path: mark
    /// this disk Outdated where that is safe.
    mutating func outdate(_ id: CommandID, byPeer: Bool) {
        func answer(_ code: FenceAnswer, _ text: String) {
            if byPeer {
                emit(.reply(id, ok: code == .outdated || code == .inconsistent, message: "\(code.rawValue) \(text)"))
            } else {
                reply(id, code == .outdated, text)
            }
        }
        if state.connection == .connected {
            return answer(.connected, "refusing to outdate while connected to \(peerName) (DRBD: the connection decides the disk states)")
        }
        if !state.hasDisk || state.disk == .inconsistent {
            return answer(.inconsistent, "the disk is \(state.disk.rawValue): nothing to outdate")
        }
        if state.disk == .outdated { return answer(.outdated, "the disk is Outdated already") }
        if metadata.superblock.flags.contains(.peerOutdated) {
            // This node fenced the asking node before (it was down or cut off) and has not resynced
            // it since: this data is the newer one, the asker's is the Outdated one (found by the
            // simulator, seed 853: a restarted node outdated the node with the newer data).
            return answer(.primary, "this node fenced \(peerName) before and holds the newer data: \(peerName)'s disk is the Outdated one")
        }
        if state.role == .primary {
            guard byPeer, fence?.freezesIO == true, !winsFencingTie else {
                return answer(.primary, byPeer ? "this node is Primary and stays" + (fence != nil ? " (it wins the fencing tie: its name sorts first)" : "")
                    : "refusing to outdate a Primary; make it Secondary first")
            }
            // Both Primary and both frozen: the node whose name sorts first wins; this one has
            // acknowledged nothing since the link went, so its disk may be outdated.
            outdateSelf("outdated by \(peerName)'s fence-peer handler: both nodes are Primary and \(peerName) wins the tie")
            return answer(.outdated, "outdated (this node was Primary and frozen; its held writes failed)")
        }
        if let run = fence, let promotion = run.promotion {
            fence = nil
            answerRoleChange(promotion.command, false, "refusing to become Primary: \(peerName) outdated this node meanwhile")
        }
        markOutdated()
        log(.warning, byPeer ? "outdated by \(peerName)'s fence-peer handler" : "outdated by the operator")
        link.message = byPeer ? "outdated by \(peerName)'s fence-peer handler" : "outdated by the operator"
        answer(.outdated, "outdated")
    }

    // MARK: suspend-io and resume-io

    mutating func operatorSuspendIO(_ id: CommandID) {
        userSuspended = true
        log(.info, "suspend-io by the operator: new application requests wait")
        reply(id, true, "I/O suspended (new requests wait until `repd resume-io`)")
    }

    /// `repd resume-io`: the user's suspension ends; a frozen fence is taken as done (the operator
    /// vouches that the peer cannot write); requests without data fail, the others go on.
    mutating func operatorResumeIO(_ id: CommandID) {
        var said: [String] = []
        if userSuspended {
            userSuspended = false
            said.append("suspend-io lifted")
        }
        if let run = fence, run.freezesIO {
            fence = nil
            log(.warning, "resume-io by the operator while fencing \(run.phase == .running ? "runs" : "failed"): going on as if \(peerName) were fenced")
            link.message = "resumed by the operator without fencing \(peerName)"
            finishFence(run)
            said.append("fencing freeze lifted")
        }
        let held = suspended
        suspended.removeAll()
        let message = "\(configuration.resource) on \(configuration.node): no data accessible (resume-io)"
        var failed = 0
        for request in held {
            if state.hasDisk || state.servedByPeer {
                resubmit(request)
                continue
            }
            failed += 1
            switch request {
            case .read(let client, _, _, _), .write(let client, _), .flush(let client):
                completeWrite(client, .failed(.io, message))
            }
        }
        if !held.isEmpty { said.append("\(held.count - failed) requests go on, \(failed) fail without data") }
        log(.info, "resume-io by the operator: " + (said.isEmpty ? "nothing was suspended" : said.joined(separator: "; ")))
        reply(id, true, said.isEmpty ? "no I/O is suspended" : "resumed: " + said.joined(separator: "; "))
    }

    // MARK: after the resync

    /// The resync to a peer this node fenced finished: the fence is lifted (`unfence-peer`).
    mutating func unfenceAfterResync() {
        guard link.fencedPeer || metadata.superblock.flags.contains(.peerOutdated) else { return }
        link.fencedPeer = false
        metadata.superblock.flags.remove(.peerOutdated)
        commitSuperblock()
        runHandler("unfence-peer")
        log(.info, "\(peerName) is in sync again: the fence is lifted")
    }
}
