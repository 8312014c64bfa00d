/// Which split brain the generation identifiers found (Docs/Resync.md, rules 90 and 100).
public enum SplitBrainKind: Sendable, Hashable {
    /// Rule 90: both nodes started new generations from the same one, and each bitmap records
    /// every block its node changed since: a bitmap-based resync of the union of both bitmaps
    /// repairs it.
    case coveredByBitmaps
    /// Rule 100: the histories are related, but no bitmap covers both sides' changes. Only a full
    /// resync repairs it, and the after-sb policies apply only with `always-asbp`.
    case notCoveredByBitmaps

    /// The split brain a sync decision found; nil for every other strategy.
    public init?(_ strategy: SyncStrategy) {
        switch strategy {
        case .splitBrain: self = .coveredByBitmaps
        case .splitBrainUnresolvable: self = .notCoveredByBitmaps
        default: return nil
        }
    }

    /// The strategy `SyncDecider` reports for this kind.
    public var strategy: SyncStrategy {
        switch self {
        case .coveredByBitmaps: return .splitBrain
        case .notCoveredByBitmaps: return .splitBrainUnresolvable
        }
    }
}

/// One node's side of a split brain, as both nodes know it after the state exchange.
public struct SplitBrainSide: Sendable, Hashable {
    /// The node's name (the name of its `on` section): `discard-node-NAME` compares against it,
    /// and the explanation uses it.
    public var node: String
    /// The role at the handshake. `unknown` counts as Secondary.
    public var role: Role
    /// Blocks this node changed while the nodes were apart: the bits set in its own bitmap
    /// before the bitmap exchange (DRBD's `comm_bm_set` and the peer's `UI_SIZE`).
    public var changedBlocks: UInt64
    /// Whether this node was Primary when its data diverged from the peer's: the role bit of its
    /// bitmap UUID (DRBD's `uuid[UI_BITMAP] & 1`). The bitmap UUID is the current UUID the node
    /// held when it started its new generation, and the current UUID carries the role bit while
    /// the node is Primary. So a node that was Primary when the link broke has it set; a node
    /// promoted only afterwards (it was Secondary when it started the new generation) has it
    /// clear. `discard-younger-primary` and `discard-older-primary` decide by it.
    public var primaryAtSplit: Bool
    /// The operator connected this node with `repd connect --discard-my-data`.
    public var discardMyData: Bool

    public init(node: String, role: Role, changedBlocks: UInt64, primaryAtSplit: Bool, discardMyData: Bool = false) {
        self.node = node
        self.role = role
        self.changedBlocks = changedBlocks
        self.primaryAtSplit = primaryAtSplit
        self.discardMyData = discardMyData
    }

    /// The side as the sync decision saw it: role, bits set in the bitmap, and the role bit of
    /// the bitmap UUID.
    public init(node: String, view: SyncView, discardMyData: Bool = false) {
        self.init(
            node: node, role: view.role, changedBlocks: view.outOfSyncBlocks,
            primaryAtSplit: view.generation.primaryWhenBitmapStarted, discardMyData: discardMyData)
    }

    var isPrimary: Bool { role == .primary }
}

/// What the nodes do about a split brain, seen from the node that runs the resolution.
public enum SplitBrainOutcome: Sendable, Hashable, CustomStringConvertible {
    /// This node's changes are lost: it becomes SyncTarget (of the union of both bitmaps, or of
    /// every block for a full resync).
    case discardLocal
    /// The peer's changes are lost: this node becomes SyncSource.
    case discardPeer
    /// Nothing is resolved: both nodes drop the connection and stay StandAlone until an
    /// operator decides.
    case disconnect
    /// `call-pri-lost-after-sb`: the policy discards the changes of `node`, which is Primary.
    /// That node must first become Secondary. If it can, it becomes SyncTarget; if it cannot
    /// (the device is in use) it runs the `pri-lost-after-sb` handler and drops the connection.
    /// The other node becomes SyncSource, and sees the connection dropped in the second case.
    /// Both nodes report the same node name.
    case callPriLost(node: String)

    /// The same outcome seen from the peer.
    public var mirrored: SplitBrainOutcome {
        switch self {
        case .discardLocal: return .discardPeer
        case .discardPeer: return .discardLocal
        case .disconnect, .callPriLost: return self
        }
    }

