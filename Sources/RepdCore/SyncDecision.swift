/// What one side brings to the decision.
public struct SyncView: Sendable, Hashable {
    public var generation: GenerationIdentifiers
    /// The disk state as the handshake should see it. A disk that is still attaching
    /// (`negotiating`) must be passed as the state the attach will end in, as DRBD does with the
    /// peer's "real" disk state; anything below `inconsistent` counts as no disk.
    public var disk: DiskState
    public var role: Role
    /// Metadata said it was Primary and stopped without `down` (its activity-log extents must be
    /// resynced).
    public var crashedPrimary: Bool
    /// Bits set in its bitmap.
    public var outOfSyncBlocks: UInt64

    public init(
        generation: GenerationIdentifiers,
        disk: DiskState,
        role: Role = .secondary,
        crashedPrimary: Bool = false,
        outOfSyncBlocks: UInt64 = 0
    ) {
        self.generation = generation
        self.disk = disk
        self.role = role
        self.crashedPrimary = crashedPrimary
        self.outOfSyncBlocks = outOfSyncBlocks
    }

    /// Whether this side has a disk that takes part in a resync.
    var hasUsableDisk: Bool { disk >= .inconsistent && disk != .unknown }
}

public enum SyncStrategy: Sendable, Hashable, CustomStringConvertible {
    /// Identical data generations.
    case noSync
    /// Local -> peer; `full` = every block, else the bitmap (union of both bitmaps).
    case becomeSyncSource(full: Bool)
    case becomeSyncTarget(full: Bool)
    /// Both changed since they last agreed; the after-split-brain policies decide.
    case splitBrain
    /// DRBD's -100: the histories are related but no bitmap covers the changes of both sides.
    case splitBrainUnresolvable
    /// No common ancestor at all.
    case unrelatedData
    /// Neither has good data: wait for an operator (`primary --force`).
    case bothInconsistent

    public var description: String {
        switch self {
        case .noSync: return "no resync"
        case .becomeSyncSource(let full): return full ? "SyncSource (full)" : "SyncSource (bitmap)"
        case .becomeSyncTarget(let full): return full ? "SyncTarget (full)" : "SyncTarget (bitmap)"
        case .splitBrain: return "split brain"
        case .splitBrainUnresolvable: return "split brain (unresolvable)"
        case .unrelatedData: return "unrelated data"
        case .bothInconsistent: return "both Inconsistent"
        }
    }

    /// The same outcome seen from the peer: source and target swap, everything else stays.
    public var mirrored: SyncStrategy {
        switch self {
        case .becomeSyncSource(let full): return .becomeSyncTarget(full: full)
        case .becomeSyncTarget(let full): return .becomeSyncSource(full: full)
        default: return self
        }
    }

    /// Whether a resync runs and every block is sent.
    public var isFullSync: Bool {
        switch self {
        case .becomeSyncSource(let full), .becomeSyncTarget(let full): return full
        default: return false
        }
    }

    /// The replication state the connection enters after the handshake (DRBD 9 names): the
    /// bitmap exchange before a resync, `Established` without one, nil when the connection is
    /// dropped unless a split-brain policy resolves it (the operator then sees `StandAlone`).
    public var replicationStateAfterHandshake: ReplicationState? {
        switch self {
        case .noSync, .bothInconsistent: return .established
        case .becomeSyncSource: return .wfBitmapSource
        case .becomeSyncTarget: return .wfBitmapTarget
        case .splitBrain, .splitBrainUnresolvable, .unrelatedData: return nil
        }
    }
}

public struct SyncDecision: Sendable, Hashable, CustomStringConvertible {
    public var strategy: SyncStrategy
    /// DRBD 8.4's `drbd_uuid_compare` rule number (10 ... 100), or 5 (repd only) when one side
    /// has no disk and no comparison is made. Disk-state overrides keep the number of the
    /// generation rule that matched, as DRBD logs it.
    public var rule: Int
    /// One sentence an operator can act on.
    public var explanation: String
    /// Rules 34 and 71 find that this node's own identifiers lag behind a resync that already
    /// happened (DRBD corrects them in place): the identifiers to store before the resync starts.
    public var correctedLocal: GenerationIdentifiers?
    /// Rules 35 and 51: the same correction applied to our copy of the peer's identifiers (the
    /// peer corrects its own when it runs the decision).
    public var correctedPeer: GenerationIdentifiers?

    public init(
        strategy: SyncStrategy,
        rule: Int,
        explanation: String,
        correctedLocal: GenerationIdentifiers? = nil,
        correctedPeer: GenerationIdentifiers? = nil
    ) {
        self.strategy = strategy
        self.rule = rule
        self.explanation = explanation
        self.correctedLocal = correctedLocal
        self.correctedPeer = correctedPeer
    }

