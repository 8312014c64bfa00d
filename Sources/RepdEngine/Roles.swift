import PeerProtocol
import RepdCore

/// A promotion or demotion in progress: validated, then (demotion) drained and synced, then its
/// superblock written; committed and answered only once that write is durable.
struct RoleChange: Sendable {
    enum Kind: Sendable {
        case promotion(force: Bool)
        case demotion
    }
    enum Phase: Sendable {
        case draining, syncing, persisting
    }
    let command: CommandID?
    let kind: Kind
    var phase: Phase
    /// The superblock before the change (restored if the write fails).
    let previous: Superblock
    let reason: String?
    /// The promotion's superblock starts a new data generation.
    var newGeneration = false

    var isDemotion: Bool { if case .demotion = kind { return true } else { return false } }
}

/// Operator commands.
extension Engine {
    mutating func operatorCommand(_ id: CommandID, _ command: OperatorCommand) {
        switch command {
        case .primary(let force): promote(id, force: force)
        case .secondary: demote(id)
        case .pauseSync: pauseSync(id, true)
        case .resumeSync: pauseSync(id, false)
        case .invalidate(let full): requestResync(id, localIsSource: false, full: full)
        case .invalidateRemote(let full): requestResync(id, localIsSource: true, full: full)
        case .verify: startVerify(id)
        case .newCurrentUUID(let clearBitmap): newCurrentGeneration(id, clearBitmap: clearBitmap)
        case .connect(let discardMyData, let dryRun): operatorConnect(id, discardMyData: discardMyData, dryRun: dryRun)
        case .disconnect: operatorDisconnect(id)
        case .detach: operatorDetach(id)
        case .resumeIO: operatorResumeIO(id)
        case .suspendIO: operatorSuspendIO(id)
        case .outdate(let byPeer): outdate(id, byPeer: byPeer)
        }
    }

    // MARK: promotion and demotion

    /// - Parameters:
    ///   - fenced: the fence this promotion waited for has run (Fencing.swift).
    ///   - agreed: the connected peer agreed to it (without allow-two-primaries).
    mutating func promote(_ id: CommandID?, force: Bool, reason: String? = nil, fenced: Bool = false, agreed: Bool = false) {
        guard roleChange == nil else {
            return answerRoleChange(id, false, "a role change is in progress; try again when it has finished")
        }
        if fence != nil && !fenced {
            return answerRoleChange(id, false, "fencing is in progress; try again when it has finished")
        }
        guard !handshakeInProgress else {
            // The peer decides the resync from the generations we sent it: they must not change now.
            return answerRoleChange(id, false, "the connection to \(peerName) is being established (generations exchanged, no decision yet); try again in a moment")
        }
        var next = state
        let effects: [NodeState.Effect]
        do {
            effects = try next.apply(.promote(force: force))
        } catch {
            return answerRoleChange(id, false, "\(error)")
        }
        if effects.isEmpty { return answerRoleChange(id, true, "Primary") }
        if !fenced && promotionNeedsFence(force: force) {
            // Disconnected, with fencing: the peer may be Primary with newer data; fence it first.
            return fenceBeforePromotion(id, force: force, reason: reason)
        }
        if !configuration.allowTwoPrimaries, session?.report != nil {
            if session!.peerPromotionGranted {
                return answerRoleChange(id, false, "refusing to become Primary: \(peerName) is becoming Primary, and allow-two-primaries is not set in the net section")
            }
            if !agreed {
                // One Primary at a time: the peer agrees first, so that two promotions at the same
                // instant cannot both succeed (the node that resolves conflicts wins a tie).
                guard session!.pendingRoleRequest == nil else {
                    return answerRoleChange(id, false, "a promotion is already waiting for \(peerName)'s agreement")
                }
                session!.pendingRoleRequest = PendingPromotion(command: id, force: force, reason: reason)
                send(.roleRequest(primary: true))
                return
            }
        }
        let previous = metadata.superblock
        var sb = metadata.superblock
        for effect in effects {
            switch effect {
            case .forcedUpToDate:
                sb.flags.formUnion([.consistent, .wasUpToDate])
                log(.warning, "forced to UpToDate: this node's data is now the reference copy")
            case .newCurrentGeneration:
                // DRBD's rule: the old current (with the role bit it had) becomes the bitmap UUID
                // when none is set; the new current marks this data.
                sb.generation.startNewCurrent(newUUID(), primary: true)
                log(.info, "new current generation \(hex(sb.generation.current))")
            case .writeMetadata:
                break
            }
        }
        sb.flags.insert(.primaryIndicator)
        if next.disk == .upToDate { sb.flags.formUnion([.consistent, .wasUpToDate]) }
        sb.generation.recordRole(primary: true)
        metadata.superblock = sb
        roleChange = RoleChange(command: id, kind: .promotion(force: force), phase: .persisting, previous: previous, reason: reason,
                                newGeneration: effects.contains(.newCurrentGeneration))
        commitSuperblock(then: .roleChange)
    }

