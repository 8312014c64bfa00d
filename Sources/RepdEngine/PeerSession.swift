import NIOCore
import PeerProtocol
import RepdCore

/// Blocks the peer has acknowledged whose durability there is not confirmed yet: a barrier (a
/// flush with a sequence of at least `threshold`) confirms them.
struct DurabilityEntry: Sendable {
    let threshold: UInt64
    let range: Range<UInt64>
    /// The application write (tracker id) whose activity-log extents stay hot until then, if any.
    var write: UInt64? = nil
    /// The disk whose activity log holds those extents.
    var activityLogEpoch: Int? = nil
}

/// A flush from the peer, waiting for the writes received before it to be done here.
struct PeerFlushWait: Sendable {
    let sequence: UInt64
    var waitingFor: Set<UInt64>
}

/// The connected peer and what is in flight with it. Everything here ends with the connection.
public struct PeerSession: Sendable {
    public let connection: ConnectionID
    public let peerNode: String
    /// This node resolves concurrent-write conflicts (the link's leader).
    public let localResolves: Bool
    /// The peer's state as last reported; nil until the first report.
    public internal(set) var report: PeerStateReport?
    /// Numbers writes and barriers on this connection.
    var nextSequence: UInt64 = 1
    var writesBySequence: [UInt64: UInt64] = [:]
    public internal(set) var decision: SyncDecision?
    /// Sync decisions on this connection so far (an attach decides again).
    public internal(set) var decisionCount = 0
    var peerBitmapDone = false
    public internal(set) var resync: ResyncState?
    public internal(set) var verify: VerifyState?
    /// The peer's operator paused resync (`pause-sync` there).
    public internal(set) var peerPausedSync = false
    /// Barriers sent and not acknowledged: sequence -> the client flush it belongs to, if any.
    var barriers: [UInt64: UInt64?] = [:]
    /// When the last barrier was sent (engine time); the engine's own barriers are paced by it.
    var lastBarrierAt: UInt64 = 0
    /// The peer acknowledged writes since the last tick: the application is still writing.
    var acknowledgedSinceTick = false
    /// `timeout`s the oldest unacknowledged write has waited so far (ko-count).
    var koStrikes = 0
    /// Acknowledged writes: out of sync if the link breaks before a barrier confirms them.
    var unconfirmed: [DurabilityEntry] = []
    var unconfirmedBytes = 0
    /// Resync data and mirrored writes: in sync once a barrier confirms them.
    var inSyncWhenDurable: [DurabilityEntry] = []
    /// Flushes from the peer waiting for earlier writes to be done here.
    var peerFlushWaits: [PeerFlushWait] = []
    /// SyncTarget: messages that arrived before the disk was recorded Inconsistent, in order.
    var deferredMessages: [PeerMessage]?
    /// A resync decided and waiting for its `before-resync-*` handler.
    public internal(set) var pendingSyncStart: (source: Bool, full: Bool)?
    /// Our promotion waits for the peer's consent (no allow-two-primaries).
    var pendingRoleRequest: PendingPromotion?
    /// We agreed to the peer's promotion; until its state says Primary, ours is refused.
    var peerPromotionGranted = false

    init(connection: ConnectionID, peerNode: String, localResolves: Bool) {
        self.connection = connection
        self.peerNode = peerNode
        self.localResolves = localResolves
    }

    mutating func takeSequence() -> UInt64 {
        defer { nextSequence += 1 }
        return nextSequence
    }

    // MARK: durability barriers

    var barrierInFlight: Bool { !barriers.isEmpty }
    var hasUnconfirmed: Bool { !unconfirmed.isEmpty || !inSyncWhenDurable.isEmpty || (resync?.awaitingDurabilityBytes ?? 0) > 0 }
    /// Bytes acknowledged by the peer and not yet confirmed durable there.
    var bytesAwaitingDurability: Int { unconfirmedBytes + (resync?.awaitingDurabilityBytes ?? 0) }

    mutating func awaitDurability(_ range: Range<UInt64>, threshold: UInt64, write: UInt64, activityLogEpoch: Int?) {
        unconfirmed.append(DurabilityEntry(threshold: threshold, range: range, write: write, activityLogEpoch: activityLogEpoch))
        unconfirmedBytes += range.count
        acknowledgedSinceTick = true
    }

    mutating func markInSyncWhenDurable(_ range: Range<UInt64>, threshold: UInt64) {
        inSyncWhenDurable.append(DurabilityEntry(threshold: threshold, range: range))
    }