    /// The strategy followed by the explanation (once, if the explanation already names it).
    public var description: String {
        let name = strategy.description
        if explanation.lowercased().hasPrefix(name.lowercased()) { return explanation }
        return "\(name): \(explanation)"
    }
}

public enum SyncDecider {
    /// The rule number repd reports when one side has no usable disk (DRBD runs no handshake).
    public static let noDiskRule = 5

    /// DRBD's uuid compare plus the disk-state preconditions (Inconsistent vs UpToDate, both
    /// Inconsistent, Diskless), and the crashed-primary tie-break for equal UUIDs (the crashed
    /// primary's activity-log extents become the sync source's). `localResolves` is the
    /// deterministic per-connection tie-breaker (the caller passes whether this node's name sorts
    /// first); it is used where DRBD uses RESOLVE_CONFLICTS (both crashed primaries with equal
    /// UUIDs): the resolving node becomes the SyncTarget.
    ///
    /// Order, as in DRBD 8.4's `drbd_sync_handshake`: no disk on either side -> no handshake;
    /// the generation rules 10...100; unrelated data aborts whatever the disk states; both
    /// Inconsistent -> wait for an operator; exactly one side Inconsistent -> it becomes the
    /// SyncTarget (full if the generations asked for a full sync or found an unresolvable split
    /// brain, else bitmap-based); otherwise the generations decide.
    ///
    /// The caller still applies the policies this function leaves out: `after-sb-*` for
    /// `.splitBrain` (and `.splitBrainUnresolvable` with `always-asbp`), `--discard-my-data`, and
    /// `rr-conflict` when a Primary with good data would become SyncTarget.
    public static func decide(local: SyncView, peer: SyncView, localResolves: Bool) -> SyncDecision {
        guard local.hasUsableDisk, peer.hasUsableDisk else {
            let (subject, disk) = local.hasUsableDisk ? ("the peer", peer.disk) : ("this node", local.disk)
            return SyncDecision(
                strategy: .noSync, rule: noDiskRule,
                explanation: "\(subject) has no disk that can take part in a resync (\(disk.rawValue)): nothing to "
                    + "resync; a node without a disk reads and writes through its peer (rule \(noDiskRule), repd)")
        }

        let found = compare(local: local, peer: peer, localResolves: localResolves)
        var decision = SyncDecision(
            strategy: found.strategy, rule: found.rule, explanation: found.explanation,
            correctedLocal: found.correctedLocal, correctedPeer: found.correctedPeer)

        if found.strategy == .unrelatedData {
            return decision
        }
        if local.disk == .inconsistent && peer.disk == .inconsistent {
            decision.strategy = .bothInconsistent
            decision.explanation = "both disks are Inconsistent, so neither can be a sync source: run "
                + "`repd primary --force` on the node whose data is to be kept (rule \(found.rule): \(found.finding))"
            return decision
        }
        let localInconsistentOnly = local.disk == .inconsistent && peer.disk > .inconsistent
        let peerInconsistentOnly = peer.disk == .inconsistent && local.disk > .inconsistent
        if localInconsistentOnly || peerInconsistentOnly {
            let full = found.strategy.isFullSync || found.strategy == .splitBrainUnresolvable
            let kind = full ? "full" : "bitmap-based"
            if localInconsistentOnly {
                decision.strategy = .becomeSyncTarget(full: full)
                decision.explanation = "our disk is Inconsistent and the peer's is \(peer.disk.rawValue): "
                    + "\(kind) resync from the peer (rule \(found.rule): \(found.finding))"
            } else {
                decision.strategy = .becomeSyncSource(full: full)
                decision.explanation = "the peer's disk is Inconsistent and ours is \(local.disk.rawValue): "
                    + "\(kind) resync from us (rule \(found.rule): \(found.finding))"
            }
        }
        return decision
    }

    // MARK: - Generation rules (DRBD 8.4 drbd_uuid_compare)

    private struct Finding {
        var strategy: SyncStrategy
        var rule: Int
        /// What the identifiers showed, as a clause (used when disk states override the outcome).
        var finding: String
        /// The full sentence for the operator.
        var explanation: String
        var correctedLocal: GenerationIdentifiers? = nil
        var correctedPeer: GenerationIdentifiers? = nil
    }

    private static func masked(_ value: UInt64) -> UInt64 { value & ~1 }

    private static func hex(_ value: UInt64) -> String { GenerationIdentifiers.text(value) }