    mutating func demote(_ id: CommandID?) {
        guard roleChange == nil else {
            return answerRoleChange(id, false, "a role change is in progress; try again when it has finished")
        }
        if state.role != .primary { return answerRoleChange(id, true, "Secondary") }
        // New writes are refused from now on; those accepted finish first.
        roleChange = RoleChange(command: id, kind: .demotion, phase: .draining, previous: metadata.superblock, reason: nil)
        roleChangeProgress()
    }

    /// A demotion waiting for writes to drain goes on once none is left.
    mutating func roleChangeProgress() {
        guard let change = roleChange, change.isDemotion, case .draining = change.phase, writes.pendingWrites == 0 else { return }
        roleChange!.phase = .syncing
        guard state.hasDisk else { return demotionSynced(nil) }
        let token = newToken()
        pending[token] = .demotionSync
        emit(.syncLocal(token))
    }

    mutating func demotionSynced(_ failure: IOFailure?) {
        guard roleChange?.isDemotion == true else { return }
        if let failure {
            let change = roleChange!
            roleChange = nil
            emit(.roleChanged(state.role))
            return answerRoleChange(change.command, false, "cannot make the data durable before becoming Secondary: \(failure)")
        }
        metadata.superblock.flags.remove(.primaryIndicator)
        metadata.superblock.generation.recordRole(primary: false)
        roleChange!.phase = .persisting
        commitSuperblock(then: .roleChange)
    }

    mutating func roleChangePersisted(_ failure: IOFailure?) {
        guard let change = roleChange else { return }
        roleChange = nil
        if let failure {
            metadata.superblock.flags = change.previous.flags
            metadata.superblock.generation = change.previous.generation
            emit(.roleChanged(state.role))
            return answerRoleChange(change.command, false, "cannot write the metadata: \(failure)")
        }
        switch change.kind {
        case .promotion(let force):
            // Validated again: the peer may have changed its role, or the link gone, meanwhile.
            let effects: [NodeState.Effect]
            do {
                effects = try state.apply(.promote(force: force))
            } catch {
                metadata.superblock.flags = change.previous.flags
                metadata.superblock.generation = change.previous.generation
                commitSuperblock()
                return answerRoleChange(change.command, false, "\(error)")
            }
            log(.info, "role Primary" + (change.reason.map { " (\($0))" } ?? ""))
            if effects.contains(.newCurrentGeneration) && !change.newGeneration {
                // The peer went away while the promotion was being recorded: this Primary's writes
                // from now on are a new generation, durable before any of them is.
                metadata.superblock.generation.startNewCurrent(newUUID(), primary: true)
                log(.info, "new current generation \(hex(metadata.superblock.generation.current)) (the peer was lost during the promotion)")
                writes.generationPending = true
                commitSuperblock(then: .generationGate)
            }
            if !diskAttached, let report = session?.report {
                effectiveData = report.generation.currentIgnoringRole
                if force, let lost = diskFailure?.dataGeneration, !report.generation.includes(lost) {
                    // The operator goes on with the peer's data: the detached disk's newer data is given up.
                    log(.warning, "primary --force: going on with \(peerName)'s data; the detached disk's newer data (generation \(hex(lost))) is given up")
                    diskFailure?.dataGeneration = nil
                }
            }
            emit(.roleChanged(.primary))
            stateChanged()
            answerRoleChange(change.command, true, "Primary")
        case .demotion:
            _ = try? state.apply(.demote)
            effectiveData = nil
            log(.info, "role Secondary")
            emit(.roleChanged(.secondary))
            stateChanged()
            answerRoleChange(change.command, true, "Secondary")
        }
    }

