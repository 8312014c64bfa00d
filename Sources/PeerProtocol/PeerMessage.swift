import NIOCore
import RepdCore

/// The first message on a connection, sent by both sides without waiting for the other.
public struct PeerHello: Sendable, Hashable {
    /// The range of protocol versions the sender speaks.
    public var versionMin: UInt16
    public var versionMax: UInt16
    /// Optional features the sender supports (none are defined in version 1).
    public var features: UInt32
    /// The resource this connection replicates.
    public var resource: String
    /// The sender's node name.
    public var node: String
    /// The node name the sender expects to be talking to.
    public var peer: String
    /// A random number chosen by the sender for this connection.
    public var nonce: UInt64
    /// Whether the sender has a shared secret and will challenge its peer.
    public var authRequired: Bool

    public init(
        versionMin: UInt16 = PeerWire.currentVersion, versionMax: UInt16 = PeerWire.currentVersion, features: UInt32 = 0,
        resource: String, node: String, peer: String, nonce: UInt64, authRequired: Bool
    ) {
        self.versionMin = versionMin
        self.versionMax = versionMax
        self.features = features
        self.resource = resource
        self.node = node
        self.peer = peer
        self.nonce = nonce
        self.authRequired = authRequired
    }
}

/// What a node tells its peer about itself after the handshake, and again whenever it changes.
public struct PeerStateReport: Sendable, Hashable {
    public var role: Role
    public var disk: DiskState
    /// Bytes of replicated data the sender's disk holds.
    public var usableSize: UInt64
    public var generation: GenerationIdentifiers
    /// Blocks set in the sender's dirty bitmap.
    public var outOfSyncBlocks: UInt64
    public var flags: Flags
    /// The replication protocol the sender is configured with: ASCII 'A', 'B' or 'C'.
    public var replicationProtocol: UInt8
    public var allowTwoPrimaries: Bool

    public struct Flags: OptionSet, Sendable, Hashable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// The sender was Primary when it went down without a clean shutdown.
        public static let crashedPrimary = Flags(rawValue: 1)
        /// The operator told the sender to give up its data in a split brain.
        public static let discardMyData = Flags(rawValue: 2)
        /// The sender's data is consistent (possibly old).
        public static let consistent = Flags(rawValue: 4)
        /// The sender's disk was UpToDate when it last had a connection.
        public static let wasUpToDate = Flags(rawValue: 8)
        /// The sender answers the peer's attach (a report with disk Negotiating): both sides decide
        /// the resync from this pair of reports.
        public static let negotiationReply = Flags(rawValue: 16)
        /// Every flag version 1 defines; other bits are malformed.
        public static let known: Flags = [.crashedPrimary, .discardMyData, .consistent, .wasUpToDate, .negotiationReply]
    }

    public init(
        role: Role, disk: DiskState, usableSize: UInt64, generation: GenerationIdentifiers, outOfSyncBlocks: UInt64,
        flags: Flags = [], replicationProtocol: UInt8 = UInt8(ascii: "C"), allowTwoPrimaries: Bool = false
    ) {
        self.role = role
        self.disk = disk
        self.usableSize = usableSize
        self.generation = generation
        self.outOfSyncBlocks = outOfSyncBlocks
        self.flags = flags
        self.replicationProtocol = replicationProtocol
        self.allowTwoPrimaries = allowTwoPrimaries
    }
}

/// An application write replicated from the Primary to the Secondary.
public struct PeerWrite: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        /// `length` bytes of data follow.
        case data = 0
        /// Discard the range (no data on the wire).
        case trim = 1
        /// Write zeroes over the range (no data on the wire).
        case zeroes = 2
    }

    /// Numbers the writes of one connection; acknowledgements name it.
    public var sequence: UInt64
    public var offset: UInt64
    public var length: UInt32
    public var kind: Kind
    /// The write must be on stable storage before it is acknowledged.
    public var fua: Bool
    /// For `zeroes`: the range must stay allocated (NBD's NO_HOLE); carried but meaningless otherwise.
    public var noHole: Bool
    /// The data, for `data` only, with `length == payload.readableBytes`; nil for `trim` and `zeroes`.
    public var payload: ByteBuffer?
    /// `data-integrity-alg`: the digest of the data, added by the sending connection and checked
    /// by the receiving one (data writes only).
    public var digest: PeerDigest?

    public init(
        sequence: UInt64, offset: UInt64, length: UInt32, kind: Kind, fua: Bool = false, noHole: Bool = false,
        payload: ByteBuffer? = nil
    ) {
        self.sequence = sequence
        self.offset = offset
        self.length = length
        self.kind = kind
        self.fua = fua
        self.noHole = noHole
        self.payload = payload
    }

    /// A data write; the length is the payload's.
    public init(sequence: UInt64, offset: UInt64, data: ByteBuffer, fua: Bool = false) {
        self.init(sequence: sequence, offset: offset, length: UInt32(data.readableBytes), kind: .data, fua: fua, payload: data)
    }
}