    public var description: String {
        switch self {
        case .discardLocal: return "discard local changes (SyncTarget)"
        case .discardPeer: return "discard the peer's changes (SyncSource)"
        case .disconnect: return "disconnect (StandAlone)"
        case .callPriLost(let node): return "discard the changes of Primary \(node) (call-pri-lost-after-sb)"
        }
    }
}

/// Which setting decided a split brain.
public enum SplitBrainDecider: Sendable, Hashable, CustomStringConvertible {
    /// `repd connect --discard-my-data` on one node, or on both (then nothing is resolved).
    case discardMyData
    case afterSB0Pri(AfterSB0Pri)
    case afterSB1Pri(AfterSB1Pri)
    case afterSB2Pri(AfterSB2Pri)
    /// A split brain no bitmap covers (rule 100), without `always-asbp`: no policy applies.
    case noPolicyApplies

    public var description: String {
        switch self {
        case .discardMyData: return "discard-my-data"
        case .afterSB0Pri(let policy): return "after-sb-0pri \(policy)"
        case .afterSB1Pri(let policy): return "after-sb-1pri \(policy.rawValue)"
        case .afterSB2Pri(let policy): return "after-sb-2pri \(policy.rawValue)"
        case .noPolicyApplies: return "no after-sb policy applies"
        }
    }
}

/// A handler of the `handlers` section that a policy asks to run on this node.
public enum PolicyHandler: String, Sendable, Hashable, CaseIterable {
    /// Any split brain is detected, before the policies run.
    case initialSplitBrain = "initial-split-brain"
    /// A split brain stays unresolved: the nodes disconnect.
    case splitBrain = "split-brain"
    /// `call-pri-lost-after-sb` discards this Primary's changes and it cannot become Secondary.
    case priLostAfterSB = "pri-lost-after-sb"
    /// `rr-conflict call-pri-lost`: a resync would make this Primary SyncTarget.
    case priLost = "pri-lost"
}

/// The answer to a split brain, with the words to tell the operator.
public struct SplitBrainResolution: Sendable, Hashable, CustomStringConvertible {
    public var outcome: SplitBrainOutcome
    /// The setting that decided.
    public var decidedBy: SplitBrainDecider
    /// The split brain that was resolved.
    public var kind: SplitBrainKind
    /// The resync sends every block: the split brain is not covered by the bitmaps (rule 100),
    /// so the union of the bitmaps could miss changed blocks.
    public var fullSync: Bool
    /// One paragraph for the log and `repd status`: which setting decided, why, and what happens
    /// next. It names nodes, not "we" and "the peer", so both nodes log the same text.
    public var explanation: String
    /// Handlers to run on this node now, in order.
    public var handlers: [PolicyHandler]
    /// The name of the node that ran the resolution.
    public var localNode: String

    public init(
        outcome: SplitBrainOutcome, decidedBy: SplitBrainDecider, kind: SplitBrainKind, fullSync: Bool,
        explanation: String, handlers: [PolicyHandler], localNode: String
    ) {
        self.outcome = outcome
        self.decidedBy = decidedBy
        self.kind = kind
        self.fullSync = fullSync
        self.explanation = explanation
        self.handlers = handlers
        self.localNode = localNode
    }

    /// This node is the Primary that `call-pri-lost-after-sb` discards: it must try to become
    /// Secondary, then continue with `afterDemotion(succeeded:)`.
    public var localMustDemote: Bool {
        if case .callPriLost(let node) = outcome { return node == localNode }
        return false
    }

    /// The sync strategy this node follows. For `.callPriLost` naming this node it is SyncTarget
    /// once the demotion succeeded (see `afterDemotion(succeeded:)`); naming the peer, SyncSource.
    /// `.disconnect` keeps the split-brain strategy the decision found (the connection is dropped).
    /// Before becoming SyncTarget, a node that is still Primary checks `rr-conflict`
    /// (`RRConflictResolver`).
    public var strategy: SyncStrategy {
        switch outcome {
        case .discardLocal: return .becomeSyncTarget(full: fullSync)
        case .discardPeer: return .becomeSyncSource(full: fullSync)
        case .disconnect: return kind.strategy
        case .callPriLost(let node):
            return node == localNode ? .becomeSyncTarget(full: fullSync) : .becomeSyncSource(full: fullSync)
        }
    }

