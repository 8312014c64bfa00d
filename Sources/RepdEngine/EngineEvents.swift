import NIOCore
import PeerProtocol
import RepdCore

/// Identifies a client request (an NBD request) for as long as the engine holds it. Chosen by the driver.
public typealias ClientRequestID = UInt64
/// Identifies one local I/O, metadata write or handler run the engine asked for. Chosen by the engine.
public typealias IOToken = UInt64
/// Identifies one peer connection. Chosen by the driver; a message or loss names the connection it came from.
public typealias ConnectionID = Int
/// Identifies one operator command until it is answered. Chosen by the driver.
public typealias CommandID = UInt64

/// Everything that happens to a resource, as the engine sees it. The engine never reads a clock,
/// a disk or a socket: time comes with `tick`, results of I/O with the `...Done` events.
public enum Event: Sendable {
    /// An application reads (or asks for block status, or a prefetch).
    case clientRead(ClientRequestID, offset: UInt64, length: UInt32, kind: ClientReadKind)
    /// An application writes, trims or zeroes.
    case clientWrite(ClientRequestID, ClientWrite)
    /// An application asks that every write it has seen completed be durable (on both disks).
    case clientFlush(ClientRequestID)
    /// A local read the engine asked for finished.
    case readDone(IOToken, Result<ReadOutcome, IOFailure>)
    /// A local write, trim or zeroing finished.
    case writeDone(IOToken, IOFailure?)
    /// A local `fdatasync` of the data finished.
    case syncDone(IOToken, IOFailure?)
    /// A metadata write (bitmap pages, activity-log transaction, superblock) finished.
    case persisted(IOToken, IOFailure?)
    /// A peer connection passed its handshake and authentication. `localResolves`: this node
    /// resolves concurrent-write conflicts (both nodes compute the same answer).
    case peerConnected(ConnectionID, peerNode: String, localResolves: Bool)
    /// The connection closed (by either side, or by a timeout).
    case peerLost(ConnectionID, reason: String)
    case peerMessage(ConnectionID, PeerMessage)
    /// A message sent with `reportSent` left this node (protocol A completes writes on it).
    case peerSent(ConnectionID, sequence: UInt64)
    /// The link was refused (authentication, wrong resource, ...): only for status.
    case peerRefused(reason: String)
    /// Time passes. `now` is monotonic nanoseconds, `unixTime` seconds since 1970 (for status).
    case tick(now: UInt64, unixTime: UInt64)
    /// An operator command; answered with `Action.reply`.
    case command(CommandID, OperatorCommand)
    /// A handler the engine started with `Action.runHandler` ended.
    case handlerFinished(IOToken, HandlerResult)
    /// The daemon is going down: refuse new client requests (in-flight ones finish).
    case beginShutdown
    /// `repd attach`: the driver opened a backing disk and read its metadata; the engine takes it
    /// (and its I/O starts) or refuses it with the reply.
    case attachDisk(CommandID, NewDisk)
    /// `repd adjust`: the settings from the changed resource file; the engine takes those it can
    /// change while running (Adjust.swift) or refuses with the reply.
    case adjust(CommandID, EngineConfiguration)
    /// `repd resize`: the backing disk grew; `layout` is the metadata layout for its new size
    /// (Resize.swift).
    case resize(CommandID, layout: MetadataLayout, assumeClean: Bool)
}

/// A backing disk the driver opened for `repd attach`, with its metadata as read.
public struct NewDisk: Sendable {
    public var superblock: Superblock
    public var bitmap: DirtyBitmap
    public var activityLogReplay: ActivityLog.Replay
    /// Bytes of it the resource uses.
    public var usableSize: UInt64
    /// Every block must be resynced (the disk's last detach could not record its bitmap).
    public var fullSync: Bool