    /// A block marked out of sync again must not be cleared by an older confirmation.
    mutating func forgetInSyncWhenDurable(overlapping range: Range<UInt64>) {
        guard !inSyncWhenDurable.isEmpty else { return }
        inSyncWhenDurable.removeAll { $0.range.overlaps(range) }
    }

    /// Takes a sequence number for a barrier (for a client flush, or the engine's own).
    mutating func sendBarrier(forFlush flush: UInt64?, now: UInt64) -> UInt64 {
        let sequence = takeSequence()
        barriers[sequence] = .some(flush)
        lastBarrierAt = now
        return sequence
    }

    mutating func barrierAcknowledged(_ sequence: UInt64) -> (flush: UInt64?, Void)? {
        guard let flush = barriers.removeValue(forKey: sequence) else { return nil }
        return (flush, ())
    }

    /// Everything covered by the barrier `sequence` is durable on the peer: returns the ranges to
    /// mark in sync, and the application writes confirmed.
    mutating func confirmDurable(through sequence: UInt64) -> (inSync: [Range<UInt64>], writes: [DurabilityEntry]) {
        var writes: [DurabilityEntry] = []
        if !unconfirmed.isEmpty {
            unconfirmed.removeAll { entry in
                guard entry.threshold <= sequence else { return false }
                writes.append(entry)
                return true
            }
            unconfirmedBytes = unconfirmed.reduce(0) { $0 + $1.range.count }
        }
        guard !inSyncWhenDurable.isEmpty else { return ([], writes) }
        var confirmed: [Range<UInt64>] = []
        inSyncWhenDurable.removeAll { entry in
            guard entry.threshold <= sequence else { return false }
            confirmed.append(entry.range)
            return true
        }
        return (confirmed, writes)
    }
}

extension Engine {
    // MARK: connection

    mutating func peerConnected(_ connection: ConnectionID, peerNode: String, localResolves: Bool) {
        if session != nil {
            log(.warning, "a second connection to the peer was reported; the first one is kept")
            emit(.dropConnection(connection, reason: "a connection is already established"))
            return
        }
        if let run = fence {
            // The fence decides first: a connection now could meet a peer that is being outdated,
            // or let a frozen node's held writes through before it is known which node wins.
            let why = run.phase == .running ? "the fence-peer handler is still running"
                : "I/O is frozen by fencing until `repd resume-io \(configuration.resource)`"
            emit(.dropConnection(connection, reason: "fencing: \(why)"))
            return
        }
        session = PeerSession(connection: connection, peerNode: peerNode, localResolves: localResolves)
        link.message = nil
        sendState()
    }