    /// The resolution once this node tried to become Secondary for `call-pri-lost-after-sb`:
    /// SyncTarget if it succeeded; otherwise the `pri-lost-after-sb` and `split-brain` handlers
    /// run and the connection is dropped. Unchanged when `localMustDemote` is false.
    public func afterDemotion(succeeded: Bool) -> SplitBrainResolution {
        guard localMustDemote else { return self }
        var next = self
        if succeeded {
            next.outcome = .discardLocal
            next.explanation += " \(localNode) became Secondary and resyncs."
        } else {
            next.outcome = .disconnect
            next.handlers += [.priLostAfterSB, .splitBrain]
            next.explanation += " \(localNode) could not become Secondary: the pri-lost-after-sb handler runs and the "
                + "nodes disconnect (StandAlone)."
        }
        return next
    }

    public var description: String { "\(outcome): \(explanation)" }
}

/// DRBD 8.4's after-split-brain recovery (`drbd_asb_recover_0p`, `_1p`, `_2p` and the
/// `discard-my-data` handling of `drbd_sync_handshake`), as a pure function. See Docs/SplitBrain.md.
public enum SplitBrainResolver {
    /// Decides what to do about a split brain. Both nodes run this on the same facts (with
    /// `local` and `peer` swapped and `localResolves` flipped) and reach mirrored outcomes,
    /// provided they configure the same policies.
    ///
    /// Order:
    /// 1. `--discard-my-data` on exactly one node: that node's changes are discarded, whatever
    ///    the policies say (repd; DRBD asks the policies first). On both nodes: disconnect.
    /// 2. A split brain no bitmap covers (rule 100) without `always-asbp`: disconnect.
    /// 3. By the number of Primaries at the handshake: `after-sb-0pri`, `after-sb-1pri` or
    ///    `after-sb-2pri`. A rule 100 split brain resolved by them (with `always-asbp`) costs a
    ///    full resync.
    ///
    /// `localResolves` is the per-connection tie-breaker (this node's name sorts first, as for
    /// `SyncDecider`): where the policies find a tie, the resolving node's changes are discarded.
    public static func resolve(
        _ kind: SplitBrainKind,
        local: SplitBrainSide,
        peer: SplitBrainSide,
        policies: SplitBrainPolicies,
        localResolves: Bool
    ) -> SplitBrainResolution {
        let pair = Pair(local: local, peer: peer, localResolves: localResolves)
        let full = kind == .notCoveredByBitmaps
        var result = SplitBrainResolution(
            outcome: .disconnect, decidedBy: .discardMyData, kind: kind, fullSync: false,
            explanation: "", handlers: [.initialSplitBrain], localNode: local.node)

        if local.discardMyData || peer.discardMyData {
            if local.discardMyData && peer.discardMyData {
                let names = pair.byName.map(pair.name)
                result.explanation = "discard-my-data: both \(names[0]) and \(names[1]) were connected with "
                    + "--discard-my-data, so neither can be the source; " + disconnectAdvice + "."
                result.handlers.append(.splitBrain)
                return result
            }
            let loser: Party = local.discardMyData ? .local : .peer
            let verdict = Verdict(loser: loser, reason: "\(pair.name(loser)) was connected with --discard-my-data")
            return resolved(verdict, by: .discardMyData, full: full, pair, into: result)
        }

        if kind == .notCoveredByBitmaps && !policies.alwaysASBP {
            result.decidedBy = .noPolicyApplies
            result.explanation = "no after-sb policy applies: no bitmap covers both nodes' changes (rule 100) and "
                + "always-asbp is off; " + disconnectAdvice + ", which costs a full resync."
            result.handlers.append(.splitBrain)
            return result
        }

        let decider: SplitBrainDecider
        let verdict: Verdict
        switch (local.isPrimary, peer.isPrimary) {
        case (false, false):
            decider = .afterSB0Pri(policies.afterSB0Pri)
            verdict = recoverNoPrimary(policies.afterSB0Pri, pair)
        case (true, false), (false, true):
            decider = .afterSB1Pri(policies.afterSB1Pri)
            verdict = recoverOnePrimary(policies.afterSB1Pri, asWithout: policies.afterSB0Pri, pair)
        case (true, true):
            decider = .afterSB2Pri(policies.afterSB2Pri)
            verdict = recoverTwoPrimaries(policies.afterSB2Pri, asWithout: policies.afterSB0Pri, pair)
        }
        let fullNote = full ? " (always-asbp applied the policy to a split brain no bitmap covers, rule 100)" : ""
        if verdict.loser == nil {
            result.decidedBy = decider
            result.explanation = "\(decider): \(verdict.reason)\(fullNote); " + disconnectAdvice + "."
            result.handlers.append(.splitBrain)
            return result
        }
        var explained = verdict
        explained.reason += fullNote
        return resolved(explained, by: decider, full: full, pair, into: result)
    }

