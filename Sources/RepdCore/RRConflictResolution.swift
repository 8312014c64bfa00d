/// What a node does when a resync decision would make it SyncTarget while it is Primary with
/// good data (`rr-conflict`).
public enum RRConflictOutcome: Sendable, Hashable, CustomStringConvertible {
    /// No conflict: this node does not become SyncTarget, or it is not Primary, or its disk is
    /// below Consistent (there is nothing to protect).
    case noConflict
    /// `violently`: become SyncTarget anyway; the Primary's applications see the data change
    /// under them as the resync overwrites it.
    case becomeSyncTarget
    /// `disconnect` and `call-pri-lost`: drop the connection and stay StandAlone.
    case disconnect
    /// `retry-connect`: drop the connection and connect again (the decision runs again, for
    /// instance once the node was demoted).
    case retryConnect

    public var description: String {
        switch self {
        case .noConflict: return "no conflict"
        case .becomeSyncTarget: return "become SyncTarget anyway"
        case .disconnect: return "disconnect (StandAlone)"
        case .retryConnect: return "disconnect and connect again"
        }
    }
}

/// The answer to an rr-conflict, with the words to tell the operator.
public struct RRConflictResolution: Sendable, Hashable, CustomStringConvertible {
    public var outcome: RRConflictOutcome
    /// Handlers to run on this node now (`pri-lost` for `call-pri-lost`).
    public var handlers: [PolicyHandler]
    /// One sentence for the log; empty for `.noConflict`.
    public var explanation: String

    public init(outcome: RRConflictOutcome, handlers: [PolicyHandler] = [], explanation: String = "") {
        self.outcome = outcome
        self.handlers = handlers
        self.explanation = explanation
    }

    public var description: String { explanation.isEmpty ? outcome.description : explanation }
}

/// DRBD 8.4's role/resync conflict check (the `rr_conflict` switch at the end of
/// `drbd_sync_handshake`), as a pure function. Only the node that would become SyncTarget runs
/// it; its peer sees the connection dropped.
public enum RRConflictResolver {
    /// Checks the strategy this node is about to follow (the sync decision's, or a split-brain
    /// resolution's `strategy`) against its role. A conflict exists when the strategy makes this
    /// node SyncTarget while it is Primary and its disk is Consistent or better (an Inconsistent
    /// Primary reads through its peer anyway, and gains from the resync).
    public static func resolve(
        _ policy: RRConflict, strategy: SyncStrategy, node: String, role: Role, disk: DiskState
    ) -> RRConflictResolution {
        guard case .becomeSyncTarget(let full) = strategy, role == .primary, disk >= .consistent else {
            return RRConflictResolution(outcome: .noConflict)
        }
        let situation = "\(node) is Primary with \(disk.rawValue) data, but the resync decision makes it SyncTarget "
            + "(\(full ? "full" : "bitmap-based") resync from the peer)"
        let advice = "make \(node) Secondary (`repd secondary`) and connect again to let the resync run"
        switch policy {
        case .disconnect:
            return RRConflictResolution(
                outcome: .disconnect,
                explanation: "rr-conflict disconnect: \(situation); the nodes disconnect (StandAlone): \(advice)")
        case .retryConnect:
            return RRConflictResolution(
                outcome: .retryConnect,
                explanation: "rr-conflict retry-connect: \(situation); the connection is dropped and tried again, "
                    + "so the resync runs once \(node) is Secondary")
        case .violently:
            return RRConflictResolution(
                outcome: .becomeSyncTarget,
                explanation: "rr-conflict violently: \(situation); it becomes SyncTarget anyway and the data under "
                    + "its applications changes as the resync overwrites it")
        case .callPriLost:
            return RRConflictResolution(
                outcome: .disconnect, handlers: [.priLost],
                explanation: "rr-conflict call-pri-lost: \(situation); the pri-lost handler runs on \(node) and the "
                    + "nodes disconnect (StandAlone): \(advice)")
        }
    }
}