    private static func compare(local: SyncView, peer: SyncView, localResolves: Bool) -> Finding {
        let me = local.generation
        let other = peer.generation
        let myCurrent = me.currentIgnoringRole
        let peerCurrent = other.currentIgnoringRole

        // Rules 10-30: fresh metadata on one or both sides.
        if me.isJustCreated && other.isJustCreated {
            let finding = "both disks were just created and never held data"
            return Finding(
                strategy: .noSync, rule: 10, finding: finding,
                explanation: "\(finding): no resync; promote one node with `repd primary --force`, or skip "
                    + "the initial sync with `new-current-uuid --clear-bitmap` (rule 10)")
        }
        if me.isJustCreated {
            let finding = "our disk was just created, the peer's holds data"
            return Finding(
                strategy: .becomeSyncTarget(full: true), rule: 20, finding: finding,
                explanation: "\(finding): full resync from the peer (rule 20)")
        }
        if other.isJustCreated {
            let finding = "the peer's disk was just created, ours holds data"
            return Finding(
                strategy: .becomeSyncSource(full: true), rule: 30, finding: finding,
                explanation: "\(finding): full resync from us (rule 30)")
        }

        // Rules 34-40: the same current generation on both sides.
        if myCurrent == peerCurrent {
            if other.bitmap == 0 && me.bitmap != 0 {
                if masked(me.bitmap) == masked(other.historyEntry(0))
                    && masked(me.historyEntry(0)) == masked(other.historyEntry(1)) {
                    var corrected = me
                    corrected.clearBitmapUUID()
                    let finding = "we were SyncSource and missed the end of that resync (the peer already "
                        + "moved our bitmap UUID into its history)"
                    return Finding(
                        strategy: .becomeSyncSource(full: false), rule: 34, finding: finding,
                        explanation: "\(finding): our bitmap UUID moves to history and the bits still set are "
                            + "resynced from us (rule 34)",
                        correctedLocal: corrected)
                }
                let finding = "same generation, but we still track changes the peer has not received "
                    + "(the peer did not record the sync UUID)"
                return Finding(
                    strategy: .becomeSyncSource(full: false), rule: 36, finding: finding,
                    explanation: "\(finding): bitmap-based resync from us (rule 36)")
            }
            if me.bitmap == 0 && other.bitmap != 0 {
                if masked(me.historyEntry(0)) == masked(other.bitmap)
                    && masked(me.historyEntry(1)) == masked(other.historyEntry(0)) {
                    var corrected = other
                    corrected.clearBitmapUUID()
                    let finding = "we were SyncTarget and the peer missed the end of that resync"
                    return Finding(
                        strategy: .becomeSyncTarget(full: false), rule: 35, finding: finding,
                        explanation: "\(finding): the peer's bitmap UUID goes to its history and the bits "
                            + "still set are resynced from the peer (rule 35)",
                        correctedPeer: corrected)
                }
                let finding = "same generation, but the peer still tracks changes we have not received "
                    + "(we did not record the sync UUID)"
                return Finding(
                    strategy: .becomeSyncTarget(full: false), rule: 37, finding: finding,
                    explanation: "\(finding): bitmap-based resync from the peer (rule 37)")
            }
            return crashedPrimaryTieBreak(local: local, peer: peer, localResolves: localResolves)
        }

        // Rule 50: we hold the generation the peer's bitmap starts from.
        if myCurrent == other.bitmapIgnoringRole {
            let finding = "our current UUID is the peer's bitmap UUID: we missed the peer's changes, "
                + "which its bitmap recorded"
            return Finding(
                strategy: .becomeSyncTarget(full: false), rule: 50, finding: finding,
                explanation: "\(finding); bitmap-based resync from the peer (rule 50)")
        }
        // Rule 51: the peer stamped a sync UUID that never reached us; undo it on our copy.
        let peerNewestHistory = masked(other.historyEntry(0))
        if myCurrent == peerNewestHistory
            && peerNewestHistory &+ GenerationIdentifiers.syncUUIDOffset == other.bitmapIgnoringRole {
            var corrected = other
            corrected.bitmap = other.historyEntry(0)
            corrected.history = GenerationIdentifiers.normalised([other.historyEntry(1), other.historyEntry(1)])
            let finding = "the peer started a resync to us whose sync UUID never arrived"
            return Finding(
                strategy: .becomeSyncTarget(full: false), rule: 51, finding: finding,
                explanation: "\(finding): that start is undone and the resync from the peer's bitmap runs again (rule 51)",
                correctedPeer: corrected)
        }
        // Rule 60: we hold an older generation of the peer's.
        if other.history.contains(where: { masked($0) == myCurrent }) {
            let finding = "our current UUID is in the peer's history: the peer moved on further than a bitmap covers"
            return Finding(
                strategy: .becomeSyncTarget(full: true), rule: 60, finding: finding,
                explanation: "\(finding); full resync from the peer (rule 60)")
        }
        // Rule 70: the peer holds the generation our bitmap starts from.
        if me.bitmapIgnoringRole == peerCurrent {
            let finding = "the peer's current UUID is our bitmap UUID: the peer missed our changes, "
                + "which our bitmap recorded"
            return Finding(
                strategy: .becomeSyncSource(full: false), rule: 70, finding: finding,
                explanation: "\(finding); bitmap-based resync from us (rule 70)")
        }
        // Rule 71: we stamped a sync UUID that never reached the peer; undo it on ours.
        let myNewestHistory = masked(me.historyEntry(0))
        if myNewestHistory == peerCurrent
            && myNewestHistory &+ GenerationIdentifiers.syncUUIDOffset == me.bitmapIgnoringRole {
            var corrected = me
            corrected.bitmap = me.historyEntry(0)
            corrected.history = GenerationIdentifiers.normalised([me.historyEntry(1), me.historyEntry(1)])
            let finding = "we started a resync to the peer whose sync UUID never arrived"
            return Finding(
                strategy: .becomeSyncSource(full: false), rule: 71, finding: finding,
                explanation: "\(finding): that start is undone and the resync from our bitmap runs again (rule 71)",
                correctedLocal: corrected)
        }
        // Rule 80: the peer holds an older generation of ours.
        if me.history.contains(where: { masked($0) == peerCurrent }) {
            let finding = "the peer's current UUID is in our history: we moved on further than a bitmap covers"
            return Finding(
                strategy: .becomeSyncSource(full: true), rule: 80, finding: finding,
                explanation: "\(finding); full resync from us (rule 80)")
        }
        // Rule 90: both started new generations from the same one.
        if me.bitmapIgnoringRole == other.bitmapIgnoringRole && me.bitmapIgnoringRole != 0 {
            let finding = "split brain: both nodes changed the data since generation \(hex(me.bitmapIgnoringRole))"
            return Finding(
                strategy: .splitBrain, rule: 90, finding: finding,
                explanation: "\(finding) (we changed \(local.outOfSyncBlocks) blocks, the peer \(peer.outOfSyncBlocks)); "
                    + "the after-sb policies decide, or connect the node whose changes are to be lost with "
                    + "`--discard-my-data` (rule 90)")
        }
        // Rule 100: related histories, but no bitmap covers both sides' changes.
        for mine in me.history {
            if other.history.contains(where: { masked($0) == masked(mine) }) {
                let finding = "split brain: the histories share generation \(hex(masked(mine))) but no bitmap "
                    + "covers both sides' changes"
                return Finding(
                    strategy: .splitBrainUnresolvable, rule: 100, finding: finding,
                    explanation: "\(finding); the connection is dropped: connect the node whose data is to be "
                        + "discarded with `--discard-my-data`, which costs a full resync (rule 100)")
            }
        }
        let finding = "unrelated data: the disks share no generation (ours \(hex(myCurrent)), "
            + "the peer's \(hex(peerCurrent)))"
        return Finding(
            strategy: .unrelatedData, rule: 100, finding: finding,
            explanation: "\(finding); the connection is dropped: check that this is the right peer and disk, and "
                + "recreate the metadata (`repd create-md --force`) on the node whose data is to be overwritten (rule 100)")
    }