/// A digest of a write's data in flight (`data-integrity-alg`).
public struct PeerDigest: Sendable, Equatable {
    /// The algorithm, by its wire code (``algorithms``).
    public var algorithm: UInt8
    public var bytes: [UInt8]

    public init(algorithm: UInt8, bytes: [UInt8]) {
        self.algorithm = algorithm
        self.bytes = bytes
    }

    /// Wire code to name and digest length.
    public static let algorithms: [UInt8: (name: String, length: Int)] = [1: ("crc32c", 4), 2: ("sha1", 20), 3: ("sha256", 32)]

    public static func code(_ name: String) -> UInt8? { algorithms.first { $0.value.name == name }?.key }
    public var name: String { Self.algorithms[algorithm]?.name ?? "algorithm \(algorithm)" }
}

/// Every message of the replication protocol. Byte layouts: Docs/WireProtocol.md.
/// What a `fenceRequest` asks for.
public enum FenceAction {
    /// Outdate the receiver's disk (DRBD's `drbdadm outdate`, asked by the peer's fence-peer handler).
    public static let outdate: UInt8 = 1
}

public enum PeerMessage: Sendable, Equatable {
    case hello(PeerHello)
    /// `challenge` is 32 to 64 bytes.
    case authChallenge(algorithm: String, challenge: [UInt8])
    /// At most 64 bytes.
    case authResponse(mac: [UInt8])
    case authResult(accepted: Bool, reason: String)
    /// The connection-selection leader keeps this connection.
    case chosen
    case state(PeerStateReport)
    case write(PeerWrite)
    /// The write is on the peer's disk (protocol C); `status` is 0 or an NBD error number.
    case writeAck(sequence: UInt64, status: UInt32)
    /// The write was received (protocol B).
    case receiveAck(sequence: UInt64)
    case flush(sequence: UInt64)
    case flushAck(sequence: UInt64, status: UInt32)
    case ping
    case pingAck
    /// One 4096-byte page of the sender's dirty bitmap.
    case bitmapPage(index: UInt32, bytes: ByteBuffer)
    case bitmapDone(pages: UInt32)
    case syncStart(sourceIsSender: Bool, totalBlocks: UInt64, full: Bool)
    /// Resync data pushed by the SyncSource.
    case syncData(offset: UInt64, payload: ByteBuffer)
    case syncAck(offset: UInt64, length: UInt32, status: UInt32)
    case syncDone(blocks: UInt64)
    case checksumRequest(offset: UInt64, length: UInt32, algorithm: String)
    /// `digest` is at most 64 bytes.
    case checksumReply(offset: UInt64, length: UInt32, digest: [UInt8])
    /// The sender's operator paused (`repd pause-sync`) or resumed the resync.
    case syncPause(paused: Bool)
    /// The sender's operator asked for a resync (`invalidate`, `invalidate-remote`): both sides start
    /// one in the given direction, of the whole disk or of the union of both bitmaps.
    case resyncRequest(senderIsSource: Bool, full: Bool)
    /// An online verify started (`running`, `blocks` to compare) or ended (`blocks` found out of sync).
    case verifyNotice(running: Bool, blocks: UInt64)
    /// A SyncTarget asks for blocks it needs now (an application reads or writes them before the
    /// resync got there); the SyncSource answers with `dataReply` and counts them as synced.
    case dataRequest(id: UInt64, offset: UInt64, length: UInt32)
    /// `status` 0 and the data, or an error number and no data.
    case dataReply(id: UInt64, status: UInt32, payload: ByteBuffer)
    /// The sender wants to become Primary (without allow-two-primaries, the peer must agree).
    case roleRequest(primary: Bool)
    /// The answer: granted, or refused with the reason.
    case roleReply(granted: Bool, reason: String)
    /// On the fencing path only: the sender's fence-peer handler asks this node to outdate its disk.
    case fenceRequest(action: UInt8)
    /// On the fencing path only: DRBD's fence-peer exit code for the asking node, and a sentence.
    case fenceReply(code: UInt8, reason: String)
    case error(reason: String)

    public var type: PeerMessageType {
        switch self {
        case .hello: .hello
        case .authChallenge: .authChallenge
        case .authResponse: .authResponse
        case .authResult: .authResult
        case .chosen: .chosen
        case .state: .state
        case .write: .write
        case .writeAck: .writeAck
        case .receiveAck: .receiveAck
        case .flush: .flush
        case .flushAck: .flushAck
        case .ping: .ping
        case .pingAck: .pingAck
        case .bitmapPage: .bitmapPage
        case .bitmapDone: .bitmapDone
        case .syncStart: .syncStart
        case .syncData: .syncData
        case .syncAck: .syncAck
        case .syncDone: .syncDone
        case .checksumRequest: .checksumRequest
        case .checksumReply: .checksumReply
        case .syncPause: .syncPause
        case .resyncRequest: .resyncRequest
        case .verifyNotice: .verifyNotice
        case .dataRequest: .dataRequest
        case .dataReply: .dataReply
        case .roleRequest: .roleRequest
        case .roleReply: .roleReply
        case .fenceRequest: .fenceRequest
        case .fenceReply: .fenceReply
        case .error: .error
        }
    }
}