    public init(superblock: Superblock, bitmap: DirtyBitmap, activityLogReplay: ActivityLog.Replay, usableSize: UInt64, fullSync: Bool = false) {
        self.superblock = superblock
        self.bitmap = bitmap
        self.activityLogReplay = activityLogReplay
        self.usableSize = usableSize
        self.fullSync = fullSync
    }
}

/// What the engine asks its driver to do. The driver carries actions out in order, without the
/// state lock, and reports results back as events.
public enum Action: Sendable {
    /// Read locally; report `readDone`.
    case readLocal(IOToken, range: Range<UInt64>, kind: LocalReadKind)
    /// Write, trim or zero locally; report `writeDone`.
    case writeLocal(IOToken, LocalWrite)
    /// `fdatasync` the data; report `syncDone`.
    case syncLocal(IOToken)
    /// Write metadata on the serial metadata queue; report `persisted`.
    case persist(IOToken, MetadataWrite)
    /// Send a message on a connection (dropped silently if that connection is gone). With
    /// `reportSent`, report `peerSent` with that sequence once it has been written to the socket.
    case send(ConnectionID, PeerMessage, reportSent: UInt64? = nil)
    /// Close a connection; the link reconnects by itself.
    case dropConnection(ConnectionID, reason: String)
    /// Ask the peer for a sign of life now (a ping): a peer that does not answer within
    /// ping-timeout is dropped by the link. Sent when a replicated write is late (`ko-count`).
    case probePeer(ConnectionID)
    /// The replicated size grew (`repd resize`): the block device follows.
    case exportSizeChanged(UInt64)
    /// Stop connecting until `resumeConnecting` (DRBD's StandAlone).
    case goStandAlone(reason: String)
    case resumeConnecting
    /// Answer an application request.
    case complete(ClientRequestID, ClientResult)
    /// Answer an operator command.
    case reply(CommandID, ok: Bool, message: String)
    /// Run a configured handler in the background; report `handlerFinished` with the token.
    case runHandler(IOToken, name: String, environment: [String: String])
    /// The role changed (the block device follows it: writable on a Primary only).
    case roleChanged(Role)
    /// The engine let go of the backing disk: no I/O to it is issued from now on, and results of
    /// I/O still out there are ignored. The driver writes `farewell` to the metadata if it can (it
    /// may fail on a failing disk), records a failure so that the disk is not used again by itself,
    /// and closes the disk once its I/O has returned.
    case diskDetached(DiskFailure?, farewell: MetadataWrite)
    case log(LogLevel, String)
}

public enum LogLevel: Sendable, Hashable {
    case info, warning, error
}

public enum ClientReadKind: Sendable, Hashable {
    case read
    /// NBD_CMD_CACHE: a prefetch, no data returned.
    case cache
    /// NBD_CMD_BLOCK_STATUS for base:allocation.
    case blockStatus(requestOne: Bool)
}

public struct ClientWrite: Sendable {
    public var range: Range<UInt64>
    public var kind: PeerWrite.Kind
    public var fua: Bool
    public var noHole: Bool
    public var fastZero: Bool
    /// The data of a `.data` write, `range.count` bytes.
    public var payload: ByteBuffer?

    public init(range: Range<UInt64>, kind: PeerWrite.Kind, fua: Bool = false, noHole: Bool = false, fastZero: Bool = false,
                payload: ByteBuffer? = nil) {
        self.range = range
        self.kind = kind
        self.fua = fua
        self.noHole = noHole
        self.fastZero = fastZero
        self.payload = payload
    }
}

public enum LocalReadKind: Sendable, Hashable {
    /// The bytes.
    case data
    /// The bytes and the digest of every 4 KiB block (checksum-based resync).
    case dataAndDigests(algorithm: String)
    /// Only the digest of every 4 KiB block (verify, a peer's checksum request).
    case digests(algorithm: String)
    /// A prefetch into the page cache; nothing comes back.
    case prefetch
    /// Which parts are holes (SEEK_DATA/SEEK_HOLE), for block status.
    case allocation
}