    // MARK: - The pieces

    private static let disconnectAdvice = "the nodes disconnect (StandAlone) and the split-brain handler runs: "
        + "connect the node whose changes are to be lost with `repd connect --discard-my-data`"

    private enum Party: Equatable {
        case local, peer
        var other: Party { self == .local ? .peer : .local }
    }

    private struct Pair {
        var local: SplitBrainSide
        var peer: SplitBrainSide
        var localResolves: Bool

        func side(_ party: Party) -> SplitBrainSide { party == .local ? local : peer }
        func name(_ party: Party) -> String { side(party).node }
        var resolver: Party { localResolves ? .local : .peer }
        /// Both parties, by name: texts that list both nodes list them in this order, so that
        /// both nodes write the same words.
        var byName: [Party] { local.node <= peer.node ? [.local, .peer] : [.peer, .local] }
    }

    /// What a policy found: whose changes to discard (nil: no decision), and why.
    private struct Verdict {
        var loser: Party?
        /// The loser is a Primary that must demote first (`call-pri-lost-after-sb`).
        var primaryMustDemote = false
        var reason: String
    }

    private static func resolved(
        _ verdict: Verdict, by decider: SplitBrainDecider, full: Bool, _ pair: Pair, into result: SplitBrainResolution
    ) -> SplitBrainResolution {
        guard let loser = verdict.loser else { return result }
        var result = result
        result.decidedBy = decider
        result.fullSync = full
        let loserName = pair.name(loser)
        let winnerName = pair.name(loser.other)
        let lost = "\(loserName)'s changes (\(blocks(pair.side(loser).changedBlocks, none: "none"))) are discarded"
        let resync = full
            ? "full resync from \(winnerName)"
            : "resync from \(winnerName) of the blocks either node changed"
        if verdict.primaryMustDemote {
            result.outcome = .callPriLost(node: loserName)
            result.explanation = "\(decider): \(verdict.reason); \(lost). \(loserName) is Primary and must become "
                + "Secondary first: if it can, a \(resync) follows; if it cannot (the device is in use), the "
                + "pri-lost-after-sb handler runs on it and the nodes disconnect."
        } else {
            result.outcome = loser == .local ? .discardLocal : .discardPeer
            result.explanation = "\(decider): \(verdict.reason); \(lost) and \(loserName) becomes SyncTarget: \(resync)."
            if pair.side(loser).isPrimary {
                result.explanation += " \(loserName) is Primary: rr-conflict decides whether it may become SyncTarget."
            }
        }
        return result
    }

    private static func blocks(_ count: UInt64, none: String = "no blocks") -> String {
        switch count {
        case 0: return none
        case 1: return "1 block"
        default: return "\(count) blocks"
        }
    }

    private static func tieBreak(_ pair: Pair) -> String {
        "the tie-break discards the changes of \(pair.name(pair.resolver)), the node that resolves conflicts on "
            + "this connection (its name sorts first)"
    }

    // MARK: after-sb-0pri (drbd_asb_recover_0p)

    private static func recoverNoPrimary(_ policy: AfterSB0Pri, _ pair: Pair) -> Verdict {
        let local = pair.local
        let peer = pair.peer
        switch policy {
        case .disconnect:
            return Verdict(loser: nil, reason: "no automatic resolution is configured")

        case .discardYoungerPrimary, .discardOlderPrimary:
            if local.primaryAtSplit != peer.primaryAtSplit {
                let older: Party = local.primaryAtSplit ? .local : .peer
                let younger = older.other
                let loser = policy == .discardYoungerPrimary ? younger : older
                return Verdict(
                    loser: loser,
                    reason: "\(pair.name(older)) was already Primary when the data diverged and \(pair.name(younger)) "
                        + "became Primary only afterwards")
            }
            let situation = local.primaryAtSplit
                ? "both nodes were Primary when the data diverged"
                : "neither node was Primary when the data diverged"
            var verdict = leastChanges(pair)
            verdict.reason = "\(situation), so discard-least-changes decides: " + verdict.reason
            return verdict

        case .discardZeroChanges:
            switch (local.changedBlocks, peer.changedBlocks) {
            case (0, 0):
                return Verdict(loser: pair.resolver, reason: "neither node changed any block; " + tieBreak(pair))
            case (0, _), (_, 0):
                let unchanged: Party = local.changedBlocks == 0 ? .local : .peer
                return Verdict(
                    loser: unchanged,
                    reason: "\(pair.name(unchanged)) changed no blocks, \(pair.name(unchanged.other)) changed "
                        + blocks(pair.side(unchanged.other).changedBlocks))
            default:
                let counts = pair.byName.map { "\(pair.name($0)) \(pair.side($0).changedBlocks)" }
                return Verdict(loser: nil, reason: "both nodes changed blocks (\(counts.joined(separator: ", ")))")
            }

        case .discardLeastChanges:
            return leastChanges(pair)

        case .discardNode(let name):
            if name == local.node || name == peer.node {
                let loser: Party = name == local.node ? .local : .peer
                return Verdict(loser: loser, reason: "the configuration always discards the changes of \(name)")
            }
            let names = pair.byName.map(pair.name)
            return Verdict(loser: nil, reason: "it names \(name), which is neither \(names[0]) nor \(names[1])")
        }
    }