    mutating func peerLost(_ connection: ConnectionID, reason: String) {
        guard let lost = session, lost.connection == connection else { return }
        log(.warning, "lost the connection to the peer: \(reason)")
        if link.splitBrain == nil { link.message = "connection lost: \(reason)" }
        // DRBD's rule: a Primary that loses the peer's copy of the data (a disk that was not
        // Outdated) starts a new generation, so that its changes from now on are newer than
        // anything the peer holds; with fencing, the peer is fenced first (Fencing.swift).
        let peerHadData = [.inconsistent, .consistent, .upToDate].contains(state.peerDisk)
        let fencing = fencingNeeded(peerHadData: peerHadData)
        let freeze = fencing && configuration.fencing == .resourceAndStonith
        var heldWrites: [UInt64] = []
        var heldFlushes: [UInt64] = []
        // Writes the peer did not confirm as durable are out of sync; the clients keep their data.
        for entry in lost.unconfirmed {
            metadata.markOutOfSync(entry.range)
            // Marked now: the activity log no longer needs to cover it.
            releaseActivityLog(after: entry)
        }
        for op in tracker.awaitingPeer {
            // Resync transfers are still marked; verify requests changed nothing.
            if op.origin == .local { metadata.markOutOfSync(op.range) }
            tracker.markPeerDone(op.id)
            if case .localWrite(var write)? = operations[op.id] {
                write.peerDone = true
                write.peerLost = true
                write.replicated = false
                if freeze {
                    // Not acknowledged until the peer is fenced: if this node is the one fenced
                    // instead, the write fails rather than being lost after it was acknowledged.
                    write.held = true
                    heldWrites.append(op.id)
                }
                operations[op.id] = .localWrite(write)
                completeIfDone(op.id)
            }
        }
        for flushID in lost.barriers.values.compactMap({ $0 }) {
            writes.flushes[flushID]?.peerDone = true
            if freeze {
                writes.flushes[flushID]?.held = true
                heldFlushes.append(flushID)
            }
            if state.disk != .upToDate {
                // Only the peer held good data; this disk alone cannot make the writes durable.
                writes.flushes[flushID]?.failure = IOFailure(.io, "the connection to the UpToDate peer was lost before it flushed, and this disk is \(state.disk.rawValue)")
            }
            completeFlushIfDone(flushID)
        }
        // Resync reads, verify reads, digests and blocks for the peer finish locally; nobody waits for them.
        failPulls("the connection to the UpToDate peer was lost")
        failRemoteReads()
        let wasSyncing = lost.resync != nil
        session = nil
        if diskAttached && state.hasDisk {
            // The peer's writes that no barrier confirmed are in the page cache only: the peer may
            // be gone for good, and this copy is now the one to keep (found by the simulator,
            // seed 897: a Primary crashed, the survivor lost its writes in a later power loss).
            let token = newToken()
            pending[token] = .peerLossSync
            emit(.syncLocal(token))
        }
        if let pending = lost.pendingRoleRequest {
            answerRoleChange(pending.command, false, "the connection to \(peerName) was lost while it was asked to agree to the promotion; try again")
        }
        _ = try? state.apply(.connection(link.standAlone ? .standAlone : .connecting))
        if freeze {
            // The new generation waits for the fence: a node that is outdated instead keeps its
            // generation, and resyncs from its bitmap when the link is back.
            commitSuperblock()
            startFencing(reason: "lost the connection to \(peerName) while Primary (\(reason))", freeze: true,
                         heldWrites: heldWrites, heldFlushes: heldFlushes, newGenerationDue: true)
        } else if state.role == .primary && state.disk == .upToDate && peerHadData && !shuttingDown && link.splitBrain == nil {
            // From now on this node's data is newer than the peer's; writes wait until that is durable.
            metadata.superblock.generation.startNewCurrent(newUUID(), primary: true)
            log(.info, "new current generation \(hex(metadata.superblock.generation.current)) (Primary without its peer)")
            writes.generationPending = true
            commitSuperblock(then: .generationGate)
            if fencing {
                startFencing(reason: "lost the connection to \(peerName) while Primary (\(reason))", freeze: false,
                             heldWrites: [], heldFlushes: [], newGenerationDue: false)
            }
        } else {
            commitSuperblock()
        }
        if wasSyncing { log(.warning, "resync interrupted; it resumes from the bitmap when the peer is back") }
        if state.disk == .negotiating {
            attachingDisk.map { found in
                attachingDisk = nil
                awaitingAttachDecision = false
                if state.role == .primary {
                    // A Diskless Primary's new disk is older than the data it serves: without the
                    // peer to resync it, it cannot be used.
                    detachDisk(DiskFailure(cause: .attachInterrupted, at: unixTime,
                                           detail: "the connection was lost before the attach was negotiated; attach again once connected"))
                } else {
                    // The disk is taken as its metadata says; the next connection decides its resync.
                    _ = try? state.apply(.attach(found))
                }
            }
        }
        roleChangeProgress()
        if !diskAttached { noDataAccessible() }
    }

    mutating func peerMessage(_ message: PeerMessage) {
        switch message {
        case .roleRequest(let primary):
            receiveRoleRequest(primary: primary)
        case .roleReply(let granted, let reason):
            receiveRoleReply(granted: granted, reason: reason)
        case .fenceRequest, .fenceReply:
            // Only the fencing path carries these; on the replication link they mean nothing.
            log(.warning, "the peer sent \(message.type) on the replication link; ignored")
        case .state(let report):
            receiveState(report)
        case .write(let write):
            receiveWrite(write, origin: .write)
        case .writeAck(let sequence, let status):
            receiveWriteAck(sequence: sequence, status: status)
        case .receiveAck(let sequence):
            peerSentWrite(sequence: sequence)
        case .flush(let sequence):
            receiveFlush(sequence: sequence)
        case .flushAck(let sequence, let status):
            receiveFlushAck(sequence: sequence, status: status)
        case .bitmapPage(let index, let bytes):
            mergePeerBitmapPage(index: Int(index), bytes: bytes)
        case .bitmapDone:
            session?.peerBitmapDone = true
            pumpResync()
        case .syncStart(_, let total, let full):
            receiveSyncStart(totalBlocks: total, full: full)
        case .syncData(let offset, let payload):
            receiveSyncData(offset: offset, payload: payload)
        case .syncAck(let offset, let length, let status):
            receiveSyncAck(offset: offset, length: length, status: status)
        case .syncDone(let blocks):
            finishSyncTarget(blocks: blocks)
        case .checksumRequest(let offset, let length, let algorithm):
            receiveChecksumRequest(offset: offset, length: length, algorithm: algorithm)
        case .checksumReply(let offset, let length, let digest):
            receiveChecksumReply(offset: offset, length: length, digest: digest)
        case .syncPause(let paused):
            receiveSyncPause(paused)
        case .resyncRequest(let senderIsSource, let full):
            receiveResyncRequest(senderIsSource: senderIsSource, full: full)
        case .verifyNotice(let running, let blocks):
            receiveVerifyNotice(running: running, blocks: blocks)
        case .dataRequest(let id, let offset, let length):
            receiveDataRequest(id: id, offset: offset, length: length)
        case .dataReply(let id, let status, let payload):
            receiveDataReply(id: id, status: status, payload: payload)
        case .error(let reason):
            log(.warning, "the peer reports: \(reason)")
        case .hello, .authChallenge, .authResponse, .authResult, .chosen, .ping, .pingAck:
            break
        }
    }