    /// Rule 40: equal generations, neither side holds a bitmap UUID the other lacks.
    private static func crashedPrimaryTieBreak(local: SyncView, peer: SyncView, localResolves: Bool) -> Finding {
        switch (local.crashedPrimary, peer.crashedPrimary) {
        case (false, false):
            let finding = "both hold the same data generation and neither crashed as Primary"
            return Finding(
                strategy: .noSync, rule: 40, finding: finding,
                explanation: "\(finding): no resync (rule 40)")
        case (true, false):
            let finding = "same generation, but this node crashed while Primary"
            return Finding(
                strategy: .becomeSyncSource(full: false), rule: 40, finding: finding,
                explanation: "\(finding): the blocks of its activity log may differ and are resynced from us (rule 40)")
        case (false, true):
            let finding = "same generation, but the peer crashed while Primary"
            return Finding(
                strategy: .becomeSyncTarget(full: false), rule: 40, finding: finding,
                explanation: "\(finding): the blocks of its activity log may differ and are resynced from the peer (rule 40)")
        case (true, true):
            let finding = "same generation, and both nodes crashed while Primary"
            if localResolves {
                return Finding(
                    strategy: .becomeSyncTarget(full: false), rule: 40, finding: finding,
                    explanation: "\(finding): the tie-break makes the peer the source of both activity logs' blocks (rule 40)")
            }
            return Finding(
                strategy: .becomeSyncSource(full: false), rule: 40, finding: finding,
                explanation: "\(finding): the tie-break makes us the source of both activity logs' blocks (rule 40)")
        }
    }
}