    private static func leastChanges(_ pair: Pair) -> Verdict {
        let mine = pair.local.changedBlocks
        let theirs = pair.peer.changedBlocks
        if mine == theirs {
            return Verdict(loser: pair.resolver, reason: "both nodes changed \(blocks(mine)); " + tieBreak(pair))
        }
        let fewer: Party = mine < theirs ? .local : .peer
        return Verdict(
            loser: fewer,
            reason: "\(pair.name(fewer)) changed fewer blocks (\(pair.side(fewer).changedBlocks)) than "
                + "\(pair.name(fewer.other)) (\(pair.side(fewer.other).changedBlocks))")
    }

    // MARK: after-sb-1pri (drbd_asb_recover_1p)

    private static func recoverOnePrimary(_ policy: AfterSB1Pri, asWithout policy0: AfterSB0Pri, _ pair: Pair) -> Verdict {
        let primary: Party = pair.local.isPrimary ? .local : .peer
        let secondary = primary.other
        let roles = "\(pair.name(primary)) is Primary, \(pair.name(secondary)) Secondary"
        let asNoPrimary = "after-sb-0pri \(policy0)"
        switch policy {
        case .disconnect:
            return Verdict(loser: nil, reason: "\(roles); no automatic resolution is configured")

        case .consensus:
            let verdict = recoverNoPrimary(policy0, pair)
            switch verdict.loser {
            case secondary:
                return Verdict(
                    loser: secondary,
                    reason: "\(roles), and \(asNoPrimary) also discards the Secondary's changes: \(verdict.reason)")
            case primary:
                return Verdict(
                    loser: nil,
                    reason: "\(roles), but \(asNoPrimary) would discard the Primary's changes (\(verdict.reason)), "
                        + "so there is no consensus")
            default:
                return Verdict(
                    loser: nil,
                    reason: "\(roles), and \(asNoPrimary) decides nothing (\(verdict.reason)), so there is no consensus")
            }

        case .violentlyAs0p:
            var verdict = recoverNoPrimary(policy0, pair)
            verdict.reason = "\(roles); \(asNoPrimary) decides even against the Primary: \(verdict.reason)"
            return verdict

        case .discardSecondary:
            return Verdict(loser: secondary, reason: roles)

        case .callPriLostAfterSB:
            var verdict = recoverNoPrimary(policy0, pair)
            verdict.reason = "\(roles); \(asNoPrimary) decides: \(verdict.reason)"
            verdict.primaryMustDemote = verdict.loser == primary
            return verdict
        }
    }

    // MARK: after-sb-2pri (drbd_asb_recover_2p)

    private static func recoverTwoPrimaries(_ policy: AfterSB2Pri, asWithout policy0: AfterSB0Pri, _ pair: Pair) -> Verdict {
        let roles = "both nodes are Primary"
        let asNoPrimary = "after-sb-0pri \(policy0)"
        switch policy {
        case .disconnect:
            return Verdict(loser: nil, reason: "\(roles); no automatic resolution is configured")
        case .violentlyAs0p:
            var verdict = recoverNoPrimary(policy0, pair)
            verdict.reason = "\(roles); \(asNoPrimary) decides even against a Primary: \(verdict.reason)"
            return verdict
        case .callPriLostAfterSB:
            var verdict = recoverNoPrimary(policy0, pair)
            verdict.reason = "\(roles); \(asNoPrimary) decides: \(verdict.reason)"
            verdict.primaryMustDemote = verdict.loser != nil
            return verdict
        }
    }
}