    // MARK: state exchange and the sync decision

    func stateReport(negotiationReply: Bool = false) -> PeerStateReport {
        var flags: PeerStateReport.Flags = []
        if negotiationReply { flags.insert(.negotiationReply) }
        let sbFlags = metadata.superblock.flags
        if sbFlags.contains(.crashedPrimary) { flags.insert(.crashedPrimary) }
        if sbFlags.contains(.consistent) { flags.insert(.consistent) }
        if sbFlags.contains(.wasUpToDate) { flags.insert(.wasUpToDate) }
        if link.discardMyData { flags.insert(.discardMyData) }
        // Without a disk, the generation is that of the data the applications see (a Diskless
        // Primary's effective data), or none.
        let generation = diskAttached ? metadata.superblock.generation : GenerationIdentifiers(current: effectiveData ?? 0)
        return PeerStateReport(
            role: state.role, disk: state.disk, usableSize: configuration.usableSize, generation: generation,
            outOfSyncBlocks: UInt64(metadata.bitmap.outOfSyncCount), flags: flags,
            replicationProtocol: UInt8(ascii: configuration.replication.rawValue.unicodeScalars.first!),
            allowTwoPrimaries: configuration.allowTwoPrimaries)
    }

    /// Tells the peer our role, disk and generations (after any change of them).
    mutating func sendState() {
        guard session != nil else { return }
        send(.state(stateReport()))
    }

    mutating func receiveState(_ report: PeerStateReport) {
        guard session != nil else { return }
        let first = session!.report == nil
        if !diskAttached && state.role == .primary, let effective = effectiveData {
            if first && report.generation.currentIgnoringRole != effective {
                // The applications of this Diskless Primary saw newer data than the peer has.
                let reason = "this Diskless Primary serves data of generation \(hex(effective)), but \(peerName) has \(hex(report.generation.current)): "
                    + "connecting would serve older data; attach the disk that has it (`repd attach \(configuration.resource)`), or make this node Secondary"
                log(.error, "refusing the connection: \(reason)")
                link.message = "refused: \(reason)"
                send(.error(reason: reason))
                return goStandAlone(reason: reason)
            }
            if report.disk == .upToDate { effectiveData = report.generation.currentIgnoringRole }
        }
        let before = state
        let previousUsableSize = session!.report?.usableSize
        session!.report = report
        session!.peerPromotionGranted = false
        link.lastPeerReport = report
        updateDetachedDataAhead()
        _ = try? state.apply(.peer(role: report.role, disk: report.disk))
        if report.disk == .upToDate && !first && session!.resync == nil && state.disk == .upToDate { unfenceAfterResync() }
        peerDiskChanged(from: before, report: report)
        if !first {
            if awaitingAttachDecision {
                // Our attach waits for the peer's answer; other reports only update its state.
                if report.flags.contains(.negotiationReply) {
                    attachAnswered()
                } else if report.disk == .negotiating && before.peerDisk != .negotiating {
                    // Both nodes attached at once: each answers the other's attach and decides from
                    // the same two reports (found by the simulator, seed 173).
                    send(.state(stateReport(negotiationReply: true)))
                    attachAnswered()
                }
                return
            }
            if report.disk == .negotiating && before.peerDisk != .negotiating {
                return peerAttachedDisk(report)
            }
        }
        if !first && report.usableSize != previousUsableSize {
            // The peer's disk grew (`repd resize` there).
            growExportIfAgreed()
        }
        if first {
            _ = try? state.apply(.connection(.connected))
            if report.usableSize != configuration.usableSize {
                log(.warning, "the peer's disk is \(report.usableSize) bytes, ours \(configuration.usableSize): the smaller size is replicated")
            }
            exportSize = min(configuration.usableSize, report.usableSize)
            log(.info, "connected: peer \(session!.peerNode) is \(report.role.rawValue)/\(report.disk.rawValue), protocol \(configuration.replication.rawValue)")
            decideSync()
        } else if session!.resync == nil && state.replication == .established && session!.decision?.strategy == .bothInconsistent
                    && (state.disk == .inconsistent || report.disk == .inconsistent) {
            // Both were Inconsistent and one side was forced UpToDate: now there is a sync source.
            // (Only then: a report sent before the peer saw the end of a resync still says
            // Inconsistent, and must not start another; found by the simulator, seed 7864.)
            decideSync()
        }
    }

