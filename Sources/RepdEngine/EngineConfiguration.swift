import PeerProtocol
import RepdCore

/// DRBD's replication protocols: when a replicated write completes.
public enum ReplicationMode: String, Sendable, Hashable {
    /// When the local write is done and the peer's copy has been sent.
    case A
    /// When the local write is done and the peer has received its copy.
    case B
    /// When both disks have the write.
    case C
}

/// DRBD's `on-io-error`: what a failed read or write of the backing disk does.
public enum OnIOError: String, Sendable, Hashable {
    /// The error goes to the application; the disk stays (its failed blocks are out of sync).
    case passOn = "pass_on"
    /// As `detach`, and the `local-io-error` handler runs.
    case callLocalIOError = "call-local-io-error"
    /// The disk is dropped; the node goes Diskless and serves through its peer.
    case detach
}

/// The settings of one resource the engine acts on: pure values, taken from the resource file by
/// the daemon (or chosen by the simulator).
public struct EngineConfiguration: Sendable {
    public var resource: String
    public var node: String
    /// The peer's node name; nil when the resource has no peer.
    public var peerNode: String?
    /// Bytes of the local disk the resource uses (after `size`).
    public var usableSize: UInt64
    public var replication: ReplicationMode = .C
    public var allowTwoPrimaries = false
    /// A replicated write the peer leaves unacknowledged longer than this drops the link (`timeout`).
    public var ackTimeoutNanoseconds: UInt64 = 6_000_000_000
    /// `ko-count`: a write the peer leaves unacknowledged for this many `timeout`s drops the link,
    /// even when the peer answers pings (a stuck disk there). 0: never for that alone.
    public var koCount = 7
    public var splitBrainPolicies = SplitBrainPolicies()
    public var rrConflict: RRConflict = .disconnect
    public var csumsAlgorithm: String?
    public var verifyAlgorithm: String?
    public var resync = ResyncController.Settings(
        fixedRate: 250 * 1024, planAhead: 20, fillTarget: 100 * 512, delayTarget: 10, maxRate: 100 << 20, minRate: 250 * 1024)
    /// Activity-log slots (already clamped to what the metadata can describe).
    public var activityLogExtents = 1237
    /// An activity-log extent nobody wrote for this long (nanoseconds) leaves the table, in a
    /// transaction of its own after a data sync (0: never; extents then leave only when the table
    /// is full, as in DRBD). After a crash the resync covers the table.
    public var activityLogRetireAfter: UInt64 = 10_000_000_000
    /// The handlers the resource file defines (others are never started).
    public var handlers: Set<String> = []
    /// `become-primary-on` names this node (or both).
    public var becomePrimaryOnStart = false
    /// `wfc-timeout` seconds (0: wait for the peer forever).
    public var waitForConnectionSeconds = 0
    /// Environment of every handler besides the engine's own variables (DRBD_MINOR, addresses, ...).
    public var handlerEnvironment: [String: String] = [:]
    /// How many bytes of replicated writes may wait for the peer's durability confirmation before
    /// the primary asks for one.
    public var barrierBytes = 64 << 20
    /// Application writes wait at most this long (nanoseconds) for a durability barrier of the
    /// engine's own while they go on; a pause in the writes (a tick without acknowledgements),
    /// client flushes, resync transfers and a full activity log ask for one at once.
    /// Each barrier costs the peer a data sync: one a tick (100 ms) cost two-node random writes on
    /// a real disk a fifth of their throughput (Benchmarks/README.md, "Durability on the peer").
    public var barrierInterval: UInt64 = 1_000_000_000
    /// Lazy bitmap writes: every this many nanoseconds.
    public var bitmapFlushInterval: UInt64 = 2_000_000_000
    public var onIOError: OnIOError = .detach
    /// `fencing`: what losing the peer while Primary does (Fencing.swift).
    public var fencing: FencingPolicy = .dontCare
    /// `disk-timeout`: a local I/O older than this detaches the disk (0: off).
    public var diskTimeoutNanoseconds: UInt64 = 0
    /// `on-no-data-accessible suspend-io`: requests that no disk can serve wait (for the peer, an
    /// attach or `resume-io`) instead of failing.
    public var suspendWithoutData = false

    public init(resource: String, node: String, peerNode: String?, usableSize: UInt64) {
        self.resource = resource
        self.node = node
        self.peerNode = peerNode
        self.usableSize = usableSize
    }

    /// The digest algorithms verify and csums-alg can use.
    public static let digestAlgorithms = ["crc32c", "md5", "sha1", "sha256"]

    public static func digestLength(_ algorithm: String) -> Int {
        switch algorithm {
        case "md5": 16
        case "sha1": 20
        case "sha256": 32
        default: 4
        }
    }

    /// Blocks compared per request: their digests, concatenated, fit one reply.
    public static func blocksPerDigestRequest(_ algorithm: String) -> Int {
        max(1, PeerWire.maximumDigestLength / digestLength(algorithm))
    }
}
