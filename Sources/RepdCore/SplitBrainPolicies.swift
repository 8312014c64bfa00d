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

/// The policies a split brain is resolved with, as both nodes must configure them alike
/// (`net` section: `after-sb-0pri`, `after-sb-1pri`, `after-sb-2pri`, `always-asbp`).
public struct SplitBrainPolicies: Sendable, Hashable {
    /// Neither node is Primary at the handshake.
    public var afterSB0Pri: AfterSB0Pri
    /// Exactly one node is Primary.
    public var afterSB1Pri: AfterSB1Pri
    /// Both nodes are Primary.
    public var afterSB2Pri: AfterSB2Pri
    /// Apply the policies also to a split brain no bitmap covers (rule 100); the resync is then full.
    public var alwaysASBP: Bool

    /// DRBD's defaults: disconnect in every case.
    public init(
        afterSB0Pri: AfterSB0Pri = .disconnect,
        afterSB1Pri: AfterSB1Pri = .disconnect,
        afterSB2Pri: AfterSB2Pri = .disconnect,
        alwaysASBP: Bool = false
    ) {
        self.afterSB0Pri = afterSB0Pri
        self.afterSB1Pri = afterSB1Pri
        self.afterSB2Pri = afterSB2Pri
        self.alwaysASBP = alwaysASBP
    }
}