    var localSyncView: SyncView {
        SyncView(generation: metadata.superblock.generation, disk: state.disk, role: state.role,
                 crashedPrimary: metadata.superblock.flags.contains(.crashedPrimary),
                 outOfSyncBlocks: UInt64(metadata.bitmap.outOfSyncCount))
    }

    static func syncView(of report: PeerStateReport) -> SyncView {
        var disk = report.disk
        if disk == .negotiating {
            // A disk being attached counts as what its metadata says (DRBD's "real" disk state).
            disk = !report.flags.contains(.consistent) ? .inconsistent : report.flags.contains(.wasUpToDate) ? .consistent : .outdated
        }
        return SyncView(generation: report.generation, disk: disk, role: report.role,
                        crashedPrimary: report.flags.contains(.crashedPrimary), outOfSyncBlocks: report.outOfSyncBlocks)
    }

    /// The peer's disk went (Failed, Diskless) or came back: what this node's disk must now track.
    mutating func peerDiskChanged(from before: NodeState, report: PeerStateReport) {
        let lost = before.peerHasDisk && !state.peerHasDisk
        if lost {
            log(.warning, "\(peerName)'s disk is \(report.disk.rawValue): from now on its writes and ours are marked out of sync here, for its next attach")
            // Writes it acknowledged but did not confirm durable may be lost with its disk.
            if let unconfirmed = session?.unconfirmed {
                session!.unconfirmed.removeAll()
                session!.unconfirmedBytes = 0
                for entry in unconfirmed {
                    metadata.markOutOfSync(entry.range)
                    releaseActivityLog(after: entry)
                }
            }
            session?.inSyncWhenDurable.removeAll()
            endSyncWithoutLocalDisk()
        }
        startGenerationWithoutPeerDisk()
        if !before.servedByPeer && state.servedByPeer { resumeSuspended() }
        if before.servedByPeer && !state.servedByPeer && !diskAttached { noDataAccessible() }
    }

    /// DRBD's rule: with a Primary on either side, the data moves on without the peer's disk; a
    /// new generation marks where (once: a bitmap generation already does). Checked when the peer's
    /// disk goes and when this disk becomes UpToDate (found by the simulator, seed 8526: a disk
    /// confirmed UpToDate by a Diskless Primary took its writes without a new generation, and the
    /// Primary's stale disk, attached later, won the resync).
    mutating func startGenerationWithoutPeerDisk() {
        guard !state.peerHasDisk, state.disk == .upToDate, state.role == .primary || state.peerRole == .primary,
              metadata.superblock.generation.bitmap == 0, !writes.generationPending, state.peerDisk != .negotiating,
              state.connection == .connected else { return }
        metadata.superblock.generation.startNewCurrent(newUUID(), primary: state.role == .primary)
        log(.info, "new current generation \(hex(metadata.superblock.generation.current)) (\(peerName) has no disk)")
        writes.generationPending = true
        commitSuperblock(then: .generationGate)
        sendState()
    }

    /// Which node attached a disk, when the decision follows an attach rather than a connect.
    enum Attacher { case local, peer }

