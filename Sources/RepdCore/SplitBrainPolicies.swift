// The after-split-brain and resync-conflict policies of a resource's `net` section. They live in
// RepdCore because the split-brain resolution (SplitBrainResolution.swift) decides with them;
// RepdConfig parses them.

/// What to do after a split brain when neither node is primary (`after-sb-0pri`).
public enum AfterSB0Pri: Sendable, Hashable, CustomStringConvertible {
    case disconnect
    case discardYoungerPrimary
    case discardOlderPrimary
    case discardZeroChanges
    case discardLeastChanges
    /// Always discard the data of the named host (`discard-node-NODENAME`).
    case discardNode(String)

    /// The policies without a parameter, in DRBD's order.
    public static let fixedCases: [AfterSB0Pri] = [
        .disconnect, .discardYoungerPrimary, .discardOlderPrimary, .discardZeroChanges, .discardLeastChanges,
    ]

    /// Parses DRBD's spelling, e.g. `discard-zero-changes` or `discard-node-alice`.
    public init?(drbdName: String) {
        if let fixed = Self.fixedCases.first(where: { $0.description == drbdName }) {
            self = fixed
        } else if drbdName.hasPrefix(Self.discardNodePrefix), drbdName.count > Self.discardNodePrefix.count {
            self = .discardNode(String(drbdName.dropFirst(Self.discardNodePrefix.count)))
        } else {
            return nil
        }
    }

    /// The spelling of `discardNode` before the host name.
    public static let discardNodePrefix = "discard-node-"

    /// DRBD's spelling.
    public var description: String {
        switch self {
        case .disconnect: "disconnect"
        case .discardYoungerPrimary: "discard-younger-primary"
        case .discardOlderPrimary: "discard-older-primary"
        case .discardZeroChanges: "discard-zero-changes"
        case .discardLeastChanges: "discard-least-changes"
        case .discardNode(let node): Self.discardNodePrefix + node
        }
    }
}

/// What to do after a split brain when one node is primary (`after-sb-1pri`).
public enum AfterSB1Pri: String, Sendable, Hashable, CaseIterable {
    case disconnect
    case consensus
    case violentlyAs0p = "violently-as0p"
    case discardSecondary = "discard-secondary"
    case callPriLostAfterSB = "call-pri-lost-after-sb"
}

/// What to do after a split brain when both nodes are primary (`after-sb-2pri`).
public enum AfterSB2Pri: String, Sendable, Hashable, CaseIterable {
    case disconnect
    case violentlyAs0p = "violently-as0p"
    case callPriLostAfterSB = "call-pri-lost-after-sb"
}

/// What to do when a resync would overwrite the data of a primary (`rr-conflict`).
public enum RRConflict: String, Sendable, Hashable, CaseIterable {
    case disconnect
    case retryConnect = "retry-connect"
    case violently
    case callPriLost = "call-pri-lost"
}
