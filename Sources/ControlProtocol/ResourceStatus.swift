/// The status of one resource on one node, in the schema of DRBD 9's `drbdsetup status --json`
/// (key names, nesting, sizes and counters in KiB), plus repd's own keys, each marked below.
public struct ResourceStatus: Codable, Sendable, Equatable {
    public var name: String
    public var nodeID: Int
    public var role: String
    public var suspended: Bool
    public var writeOrdering: String
    public var devices: [Device]
    public var connections: [Connection]
    /// repd: the libnbd URI of the export on this node.
    public var nbdURI: String
    /// repd: the node name this daemon runs as.
    public var node: String
    /// repd: the daemon's process id.
    public var pid: Int32
    /// repd: a sentence for the operator when something needs attention (e.g. running alone).
    public var message: String?

    enum CodingKeys: String, CodingKey {
        case name
        case nodeID = "node-id"
        case role
        case suspended
        case writeOrdering = "write-ordering"
        case devices
        case connections
        case nbdURI = "nbd-uri"
        case node = "repd-node"
        case pid = "repd-pid"
        case message = "repd-message"
    }

    public struct Device: Codable, Sendable, Equatable {
        public var volume: Int = 0
        public var minor: Int
        public var diskState: String
        public var client: Bool = false
        public var quorum: Bool = true
        /// KiB.
        public var size: UInt64
        /// KiB read and written by applications on this node.
        public var read: UInt64
        public var written: UInt64
        public var alWrites: UInt64
        public var bmWrites: UInt64
        public var upperPending: Int
        public var lowerPending: Int
        public var alSuspended: Bool = false
        public var blocked: String = "no"
        /// repd: the backing disk.
        public var backingDisk: String

        enum CodingKeys: String, CodingKey {
            case volume, minor, client, quorum, size, read, written, blocked
            case diskState = "disk-state"
            case alWrites = "al-writes"
            case bmWrites = "bm-writes"
            case upperPending = "upper-pending"
            case lowerPending = "lower-pending"
            case alSuspended = "al-suspended"
            case backingDisk = "repd-backing-disk"
        }

        public init(minor: Int, diskState: String, size: UInt64, read: UInt64, written: UInt64, alWrites: UInt64, bmWrites: UInt64,
                    upperPending: Int, lowerPending: Int, backingDisk: String) {
            self.minor = minor
            self.diskState = diskState
            self.size = size
            self.read = read
            self.written = written
            self.alWrites = alWrites
            self.bmWrites = bmWrites
            self.upperPending = upperPending
            self.lowerPending = lowerPending
            self.backingDisk = backingDisk
        }
    }

    public struct Connection: Codable, Sendable, Equatable {
        public var peerNodeID: Int
        public var name: String
        public var connectionState: String
        public var congested: Bool = false
        public var peerRole: String
        public var apInFlight: Int
        public var rsInFlight: Int
        public var peerDevices: [PeerDevice]
        /// repd: the replication protocol (A, B or C) and the peer's address.
        public var replicationProtocol: String
        public var peerAddress: String

        enum CodingKeys: String, CodingKey {
            case name, congested
            case peerNodeID = "peer-node-id"
            case connectionState = "connection-state"
            case peerRole = "peer-role"
            case apInFlight = "ap-in-flight"
            case rsInFlight = "rs-in-flight"
            case peerDevices = "peer_devices"
            case replicationProtocol = "repd-protocol"
            case peerAddress = "repd-peer-address"
        }

        public init(peerNodeID: Int, name: String, connectionState: String, peerRole: String, apInFlight: Int, rsInFlight: Int,
                    peerDevices: [PeerDevice], replicationProtocol: String, peerAddress: String) {
            self.peerNodeID = peerNodeID
            self.name = name
            self.connectionState = connectionState
            self.peerRole = peerRole
            self.apInFlight = apInFlight
            self.rsInFlight = rsInFlight
            self.peerDevices = peerDevices
            self.replicationProtocol = replicationProtocol
            self.peerAddress = peerAddress
        }
    }

    public struct PeerDevice: Codable, Sendable, Equatable {
        public var volume: Int = 0
        public var replicationState: String
        public var peerDiskState: String
        public var peerClient: Bool = false
        public var resyncSuspended: String = "no"
        /// KiB.
        public var received: UInt64
        public var sent: UInt64
        public var outOfSync: UInt64
        public var pending: Int
        public var unacked: Int
        public var hasSyncDetails: Bool = false
        public var hasOnlineVerifyDetails: Bool = false
        public var percentInSync: Double

        enum CodingKeys: String, CodingKey {
            case volume, received, sent, pending, unacked
            case replicationState = "replication-state"
            case peerDiskState = "peer-disk-state"
            case peerClient = "peer-client"
            case resyncSuspended = "resync-suspended"
            case outOfSync = "out-of-sync"
            case hasSyncDetails = "has-sync-details"
            case hasOnlineVerifyDetails = "has-online-verify-details"
            case percentInSync = "percent-in-sync"
        }

        public init(replicationState: String, peerDiskState: String, received: UInt64, sent: UInt64, outOfSync: UInt64,
                    pending: Int, unacked: Int, percentInSync: Double) {
            self.replicationState = replicationState
            self.peerDiskState = peerDiskState
            self.received = received
            self.sent = sent
            self.outOfSync = outOfSync
            self.pending = pending
            self.unacked = unacked
            self.percentInSync = percentInSync
        }
    }

    public init(name: String, nodeID: Int, role: String, devices: [Device], connections: [Connection], nbdURI: String,
                node: String, pid: Int32, message: String?) {
        self.name = name
        self.nodeID = nodeID
        self.role = role
        self.suspended = false
        self.writeOrdering = "flush"
        self.devices = devices
        self.connections = connections
        self.nbdURI = nbdURI
        self.node = node
        self.pid = pid
        self.message = message
    }

    /// The text form, laid out as DRBD 9's `drbdadm status`.
    public func text() -> String {
        var lines = ["\(name) role:\(role)"]
        for device in devices {
            lines.append("  disk:\(device.diskState)")
        }
        for connection in connections {
            var line = "  \(connection.name) connection:\(connection.connectionState)"
            if connection.connectionState == "Connected" { line += " role:\(connection.peerRole)" }
            lines.append(line)
            if connection.connectionState == "Connected" {
                for peer in connection.peerDevices {
                    var l = "    replication:\(peer.replicationState) peer-disk:\(peer.peerDiskState)"
                    if peer.replicationState.hasPrefix("Sync") {
                        l += " done:" + String(format2: peer.percentInSync)
                    }
                    lines.append(l)
                }
            }
        }
        if let message { lines.append("  # \(message)") }
        return lines.joined(separator: "\n")
    }
}

extension String {
    /// Two decimals without Foundation's locale-dependent formatting.
    init(format2 value: Double) {
        let scaled = Int((value * 100).rounded())
        let frac = scaled % 100
        self = "\(scaled / 100)." + (frac < 10 ? "0" : "") + "\(frac)"
    }
}