    /// - Parameter attacher: the node that attached a disk while connected. An attaching Primary
    ///   was Diskless and served by the other node: its applications use that node's data, so its
    ///   new disk only ever receives (no rr-conflict, no split brain to resolve).
    mutating func decideSync(attacher: Attacher? = nil) {
        guard let current = session, let report = current.report else { return }
        let local = localSyncView
        let remote = Self.syncView(of: report)
        var decision = SyncDecider.decide(local: local, peer: remote, localResolves: current.localResolves)
        if let attacher, (attacher == .local ? state.role : report.role) == .primary,
           (attacher == .local ? report.disk : state.disk) == .upToDate {
            decision = Self.attachedByPrimary(decision, attacherIsLocal: attacher == .local,
                                              attacherName: attacher == .local ? configuration.node : peerName,
                                              otherName: attacher == .local ? peerName : configuration.node)
        }
        let afterAttach = attacher == .local
        session!.decision = decision
        session!.decisionCount += 1
        log(.info, "sync decision: \(decision)")
        // --discard-my-data applies to this handshake only.
        let discardMyData = link.discardMyData
        link.discardMyData = false
        switch decision.strategy {
        case .noSync, .becomeSyncSource:
            // A Diskless Primary peer serving our current generation confirms it as well: its
            // applications see exactly this data (DRBD's effective data generation).
            let servedByUs = decision.rule == SyncDecider.noDiskRule && report.role == .primary
                && report.generation.current != 0 && report.generation.currentIgnoringRole == metadata.superblock.generation.currentIgnoringRole
            if (state.disk == .consistent || state.disk == .outdated) && (decision.rule != SyncDecider.noDiskRule || servedByUs) {
                // The peer confirms our data is the newest generation (an Outdated disk that the
                // peer has nothing newer for is as current as the peer's).
                _ = try? state.apply(.attach(.upToDate))
                metadata.superblock.flags.formUnion([.consistent, .wasUpToDate])
                sendState()
                startGenerationWithoutPeerDisk()
            } else if decision.rule == SyncDecider.noDiskRule {
                // A Diskless peer that became Primary while the link was down (its role change
                // never arrived) writes through us from now on: the same new generation as when
                // its role change arrives while connected (seed 6496).
                startGenerationWithoutPeerDisk()
            }
        default:
            break
        }
        if let corrected = decision.correctedLocal, corrected != metadata.superblock.generation {
            // Some rules repair the identifiers of an interrupted resync before comparing.
            metadata.superblock.generation = corrected
            commitSuperblock()
        }
        switch decision.strategy {
        case .noSync, .bothInconsistent:
            state.replication = .established
            if case .noSync = decision.strategy {
                if metadata.bitmap.outOfSyncCount > 0 {
                    // As DRBD: the bits stay (a failed write, a verify found them); which copy is
                    // right is the operator's call.
                    log(.warning, "no resync, but \(metadata.bitmap.outOfSyncCount) blocks are marked out of sync here: run `repd invalidate-remote --reset-bitmap=no \(configuration.resource)` on the node whose data is right")
                }
                if decision.rule != SyncDecider.noDiskRule {
                    metadata.superblock.generation.clearBitmapUUID()
                    metadata.superblock.flags.remove(.crashedPrimary)
                    commitSuperblock()
                }
            }
            becomePrimaryIfPending()
            resumeSuspended()
        case .becomeSyncSource(let full), .becomeSyncTarget(let full):
            let source: Bool
            if case .becomeSyncSource = decision.strategy { source = true } else { source = false }
            if !source && state.role == .primary && !afterAttach && !checkRRConflict(decision.strategy) { return }
            beginSync(source: source, full: full)
        case .splitBrain, .splitBrainUnresolvable:
            handleSplitBrain(decision, local: local, remote: remote, report: report, discardMyData: discardMyData)
        case .unrelatedData:
            let reason = "\(decision); the nodes disconnect (StandAlone) until an operator decides which data to keep"
            log(.error, "split brain or unrelated data detected: \(reason)")
            link.message = "split brain: \(decision.explanation)"
            send(.error(reason: "unrelated data: \(decision.explanation)"))
            goStandAlone(reason: "split brain: \(decision.explanation)")
        }
    }

    /// A Primary that attaches a disk keeps the data its applications see, the other node's: its
    /// disk becomes SyncTarget (full, unless the generations already make it a bitmap SyncTarget,
    /// or there is nothing to sync). Both nodes apply this to the same two reports, so they agree
    /// (found by the simulator, seed 1584: the attached disk's stale data won a split brain).
    static func attachedByPrimary(_ decision: SyncDecision, attacherIsLocal: Bool, attacherName: String, otherName: String) -> SyncDecision {
        switch decision.strategy {
        case .noSync: return decision
        case .becomeSyncTarget where attacherIsLocal: return decision
        case .becomeSyncSource where !attacherIsLocal: return decision
        default:
            var override = decision
            override.strategy = attacherIsLocal ? .becomeSyncTarget(full: true) : .becomeSyncSource(full: true)
            override.correctedLocal = nil
            override.correctedPeer = nil
            override.explanation = "\(attacherName) is Primary and attached a disk: its applications use \(otherName)'s data, "
                + "so the new disk receives all of it (full resync; the generations alone said: \(decision))"
            return override
        }
    }