    mutating func answerRoleChange(_ id: CommandID?, _ ok: Bool, _ message: String) {
        if let id {
            reply(id, ok, message)
        } else if !ok {
            log(.warning, "become-primary-on: \(message)")
        }
    }

    mutating func becomePrimaryOnStart(reason: String) {
        promote(nil, force: false, reason: reason)
    }

    /// After a local role or disk change: tell the peer, and start a sync the change makes
    /// possible (e.g. `primary --force` while the peer is Inconsistent).
    mutating func stateChanged() {
        guard let current = session, let report = current.report else { return }
        sendState()
        if current.resync == nil && state.replication == .established && current.decision?.strategy == .bothInconsistent
            && (state.disk == .inconsistent || report.disk == .inconsistent) {
            decideSync()
        }
    }

    // MARK: pause and resume

    mutating func pauseSync(_ id: CommandID, _ paused: Bool) {
        let node = configuration.node
        guard link.userPausedSync != paused else {
            return reply(id, true, paused ? "resync already paused on \(node)" : "resync is not paused on \(node)")
        }
        link.userPausedSync = paused
        send(.syncPause(paused: paused))
        updateSyncReplicationState()
        if !paused { pumpResync() }
        log(.info, paused ? "resync paused by the operator (pause-sync)" : "resync resumed by the operator (resume-sync)")
        let running = session?.resync != nil
        reply(id, true, paused
            ? (running ? "resync paused" : "no resync is running; the next one starts paused")
            : (running ? "resync resumed" : "resync no longer paused"))
    }

    // MARK: operator-requested resync

