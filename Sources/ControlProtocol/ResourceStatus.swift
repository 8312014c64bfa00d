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
    /// repd: why application I/O is suspended (`no-data`, `user`, `fencing`), as DRBD 9's status
    /// shows after `suspended:`; nil or empty when it is not.
    public var suspendedReasons: [String]?
    /// repd: latency histograms of application requests and replication since `up`.
    public var latency: LatencyStatistics?

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
        case suspendedReasons = "repd-suspended"
        case latency = "repd-latency"
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

        /// repd: the generation identifiers as `dump-md` prints them (16 hex digits), so that
        /// `show-gi` can explain the live state; nil when the daemon does not report them.
        public var currentUUID: String?
        public var bitmapUUID: String?
        /// repd: history identifiers, newest first.
        public var historyUUIDs: [String]?
        /// repd: the metadata flags by their `dump-md` names (`consistent`, `was-up-to-date`, ...).
        public var metadataFlags: [String]?
        /// repd: KiB the last finished online verify found out of sync (nil: no verify since `up`).
        public var lastVerifyOutOfSyncKiB: UInt64?
        /// repd: when the last online verify finished, in seconds since the Unix epoch.
        public var lastVerifyFinishedAt: UInt64?
        /// repd: the block device `repd up` attached for the resource's `device` path; nil with
        /// `device none;` (export only).
        public var blockDevice: BlockDevice?
        /// repd: why the node is Diskless, when its disk failed or was detached
        /// (`I/O error at 1048576 (write) at 2026-12-07T10:00:00Z: ...`).
        public var diskFailure: String?

        enum CodingKeys: String, CodingKey {
            case volume, minor, client, quorum, size, read, written, blocked
            case diskState = "disk-state"
            case alWrites = "al-writes"
            case bmWrites = "bm-writes"
            case upperPending = "upper-pending"
            case lowerPending = "lower-pending"
            case alSuspended = "al-suspended"
            case backingDisk = "repd-backing-disk"
            case currentUUID = "repd-current-uuid"
            case bitmapUUID = "repd-bitmap-uuid"
            case historyUUIDs = "repd-history-uuids"
            case metadataFlags = "repd-md-flags"
            case lastVerifyOutOfSyncKiB = "repd-last-verify-out-of-sync-kib"
            case lastVerifyFinishedAt = "repd-last-verify-finished-at"
            case blockDevice = "repd-device"
            case diskFailure = "repd-disk-failure"
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

    /// repd: the node's block device: the configured path, the kernel device behind it, and how
    /// it is attached (`kernel nbd`, `nbdfuse+loop`).
    public struct BlockDevice: Codable, Sendable, Equatable {
        /// The resource's `device` path, e.g. `/dev/drbd1` (a link to ``target``).
        public var path: String
        /// The kernel's block device, e.g. `/dev/nbd0` or `/dev/loop3`.
        public var target: String
        public var method: String
        /// Set while the node is Secondary: the device refuses writes.
        public var readOnly: Bool
        /// Every link repd made to ``target`` (the `device` path, `/dev/repd/by-res/RES`).
        public var links: [String]

        enum CodingKeys: String, CodingKey {
            case path, target, method, links
            case readOnly = "read-only"
        }

        public init(path: String, target: String, method: String, readOnly: Bool, links: [String]) {
            self.path = path
            self.target = target
            self.method = method
            self.readOnly = readOnly
            self.links = links
        }

        /// `device:/dev/drbd1 -> /dev/nbd0 (kernel nbd)`, with `read-only` while Secondary.
        public var summary: String {
            let arrow = path == target ? target : "\(path) -> \(target)"
            return "device:\(arrow) (\(method))" + (readOnly ? " read-only" : "")
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
        /// repd: the connection was dropped because both nodes changed the data since they last
        /// agreed and no after-split-brain policy resolved it (the state is then StandAlone).
        public var splitBrain: Bool?
        /// repd: the one command that resolves the situation, to be run on the node whose changes
        /// are to be dropped, e.g. `repd connect --discard-my-data r0`.
        public var resolveCommand: String?

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
            case splitBrain = "repd-split-brain"
            case resolveCommand = "repd-resolve-command"
        }

        /// Whether the connection is StandAlone after an unresolved split brain.
        public var isStandAloneAfterSplitBrain: Bool {
            splitBrain == true && connectionState == "StandAlone"
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

        // Sync and verify details, present while a resync or an online verify runs (DRBD prints
        // them when `has-sync-details` is true). Raw figures are in DRBD's units: sectors of 512
        // bytes and milliseconds. Fill them with `setSyncDetails(_:)`, which also computes the
        // derived keys, so that all of them agree.

        /// Sectors to resync (or to verify) when the run started.
        public var rsTotal: UInt64?
        /// Milliseconds since the run started, paused time included.
        public var rsDtStartMs: UInt64?
        /// Milliseconds the run has been paused in total.
        public var rsPausedMs: UInt64?
        /// The "current speed" window: its length and the sectors done within it.
        public var rsDt0Ms: UInt64?
        public var rsDb0Sectors: UInt64?
        /// A shorter, more recent window; DRBD's time-to-finish estimate uses it.
        public var rsDt1Ms: UInt64?
        public var rsDb1Sectors: UInt64?
        /// Resync only: sectors that failed to resync, and sectors skipped because the checksums
        /// matched (csums-alg).
        public var rsFailed: UInt64?
        public var rsSameCsum: UInt64?
        /// Verify only: first sector, sector to stop at (absent: the end of the device), current
        /// position, sectors still to compare, sectors skipped.
        public var ovStartSector: UInt64?
        public var ovStopSector: UInt64?
        public var ovPosition: UInt64?
        public var ovLeft: UInt64?
        public var ovSkipped: UInt64?
        /// The rate the resync controller aims at, MiB/s (0 with a fixed resync-rate).
        public var want: Double?
        /// Derived, as DRBD prints them: MiB/s within window 0, within window 1, and on average
        /// since the start without paused time; the estimated seconds to finish (window 1;
        /// 987654321 when nothing moved); the percentage done.
        public var db0dt0: Double?
        public var db1dt1: Double?
        public var dbdt: Double?
        public var estimatedSecondsToFinish: UInt64?
        public var percentResyncDone: Double?

        /// repd: current speed (window 0) and average speed (since the start, paused time
        /// excluded), KiB/s.
        public var syncRateKiB: UInt64?
        public var syncRateAverageKiB: UInt64?
        /// repd: seconds to finish at the current speed; nil while paused or stalled.
        public var etaSeconds: UInt64?
        /// repd: why this resync runs, in words: the rule of the generation comparison that
        /// decided it (e.g. "rule 3: bitmap UUID of the peer matches our current UUID ...").
        public var syncDecision: String?
        /// repd: verify only: KiB found out of sync so far in the running verify.
        public var verifyOutOfSyncKiB: UInt64?

        enum CodingKeys: String, CodingKey {
            case volume, received, sent, pending, unacked, want
            case replicationState = "replication-state"
            case peerDiskState = "peer-disk-state"
            case peerClient = "peer-client"
            case resyncSuspended = "resync-suspended"
            case outOfSync = "out-of-sync"
            case hasSyncDetails = "has-sync-details"
            case hasOnlineVerifyDetails = "has-online-verify-details"
            case percentInSync = "percent-in-sync"
            case rsTotal = "rs-total"
            case rsDtStartMs = "rs-dt-start-ms"
            case rsPausedMs = "rs-paused-ms"
            case rsDt0Ms = "rs-dt0-ms"
            case rsDb0Sectors = "rs-db0-sectors"
            case rsDt1Ms = "rs-dt1-ms"
            case rsDb1Sectors = "rs-db1-sectors"
            case rsFailed = "rs-failed"
            case rsSameCsum = "rs-same-csum"
            case ovStartSector = "ov-start-sector"
            case ovStopSector = "ov-stop-sector"
            case ovPosition = "ov-position"
            case ovLeft = "ov-left"
            case ovSkipped = "ov-skipped"
            case db0dt0 = "db0/dt0 [MiB/s]"
            case db1dt1 = "db1/dt1 [MiB/s]"
            case dbdt = "db/dt [MiB/s]"
            case estimatedSecondsToFinish = "estimated-seconds-to-finish"
            case percentResyncDone = "percent-resync-done"
            case syncRateKiB = "repd-sync-rate-kib"
            case syncRateAverageKiB = "repd-sync-rate-avg-kib"
            case etaSeconds = "repd-eta-seconds"
            case syncDecision = "repd-sync-decision"
            case verifyOutOfSyncKiB = "repd-ov-out-of-sync-kib"
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
                node: String, pid: Int32, message: String?, suspendedReasons: [String]? = nil) {
        self.name = name
        self.nodeID = nodeID
        self.role = role
        self.suspended = !(suspendedReasons ?? []).isEmpty
        self.suspendedReasons = suspendedReasons
        self.writeOrdering = "flush"
        self.devices = devices
        self.connections = connections
        self.nbdURI = nbdURI
        self.node = node
        self.pid = pid
        self.message = message
    }
}