    mutating func goStandAlone(reason: String) {
        link.standAlone = true
        emit(.goStandAlone(reason: reason))
    }

    // MARK: the peer's writes

    enum PeerWriteOrigin: Sendable, Hashable {
        case write
        case resync
        /// Blocks this node pulled for its applications (no acknowledgement is due).
        case pull(requestID: UInt64)
    }

    mutating func receiveWrite(_ write: PeerWrite, origin: PeerWriteOrigin) {
        // A hostile or broken peer may name any offset: never let the end overflow.
        let (end, overflow) = write.offset.addingReportingOverflow(UInt64(write.length))
        if configuration.replication == .B && origin == .write {
            send(.receiveAck(sequence: write.sequence))
        }
        guard !overflow, end <= configuration.usableSize, diskAttached,
              write.kind != .data || write.payload?.readableBytes == Int(write.length) else {
            if !diskAttached && !overflow && end <= configuration.usableSize {
                // No disk here (it just went): the peer marks the blocks for our next attach.
                log(.info, "no disk for the peer's write at \(write.offset)+\(write.length); the peer keeps it marked")
            } else {
                log(.error, "the peer sent a write the local disk cannot take (\(write.offset)+\(write.length)); refused")
            }
            switch origin {
            case .resync: send(.syncAck(offset: write.offset, length: write.length, status: 28))
            case .write: send(.writeAck(sequence: write.sequence, status: 28))
            case .pull(let requestID): pulled(requestID, ok: false)
            }
            return
        }
        let range = write.offset..<end
        counters.receivedBytes += UInt64(write.kind == .data ? write.length : 0)
        if origin == .resync { session?.resync?.movedBytes += UInt64(write.length) }
        var segments = [range]
        if case .pull = origin, session?.peerBitmapDone == true {
            // Blocks the resync brought already, or that were in sync all along (the application
            // may have written them since), are not overwritten with this older copy. (Until the
            // source's bitmap is merged every block is pulled before it is written.)
            segments = outOfSyncSegments(range)
        }
        if origin == .write, session?.verify?.source == true { session!.verify!.peerWrote(range) }
        if origin == .write { crossResyncTransfers(range) }
        if origin == .write {
            let overlaps = tracker.unacknowledgedLocalOverlaps(range)
            if !overlaps.isEmpty {
                counters.conflicts += 1
                if session?.localResolves == true {
                    segments = range.subtracting(overlaps)
                    log(.info, "concurrent write conflict at \(range.lowerBound)+\(range.count): this node resolves; our data kept for \(overlaps.map { "\($0.lowerBound)+\($0.count)" }.joined(separator: ","))")
                } else {
                    log(.info, "concurrent write conflict at \(range.lowerBound)+\(range.count): the peer resolves; its data is applied after ours")
                }
            }
        }
        // A Diskless peer's write: this disk is the only copy. Its blocks are out of sync for the
        // peer's next attach, and the activity log covers them until the bits are on disk.
        let onlyCopy = origin == .write && !state.peerHasDisk
        if onlyCopy { metadata.markOutOfSync(range) }
        let (id, mayStart) = tracker.admit(range, origin: .peer, peerDone: true)
        operations[id] = .peerApply(PeerApply(sequence: write.sequence, range: range, segments: segments, kind: write.kind, fua: write.fua,
                                              noHole: write.noHole, payload: write.payload, origin: origin, onlyCopy: onlyCopy))
        if mayStart { startPeerApply(id) }
    }

    mutating func startPeerApply(_ id: UInt64) {
        guard case .peerApply(var apply)? = operations[id] else { return }
        guard diskAttached else {
            return peerApplyFinished(id, apply, IOFailure(.io, "no disk"))
        }
        if apply.onlyCopy && apply.activityLogEpoch == nil {
            if writes.generationPending {
                // The new generation (the peer lost its disk) must be durable before its writes land.
                writes.gatedApplies.append(id)
                return
            }
            guard metadata.activityLog.begin(ActivityLog.extents(of: apply.range)) else {
                metadata.activityLogWaitingApplies.append(id)
                driveActivityLog()
                return
            }
            apply.activityLogEpoch = metadata.activityLogEpoch
            operations[id] = .peerApply(apply)
        }
        let token = newToken()
        pending[token] = .tracked(id)
        emit(.writeLocal(token, LocalWrite(range: apply.range, segments: apply.segments, kind: apply.kind, fua: apply.fua,
                                           noHole: apply.noHole, fastZero: false, payload: apply.payload, replicated: true)))
    }

