/// What one node knows of a resource: its own role and disk, and what it knows of the peer.
///
/// Changes go through `apply(_:)`, a validated transaction in DRBD's manner: copy the state,
/// change the copy, check the rules, and commit only if every rule holds. The result lists
/// the effects the caller must carry out (write metadata, new generation identifier, ...).
public struct NodeState: Sendable, Hashable {
    public var role: Role = .secondary
    public var disk: DiskState = .diskless
    public var connection: ConnectionState = .standAlone
    public var replication: ReplicationState = .off
    public var peerRole: Role = .unknown
    public var peerDisk: DiskState = .unknown
    /// Whether the resource allows both nodes to be Primary at once.
    public var allowTwoPrimaries = false

    public init() {}

    /// A request to change the state, as an operator or the peer link asks for it.
    public enum Change: Sendable, Hashable {
        case promote(force: Bool)
        case demote
        case attach(DiskState)
        case detach
        case connection(ConnectionState)
        case peer(role: Role, disk: DiskState)
    }

    /// What the caller must do after a committed change.
    public enum Effect: Sendable, Hashable {
        /// Mark the data as the newest generation: a new current UUID (promotion while the peer
        /// is not connected, or forced promotion of a non-UpToDate disk).
        case newCurrentGeneration
        /// Persist flags (role indicator, consistency) in the metadata.
        case writeMetadata
        /// The disk became UpToDate by force; the operator chose this data.
        case forcedUpToDate
    }

    public enum Refusal: Error, Sendable, Hashable, CustomStringConvertible {
        case noUpToDateDisk(DiskState)
        case peerIsPrimary
        case noDisk
        case stillPrimary

        public var description: String {
            switch self {
            case .noUpToDateDisk(let disk):
                return "refusing to become Primary: the local disk is \(disk.rawValue), not UpToDate "
                    + "(use --force only if this node's data is the one to keep)"
            case .peerIsPrimary:
                return "refusing to become Primary: the peer is Primary and allow-two-primaries is not set in the net section"
            case .noDisk:
                return "refusing to become Primary: no local disk is attached"
            case .stillPrimary:
                return "the resource is Primary; make it Secondary first"
            }
        }
    }

    /// Applies a change as a transaction. On refusal nothing changes.
    public mutating func apply(_ change: Change) throws(Refusal) -> [Effect] {
        var next = self
        var effects: [Effect] = []
        switch change {
        case .promote(let force):
            if role == .primary { return [] }
            guard disk != .diskless else { throw .noDisk }
            if peerRole == .primary && connection == .connected && !allowTwoPrimaries {
                throw .peerIsPrimary
            }
            switch disk {
            case .upToDate:
                break
            case .inconsistent where connection == .connected && peerDisk == .upToDate:
                // A SyncTarget may serve applications: what it lacks is read from its UpToDate peer.
                break
            case .consistent where connection != .connected:
                // Alone with consistent data that was UpToDate when last seen: the operator
                // promotes it, as DRBD does for a degraded cluster.
                next.disk = .upToDate
            default:
                guard force, disk >= .inconsistent else { throw .noUpToDateDisk(disk) }
                next.disk = .upToDate
                effects.append(.forcedUpToDate)
            }
            next.role = .primary
            if connection != .connected || effects.contains(.forcedUpToDate) {
                effects.append(.newCurrentGeneration)
            }
            effects.append(.writeMetadata)
        case .demote:
            if role == .secondary { return [] }
            next.role = .secondary
            effects.append(.writeMetadata)
        case .attach(let state):
            next.disk = state
        case .detach:
            guard role != .primary else { throw .stillPrimary }
            next.disk = .diskless
        case .connection(let state):
            next.connection = state
            if state != .connected {
                next.peerRole = .unknown
                next.peerDisk = .unknown
                next.replication = .off
            } else if next.replication == .off {
                next.replication = .established
            }
        case .peer(let role, let disk):
            next.peerRole = role
            next.peerDisk = disk
        }
        self = next
        return effects
    }

    /// Whether this node accepts writes from its NBD clients.
    public var acceptsWrites: Bool {
        role == .primary && (disk == .upToDate || readsThroughPeer)
    }

    /// An Inconsistent disk with a connected UpToDate peer: blocks not resynced yet come from the peer.
    public var readsThroughPeer: Bool {
        disk == .inconsistent && connection == .connected && peerDisk == .upToDate
    }

    /// Whether this node can serve reads from its local disk.
    public var servesReads: Bool { (disk >= .outdated && disk != .unknown) || readsThroughPeer }
}