public struct ReadOutcome: Sendable {
    public var data: ByteBuffer?
    public var digests: [[UInt8]]?
    /// For `.allocation`: runs of (length, hole) covering the range.
    public var allocation: [AllocationRun]?

    public init(data: ByteBuffer? = nil, digests: [[UInt8]]? = nil, allocation: [AllocationRun]? = nil) {
        self.data = data
        self.digests = digests
        self.allocation = allocation
    }
}

public struct AllocationRun: Sendable, Hashable {
    public var length: UInt64
    public var hole: Bool
    public init(length: UInt64, hole: Bool) {
        self.length = length
        self.hole = hole
    }
}

/// A write to the local disk. `segments` are the parts of `range` to write (all of it unless a
/// dual-primary conflict resolution skipped some); the payload holds the bytes of all of `range`.
public struct LocalWrite: Sendable {
    public var range: Range<UInt64>
    public var segments: [Range<UInt64>]
    public var kind: PeerWrite.Kind
    public var fua: Bool
    public var noHole: Bool
    public var fastZero: Bool
    public var payload: ByteBuffer?
    /// Whether the write also goes to the peer (the driver may do small unreplicated writes inline).
    public var replicated: Bool
}

/// Metadata to write, in this order: a sync of the data if `syncDataFirst`, bitmap pages, a sync if
/// `syncBitmap`, the activity-log transactions (made durable), the superblock (made durable). A
/// failure stops the sequence.
public struct MetadataWrite: Sendable {
    /// Completed writes must be durable before the activity log stops covering their extents.
    public var syncDataFirst = false
    public var bitmapPages: [(index: Int, bytes: [UInt8])]
    public var syncBitmap: Bool
    public var activityLog: [(transaction: ActivityLogTransaction, ringSlot: Int)]
    public var superblock: Superblock?

    public init(bitmapPages: [(index: Int, bytes: [UInt8])] = [], syncBitmap: Bool = false,
                activityLog: [(transaction: ActivityLogTransaction, ringSlot: Int)] = [], superblock: Superblock? = nil) {
        self.bitmapPages = bitmapPages
        self.syncBitmap = syncBitmap
        self.activityLog = activityLog
        self.superblock = superblock
    }
}

/// A failed local I/O.
public struct IOFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case io, noSpace, notSupported, invalid, shutdown
    }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }
}

/// What an application gets back.
public enum ClientResult: Sendable {
    case done
    case data(ByteBuffer)
    /// Block status: runs covering the request (the driver encodes them as NBD extents).
    case extents([AllocationRun])
    case failed(ClientError, String)
}

/// The NBD errors the engine answers with (the driver maps them to NBD's numbers).
public enum ClientError: Sendable, Hashable {
    case io, permission, noSpace, invalid, notSupported, shutdown
}

public enum HandlerResult: Sendable, Hashable {
    case exited(Int32)
    case failed(String)
}

/// Operator commands the engine answers (status is read from `Engine.status` instead).
public enum OperatorCommand: Sendable, Hashable {
    case primary(force: Bool)
    case secondary
    case pauseSync
    case resumeSync
    /// This node becomes SyncTarget; `full`: the whole disk, otherwise the blocks already marked.
    case invalidate(full: Bool)
    case invalidateRemote(full: Bool)
    case verify
    case newCurrentUUID(clearBitmap: Bool)
    case connect(discardMyData: Bool, dryRun: Bool)
    case disconnect
    /// `repd detach`: drop the disk on purpose; the node serves through its peer.
    case detach
    /// `repd resume-io`: requests suspended without data (or by `suspend-io`) fail or go on; a
    /// fencing freeze is lifted.
    case resumeIO
    /// `repd suspend-io`: new application requests wait.
    case suspendIO
    /// `repd outdate` (the operator), or the peer's fence-peer handler over the fencing path
    /// (`byPeer`: the reply's message starts with DRBD's fence-peer exit code).
    case outdate(byPeer: Bool)
}
