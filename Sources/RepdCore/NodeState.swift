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
    /// No disk here, and the disk this node had (failed or detached) holds data the connected
    /// peer does not have: the peer's data is older than this node's last, so it does not serve
    /// this node's applications (until the disk is attached, or `primary --force` accepts it).
    public var detachedDataAhead = false

    public init() {}

    /// A request to change the state, as an operator or the peer link asks for it.
    public enum Change: Sendable, Hashable {
        case promote(force: Bool)
        case demote
        case attach(DiskState)
        /// The operator detaches the disk (`repd detach`): refused where it would leave a Primary
        /// without data.
        case detach
        /// The disk failed (I/O error, disk-timeout): it goes, whatever the role.
        case fail
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
        case primaryWithoutPeerData
        case detachedDataAhead

        public var description: String {
            switch self {
            case .noUpToDateDisk(let disk):
                return "refusing to become Primary: the local disk is \(disk.rawValue), not UpToDate "
                    + "(use --force only if this node's data is the one to keep)"
            case .peerIsPrimary:
                return "refusing to become Primary: the peer is Primary and allow-two-primaries is not set in the net section"
            case .noDisk:
                return "refusing to become Primary: no local disk is attached, and the peer is not a connected UpToDate disk "
                    + "to read and write through"
            case .stillPrimary:
                return "the resource is Primary; make it Secondary first"
            case .detachedDataAhead:
                return "refusing to become Primary: this node's detached disk holds newer data than the peer; attach it "
                    + "(`repd attach`) to resync, or use --force to go on with the peer's older data"
            case .primaryWithoutPeerData:
                return "refusing to detach: this node is Primary and its peer is not a connected UpToDate disk, "
                    + "so its applications would lose their data (make it Secondary first, or connect the peer)"
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
            if peerRole == .primary && connection == .connected && !allowTwoPrimaries {
                throw .peerIsPrimary
            }
            switch disk {
            case .upToDate:
                break
            case _ where !hasDisk:
                // A Diskless Primary reads and writes through its UpToDate peer, unless this
                // node's own (detached) disk holds newer data: that takes --force.
                guard connection == .connected && peerDisk == .upToDate else { throw .noDisk }
                if detachedDataAhead {
                    guard force else { throw .detachedDataAhead }
                    next.detachedDataAhead = false
                }
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
            if next.hasDisk && (connection != .connected || !peerHasDisk || effects.contains(.forcedUpToDate)) {
                // The peer's copy no longer follows this data (not connected, or no disk there).
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
            if role == .primary && !(connection == .connected && peerDisk == .upToDate) { throw .primaryWithoutPeerData }
            next.disk = .diskless
        case .fail:
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
        role == .primary && (disk == .upToDate || readsThroughPeer || servedByPeer)
    }

    /// An Inconsistent disk with a connected UpToDate peer: blocks not resynced yet come from the peer.
    public var readsThroughPeer: Bool {
        disk == .inconsistent && connection == .connected && peerDisk == .upToDate
    }

    /// Whether this node can serve reads (from its disk, or through its peer).
    public var servesReads: Bool { (disk >= .outdated && disk != .unknown) || readsThroughPeer || servedByPeer }

    /// A local disk takes part in I/O (Diskless, Failed, Attaching and Negotiating do not).
    public var hasDisk: Bool { disk >= .inconsistent && disk != .unknown }

    /// The peer's disk takes writes (it is not Diskless, Failed or still negotiating an attach).
    public var peerHasDisk: Bool { peerDisk >= .inconsistent && peerDisk != .unknown }

    /// No local disk, and a connected UpToDate peer: every read and write goes to the peer.
    public var servedByPeer: Bool {
        !hasDisk && connection == .connected && peerDisk == .upToDate && !detachedDataAhead
    }
}