    /// `invalidate` (this node becomes SyncTarget) and `invalidate-remote` (SyncSource). `full`: the
    /// whole disk; otherwise only the blocks already marked out of sync on either side (after a verify).
    mutating func requestResync(_ id: CommandID, localIsSource: Bool, full: Bool) {
        let verb = localIsSource ? "invalidate-remote" : "invalidate"
        guard let current = session, current.report != nil, state.connection == .connected else {
            return reply(id, false, "\(verb) needs a connected peer (connection is \(state.connection.rawValue))")
        }
        guard state.replication == .established, current.resync == nil, current.verify == nil else {
            return reply(id, false, "\(verb): a resync or verify is running (\(state.replication.rawValue)); wait for it to finish")
        }
        let sourceDisk = localIsSource ? state.disk : state.peerDisk
        guard sourceDisk == .upToDate else {
            return reply(id, false, "\(verb): the \(localIsSource ? "local" : "peer's") disk is \(sourceDisk.rawValue); only UpToDate data can be the sync source")
        }
        let targetHasDisk = localIsSource ? state.peerHasDisk : state.hasDisk
        guard targetHasDisk else {
            return reply(id, false, "\(verb): the \(localIsSource ? "peer" : "local node") has no disk to resync (\(localIsSource ? state.peerDisk.rawValue : state.disk.rawValue))")
        }
        let targetRole = localIsSource ? state.peerRole : state.role
        if targetRole == .primary {
            return reply(id, false, "\(verb): the \(localIsSource ? "peer" : "local node") is Primary; make it Secondary first (a Primary's data cannot be overwritten under its users)")
        }
        send(.resyncRequest(senderIsSource: localIsSource, full: full))
        let scope = full ? "full resync" : "resync of the blocks marked out of sync (\(metadata.bitmap.outOfSyncCount) here)"
        log(.info, "\(verb) by the operator: \(scope) \(localIsSource ? "to" : "from") the peer")
        beginSync(source: localIsSource, full: full)
        reply(id, true, "\(scope) started as \(localIsSource ? "SyncSource" : "SyncTarget")")
    }

    /// `new-current-uuid [--clear-bitmap]`: a new data generation; with `--clear-bitmap` on fresh
    /// metadata, both nodes skip the initial sync (their disks must be identical, e.g. both empty).
    /// Connected, but the state exchange has not led to a sync decision yet.
    var handshakeInProgress: Bool { session != nil && session?.decision == nil }

    mutating func newCurrentGeneration(_ id: CommandID, clearBitmap: Bool) {
        guard diskAttached else { return reply(id, false, "new-current-uuid: no disk is attached (its metadata holds the generations)") }
        guard !handshakeInProgress else {
            return reply(id, false, "the connection to \(peerName) is being established; try again in a moment")
        }
        if clearBitmap {
            guard metadata.superblock.generation.current == GenerationIdentifiers.justCreated else {
                return reply(id, false, "new-current-uuid --clear-bitmap is only for fresh metadata (current generation is \(hex(metadata.superblock.generation.current)), not just created); use `repd invalidate` or `verify` instead")
            }
            if let report = session?.report, report.generation.current != GenerationIdentifiers.justCreated {
                return reply(id, false, "new-current-uuid --clear-bitmap: the peer's metadata is not fresh (generation \(hex(report.generation.current)))")
            }
            if session?.resync != nil { return reply(id, false, "new-current-uuid --clear-bitmap: a resync is running") }
            guard session?.report != nil else {
                return reply(id, false, "new-current-uuid --clear-bitmap needs the peer connected (both nodes up, `repd status` shows Connected): "
                    + "run it once, on one node, while connected; run apart on both nodes it would make unrelated generations")
            }
        }
        metadata.superblock.generation.startNewCurrent(newUUID(), primary: state.role == .primary)
        if clearBitmap {
            metadata.superblock.generation.bitmap = 0
            metadata.clearBitmap()
            metadata.superblock.flags.formUnion([.consistent, .wasUpToDate])
            _ = try? state.apply(.attach(.upToDate))
        }
        commitSuperblock()
        let current = hex(metadata.superblock.generation.current)
        log(.info, "new current generation \(current)\(clearBitmap ? " with a clear bitmap: the initial sync is skipped" : "")")
        if clearBitmap, session?.report != nil {
            // An empty resync from us makes the peer adopt the generation and become UpToDate. The
            // request goes before our new state, so that the peer does not decide a full sync first.
            send(.resyncRequest(senderIsSource: true, full: false))
            beginSync(source: true, full: false)
            sendState()
            return reply(id, true, "new current generation \(current); initial sync skipped, the peer becomes UpToDate")
        }
        sendState()
        reply(id, true, "new current generation \(current)"
            + (clearBitmap ? "; the peer still has fresh metadata: run the same on it, or it gets a full sync from here" : ""))
    }

    // MARK: connect, disconnect

    mutating func operatorDisconnect(_ id: CommandID) {
        guard configuration.peerNode != nil else { return reply(id, false, "\(configuration.resource) has no peer configured") }
        if link.standAlone { return reply(id, true, "already StandAlone") }
        goStandAlone(reason: "disconnected by the operator (`repd disconnect`)")
        if session == nil { _ = try? state.apply(.connection(.standAlone)) }
        reply(id, true, "disconnected; StandAlone until `repd connect \(configuration.resource)`")
    }

    mutating func operatorConnect(_ id: CommandID, discardMyData: Bool, dryRun: Bool) {
        guard configuration.peerNode != nil else { return reply(id, false, "\(configuration.resource) has no peer configured") }
        if dryRun { return reply(id, lastPeerPrediction(discardMyData: discardMyData) != nil, lastPeerPrediction(discardMyData: discardMyData) ?? "the peer has not been seen since this daemon started: nothing to predict from") }
        if state.connection == .connected {
            return reply(id, false, "already connected to \(peerName)" + (discardMyData ? "; --discard-my-data applies only to a connection that decides a split brain" : ""))
        }
        if discardMyData && state.role == .primary {
            return reply(id, false, "this node is Primary: make it Secondary first (`repd secondary \(configuration.resource)`), then connect with --discard-my-data")
        }
        link.discardMyData = discardMyData
        link.splitBrain = nil
        link.message = nil
        link.standAlone = false
        if state.connection == .standAlone { _ = try? state.apply(.connection(.connecting)) }
        emit(.resumeConnecting)
        log(.info, "connect by the operator\(discardMyData ? " with --discard-my-data: our changes are dropped if the connection finds a split brain" : "")")
        reply(id, true, "connecting to \(peerName)\(discardMyData ? " (this node's changes will be discarded in a split brain)" : "")")
    }

    /// What connecting would decide, from the peer's state as last seen.
    func lastPeerPrediction(discardMyData: Bool) -> String? {
        guard let report = link.lastPeerReport else { return nil }
        let local = localSyncView
        let remote = Self.syncView(of: report)
        let localResolves = configuration.node < peerName
        let decision = SyncDecider.decide(local: local, peer: remote, localResolves: localResolves)
        var lines = ["dry run, from \(peerName)'s state as last seen (\(report.role.rawValue)/\(report.disk.rawValue), generation \(generationText(report.generation)), \(report.outOfSyncBlocks) blocks changed):",
                     "  sync decision: \(decision.explanation)"]
        if let kind = SplitBrainKind(decision.strategy) {
            let resolution = SplitBrainResolver.resolve(
                kind, local: SplitBrainSide(node: configuration.node, view: local, discardMyData: discardMyData),
                peer: SplitBrainSide(node: peerName, view: remote, discardMyData: false),
                policies: configuration.splitBrainPolicies, localResolves: localResolves)
            lines.append("  split brain: \(resolution.decidedBy): \(resolution.outcome)")
            lines.append("  \(resolution.explanation)")
            if case .discardLocal = resolution.outcome {
                lines.append("  \(configuration.node) would resync \(resolution.fullSync ? "the whole disk" : "the union of both sides' changed blocks (\(local.outOfSyncBlocks) here, \(remote.outOfSyncBlocks) there)") from \(peerName)")
            }
        }
        lines.append("  (nothing was changed)")
        return lines.joined(separator: "\n")
    }
}

extension Engine {
    // MARK: one Primary at a time

    /// The peer wants to become Primary: agree unless this node is (or is becoming) Primary; of
    /// two promotions at the same instant, the node that resolves conflicts wins.
    mutating func receiveRoleRequest(primary: Bool) {
        guard primary, session != nil else { return }
        if configuration.allowTwoPrimaries {
            return send(.roleReply(granted: true, reason: ""))
        }
        if state.role == .primary || roleChange?.isDemotion == false {
            return send(.roleReply(granted: false, reason: "\(configuration.node) is Primary, and allow-two-primaries is not set in the net section"))
        }
        if let mine = session!.pendingRoleRequest {
            if session!.localResolves {
                return send(.roleReply(granted: false, reason: "\(configuration.node) is being promoted at the same moment and wins the tie (its name sorts first)"))
            }
            session!.pendingRoleRequest = nil
            answerRoleChange(mine.command, false, "refusing to become Primary: \(peerName) is being promoted at the same moment and wins the tie (its name sorts first)")
        }
        session!.peerPromotionGranted = true
        send(.roleReply(granted: true, reason: ""))
    }

    mutating func receiveRoleReply(granted: Bool, reason: String) {
        guard let pending = session?.pendingRoleRequest else { return }
        session!.pendingRoleRequest = nil
        guard granted else {
            return answerRoleChange(pending.command, false, "refusing to become Primary: \(peerName) does not agree: \(reason)")
        }
        promote(pending.command, force: pending.force, reason: pending.reason, agreed: true)
    }
}