    mutating func peerApplyFinished(_ id: UInt64, _ apply: PeerApply, _ failure: IOFailure?) {
        operations[id] = nil
        if apply.activityLogEpoch == metadata.activityLogEpoch {
            metadata.activityLog.end(ActivityLog.extents(of: apply.range))
            if metadata.activityLog.hasQueuedExtents { driveActivityLog() }
        }
        if let failure {
            let detaches = failureDetaches(failure)
            if diskAttached { log(.error, "writing the peer's data at \(apply.range.lowerBound)+\(apply.range.count): \(failure)") }
            // The peer has data this disk may lack (or hold only in part).
            markOutOfSync(apply.range)
            if detaches {
                localIOFailed(failure, operation: "write of the peer's data", offset: apply.range.lowerBound)
            } else {
                writes.localWriteFailed(apply.range)
            }
        } else {
            for segment in apply.segments { writes.localWriteSucceeded(segment) }
        }
        let ok = failure == nil
        switch apply.origin {
        case .pull(let requestID):
            releaseAfterLocalDone(id)
            pulled(requestID, ok: ok)
        case .write, .resync:
            if ok && !apply.onlyCopy {
                // The peer's data is on our disk: these blocks are in sync.
                metadata.markInSync(apply.range)
                if apply.origin == .resync { session?.resync?.doneBlocks += UInt64(apply.range.count) / Geometry.blockSize }
            }
            // Acknowledge before releasing writes that waited for this one (see WriteConflictTracker).
            let status: UInt32 = ok ? 0 : 5
            if apply.origin == .resync {
                send(.syncAck(offset: apply.range.lowerBound, length: UInt32(apply.range.count), status: status))
            } else {
                send(.writeAck(sequence: apply.sequence, status: status))
            }
            releaseAfterLocalDone(id)
        }
        peerApplyDone(id)
    }

    /// A flush (durability barrier) from the peer: sync once every write received before it is done.
    mutating func receiveFlush(sequence: UInt64) {
        guard let connection = session?.connection else { return }
        guard diskAttached else {
            // No disk: nothing of the peer's is here to make durable (it marks what we miss).
            return send(.flushAck(sequence: sequence, status: 0))
        }
        var waiting = Set<UInt64>()
        for (id, op) in operations { if case .peerApply = op { waiting.insert(id) } }
        if waiting.isEmpty {
            let token = newToken()
            pending[token] = .peerFlushSync(sequence: sequence, connection: connection)
            emit(.syncLocal(token))
        } else {
            session!.peerFlushWaits.append(PeerFlushWait(sequence: sequence, waitingFor: waiting))
        }
    }

    /// A peer write finished: flushes waiting for it may go on.
    mutating func peerApplyDone(_ id: UInt64) {
        guard let current = session, !current.peerFlushWaits.isEmpty else { return }
        var waits = current.peerFlushWaits
        for index in waits.indices { waits[index].waitingFor.remove(id) }
        while let first = waits.first, first.waitingFor.isEmpty {
            waits.removeFirst()
            guard diskAttached else {
                // The disk went: the peer marks what we miss.
                send(.flushAck(sequence: first.sequence, status: 0))
                continue
            }
            let token = newToken()
            pending[token] = .peerFlushSync(sequence: first.sequence, connection: current.connection)
            emit(.syncLocal(token))
        }
        session!.peerFlushWaits = waits
    }

    /// `become-primary-on` waits for this moment: connected, in sync, our disk UpToDate.
    mutating func becomePrimaryIfPending() {
        guard link.pendingBecomePrimary, state.disk == .upToDate, state.replication == .established else { return }
        link.pendingBecomePrimary = false
        link.becomePrimaryDeadline = nil
        becomePrimaryOnStart(reason: "become-primary-on, connected and in sync")
    }
}

/// A write received from the peer (application write, resync data or pulled blocks), waiting for
/// or doing its local I/O.
struct PeerApply: Sendable {
    let sequence: UInt64
    let range: Range<UInt64>
    /// The parts to write: all of `range` unless a conflict resolution skipped some.
    let segments: [Range<UInt64>]
    let kind: PeerWrite.Kind
    let fua: Bool
    let noHole: Bool
    let payload: ByteBuffer?
    let origin: Engine.PeerWriteOrigin
    /// The peer has no disk: this is the only copy (marked out of sync, held in the activity log).
    var onlyCopy = false
    /// The activity log (of that disk) holds the write's extents.
    var activityLogEpoch: Int? = nil
}
